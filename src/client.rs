//! [`Client`] and its builder.

use std::sync::Arc;

use crate::admin::Admin;
use crate::config::{property_setters, ClientConfig, Pending};
use crate::engine::{Cluster, ClusterConfig, ConnConfig, Security};
use crate::error::Result;

/// A connection to a Kafka cluster. Cheap to clone; clones share brokers'
/// connections and the metadata cache.
#[derive(Clone)]
pub struct Client {
    pub(crate) cluster: Arc<Cluster>,
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bootstrap", &self.config.bootstrap_servers)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts a builder with default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Connects with a ready config (validated first).
    pub async fn connect(config: ClientConfig) -> Result<Client> {
        config.validate()?;
        let cluster = Cluster::new(cluster_config(&config));
        let client = Client {
            cluster,
            config: Arc::new(config),
        };
        // Fail fast on an unreachable or non-Kafka bootstrap.
        client.admin().describe_cluster().await?;
        Ok(client)
    }

    /// The admin API on this client's connections.
    pub fn admin(&self) -> Admin {
        Admin {
            cluster: self.cluster.clone(),
        }
    }

    /// The validated config.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Connections re-authenticated in place (KIP-368) so far, by every
    /// client in this process.
    pub fn reauthentication_count() -> u64 {
        crate::engine::reauthentication_count()
    }

    /// Closes every broker connection; pending requests fail with a
    /// connection error.
    pub fn close(&self) {
        self.cluster.close();
    }
}

pub(crate) fn cluster_config(c: &ClientConfig) -> ClusterConfig {
    ClusterConfig {
        bootstrap: c.bootstrap_servers.clone(),
        conn: Arc::new(ConnConfig {
            client_id: c.client_id.clone(),
            request_timeout: c.request_timeout,
            connect_timeout: c.connection_setup_timeout,
            max_response_size: c.receive_message_max_bytes,
            stats: Default::default(),
            security: Arc::new(Security::new(&c.security)),
        }),
        metadata_max_age: c.metadata_max_age,
        reconnect_backoff: c.reconnect_backoff,
        reconnect_backoff_max: c.reconnect_backoff_max,
        retry_backoff: c.retry_backoff,
        retry_backoff_max: c.retry_backoff_max,
        api_timeout: c.default_api_timeout,
        auto_create_topics: false,
    }
}

/// Builds a [`Client`]. Setters never fail; the first error is kept and
/// returned by [`build`](Self::build).
#[derive(Debug, Default)]
pub struct ClientBuilder {
    pending: Pending<ClientConfig>,
}

impl ClientBuilder {
    property_setters!();

    /// `client.id`.
    pub fn client_id(self, id: &str) -> Self {
        self.set("client.id", id)
    }

    /// `request.timeout.ms`.
    pub fn request_timeout(mut self, d: std::time::Duration) -> Self {
        self.pending.config.request_timeout = d;
        self
    }

    /// `default.api.timeout.ms`.
    pub fn api_timeout(mut self, d: std::time::Duration) -> Self {
        self.pending.config.default_api_timeout = d;
        self
    }

    /// The OAUTHBEARER token provider (instead of one named by properties).
    pub fn token_provider(mut self, p: Arc<dyn crate::security::TokenProvider>) -> Self {
        self.pending.config.security.sasl.token_provider = Some(p);
        self
    }

    /// Validates and connects.
    pub async fn build(self) -> Result<Client> {
        Client::connect(self.pending.finish()?).await
    }
}
