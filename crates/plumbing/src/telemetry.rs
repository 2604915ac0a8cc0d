//! Structured logs (JSON by default) and OpenTelemetry traces. A tracer provider is always installed,
//! so trace ids exist and propagate across NATS and gRPC even when nothing exports them; spans are
//! exported over OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Log filter when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn";

/// Keep it alive for the life of the process; [`Telemetry::shutdown`] flushes pending spans.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

/// Installs logging and tracing for `service`. `RUST_LOG` filters (default [`DEFAULT_FILTER`]); `LOG_FORMAT=text`
/// switches from JSON lines to human-readable text.
pub fn init(service: &'static str) -> Result<Telemetry, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty()) {
        // The exporter reads the endpoint and headers from the standard OTEL_* variables itself.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(service));

    // sqlx logs every statement at info: that is SQL text in the logs for each event, so it is opt-in.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let text = std::env::var("LOG_FORMAT").is_ok_and(|f| f == "text");
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = if text {
        registry
            .with(tracing_subscriber::fmt::layer().with_target(true))
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            )
            .try_init()
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry { provider })
}

impl Telemetry {
    /// Flushes and stops the exporter. The SDK's shutdown blocks, so it runs off the async workers.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = provider.shutdown() {
                eprintln!("telemetry shutdown: {e}");
            }
        })
        .await;
    }
}
