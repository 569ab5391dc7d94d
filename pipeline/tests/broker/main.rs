//! The pipeline against the real broker (`scripts/harness up`). Every test
//! is bounded by timeouts so a regression fails with a message.

#![allow(clippy::single_range_in_vec_init)]

mod support;

mod backpressure;
mod breaker;
mod flow;
mod offsets;
mod rebalance;
