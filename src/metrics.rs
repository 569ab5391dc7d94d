//! Client metrics: plain snapshot structs read from the client's counters.

/// Broker throttling (KIP-219) seen by one client's connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThrottleMetrics {
    /// Responses whose `throttle_time_ms` asked the client to hold back.
    pub throttled_responses: u64,
    /// Sum of the throttle times the brokers asked for, in ms; the client
    /// sent nothing more on those connections for that long.
    pub throttle_time_ms_total: u64,
}
