//! The public HTTP surface: Meta's webhook callback (GET handshake, POST deliveries) and health.

use std::{sync::Arc, time::SystemTime};

use axum::{
    Router,
    body::Body,
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use prost_types::Timestamp;
use scifer_plumbing::health::{self, Readiness};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tower_http::trace::TraceLayer;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    error::Error,
    ingest::{Destination, IngestLog, delivery_id},
    stats::{Stats, Stored},
};

pub const WEBHOOK_PATH: &str = "/webhooks/meta";
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// What the webhook handlers share.
pub struct WebhookState {
    pub app_secret: SecretString,
    pub verify_token: SecretString,
    pub max_body_bytes: usize,
    pub log: IngestLog,
    pub stats: Arc<Stats>,
}

pub fn router(state: Arc<WebhookState>, readiness: Readiness) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, get(handshake).post(receive))
        .with_state(state)
        .layer(TraceLayer::new_for_http().make_span_with(span_for_request as fn(&_) -> tracing::Span))
        .merge(health::routes(readiness))
}

/// One span per request, continuing the caller's `traceparent` if it sent one (Meta does not; a
/// proxy or a test may). The raw message published inside it carries this trace onwards.
fn span_for_request(request: &http::Request<Body>) -> tracing::Span {
    let span = tracing::info_span!(
        "webhook",
        method = %request.method(),
        path = %request.uri().path(),
        delivery_id = tracing::field::Empty,
    );
    let parent = scifer_plumbing::grpc::extract_http(request.headers());
    // Fails only when the span is disabled by the subscriber's filter; nothing to carry then.
    let _ = span.set_parent(parent);
    span
}

#[derive(Debug, Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET`: Meta checks that it talks to the right endpoint by having it echo `hub.challenge`, which
/// it does only for `hub.mode=subscribe` and the configured verify token.
async fn handshake(
    State(state): State<Arc<WebhookState>>,
    query: Result<Query<Handshake>, QueryRejection>,
) -> Result<impl IntoResponse, Error> {
    let Ok(Query(hub)) = query else {
        return Err(Error::HandshakeRefused);
    };
    let token_ok = hub
        .verify_token
        .as_deref()
        .is_some_and(|given| scifer_meta::verify_token_matches(state.verify_token.expose_secret(), given));
    match (hub.mode.as_deref(), hub.challenge) {
        (Some("subscribe"), Some(challenge)) if token_ok => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )),
        _ => Err(Error::HandshakeRefused),
    }
}

/// `POST`: the hot path. Check the size and the signature over the raw bytes, glance at `object`,
/// append the body to the ingest log and answer only once the stream acknowledged it.
async fn receive(
    State(state): State<Arc<WebhookState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, Error> {
    let outcome = store_delivery(&state, &headers, body).await;
    state.stats.record_delivery(&outcome);
    outcome.map(|stored| {
        tracing::debug!(?stored, "delivery stored");
        (StatusCode::OK, "EVENT_RECEIVED")
    })
}

async fn store_delivery(state: &WebhookState, headers: &HeaderMap, body: Body) -> Result<Stored, Error> {
    let received_at = Timestamp::from(SystemTime::now());
    let limit = state.max_body_bytes;
    // A declared length over the limit is refused before reading a byte.
    if content_length(headers).is_some_and(|len| len > limit) {
        return Err(Error::TooLarge { limit });
    }
    // Without a signature the body cannot be trusted, so it is not worth reading.
    let Some(signature) = headers.get(SIGNATURE_HEADER) else {
        return Err(Error::MissingSignature);
    };
    let body = read_limited(body, limit).await?;
    scifer_meta::verify_sha256(
        state.app_secret.expose_secret().as_bytes(),
        &body,
        Some(signature.as_bytes()),
    )?;

    let id = delivery_id(&body);
    tracing::Span::current().record("delivery_id", id.as_str());
    let (destination, stored) = match scifer_meta::peek_object(&body) {
        Ok(kind) => (Destination::Raw(kind), Stored::Accepted),
        Err(malformed) => {
            tracing::warn!(delivery_id = %id, reason = %malformed, "signed body is not a JSON object; quarantining");
            (Destination::Quarantine, Stored::Quarantined)
        }
    };
    state
        .log
        .append(destination, &id, &received_at, body)
        .await
        .map_err(Error::Unavailable)?;
    Ok(stored)
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads the body, holding at most `limit` bytes (plus the frame that crossed it) in memory, which
/// covers chunked bodies that declare no length.
async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, Error> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Error::TooLarge { limit }),
        Err(e) => Err(Error::UnreadableBody(e)),
    }
}
