//! A service whose whole surface is one internal gRPC service plus health: what publisher,
//! token-vault and deletion are until their issues give them consumers and stores. One generic
//! bootstrap instead of three copies; a service outgrows it by writing its own `startup.rs`.

use std::{convert::Infallible, net::SocketAddr};

use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

use crate::{config::Common, grpc, health::Readiness, serve};

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: Common,
    /// Internal gRPC and health endpoint; each service has its own default.
    #[serde(default)]
    pub grpc_addr: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SkeletonError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub struct Skeleton {
    name: &'static str,
    config: Config,
    listener: TcpListener,
}

impl Skeleton {
    /// Binds `config.grpc_addr`, or `default_addr` when unset.
    pub async fn build(
        name: &'static str,
        config: Config,
        default_addr: &str,
    ) -> Result<Self, SkeletonError> {
        let addr = config
            .grpc_addr
            .clone()
            .unwrap_or_else(|| default_addr.to_string());
        let listener = serve::bind(&addr).await?;
        Ok(Self {
            name,
            config,
            listener,
        })
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `service` with health and reflection until `shutdown`, then drains.
    pub async fn run_until_stopped<S>(
        self,
        service: S,
        shutdown: CancellationToken,
    ) -> Result<(), SkeletonError>
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        let (routes, health) = grpc::base_routes();
        health.set_serving::<S>().await;
        let routes = routes.add_service(service);
        let readiness = Readiness::default();
        readiness.set_ready(true);
        tracing::info!(service = self.name, addr = %self.grpc_addr()?, "listening");
        let grace = self.config.common.shutdown_grace();
        serve::serve_internal(self.listener, routes, readiness, shutdown, grace).await?;
        Ok(())
    }
}
