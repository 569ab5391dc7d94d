//! Engines: the work behind the public API (admin requests now; the producer
//! accumulator + sinks and the consumer sources + group coordinator next).
//!
//! Depends on: cluster.

pub(crate) mod admin;
pub(crate) mod consumer;
pub(crate) mod producer;
pub(crate) mod tasks;

#[cfg(feature = "tls")]
pub(crate) use crate::cluster::tls;
pub(crate) use crate::cluster::wire::OutRecord;
pub(crate) use crate::cluster::{reauthentication_count, Security};
pub(crate) use crate::cluster::{
    too_large_limit, Cluster, ClusterConfig, ClusterError, ConnConfig, ConnError, Metadata, Topics,
};
pub use crate::cluster::{Compression, ErrorCode};
