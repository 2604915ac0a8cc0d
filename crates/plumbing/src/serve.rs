//! Serving an axum router (which may carry gRPC routes) on a bound listener until a token is
//! cancelled, then draining in-flight requests for at most a grace period.

use std::{future::IntoFuture, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves HTTP/1.1 and h2c (native gRPC) on `listener`, with each request's peer address in its
/// extensions. Returns once the token is cancelled and
/// in-flight requests finished, or the grace period ran out.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let stopping = shutdown.clone();
    // Small gRPC answers must leave at once: with Nagle on, a response waiting for the peer's
    // delayed ACK adds ~40 ms to a call (measured by the reply benchmark before this was set).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    // Each request carries its peer address (`ConnectInfo<SocketAddr>`), e.g. for limits per client.
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stopping.cancelled().await })
    .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(%addr, "grace period over; dropping connections still open");
            Ok(())
        }
    }
}

/// Binds a TCP listener, naming the address in the error (a port in use is the usual cause).
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves an internal service's gRPC routes plus `/healthz` and `/readyz` on `listener` until
/// `shutdown`; readiness drops as soon as shutdown begins so traffic drains away first.
pub async fn serve_internal(
    listener: TcpListener,
    routes: tonic::service::Routes,
    readiness: crate::health::Readiness,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let app = crate::grpc::internal_app(routes, readiness.clone());
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        stopping.cancelled().await;
        readiness.set_ready(false);
    });
    serve(listener, app, shutdown, grace).await
}
