use std::{net::SocketAddr, sync::Arc, time::Duration};

use scifer_events::{
    BatchOptions, Bus, ConnectError, EnsureStreamError, InvalidPrefix, Publisher, StreamKind,
    async_nats::{
        self,
        connection::State,
        jetstream::{self, context::ContextBuilder},
    },
};
use scifer_plumbing::{CancellationToken, config::ConfigError, grpc, health::Readiness, serve};
use scifer_proto::{events::v1::ChannelState, ingest::v1::ingest_admin_server::IngestAdminServer};
use secrecy::ExposeSecret;
use tokio::{net::TcpListener, task::JoinHandle};

pub use crate::config::Config;
use crate::{
    grpc::Admin,
    http::{self, WebhookState},
    ingest::IngestLog,
    purge::{self, Purger},
    replay::Replayer,
    splitter::{self, Splitter},
    stats::Stats,
};

/// Room for the NATS headers of a raw delivery (message id, event type, trace context, receipt
/// time) on top of the largest body; the server counts headers against `max_payload` too.
pub const HEADER_HEADROOM: usize = 64 * 1024;
/// How many publishes may await their acknowledgement at once; more wait for a slot (and the
/// publish timeout bounds that wait) instead of failing.
const MAX_ACKS_IN_FLIGHT: usize = 4096;
/// Long enough for a whole batch's publishes to be acknowledged, so a slow batch is not handed to
/// another instance while it is still being worked on.
const SPLITTER_ACK_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid configuration: {0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Prefix(#[from] InvalidPrefix),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Stream(#[from] EnsureStreamError),
    #[error(
        "NATS max_payload is {server} bytes but MAX_BODY_BYTES={max_body_bytes} needs at least \
         {needed} (the body plus {HEADER_HEADROOM} bytes for headers): raise max_payload in the \
         nats-server configuration or lower MAX_BODY_BYTES"
    )]
    MaxPayloadTooSmall {
        server: usize,
        max_body_bytes: usize,
        needed: usize,
    },
    #[error("cannot create the durable consumer {name}: {reason}")]
    Consumer { name: &'static str, reason: String },
}

pub struct Application {
    config: Config,
    public: TcpListener,
    admin: TcpListener,
    client: async_nats::Client,
    bus: Bus,
}

impl Application {
    /// Validates the settings, binds both listeners and starts connecting to NATS (in the
    /// background: [`Application::run_until_stopped`] waits for the connection).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        if config.meta_app_secret.expose_secret().is_empty() {
            // An empty HMAC key is one anybody can sign with.
            return Err(StartupError::Invalid("META_APP_SECRET is empty"));
        }
        if config.meta_verify_token.expose_secret().is_empty() {
            tracing::warn!("META_VERIFY_TOKEN is empty: every webhook verification will be refused");
        }
        if config.max_body_bytes == 0 {
            return Err(StartupError::Invalid("MAX_BODY_BYTES must be positive"));
        }
        if config.publish_timeout_ms == 0 {
            return Err(StartupError::Invalid("PUBLISH_TIMEOUT_MS must be positive"));
        }
        let bus = Bus::new(&config.common.bus_prefix)?;
        let public = serve::bind(&config.listen_addr).await?;
        let admin = serve::bind(&config.admin_addr).await?;
        let client = scifer_events::connect(&config.common.nats_url).await?;
        Ok(Self {
            config,
            public,
            admin,
            client,
            bus,
        })
    }

    /// The public webhook listener.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.public.local_addr()
    }

    /// The internal admin gRPC listener.
    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }

    /// Serves both listeners at once (so health answers while NATS is still unreachable), then
    /// prepares the bus and becomes ready. On `shutdown`: readiness drops, the listeners stop
    /// accepting, in-flight requests and the splitter's current batch finish.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), StartupError> {
        let Self {
            config,
            public,
            admin,
            client,
            bus,
        } = self;
        // Cancelled on shutdown, or by us when startup fails after the servers started.
        let stop = shutdown.child_token();
        let grace = config.common.shutdown_grace();
        let readiness = Readiness::default();
        let stats = Arc::new(Stats::default());
        let js = ContextBuilder::new()
            .timeout(config.publish_timeout())
            .max_ack_inflight(MAX_ACKS_IN_FLIGHT)
            .backpressure_on_inflight(true)
            .build(client.clone());
        let log = IngestLog::new(Publisher::new(js.clone()), bus.clone(), config.publish_timeout());
        let splitter = Splitter::new(log.clone(), stats.clone());

        let webhook = Arc::new(WebhookState {
            app_secret: config.meta_app_secret.clone(),
            verify_token: config.meta_verify_token.clone(),
            max_body_bytes: config.max_body_bytes,
            log: log.clone(),
            stats: stats.clone(),
        });
        tracing::info!(addr = %public.local_addr()?, "webhook-ingest listening");
        tracing::info!(addr = %admin.local_addr()?, "webhook-ingest admin listening");
        let public_server = tokio::spawn(serve::serve(
            public,
            http::router(webhook, readiness.clone()),
            stop.clone(),
            grace,
        ));
        let (routes, health) = grpc::base_routes();
        health.set_serving::<IngestAdminServer<Admin>>().await;
        let admin_service = Admin {
            replayer: Arc::new(Replayer {
                js: js.clone(),
                splitter: splitter.clone(),
                bus: bus.clone(),
                publish_timeout: config.publish_timeout(),
            }),
            stats,
        };
        let routes = routes.add_service(IngestAdminServer::new(admin_service));
        // serve_internal also clears readiness as soon as shutdown begins.
        let admin_server = tokio::spawn(serve::serve_internal(
            admin,
            routes,
            readiness.clone(),
            stop.clone(),
            grace,
        ));

        let prepared = async {
            let Some(ingest) = prepare_bus(&config, &client, &js, &bus, &stop).await? else {
                // Shutdown came before NATS did.
                return Ok(None);
            };
            if config.splitter_enabled {
                let splitting = start_splitter(&bus, &ingest, splitter, stop.clone()).await?;
                let purger = Purger::new(
                    js.clone(),
                    bus.clone(),
                    client.server_info().max_payload,
                    stop.clone(),
                );
                let purging = start_purger(&bus, &js, purger, stop.clone()).await?;
                Ok(Some([splitting, purging]))
            } else {
                tracing::info!(
                    "splitter disabled: raw deliveries wait in the ingest log, disconnects in the \
                     channel stream"
                );
                Ok(None)
            }
        };
        let consumer_tasks = match prepared.await {
            Ok(task) => {
                if !stop.is_cancelled() {
                    readiness.set_ready(true);
                    tracing::info!("webhook-ingest ready");
                }
                task
            }
            Err(e) => {
                stop.cancel();
                let _ = tokio::join!(public_server, admin_server);
                return Err(e);
            }
        };

        let (public_result, admin_result) = tokio::join!(public_server, admin_server);
        for task in consumer_tasks.into_iter().flatten() {
            // consume_batches returns once the batch in flight is acknowledged.
            let _ = task.await;
        }
        for result in [public_result, admin_result] {
            match result {
                Ok(served) => served?,
                Err(join) => tracing::error!(error = %join, "a server task ended abnormally"),
            }
        }
        Ok(())
    }
}

/// Waits for NATS, checks that raw bodies fit in a message and ensures both streams. `None` when
/// shutdown came first.
async fn prepare_bus(
    config: &Config,
    client: &async_nats::Client,
    js: &jetstream::Context,
    bus: &Bus,
    stop: &CancellationToken,
) -> Result<Option<jetstream::stream::Stream>, StartupError> {
    if !wait_connected(client, &config.common.nats_url, stop).await {
        return Ok(None);
    }
    let server = client.server_info().max_payload;
    let needed = config.max_body_bytes.saturating_add(HEADER_HEADROOM);
    if server < needed {
        return Err(StartupError::MaxPayloadTooSmall {
            server,
            max_body_bytes: config.max_body_bytes,
            needed,
        });
    }
    let ingest = bus
        .ensure_stream(js, StreamKind::Ingest, config.ingest_retention())
        .await?;
    bus.ensure_default_stream(js, StreamKind::Meta).await?;
    Ok(Some(ingest))
}

async fn wait_connected(client: &async_nats::Client, url: &str, stop: &CancellationToken) -> bool {
    let started = tokio::time::Instant::now();
    let mut next_warning = Duration::from_secs(5);
    while client.connection_state() != State::Connected {
        if started.elapsed() >= next_warning {
            tracing::warn!(%url, waited = ?started.elapsed(), "still waiting for NATS");
            next_warning *= 2;
        }
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    true
}

async fn start_splitter(
    bus: &Bus,
    ingest: &jetstream::stream::Stream,
    splitter: Splitter,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, StartupError> {
    let consumer = scifer_events::durable_consumer(
        ingest,
        splitter::CONSUMER_NAME,
        bus.ingest_raw_filter(None),
        SPLITTER_ACK_WAIT,
    )
    .await
    .map_err(|e| StartupError::Consumer {
        name: splitter::CONSUMER_NAME,
        reason: e.to_string(),
    })?;
    Ok(tokio::spawn(async move {
        scifer_events::consume_batches(consumer, BatchOptions::default(), stop, |batch| {
            let splitter = splitter.clone();
            async move { splitter.handle_batch(batch).await }
        })
        .await;
    }))
}

/// The consumer of channel disconnects (see [`crate::purge`]); it shares the splitter's process
/// because both are background work on the streams, kept off the pods that answer Meta.
async fn start_purger(
    bus: &Bus,
    js: &jetstream::Context,
    purger: Purger,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, StartupError> {
    let channels = bus.ensure_default_stream(js, StreamKind::Channels).await?;
    let consumer = scifer_events::durable_consumer(
        &channels,
        purge::CONSUMER_NAME,
        bus.channel_event(ChannelState::Disconnected),
        purge::ACK_WAIT,
    )
    .await
    .map_err(|e| StartupError::Consumer {
        name: purge::CONSUMER_NAME,
        reason: e.to_string(),
    })?;
    // One disconnect at a time is the common case; a backlog is purged a few per scan.
    let options = BatchOptions {
        max_messages: 16,
        ..BatchOptions::default()
    };
    Ok(tokio::spawn(async move {
        scifer_events::consume_batches(consumer, options, stop, |batch| {
            let purger = purger.clone();
            async move { purger.handle_batch(batch).await }
        })
        .await;
    }))
}
