//! The pipeline against the real broker (`scripts/harness up`). Every test
//! is bounded by timeouts so a regression fails with a message.

mod support;

mod backpressure;
mod breaker;
mod flow;
mod offsets;
mod rebalance;
