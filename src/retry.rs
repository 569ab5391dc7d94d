//! Retriability and the one retry loop. Leaf module: any layer may use it.
//!
//! Every error type of the crate describes itself as a [`Class`]; [`classify`]
//! is the single place that decides what each class means for a retry. The
//! internal loops (metadata, coordinator, admin, producer metadata waits, the
//! schema registry) and the public [`crate::Error::retry_action`] all go
//! through it, so they cannot disagree.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;

/// How a caller can recover from an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryAction {
    /// Retrying cannot help (bad config, authorization, invalid request...).
    NoRetry,
    /// Retry after a backoff; the client reconnects or re-routes by itself.
    Retry,
    /// Retry after refreshing metadata (leadership moved, topic appeared).
    RefreshMetadataAndRetry,
}

/// What kind of failure an error is, independent of which layer saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// A connection could not be made or broke (the request may be resent).
    Network,
    /// An operation ran out of time; nothing was written.
    Timeout,
    /// A record's delivery timed out after it may have reached the broker:
    /// resending could duplicate it.
    DeliveryTimeout,
    /// The broker answered with this Kafka error code.
    Broker(i16),
    /// A broker id or partition leader is not (yet) in the metadata.
    Routing,
    /// The metadata says the topic or partition does not exist.
    Missing,
    /// The peer sent bytes that are not valid Kafka protocol.
    Protocol,
    /// The client could not encode a request (a bug or an oversized field).
    Encode,
    /// Fetched records fail their checks (CRC, decompression, limits).
    CorruptData,
    /// The broker speaks no version of an API the client needs.
    Unsupported,
    /// Credentials were refused.
    Authentication,
    /// Bad configuration or argument.
    Invalid,
    /// Closed, fenced, or otherwise finished for good.
    Final,
}

impl Class {
    /// A short label for metrics: the error code's name for broker errors,
    /// else the class (`network`, `timeout`, ...).
    pub(crate) fn kind(self) -> String {
        match self {
            Class::Broker(code) => crate::ErrorCode(code).name(),
            Class::Network => "network".into(),
            Class::Timeout => "timeout".into(),
            Class::DeliveryTimeout => "delivery_timeout".into(),
            Class::Routing => "routing".into(),
            Class::Missing => "missing".into(),
            Class::Protocol => "protocol".into(),
            Class::Encode => "encode".into(),
            Class::CorruptData => "corrupt_data".into(),
            Class::Unsupported => "unsupported".into(),
            Class::Authentication => "authentication".into(),
            Class::Invalid => "invalid".into(),
            Class::Final => "closed".into(),
        }
    }
}

/// The single decision: what a failure of `class` means for a retry.
pub(crate) fn classify(class: Class) -> RetryAction {
    use crate::codec::codes;
    match class {
        // A bad frame poisons the connection; a new one may well work (as Java
        // and librdkafka treat it: a disconnect).
        Class::Network | Class::Timeout | Class::Protocol => RetryAction::Retry,
        Class::Routing => RetryAction::RefreshMetadataAndRetry,
        Class::Broker(code) if codes::needs_metadata_refresh(code) => {
            RetryAction::RefreshMetadataAndRetry
        }
        Class::Broker(code) if crate::codec::ErrorCode(code).is_retriable() => RetryAction::Retry,
        Class::Broker(_)
        | Class::DeliveryTimeout
        | Class::Encode
        | Class::CorruptData
        | Class::Unsupported
        | Class::Authentication
        | Class::Missing
        | Class::Invalid
        | Class::Final => RetryAction::NoRetry,
    }
}

/// Backoff bounds and limits of one retried operation, taken from the
/// configured `retry.backoff.ms` / `retry.backoff.max.ms`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First wait (`retry.backoff.ms`).
    pub backoff: Duration,
    /// Largest wait (`retry.backoff.max.ms`).
    pub backoff_max: Duration,
    /// Give up once this passes (each attempt is also cut off by it).
    pub deadline: Option<Instant>,
    /// Give up after this many attempts (the first one included).
    pub max_attempts: Option<u32>,
}

impl RetryPolicy {
    /// Retries until `timeout` from now.
    pub fn within(backoff: Duration, backoff_max: Duration, timeout: Duration) -> Self {
        RetryPolicy {
            backoff,
            backoff_max,
            deadline: Some(Instant::now() + timeout),
            max_attempts: None,
        }
    }
}

/// Why [`retry`] gave up.
#[derive(Debug)]
pub enum Exhausted<E> {
    /// The operation failed in a way retrying cannot fix.
    Failed(E),
    /// The deadline or the attempt limit was reached; the last failure, if
    /// any attempt finished.
    GaveUp {
        /// The last failure seen.
        last: Option<E>,
        /// Attempts made.
        attempts: u32,
    },
}

/// Runs `op` until it succeeds, fails with an error `action` calls
/// [`RetryAction::NoRetry`], or the policy's deadline or attempt limit is
/// reached. Between attempts it calls `on_retry` (e.g. to drop a cached
/// coordinator) and sleeps a jittered exponential backoff.
pub async fn retry<T, E, F, Fut>(
    policy: RetryPolicy,
    mut op: F,
    action: impl Fn(&E) -> RetryAction,
    mut on_retry: impl FnMut(&E, RetryAction),
) -> Result<T, Exhausted<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::new(policy.backoff, policy.backoff_max);
    let mut last: Option<E> = None;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let result = match policy.deadline {
            Some(d) => match tokio::time::timeout_at(d.into(), op()).await {
                Ok(r) => r,
                Err(_) => return Err(Exhausted::GaveUp { last, attempts }),
            },
            None => op().await,
        };
        let err = match result {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let act = action(&err);
        if act == RetryAction::NoRetry {
            return Err(Exhausted::Failed(err));
        }
        let delay = backoff.next_delay();
        let out_of_time = policy.deadline.is_some_and(|d| Instant::now() + delay >= d);
        let out_of_attempts = policy.max_attempts.is_some_and(|m| attempts >= m);
        if out_of_time || out_of_attempts {
            return Err(Exhausted::GaveUp {
                last: Some(err),
                attempts,
            });
        }
        on_retry(&err, act);
        last = Some(err);
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy(max_attempts: Option<u32>, timeout: Duration) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            ..RetryPolicy::within(Duration::from_millis(1), Duration::from_millis(2), timeout)
        }
    }

    #[test]
    fn one_decision_per_class() {
        assert_eq!(classify(Class::Network), RetryAction::Retry);
        assert_eq!(classify(Class::DeliveryTimeout), RetryAction::NoRetry);
        assert_eq!(
            classify(Class::Routing),
            RetryAction::RefreshMetadataAndRetry
        );
        assert_eq!(
            classify(Class::Broker(6)),
            RetryAction::RefreshMetadataAndRetry
        );
        assert_eq!(classify(Class::Broker(7)), RetryAction::Retry);
        assert_eq!(classify(Class::Broker(36)), RetryAction::NoRetry);
        assert_eq!(classify(Class::Protocol), RetryAction::Retry);
        assert_eq!(classify(Class::Encode), RetryAction::NoRetry);
    }

    #[tokio::test]
    async fn retries_until_success_then_stops_on_final_errors() {
        let n = AtomicU32::new(0);
        let r: Result<u32, Exhausted<&str>> = retry(
            policy(None, Duration::from_secs(5)),
            || async {
                let i = n.fetch_add(1, Ordering::Relaxed);
                if i < 3 {
                    Err("flaky")
                } else {
                    Ok(i)
                }
            },
            |_| RetryAction::Retry,
            |_, _| {},
        )
        .await;
        assert_eq!(r.unwrap(), 3);
        let r: Result<(), _> = retry(
            policy(None, Duration::from_secs(5)),
            || async { Err("bad") },
            |_| RetryAction::NoRetry,
            |_, _| panic!("no retry for a final error"),
        )
        .await;
        assert!(matches!(r, Err(Exhausted::Failed("bad"))));
    }

    #[tokio::test]
    async fn attempts_and_deadline_bound_the_loop() {
        let r: Result<(), _> = retry(
            policy(Some(4), Duration::from_secs(5)),
            || async { Err("flaky") },
            |_| RetryAction::Retry,
            |_, _| {},
        )
        .await;
        assert!(matches!(
            r,
            Err(Exhausted::GaveUp {
                attempts: 4,
                last: Some("flaky")
            })
        ));
        let r: Result<(), Exhausted<&str>> = retry(
            policy(None, Duration::from_millis(30)),
            std::future::pending,
            |_| RetryAction::Retry,
            |_, _| {},
        )
        .await;
        assert!(matches!(
            r,
            Err(Exhausted::GaveUp {
                last: None,
                attempts: 1
            })
        ));
    }
}
