//! Consumer configuration with the Java client's property names.

use std::time::Duration;

use crate::config::{parse_bool, parse_list, parse_ms, parse_num, ClientConfig};
use crate::engine::consumer::Strategy;
use crate::error::{Error, Result};

/// `auto.offset.reset`: where to start without a committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// Start at the log start.
    Earliest,
    /// Start at the log end (only new records).
    Latest,
    /// Fail with [`Error::NoOffset`](crate::Error::NoOffset).
    None,
}

/// Consumer settings. [`Default`] holds every default in one place.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// Connection settings shared with every client.
    pub client: ClientConfig,
    /// `group.id`; required for `subscribe` and for committing.
    pub group_id: Option<String>,
    /// `group.instance.id`: static membership (KIP-345).
    pub group_instance_id: Option<String>,
    /// `auto.offset.reset` (default latest).
    pub auto_offset_reset: OffsetReset,
    /// `enable.auto.commit` (default true, as in Java; our examples turn it off).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (default 5000).
    pub auto_commit_interval: Duration,
    /// `session.timeout.ms` (default 45000).
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (default 3000).
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (default 300000): longest gap between polls
    /// before the member leaves the group.
    pub max_poll_interval: Duration,
    /// `max.poll.records` (default 500).
    pub max_poll_records: usize,
    /// `fetch.min.bytes` (default 1).
    pub fetch_min_bytes: i32,
    /// `fetch.max.wait.ms` (default 500).
    pub fetch_max_wait: Duration,
    /// `max.partition.fetch.bytes` (default 1 MiB).
    pub max_partition_fetch_bytes: i32,
    /// `fetch.max.bytes` (default 50 MiB); also caps one batch's decompressed size.
    pub fetch_max_bytes: i32,
    /// `isolation.level`: read_committed hides aborted and open transactions.
    pub read_committed: bool,
    /// `partition.assignment.strategy`, in preference order
    /// (default range, cooperative-sticky, as in Java).
    pub assignment_strategies: Vec<Strategy>,
    /// `allow.auto.create.topics` (default true).
    pub allow_auto_create_topics: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            client: ClientConfig::default(),
            group_id: None,
            group_instance_id: None,
            auto_offset_reset: OffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_millis(5_000),
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(3_000),
            max_poll_interval: Duration::from_millis(300_000),
            max_poll_records: 500,
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            max_partition_fetch_bytes: 1024 * 1024,
            fetch_max_bytes: 50 * 1024 * 1024,
            read_committed: false,
            assignment_strategies: vec![Strategy::Range, Strategy::CooperativeSticky],
            allow_auto_create_topics: true,
        }
    }
}

impl ConsumerConfig {
    /// Consumer property names, besides [`ClientConfig::accepts`]'s.
    pub const KEYS: &'static [&'static str] = &[
        "group.id",
        "group.instance.id",
        "auto.offset.reset",
        "enable.auto.commit",
        "auto.commit.interval.ms",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "max.poll.records",
        "fetch.min.bytes",
        "fetch.max.wait.ms",
        "max.partition.fetch.bytes",
        "fetch.max.bytes",
        "isolation.level",
        "partition.assignment.strategy",
        "allow.auto.create.topics",
        "group.protocol",
    ];

    /// Whether `key` is a consumer property (its own or a client one).
    pub fn accepts(key: &str) -> bool {
        Self::KEYS.contains(&key.trim()) || ClientConfig::accepts(key)
    }

    /// Sets one property by its Java name; client keys pass through.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let v = value.trim();
        let opt = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        match key.trim() {
            "group.id" => self.group_id = opt(v),
            "group.instance.id" => self.group_instance_id = opt(v),
            "auto.offset.reset" => {
                self.auto_offset_reset = match v.to_ascii_lowercase().as_str() {
                    "earliest" => OffsetReset::Earliest,
                    "latest" => OffsetReset::Latest,
                    "none" => OffsetReset::None,
                    _ => {
                        return Err(Error::config(
                            key,
                            format!("`{v}` is not earliest, latest or none"),
                        ))
                    }
                }
            }
            "enable.auto.commit" => self.enable_auto_commit = parse_bool(key, v)?,
            "auto.commit.interval.ms" => self.auto_commit_interval = parse_ms(key, v)?,
            "session.timeout.ms" => self.session_timeout = parse_ms(key, v)?,
            "heartbeat.interval.ms" => self.heartbeat_interval = parse_ms(key, v)?,
            "max.poll.interval.ms" => self.max_poll_interval = parse_ms(key, v)?,
            "max.poll.records" => self.max_poll_records = parse_num(key, v)?,
            "fetch.min.bytes" => self.fetch_min_bytes = parse_num(key, v)?,
            "fetch.max.wait.ms" => self.fetch_max_wait = parse_ms(key, v)?,
            "max.partition.fetch.bytes" => self.max_partition_fetch_bytes = parse_num(key, v)?,
            "fetch.max.bytes" => self.fetch_max_bytes = parse_num(key, v)?,
            "isolation.level" => {
                self.read_committed = match v.to_ascii_lowercase().as_str() {
                    "read_committed" => true,
                    "read_uncommitted" => false,
                    _ => {
                        return Err(Error::config(
                            key,
                            format!("`{v}` is not read_committed or read_uncommitted"),
                        ))
                    }
                }
            }
            "partition.assignment.strategy" => {
                let mut out = Vec::new();
                for name in parse_list(v) {
                    out.push(Strategy::parse(&name).ok_or_else(|| {
                        Error::config(
                            key,
                            format!("`{name}` is not range, roundrobin or cooperative-sticky"),
                        )
                    })?);
                }
                self.assignment_strategies = out;
            }
            "allow.auto.create.topics" => self.allow_auto_create_topics = parse_bool(key, v)?,
            "group.protocol" if v.eq_ignore_ascii_case("classic") => {}
            "group.protocol" => {
                return Err(Error::config(
                    key,
                    "only the classic group protocol is supported",
                ))
            }
            _ => return self.client.set(key, value),
        }
        Ok(())
    }

    /// Checks the whole config.
    pub fn validate(&self) -> Result<()> {
        self.client.validate()?;
        if self.heartbeat_interval >= self.session_timeout {
            return Err(Error::config(
                "heartbeat.interval.ms",
                "must be lower than session.timeout.ms",
            ));
        }
        if self.max_poll_records == 0 {
            return Err(Error::config("max.poll.records", "must be at least 1"));
        }
        if self.assignment_strategies.is_empty() {
            return Err(Error::config(
                "partition.assignment.strategy",
                "must name at least one assignor",
            ));
        }
        if self.fetch_max_bytes <= 0 || self.max_partition_fetch_bytes <= 0 {
            return Err(Error::config(
                "fetch.max.bytes",
                "fetch sizes must be positive",
            ));
        }
        if self.client.request_timeout <= self.fetch_max_wait {
            return Err(Error::config(
                "request.timeout.ms",
                "must be greater than fetch.max.wait.ms (a fetch may wait that long for data)",
            ));
        }
        if self.group_instance_id.is_some() && self.group_id.is_none() {
            return Err(Error::config("group.instance.id", "needs group.id"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_key_is_known_to_set() {
        for key in ConsumerConfig::KEYS {
            if let Err(e) = ConsumerConfig::default().set(key, "\u{0}") {
                assert!(!e.to_string().contains("unknown"), "{key}: {e}");
            }
        }
        assert!(ConsumerConfig::accepts("isolation.level"));
        assert!(!ConsumerConfig::accepts("acks"));
    }

    #[test]
    fn defaults_validate_and_parse() {
        let mut c = ConsumerConfig::default();
        c.validate().unwrap();
        c.set(
            "partition.assignment.strategy",
            "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
        )
        .unwrap();
        assert_eq!(c.assignment_strategies, vec![Strategy::CooperativeSticky]);
        assert!(c
            .set("auto.offset.reset", "smallest")
            .unwrap_err()
            .to_string()
            .contains("auto.offset.reset"));
        c.set("heartbeat.interval.ms", "60000").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("heartbeat.interval.ms"));
    }
}
