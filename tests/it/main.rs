//! Integration tests against a real Kafka broker (and registry) started by
//! `scripts/harness up`; cluster tests need `scripts/harness up --cluster`.
//! They never skip: an unreachable broker is a failure naming the command.

mod support;

mod admin;
mod admin_api;
mod bootstrap;
mod cluster;
mod consumer;
mod defects;
mod failover;
mod fetch_session;
mod group_failover;
mod hostile;
mod interop;
mod metadata;
mod metrics;
mod producer;
mod schema;
mod security;
