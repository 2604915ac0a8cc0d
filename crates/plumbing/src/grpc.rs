//! gRPC plumbing shared by every service: the standard health and reflection services, trace-context
//! propagation in gRPC metadata (client side) and HTTP headers (server side).

use axum::Router;
use opentelemetry::propagation::{Extractor, Injector};
use tonic::{
    Request, Status,
    metadata::{MetadataKey, MetadataMap, MetadataValue},
    service::Routes,
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The standard `grpc.health.v1` service plus a reporter to mark named services serving.
pub type HealthReporter = tonic_health::server::HealthReporter;

/// Routes holding the health service (overall status SERVING) and reflection over every Scifer
/// proto. Services add their own with [`Routes::add_service`].
pub fn base_routes() -> (Routes, HealthReporter) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(scifer_proto::FILE_DESCRIPTOR_SET)
        .build_v1();
    let mut routes = Routes::new(health);
    if let Ok(reflection) = reflection {
        routes = routes.add_service(reflection);
    } else {
        // Only a corrupt build-time descriptor set gets here; serving without reflection beats
        // not serving.
        tracing::error!("gRPC reflection disabled: the embedded descriptor set did not load");
    }
    (routes, reporter)
}

/// Turns gRPC routes into an axum router with a span per call that continues the caller's trace.
pub fn into_router(routes: Routes) -> Router {
    routes.prepare().into_axum_router().layer(trace_layer())
}

/// The layer [`trace_layer`] returns.
pub type GrpcTraceLayer = tower_http::trace::TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::GrpcErrorsAsFailures>,
    fn(&http::Request<axum::body::Body>) -> tracing::Span,
>;

/// A per-request span whose parent is the W3C trace context found in the request headers
/// (gRPC metadata travels as HTTP headers).
pub fn trace_layer() -> GrpcTraceLayer {
    tower_http::trace::TraceLayer::new_for_grpc().make_span_with(span_for_request as fn(&_) -> _)
}

fn span_for_request(request: &http::Request<axum::body::Body>) -> tracing::Span {
    let span = tracing::info_span!("request", method = %request.method(), path = %request.uri().path());
    let parent = extract_http(request.headers());
    let _ = span.set_parent(parent);
    span
}

/// The trace context carried in HTTP headers.
pub fn extract_http(headers: &http::HeaderMap) -> opentelemetry::Context {
    struct Headers<'a>(&'a http::HeaderMap);
    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)))
}

/// Client interceptor that carries the current span's trace context to the callee.
/// Use with `XClient::with_interceptor(channel, scifer_plumbing::grpc::propagate_trace)`.
pub fn propagate_trace(mut request: Request<()>) -> Result<Request<()>, Status> {
    inject_metadata(request.metadata_mut());
    Ok(request)
}

/// Writes the current span's trace context into gRPC metadata.
pub fn inject_metadata(metadata: &mut MetadataMap) {
    struct Metadata<'a>(&'a mut MetadataMap);
    impl Injector for Metadata<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(key), Ok(value)) = (
                MetadataKey::from_bytes(key.as_bytes()),
                MetadataValue::try_from(value.as_str()),
            ) {
                self.0.insert(key, value);
            }
        }
    }
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut Metadata(metadata)));
}

/// Wraps each gRPC service for gRPC-web (browsers), keeping HTTP/1.1 routes such as `/healthz`
/// untouched: a GrpcWebLayer around the whole router answers 400 to every plain HTTP/1.1 request.
pub fn grpc_web<S>(service: S) -> tonic_web::GrpcWebService<S> {
    tower::Layer::layer(&tonic_web::GrpcWebLayer::new(), service)
}

/// The router an internal service listens with: its gRPC routes plus `/healthz` and `/readyz`.
pub fn internal_app(routes: Routes, readiness: crate::health::Readiness) -> Router {
    into_router(routes).merge(crate::health::routes(readiness))
}
