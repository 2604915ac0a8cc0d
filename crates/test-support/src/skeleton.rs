use std::{convert::Infallible, time::Duration};

use scifer_plumbing::{
    CancellationToken,
    skeleton::{Config, Skeleton, SkeletonError},
};
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A skeleton service running in-process on port 0.
pub struct RunningSkeleton {
    pub url: String,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), SkeletonError>>,
}

/// Starts `service` the way the skeleton binaries do, on a free port.
pub async fn start_skeleton<S>(name: &'static str, service: S) -> RunningSkeleton
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
    scifer_plumbing::install_crypto_provider();
    let config: Config =
        scifer_plumbing::config::load_from(None, [("GRPC_ADDR".to_string(), "127.0.0.1:0".to_string())])
            .expect("config");
    let app = Skeleton::build(name, config, "127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", app.grpc_addr().expect("address"));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(service, shutdown.clone()));
    RunningSkeleton { url, shutdown, task }
}

impl RunningSkeleton {
    /// The standard gRPC health check says SERVING and `/readyz` answers 200.
    pub async fn assert_healthy(&self) {
        let channel = tonic::transport::Endpoint::from_shared(self.url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let status = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32);
        let ready = reqwest::get(format!("{}/readyz", self.url))
            .await
            .expect("readyz");
        assert_eq!(ready.status(), 200);
    }

    /// Cancels the shutdown token and asserts a clean stop within seconds.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        assert!(
            matches!(stopped, Ok(Ok(Ok(())))),
            "did not stop cleanly: {stopped:?}"
        );
    }
}
