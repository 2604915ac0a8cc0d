use std::{net::SocketAddr, sync::Arc, time::Duration};

use ring::rand::SystemRandom;
use scifer_audit::AuditEmitter;
use scifer_events::{BatchOptions, Bus, InvalidPrefix, Publisher};
use scifer_ids::InvalidWorkspaceId;
use scifer_plumbing::{
    CancellationToken,
    config::ConfigError,
    grpc::{self, grpc_web},
    health::{self, Readiness},
    serve,
    service_identity::ServiceCredential,
};
use scifer_proto::gateway::v1::{
    account_api_server::AccountApiServer, audit_api_server::AuditApiServer,
    channel_api_server::ChannelApiServer, inbox_api_server::InboxApiServer,
    workspace_api_server::WorkspaceApiServer,
};
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::{
    accounts::{AccountApi, Identity, LoginLimits},
    alerts::{self, ChannelAlerts},
    audit::Auditor,
    audit_api::AuditApi,
    auth::Authenticator,
    channels::ChannelApi,
    clock::Clock,
    config::{Config, LOGIN_WINDOW},
    cors::{self, InvalidOrigin},
    domain::{AppUrl, HashError, InvalidUrl, PasswordHasher, check_redirect_uri},
    grpc::InboxApi,
    inbox::{InboxClient, InvalidInboxUrl},
    mail::{LogMailer, MailError, Mailer, SmtpMailer},
    store,
    vault::{self, InvalidVaultUrl, VaultClient},
    watch::{ActiveWatches, Watcher},
    workspaces::WorkspaceApi,
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Origin(#[from] InvalidOrigin),
    #[error(transparent)]
    InboxUrl(#[from] InvalidInboxUrl),
    #[error(transparent)]
    VaultUrl(#[from] InvalidVaultUrl),
    #[error(transparent)]
    Url(#[from] InvalidUrl),
    #[error(transparent)]
    BusPrefix(#[from] InvalidPrefix),
    #[error(transparent)]
    Nats(#[from] scifer_events::ConnectError),
    #[error(transparent)]
    Db(#[from] scifer_db::DbError),
    #[error("cannot set up password hashing: {0}")]
    Hasher(#[from] HashError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the audit log's global chain: {0}")]
    AuditChain(#[from] InvalidWorkspaceId),
    #[error("SMTP_URL or MAIL_FROM: {0}")]
    Mail(#[from] MailError),
}

pub struct Application {
    config: Config,
    listener: TcpListener,
    nats: async_nats::Client,
    bus: Bus,
    inbox: InboxClient,
    /// None when `TOKEN_VAULT_CREDENTIAL` is unset.
    vault: Option<VaultClient>,
    app_url: AppUrl,
    cors: tower_http::cors::CorsLayer,
    active: ActiveWatches,
    db: DatabaseConnection,
    clock: Clock,
    hasher: PasswordHasher,
    mailer: Arc<dyn Mailer>,
}

impl Application {
    /// Checks the configuration, binds the port and starts connecting to NATS (in the background:
    /// the gateway serves health while the bus is still down, and reports ready once connected).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// As [`Application::build`], with the clock that session expiry and login limits read (tests
    /// pass an adjustable one).
    pub async fn build_with_clock(config: Config, clock: Clock) -> Result<Self, StartupError> {
        let cors = cors::layer(&config.cors_allowed_origins)?;
        let bus = Bus::new(&config.common.bus_prefix)?;
        let inbox = InboxClient::new(
            &config.inbox_url,
            config.inbox_timeout(),
            config.inbox_send_timeout(),
        )?;
        let vault = match config.token_vault_credential() {
            Some(secret) => Some(VaultClient::new(
                &config.token_vault_url,
                config.token_vault_timeout(),
                ServiceCredential::new(vault::SERVICE_NAME, secret.clone()),
            )?),
            None => {
                tracing::warn!(
                    "TOKEN_VAULT_CREDENTIAL is not set: ChannelApi refuses every call with FAILED_PRECONDITION"
                );
                None
            }
        };
        check_redirect_uri(&config.meta_oauth_redirect_uri)?;
        let app_url = AppUrl::parse(&config.public_app_url)?;
        let db = store::open(config.database_url.expose_secret()).await?;
        let hasher = PasswordHasher::new()?;
        let mailer: Arc<dyn Mailer> = match &config.smtp_url {
            Some(url) => Arc::new(SmtpMailer::new(url.expose_secret(), &config.mail_from)?),
            None => {
                tracing::warn!(
                    "SMTP_URL is not set: invitation and channel alert emails are logged, not sent"
                );
                Arc::new(LogMailer)
            }
        };
        let nats = scifer_events::connect(&config.common.nats_url).await?;
        let listener = serve::bind(&config.listen_addr).await?;
        Ok(Self {
            config,
            listener,
            nats,
            bus,
            inbox,
            vault,
            app_url,
            cors,
            active: ActiveWatches::default(),
            db,
            clock,
            hasher,
            mailer,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// How many WatchInbox streams are open (for tests and logs).
    pub fn active_watches(&self) -> ActiveWatches {
        self.active.clone()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), StartupError> {
        let Self {
            config,
            listener,
            nats,
            bus,
            inbox,
            vault,
            app_url,
            cors,
            active,
            db,
            clock,
            hasher,
            mailer,
        } = self;
        let addr = listener.local_addr()?;

        // Open watch streams never end by themselves, and graceful shutdown waits for every
        // response to finish: ending them as soon as shutdown begins lets it complete.
        let streams = shutdown.child_token();
        let js = async_nats::jetstream::new(nats.clone());
        let emitter = AuditEmitter::new(Publisher::new(js.clone()), bus.clone(), "gateway");
        let auditor = Auditor::new(emitter.clone())?;
        // The audit consumer stores every service's audit events (the gateway's own included) in
        // this database; it stops with the gateway, and events published meanwhile wait on the
        // stream for the next start.
        let audit_stop = shutdown.child_token();
        let audit_consumer = tokio::spawn(store_audit_events(
            js.clone(),
            bus.clone(),
            db.clone(),
            audit_stop.clone(),
        ));
        // Needs-reauth alerts stop with the audit consumer, after the listener.
        let alerts = ChannelAlerts::new(db.clone(), mailer.clone(), app_url, clock.clone());
        let alerts_consumer = tokio::spawn(send_channel_alerts(js, bus.clone(), alerts, audit_stop.clone()));
        let watcher = Watcher::new(nats.clone(), bus, streams.clone(), active, config.watch_recheck());
        let identity = Arc::new(Identity {
            db: db.clone(),
            clock: clock.clone(),
            hasher,
            rng: SystemRandom::new(),
            session_ttl: config.session_ttl(),
            limits: LoginLimits {
                per_account: config.login_max_failures_per_account,
                per_address: config.login_max_failures_per_address,
                window: LOGIN_WINDOW,
            },
            auditor: auditor.clone(),
            mailer,
            invitation_ttl: config.invitation_ttl(),
        });
        let audit_api = AuditApi::new(db.clone());
        let inbox_db = db.clone();
        let auth = Authenticator::new(db, clock, config.trust_forwarded_for, auditor.clone());
        let (routes, health) = grpc::base_routes();
        health.set_serving::<InboxApiServer<InboxApi>>().await;
        health.set_serving::<AccountApiServer<AccountApi>>().await;
        health.set_serving::<WorkspaceApiServer<WorkspaceApi>>().await;
        health.set_serving::<AuditApiServer<AuditApi>>().await;
        health.set_serving::<ChannelApiServer<ChannelApi>>().await;
        // GrpcWebLayer per service, never around the router: around the router it would answer 400
        // to plain HTTP/1.1 such as /healthz. Health and reflection stay native-gRPC only. Every
        // gateway service sits behind the auth layer, inside gRPC-web so it sees gRPC framing.
        let routes = routes
            .add_service(grpc_web(auth.wrap(InboxApiServer::new(InboxApi::new(
                inbox,
                watcher,
                auth.clone(),
                auditor,
                inbox_db,
            )))))
            .add_service(grpc_web(
                auth.wrap(AccountApiServer::new(AccountApi::new(identity.clone()))),
            ))
            .add_service(grpc_web(
                auth.wrap(WorkspaceApiServer::new(WorkspaceApi::new(identity))),
            ))
            .add_service(grpc_web(auth.wrap(AuditApiServer::new(audit_api))))
            .add_service(grpc_web(auth.wrap(ChannelApiServer::new(ChannelApi::new(
                vault,
                config.meta_oauth_redirect_uri.clone(),
            )))));
        let readiness = Readiness::default();
        let app = grpc::into_router(routes)
            .merge(health::routes(readiness.clone()))
            .layer(cors);

        tokio::spawn(track_readiness(nats, emitter, readiness, shutdown.clone()));

        tracing::info!(%addr, "gateway listening");
        let grace = config.common.shutdown_grace();
        let served = serve::serve(listener, app, shutdown, grace).await;
        // Also when serving failed, so no forwarding task outlives the application.
        streams.cancel();
        // The consumer commits and acknowledges the batch in hand before it returns.
        audit_stop.cancel();
        if let Err(e) = audit_consumer.await {
            tracing::error!(error = %e, "the audit consumer task failed");
        }
        if let Err(e) = alerts_consumer.await {
            tracing::error!(error = %e, "the channel alerts consumer task failed");
        }
        served?;
        Ok(())
    }
}

/// Creates the audit consumer (and the AUDIT stream) as soon as the bus allows, then stores audit
/// events until `shutdown`.
async fn store_audit_events(
    js: async_nats::jetstream::Context,
    bus: Bus,
    db: DatabaseConnection,
    shutdown: CancellationToken,
) {
    let made = until_created("audit", &shutdown, || scifer_audit::consumer::durable(&js, &bus)).await;
    if let Some(consumer) = made {
        scifer_audit::consumer::run(consumer, db, BatchOptions::default(), shutdown).await;
    }
}

/// Creates the channel alerts consumer (and the CHANNELS stream) as soon as the bus allows, then
/// mails needs-reauth alerts until `shutdown`.
async fn send_channel_alerts(
    js: async_nats::jetstream::Context,
    bus: Bus,
    alerts: ChannelAlerts,
    shutdown: CancellationToken,
) {
    if let Some(consumer) = until_created("channel alerts", &shutdown, || alerts::durable(&js, &bus)).await {
        alerts.run(consumer, shutdown).await;
    }
}

/// Retries `make` with backoff until it succeeds (Some) or `shutdown` comes first (None).
async fn until_created<T, E, F, Fut>(what: &str, shutdown: &CancellationToken, mut make: F) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        let made = tokio::select! {
            made = make() => made,
            () = shutdown.cancelled() => return None,
        };
        match made {
            Ok(consumer) => return Some(consumer),
            Err(e) => {
                tracing::warn!(error = %e, consumer = what, "cannot create a bus consumer yet; retrying")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return None,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Ready once NATS is connected (WatchInbox needs it) and the AUDIT stream exists (privileged calls
/// publish to it); not ready from the moment shutdown begins,
/// so load balancers stop sending new calls while open ones drain. A later NATS outage does not
/// clear readiness: list and get still work, and async-nats resubscribes open watches on reconnect.
async fn track_readiness(
    nats: async_nats::Client,
    audit: AuditEmitter,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    let connected = async {
        while nats.connection_state() != async_nats::connection::State::Connected {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        while let Err(e) = audit.ensure_stream().await {
            tracing::warn!(error = %e, "cannot create the audit stream yet; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        () = connected => {
            readiness.set_ready(true);
            tracing::info!("connected to NATS; ready");
        }
        () = shutdown.cancelled() => {}
    }
    shutdown.cancelled().await;
    readiness.set_ready(false);
}
