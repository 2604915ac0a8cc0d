use std::{net::SocketAddr, time::Duration};

use scifer_events::{Bus, InvalidPrefix};
use scifer_plumbing::{
    CancellationToken,
    config::ConfigError,
    grpc::{self, grpc_web},
    health::{self, Readiness},
    serve,
};
use scifer_proto::gateway::v1::inbox_api_server::InboxApiServer;
use tokio::net::TcpListener;

use crate::{
    config::Config,
    cors::{self, InvalidOrigin},
    grpc::InboxApi,
    inbox::{InboxClient, InvalidInboxUrl},
    watch::{ActiveWatches, Watcher},
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
    BusPrefix(#[from] InvalidPrefix),
    #[error(transparent)]
    Nats(#[from] scifer_events::ConnectError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub struct Application {
    config: Config,
    listener: TcpListener,
    nats: async_nats::Client,
    bus: Bus,
    inbox: InboxClient,
    cors: tower_http::cors::CorsLayer,
    active: ActiveWatches,
}

impl Application {
    /// Checks the configuration, binds the port and starts connecting to NATS (in the background:
    /// the gateway serves health while the bus is still down, and reports ready once connected).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let cors = cors::layer(&config.cors_allowed_origins)?;
        let bus = Bus::new(&config.common.bus_prefix)?;
        let inbox = InboxClient::new(&config.inbox_url, config.inbox_timeout())?;
        let nats = scifer_events::connect(&config.common.nats_url).await?;
        let listener = serve::bind(&config.listen_addr).await?;
        Ok(Self {
            config,
            listener,
            nats,
            bus,
            inbox,
            cors,
            active: ActiveWatches::default(),
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
            cors,
            active,
        } = self;
        let addr = listener.local_addr()?;

        // Open watch streams never end by themselves, and graceful shutdown waits for every
        // response to finish: ending them as soon as shutdown begins lets it complete.
        let streams = shutdown.child_token();
        let watcher = Watcher::new(nats.clone(), bus, streams.clone(), active);
        let (routes, health) = grpc::base_routes();
        health.set_serving::<InboxApiServer<InboxApi>>().await;
        // GrpcWebLayer per service, never around the router: around the router it would answer 400
        // to plain HTTP/1.1 such as /healthz. Health and reflection stay native-gRPC only.
        let routes = routes.add_service(grpc_web(InboxApiServer::new(InboxApi::new(inbox, watcher))));
        let readiness = Readiness::default();
        let app = grpc::into_router(routes)
            .merge(health::routes(readiness.clone()))
            .layer(cors);

        tokio::spawn(track_readiness(nats, readiness, shutdown.clone()));

        tracing::info!(%addr, "gateway listening");
        let grace = config.common.shutdown_grace();
        let served = serve::serve(listener, app, shutdown, grace).await;
        // Also when serving failed, so no forwarding task outlives the application.
        streams.cancel();
        served?;
        Ok(())
    }
}

/// Ready once NATS is connected (WatchInbox needs it); not ready from the moment shutdown begins,
/// so load balancers stop sending new calls while open ones drain. A later NATS outage does not
/// clear readiness: list and get still work, and async-nats resubscribes open watches on reconnect.
async fn track_readiness(nats: async_nats::Client, readiness: Readiness, shutdown: CancellationToken) {
    let connected = async {
        while nats.connection_state() != async_nats::connection::State::Connected {
            tokio::time::sleep(Duration::from_millis(50)).await;
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
