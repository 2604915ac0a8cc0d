use std::{net::SocketAddr, sync::Arc};

use scifer_events::{
    Bus, Publisher, StreamKind,
    async_nats::jetstream::{self, consumer::PullConsumer},
};
use scifer_plumbing::{CancellationToken, grpc, health::Readiness, serve};
use scifer_proto::inbox::v1::inbox_service_server::InboxServiceServer;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::{
    config::Config,
    consumer::{ChannelConsumer, Engine, MetaConsumer},
    send::Sender,
};

pub const META_CONSUMER: &str = "inbox-meta";
pub const CHANNEL_CONSUMER: &str = "inbox-channels";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] scifer_plumbing::config::ConfigError),
    #[error(transparent)]
    Prefix(#[from] scifer_events::InvalidPrefix),
    #[error(transparent)]
    Db(#[from] scifer_db::DbError),
    #[error(transparent)]
    Connect(#[from] scifer_events::ConnectError),
    #[error(transparent)]
    Stream(#[from] scifer_events::EnsureStreamError),
    #[error("cannot create the durable consumer {name}: {reason}")]
    Consumer { name: &'static str, reason: String },
    #[error("TOKEN_VAULT_URL: {0}")]
    VaultUrl(#[from] scifer_plumbing::service_identity::InvalidUrl),
    #[error("AI_BASE_URL, AI_MODEL or AI_API_KEY: {0}")]
    Ai(#[from] scifer_ai::AiError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    // Automation and handoff (issue 5).
    #[error("automation: {0}")]
    Automation(String),
    // History, gaps and media.
    #[error(transparent)]
    MediaStorage(#[from] crate::media::storage::StorageSetupError),
    #[error("media HTTP client: {0}")]
    MediaHttp(#[from] reqwest::Error),
}

pub struct Application {
    config: Config,
    listener: TcpListener,
    db: DatabaseConnection,
    engine: Arc<Engine>,
    meta: MetaConsumer,
    channels: ChannelConsumer,
    meta_consumer: PullConsumer,
    channel_consumer: PullConsumer,
    sender: Arc<Sender>,
    /// None when no AI provider is configured.
    ai: Option<Arc<scifer_ai::OpenAiCompatible>>,
    // Automation and handoff (issue 5).
    automation: AutomationParts,
    // History, gaps and media.
    history: Arc<crate::history::HistorySync>,
    media: Arc<crate::media::MediaWorker>,
    media_storage: crate::media::MediaStorage,
    // Issue 5: WhatsApp template sync.
    templates: Arc<crate::templates::Syncer>,
}

/// Automation and handoff (issue 5): what runs the rules and follows Meta's routing.
struct AutomationParts {
    runner: Arc<crate::automation::Runner>,
    handoff: Arc<crate::automation::Handoff>,
    consumer: PullConsumer,
    routing_consumer: PullConsumer,
}

impl Application {
    /// Opens (and migrates) the store, connects to the bus, makes sure the streams and durable
    /// consumers exist, and binds the gRPC listener. Nothing is consumed until `run_until_stopped`.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let bus = Bus::new(&config.common.bus_prefix)?;
        let db = crate::store::open(&config.database_url).await?;
        let client = scifer_events::connect(&config.common.nats_url).await?;
        let js = jetstream::new(client);
        let meta_stream = bus.ensure_default_stream(&js, StreamKind::Meta).await?;
        let channel_stream = bus.ensure_default_stream(&js, StreamKind::Channels).await?;
        // Created here so that our own publishes have a stream to land in.
        let inbox_stream = bus.ensure_default_stream(&js, StreamKind::Inbox).await?;
        let meta_consumer = scifer_events::durable_consumer(
            &meta_stream,
            META_CONSUMER,
            bus.meta_events_filter(),
            config.ack_wait(),
        )
        .await
        .map_err(|e| StartupError::Consumer {
            name: META_CONSUMER,
            reason: e.to_string(),
        })?;
        let channel_consumer = scifer_events::durable_consumer(
            &channel_stream,
            CHANNEL_CONSUMER,
            bus.channel_events_filter(),
            config.ack_wait(),
        )
        .await
        .map_err(|e| StartupError::Consumer {
            name: CHANNEL_CONSUMER,
            reason: e.to_string(),
        })?;
        let publisher = Publisher::new(js);
        let engine: Arc<Engine> = Engine::new(db.clone(), publisher.clone(), bus.clone());
        // The one token-vault client: sends, thread control, template, history and media syncs.
        let vault = crate::vault::client(
            &config.token_vault_url,
            config.token_vault_credential.clone(),
            config.token_vault_timeout(),
        )?;
        let sender = Sender::new(
            db.clone(),
            publisher.clone(),
            bus.clone(),
            config.send_policy(),
            vault.clone(),
            config.token_vault_timeout(),
        )
        // Issue 5: sends and status changes share the engine's clock.
        .with_clock(engine.clock().clone());
        // Issue 5: one template sync, run in the background and asked by template sends.
        let templates = Arc::new(crate::templates::Syncer::new(
            db.clone(),
            engine.clone(),
            sender.vault_client(),
            sender.vault_timeout(),
        ));
        let sender = Arc::new(sender.with_templates(templates.clone()));
        let ai = match config.ai()? {
            Some(settings) => Some(Arc::new(scifer_ai::OpenAiCompatible::new(settings)?)),
            None => {
                tracing::info!("AI_BASE_URL is unset: AI-suggested replies are disabled");
                None
            }
        };
        // Automation and handoff (issue 5).
        let automation = automation_parts(
            &config,
            &db,
            &Streams {
                inbox: inbox_stream,
                meta: meta_stream.clone(),
            },
            &engine,
            &sender,
            &ai,
            &publisher,
            &bus,
        )
        .await?;
        let workers_vault = vault.clone();
        let history = Arc::new(crate::history::HistorySync::new(
            db.clone(),
            publisher.clone(),
            bus.clone(),
            workers_vault.clone(),
            crate::history::HistorySettings::from_config(&config),
        ));
        let media_storage = crate::media::MediaStorage::from_config(&config)?;
        let media = Arc::new(crate::media::MediaWorker::new(
            db.clone(),
            engine.clone(),
            media_storage.clone(),
            workers_vault,
            crate::media::worker::MediaSettings::from_config(&config),
        )?);
        let listener = serve::bind(&config.grpc_addr).await?;
        Ok(Self {
            config,
            listener,
            db,
            meta: MetaConsumer::new(engine.clone()),
            channels: ChannelConsumer::new(engine.clone()),
            engine,
            meta_consumer,
            channel_consumer,
            sender,
            ai,
            automation,
            history,
            media,
            media_storage,
            templates,
        })
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The batch handler of the Meta consumer: the same one `run_until_stopped` runs.
    pub fn meta_handler(&self) -> MetaConsumer {
        self.meta.clone()
    }

    pub fn channel_handler(&self) -> ChannelConsumer {
        self.channels.clone()
    }

    /// The durable JetStream consumers (`inbox-meta`, `inbox-channels`).
    pub fn meta_consumer(&self) -> PullConsumer {
        self.meta_consumer.clone()
    }

    pub fn channel_consumer(&self) -> PullConsumer {
        self.channel_consumer.clone()
    }

    pub fn db(&self) -> DatabaseConnection {
        self.db.clone()
    }

    /// What the consumers share (its write lock, the snooze wake-up), for tests.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    /// History, gaps and media: the history worker (its `run_due` is what the loop runs).
    pub fn history(&self) -> Arc<crate::history::HistorySync> {
        self.history.clone()
    }

    /// History, gaps and media: the media worker (its `run_once` is what the loop runs).
    pub fn media(&self) -> Arc<crate::media::MediaWorker> {
        self.media.clone()
    }

    /// Serves gRPC and health and runs both consumers (with the hourly expiry of events parked for
    /// disconnected accounts and the snooze wake-up every `SNOOZE_CHECK_MS`) until `shutdown`;
    /// then stops fetching, lets each consumer finish (and acknowledge) its batch in flight,
    /// drains requests, and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), StartupError> {
        let (routes, health) = grpc::base_routes();
        health
            .set_serving::<InboxServiceServer<crate::grpc::Inbox>>()
            .await;
        let routes = routes.add_service(InboxServiceServer::new(
            crate::grpc::Inbox::new(
                self.db.clone(),
                self.engine.clone(),
                self.sender.clone(),
                self.ai.clone(),
            )
            .with_handoff(self.automation.handoff.clone())
            .with_history_and_media(self.history.settings().clone(), self.media_storage.clone()),
        ));
        let readiness = Readiness::default();
        let options = self.config.batch_options();
        let meta = tokio::spawn(
            self.meta
                .clone()
                .run(self.meta_consumer, options.clone(), shutdown.clone()),
        );
        let channels = tokio::spawn(self.channels.clone().run(
            self.channel_consumer,
            options,
            shutdown.clone(),
        ));
        let expiry = tokio::spawn(self.engine.clone().run_expiry(shutdown.clone()));
        // Issue 5: WhatsApp template sync.
        let templates = tokio::spawn(
            self.templates
                .clone()
                .run(self.config.template_sync_interval(), shutdown.clone()),
        );
        let snoozes = tokio::spawn(
            self.engine
                .clone()
                .run_snooze_wake(self.config.snooze_check(), shutdown.clone()),
        );
        // Automation and handoff (issue 5): one event at a time (an AI call takes seconds, and a
        // batch must finish within the ack wait).
        let single = scifer_events::BatchOptions {
            max_messages: 1,
            linger: std::time::Duration::ZERO,
        };
        let consumer = crate::automation::AutomationConsumer::new(self.automation.runner.clone());
        let automation = tokio::spawn(scifer_events::consume_batches(
            self.automation.consumer,
            single.clone(),
            shutdown.clone(),
            move |batch| {
                let consumer = consumer.clone();
                async move { consumer.handle_batch(batch).await }
            },
        ));
        let routing = crate::automation::RoutingConsumer::new(
            self.db.clone(),
            self.engine.clone(),
            self.automation.handoff.clone(),
        );
        let routing = tokio::spawn(scifer_events::consume_batches(
            self.automation.routing_consumer,
            single,
            shutdown.clone(),
            move |batch| {
                let routing = routing.clone();
                async move { routing.handle_batch(batch).await }
            },
        ));
        let idle = tokio::spawn(
            self.automation
                .runner
                .clone()
                .run_idle(self.config.idle_check(), shutdown.clone()),
        );
        // History, gaps and media.
        let history = tokio::spawn(self.history.clone().run(shutdown.clone()));
        let media = tokio::spawn(self.media.clone().run(shutdown.clone()));
        readiness.set_ready(true);
        tracing::info!(addr = %self.listener.local_addr()?, "inbox listening");
        let grace = self.config.common.shutdown_grace();
        let served = serve::serve_internal(self.listener, routes, readiness, shutdown.clone(), grace).await;
        // Serving also ends on a listener error; the consumers must not outlive it.
        shutdown.cancel();
        for (name, task) in [
            (META_CONSUMER, meta),
            (CHANNEL_CONSUMER, channels),
            ("parked-event expiry", expiry),
            ("snooze wake-up", snoozes),
            (crate::automation::AUTOMATION_CONSUMER, automation),
            (crate::automation::ROUTING_CONSUMER, routing),
            ("idle rules", idle),
            ("history sync", history),
            ("media worker", media),
            ("template sync", templates),
        ] {
            if tokio::time::timeout(grace, task).await.is_err() {
                tracing::warn!(task = name, "task did not stop within the grace period");
            }
        }
        self.db.close().await.ok();
        served?;
        Ok(())
    }
}

// Automation and handoff (issue 5).

/// The INBOX and META streams, for automation's consumers.
struct Streams {
    inbox: jetstream::stream::Stream,
    meta: jetstream::stream::Stream,
}

#[allow(clippy::too_many_arguments)]
async fn automation_parts(
    config: &Config,
    db: &DatabaseConnection,
    streams: &Streams,
    engine: &Arc<Engine>,
    sender: &Arc<Sender>,
    ai: &Option<Arc<scifer_ai::OpenAiCompatible>>,
    publisher: &Publisher,
    bus: &Bus,
) -> Result<AutomationParts, StartupError> {
    let audit = scifer_audit::AuditEmitter::new(publisher.clone(), bus.clone(), crate::send::SERVICE_NAME);
    audit.ensure_stream().await?;
    let consumer = scifer_events::durable_consumer(
        &streams.inbox,
        crate::automation::AUTOMATION_CONSUMER,
        format!("{}.inbox.*.message_created", bus.prefix()),
        config.ack_wait(),
    )
    .await
    .map_err(|e| StartupError::Consumer {
        name: crate::automation::AUTOMATION_CONSUMER,
        reason: e.to_string(),
    })?;
    let routing_consumer = scifer_events::durable_consumer(
        &streams.meta,
        crate::automation::ROUTING_CONSUMER,
        format!("{}.meta.*.handover", bus.prefix()),
        config.ack_wait(),
    )
    .await
    .map_err(|e| StartupError::Consumer {
        name: crate::automation::ROUTING_CONSUMER,
        reason: e.to_string(),
    })?;
    let routing = config.routing();
    if routing.human_app_id.is_none() {
        tracing::info!(
            "THREAD_CONTROL_HUMAN_APP_ID is unset: handoffs are recorded in Scifer without thread-control calls"
        );
    }
    let handoff = Arc::new(crate::automation::Handoff::new(
        db.clone(),
        engine.clone(),
        sender.vault_client(),
        config.token_vault_timeout(),
        routing,
        audit,
    ));
    let webhooks = crate::automation::webhook::Webhooks::new(
        config.webhook_timeout(),
        config.automation_webhook_allow_private,
    )
    .map_err(|e| StartupError::Automation(e.to_string()))?;
    let runner = Arc::new(crate::automation::Runner::new(
        db.clone(),
        engine.clone(),
        sender.clone(),
        crate::suggest::Suggester::new(db.clone(), ai.clone()),
        handoff.clone(),
        webhooks,
    ));
    Ok(AutomationParts {
        runner,
        handoff,
        consumer,
        routing_consumer,
    })
}
