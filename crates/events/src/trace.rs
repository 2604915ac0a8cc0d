use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct Headers<'a>(&'a mut async_nats::HeaderMap);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct ReadHeaders<'a>(&'a async_nats::HeaderMap);

impl Extractor for ReadHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

/// Writes the current span's W3C trace context (`traceparent`) into NATS headers.
pub fn inject_current_context(headers: &mut async_nats::HeaderMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut Headers(headers)));
}

/// The trace context a message was published under, to parent the consumer's span.
pub fn parent_context(headers: Option<&async_nats::HeaderMap>) -> opentelemetry::Context {
    match headers {
        Some(h) => opentelemetry::global::get_text_map_propagator(|p| p.extract(&ReadHeaders(h))),
        None => opentelemetry::Context::new(),
    }
}
