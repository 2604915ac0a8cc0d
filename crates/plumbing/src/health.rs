//! Liveness and readiness over plain HTTP (`/healthz`, `/readyz`) for Kubernetes probes and the test
//! harness, next to the standard gRPC health service.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{Router, http::StatusCode, routing::get};

/// Readiness flag: set once the service's dependencies are reachable, cleared when shutdown begins
/// so that load balancers stop routing before the listener closes.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// `/healthz` answers 200 while the process serves; `/readyz` answers 200 only when ready.
pub fn routes(readiness: Readiness) -> Router {
    Router::new().route("/healthz", get(|| async { "ok" })).route(
        "/readyz",
        get(move || {
            let ready = readiness.is_ready();
            async move {
                if ready {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                }
            }
        }),
    )
}
