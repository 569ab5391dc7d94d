//! Producer configuration with the Java client's property names.

use std::time::Duration;

use crate::config::{parse_bool, parse_ms, parse_num, ClientConfig};
use crate::engine::Compression;
use crate::error::{Error, Result};

/// `acks`: how many replicas must have a record before it counts as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: fire and forget; offsets are unknown (-1).
    None,
    /// `acks=1`: the leader has it.
    Leader,
    /// `acks=all`: every in-sync replica has it.
    All,
}

impl Acks {
    pub(crate) fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Producer settings. [`Default`] holds every default in one place.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// Connection settings shared with every client.
    pub client: ClientConfig,
    /// `acks` (default all).
    pub acks: Acks,
    /// `enable.idempotence` (default true, as in the Java client).
    pub enable_idempotence: bool,
    idempotence_set: bool,
    /// `linger.ms` (default 5).
    pub linger: Duration,
    /// `batch.size` in bytes (default 16384).
    pub batch_size: usize,
    /// `buffer.memory` in bytes (default 32 MiB): past it `send` waits.
    pub buffer_memory: usize,
    /// `max.block.ms` (default 60000): longest `send` waits for memory or metadata.
    pub max_block: Duration,
    /// `max.in.flight.requests.per.connection` (default 5).
    pub max_in_flight: usize,
    /// `delivery.timeout.ms` (default 120000): budget of one record, retries included.
    pub delivery_timeout: Duration,
    /// `retries` (default 2147483647; `delivery.timeout.ms` bounds them).
    pub retries: u32,
    /// `compression.type` (default none).
    pub compression: Compression,
    /// `max.request.size` in bytes (default 1 MiB).
    pub max_request_size: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            client: ClientConfig::default(),
            acks: Acks::All,
            enable_idempotence: true,
            idempotence_set: false,
            linger: Duration::from_millis(5),
            batch_size: 16_384,
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_millis(60_000),
            max_in_flight: 5,
            delivery_timeout: Duration::from_millis(120_000),
            retries: i32::MAX as u32,
            compression: Compression::None,
            max_request_size: 1024 * 1024,
        }
    }
}

impl ProducerConfig {
    /// Producer property names, besides [`ClientConfig::accepts`]'s.
    pub const KEYS: &'static [&'static str] = &[
        "acks",
        "enable.idempotence",
        "linger.ms",
        "batch.size",
        "buffer.memory",
        "max.block.ms",
        "max.in.flight.requests.per.connection",
        "delivery.timeout.ms",
        "retries",
        "compression.type",
        "max.request.size",
    ];

    /// Whether `key` is a producer property (its own or a client one).
    pub fn accepts(key: &str) -> bool {
        Self::KEYS.contains(&key.trim()) || ClientConfig::accepts(key)
    }

    /// Sets one property by its Java name; client keys pass through to
    /// [`ClientConfig::set`].
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let v = value.trim();
        match key.trim() {
            "acks" => {
                self.acks = match v.to_ascii_lowercase().as_str() {
                    "0" => Acks::None,
                    "1" => Acks::Leader,
                    "all" | "-1" => Acks::All,
                    _ => return Err(Error::config(key, format!("`{v}` is not 0, 1, all or -1"))),
                }
            }
            "enable.idempotence" => {
                self.enable_idempotence = parse_bool(key, v)?;
                self.idempotence_set = true;
            }
            "linger.ms" => self.linger = parse_ms(key, v)?,
            "batch.size" => self.batch_size = parse_num(key, v)?,
            "buffer.memory" => self.buffer_memory = parse_num(key, v)?,
            "max.block.ms" => self.max_block = parse_ms(key, v)?,
            "max.in.flight.requests.per.connection" => self.max_in_flight = parse_num(key, v)?,
            "delivery.timeout.ms" => self.delivery_timeout = parse_ms(key, v)?,
            "retries" => self.retries = parse_num(key, v)?,
            "compression.type" => {
                self.compression = Compression::parse(v).ok_or_else(|| {
                    Error::config(
                        key,
                        format!("`{v}` is not one of none, gzip, snappy, lz4, zstd"),
                    )
                })?
            }
            "max.request.size" => self.max_request_size = parse_num(key, v)?,
            _ => return self.client.set(key, value),
        }
        Ok(())
    }

    /// Whether the producer will be idempotent. As in Java, an idempotence
    /// left at its default yields to conflicting settings; one set
    /// explicitly makes them an error in [`validate`](Self::validate).
    pub fn idempotent(&self) -> bool {
        self.enable_idempotence
            && (self.idempotence_set
                || (self.acks == Acks::All && self.max_in_flight <= 5 && self.retries > 0))
    }

    /// Checks the whole config.
    pub fn validate(&self) -> Result<()> {
        self.client.validate()?;
        if self.enable_idempotence && self.idempotence_set {
            if self.acks != Acks::All {
                return Err(Error::config(
                    "acks",
                    "must be all when enable.idempotence=true",
                ));
            }
            if self.max_in_flight > 5 {
                return Err(Error::config(
                    "max.in.flight.requests.per.connection",
                    "must be at most 5 when enable.idempotence=true",
                ));
            }
            if self.retries == 0 {
                return Err(Error::config(
                    "retries",
                    "must be greater than 0 when enable.idempotence=true",
                ));
            }
        }
        if self.max_in_flight == 0 {
            return Err(Error::config(
                "max.in.flight.requests.per.connection",
                "must be at least 1",
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch.size", "must be greater than 0"));
        }
        if self.buffer_memory < self.batch_size {
            return Err(Error::config(
                "buffer.memory",
                "must be at least batch.size",
            ));
        }
        if self.delivery_timeout < self.linger + self.client.request_timeout {
            return Err(Error::config(
                "delivery.timeout.ms",
                "must be at least linger.ms + request.timeout.ms",
            ));
        }
        if self.max_request_size < 1024 {
            return Err(Error::config("max.request.size", "must be at least 1024"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_javas_and_valid() {
        let c = ProducerConfig::default();
        c.validate().unwrap();
        assert!(c.idempotent());
        assert_eq!(c.acks, Acks::All);
    }

    #[test]
    fn explicit_idempotence_conflicts_are_errors() {
        let mut c = ProducerConfig::default();
        c.set("enable.idempotence", "true").unwrap();
        c.set("acks", "1").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("acks"), "{e}");
    }

    #[test]
    fn default_idempotence_yields() {
        let mut c = ProducerConfig::default();
        c.set("acks", "1").unwrap();
        c.validate().unwrap();
        assert!(!c.idempotent());
    }

    #[test]
    fn every_listed_key_is_known_to_set() {
        for key in ProducerConfig::KEYS {
            if let Err(e) = ProducerConfig::default().set(key, "\u{0}") {
                assert!(!e.to_string().contains("unknown"), "{key}: {e}");
            }
        }
        assert!(ProducerConfig::accepts("linger.ms") && ProducerConfig::accepts("client.id"));
        assert!(!ProducerConfig::accepts("group.id"));
    }

    #[test]
    fn keys_and_values_are_checked() {
        let mut c = ProducerConfig::default();
        assert!(c
            .set("compression.type", "brotli")
            .unwrap_err()
            .to_string()
            .contains("compression.type"));
        assert!(c
            .set("linger.msec", "1")
            .unwrap_err()
            .to_string()
            .contains("linger.msec"));
        c.set("bootstrap.servers", "h:1").unwrap();
        assert_eq!(c.client.bootstrap_servers, vec!["h:1"]);
        c.set("delivery.timeout.ms", "10").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("delivery.timeout.ms"));
    }
}
