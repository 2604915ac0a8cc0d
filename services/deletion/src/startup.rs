use std::net::SocketAddr;

use scifer_plumbing::{CancellationToken, config::ConfigError, grpc, health::Readiness, serve};
use scifer_proto::deletion::v1::deletion_service_server::DeletionServiceServer;
use serde::Deserialize;
use tokio::net::TcpListener;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: scifer_plumbing::config::Common,
    /// Internal gRPC and health endpoint.
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: String,
}

fn default_grpc_addr() -> String {
    "127.0.0.1:9085".into()
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub struct Application {
    config: Config,
    listener: TcpListener,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let listener = serve::bind(&config.grpc_addr).await?;
        Ok(Self { config, listener })
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), StartupError> {
        let (routes, health) = grpc::base_routes();
        health
            .set_serving::<DeletionServiceServer<crate::grpc::Deletion>>()
            .await;
        let routes = routes.add_service(DeletionServiceServer::new(crate::grpc::Deletion));
        let readiness = Readiness::default();
        readiness.set_ready(true);
        tracing::info!(addr = %self.grpc_addr()?, "deletion listening");
        let grace = self.config.common.shutdown_grace();
        serve::serve_internal(self.listener, routes, readiness, shutdown, grace).await?;
        Ok(())
    }
}
