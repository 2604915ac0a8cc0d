use std::{net::SocketAddr, sync::Arc, time::Duration};

use scifer_audit::AuditEmitter;
use scifer_events::{Bus, Publisher, StreamKind, async_nats::jetstream};
use scifer_graph::{AppSecret, GraphClient, GraphConfig};
use scifer_plumbing::{
    CancellationToken, grpc, health::Readiness, serve, service_identity::ServiceAuthenticator,
};
use scifer_proto::tokenvault::v1::token_vault_service_server::TokenVaultServiceServer;
use scifer_vault_crypto::Keyring;
use secrecy::ExposeSecret;
use tokio::{net::TcpListener, sync::Notify};

use crate::{config::Config, grpc::TokenVault, keys::Keys, vault::Vault};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] scifer_plumbing::config::ConfigError),
    #[error("key-encryption keys: set VAULT_KEKS or VAULT_KEKS_FILE")]
    NoKeks,
    #[error("key-encryption keys: {0}")]
    Keyring(#[from] scifer_vault_crypto::KeyringError),
    #[error("SERVICE_CREDENTIALS: {0}")]
    Credentials(#[from] scifer_plumbing::service_identity::CredentialsError),
    #[error("Graph client: {0}")]
    Graph(#[from] scifer_graph::GraphError),
    #[error("META_GRAPH_URL / META_DIALOG_URL: {0}")]
    Url(#[from] url::ParseError),
    #[error(transparent)]
    Prefix(#[from] scifer_events::InvalidPrefix),
    #[error(transparent)]
    Db(#[from] scifer_db::DbError),
    #[error(transparent)]
    Connect(#[from] scifer_events::ConnectError),
    #[error(transparent)]
    Stream(#[from] scifer_events::EnsureStreamError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub struct Application {
    config: Config,
    listener: TcpListener,
    vault: Arc<Vault>,
    service: TokenVault,
    publisher: Publisher,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let keyring = match (&config.vault_keks, &config.vault_keks_file) {
            (Some(spec), _) => Keyring::parse(spec.expose_secret(), config.vault_kek_primary)?,
            (None, Some(path)) => Keyring::from_file(std::path::Path::new(path), config.vault_kek_primary)?,
            (None, None) => return Err(StartupError::NoKeks),
        };
        let callers = ServiceAuthenticator::parse(&config.service_credentials)?;
        if callers.services().next().is_none() {
            tracing::warn!("SERVICE_CREDENTIALS is empty: every call will be refused");
        }
        let graph = GraphClient::new(GraphConfig {
            graph_url: url::Url::parse(&config.meta_graph_url)?,
            dialog_url: url::Url::parse(&config.meta_dialog_url)?,
            version: config.meta_graph_version.clone(),
            app_id: config.meta_app_id.clone(),
            app_secret: AppSecret::new(config.meta_app_secret.expose_secret().to_string()),
            timeout: config.graph_timeout(),
            throttle_threshold_pct: config.meta_throttle_threshold_pct,
        })?;
        let bus = Bus::new(&config.common.bus_prefix)?;
        let db = crate::store::open(&config.database_url).await?;
        let client = scifer_events::connect(&config.common.nats_url).await?;
        let js = jetstream::new(client);
        bus.ensure_default_stream(&js, StreamKind::Channels).await?;
        bus.ensure_default_stream(&js, StreamKind::Audit).await?;
        let publisher = Publisher::new(js);
        let vault = Arc::new(Vault {
            db,
            keys: Keys::new(keyring),
            graph,
            app_id: config.meta_app_id.clone(),
            audit: AuditEmitter::new(publisher.clone(), bus.clone(), "token-vault"),
            bus,
            outbox_notify: Arc::new(Notify::new()),
            redirect_uris: config.redirect_uris(),
            connect_ttl: config.connect_ttl(),
            media_hosts: config.media_hosts(),
            media_max_bytes: config.media_max_bytes,
        });
        let service = TokenVault::new(vault.clone(), callers);
        let listener = serve::bind(&config.grpc_addr).await?;
        Ok(Self {
            config,
            listener,
            vault,
            service,
            publisher,
        })
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn vault(&self) -> Arc<Vault> {
        self.vault.clone()
    }

    /// Serves gRPC and health and runs the outbox relay, the health check and the rotation job
    /// until `shutdown`; then drains requests and publishes what the outbox still holds.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), StartupError> {
        let (routes, health) = grpc::base_routes();
        health.set_serving::<TokenVaultServiceServer<TokenVault>>().await;
        let routes = routes.add_service(TokenVaultServiceServer::new(self.service.clone()));
        let readiness = Readiness::default();
        let relay = tokio::spawn(crate::outbox::relay(
            self.vault.db().clone(),
            self.publisher.clone(),
            self.vault.outbox_notify.clone(),
            Duration::from_secs(1),
            shutdown.clone(),
        ));
        let mut jobs = Vec::new();
        if self.config.health_check_interval_secs > 0 {
            let vault = self.vault.clone();
            let interval = Duration::from_secs(self.config.health_check_interval_secs);
            let stop = shutdown.clone();
            jobs.push(tokio::spawn(async move {
                vault.run_health_checks(interval, stop).await
            }));
        }
        if self.config.rotation_interval_secs > 0 {
            let vault = self.vault.clone();
            let interval = Duration::from_secs(self.config.rotation_interval_secs);
            let batch = self.config.rotation_batch.max(1);
            let stop = shutdown.clone();
            jobs.push(tokio::spawn(async move {
                vault.run_rotation(interval, batch, stop).await
            }));
        }
        readiness.set_ready(true);
        tracing::info!(addr = %self.listener.local_addr()?, "token-vault listening");
        let grace = self.config.common.shutdown_grace();
        let served = serve::serve_internal(self.listener, routes, readiness, shutdown.clone(), grace).await;
        shutdown.cancel();
        for job in jobs {
            if tokio::time::timeout(grace, job).await.is_err() {
                tracing::warn!("background job did not stop within the grace period");
            }
        }
        if tokio::time::timeout(grace, relay).await.is_err() {
            tracing::warn!("outbox relay did not stop within the grace period");
        }
        self.vault.db().clone().close().await.ok();
        served?;
        Ok(())
    }
}
