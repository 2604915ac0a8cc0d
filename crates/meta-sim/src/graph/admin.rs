//! `/_sim/…`: JSON endpoints mirroring [`GraphSim`]'s steering methods, so a simulator running
//! as its own process (`make run`) can be driven by other processes and tests. Not part of
//! Meta's surface; bind the simulator to localhost.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::GraphSim;
use super::world::WorldError;

/// The admin routes.
pub fn routes() -> Router<GraphSim> {
    Router::new()
        .route("/_sim/invalidate_token", post(invalidate_token))
        .route("/_sim/invalidate_tokens_of_page", post(invalidate_tokens_of_page))
        .route("/_sim/revoke_scope", post(revoke_scope))
        .route("/_sim/throttle", post(throttle))
        .route("/_sim/clear_throttle", post(clear_throttle))
        .route("/_sim/set_usage", post(set_usage))
        .route("/_sim/drop_subscription", post(drop_subscription))
        .route("/_sim/dialog_denies", post(dialog_denies))
        .route("/_sim/consenting_user", post(consenting_user))
        .route("/_sim/advance_clock", post(advance_clock))
        .route("/_sim/embedded_signup_code", post(embedded_signup_code))
        .route("/_sim/subscribed_fields/{object_id}", get(subscribed_fields))
        .route("/_sim/calls", get(calls))
        .route("/_sim/sent_messages", get(sent_messages))
        .route("/_sim/{*rest}", axum::routing::any(not_found))
}

async fn not_found(Path(rest): Path<String>) -> Response {
    done(Err(WorldError::Unknown {
        what: "simulator admin endpoint",
        id: format!("/_sim/{rest}"),
    }))
}

fn done(r: Result<(), WorldError>) -> Response {
    match r {
        Ok(()) => Json(json!({"success": true})).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

#[derive(Deserialize)]
struct InvalidateToken {
    token: String,
    subcode: u32,
}

async fn invalidate_token(State(sim): State<GraphSim>, Json(b): Json<InvalidateToken>) -> Response {
    done(sim.lock().invalidate_token(&b.token, b.subcode))
}

#[derive(Deserialize)]
struct InvalidatePage {
    page_id: String,
    subcode: u32,
}

async fn invalidate_tokens_of_page(State(sim): State<GraphSim>, Json(b): Json<InvalidatePage>) -> Response {
    let n = sim.lock().invalidate_tokens_of_page(&b.page_id, b.subcode);
    Json(json!({"success": true, "invalidated": n})).into_response()
}

#[derive(Deserialize)]
struct RevokeScope {
    /// User id, system user id, WABA id or token.
    owner: String,
    scope: String,
}

async fn revoke_scope(State(sim): State<GraphSim>, Json(b): Json<RevokeScope>) -> Response {
    done(sim.lock().revoke_scope(&b.owner, &b.scope))
}

#[derive(Deserialize)]
struct Throttle {
    object_id: String,
    code: u32,
    minutes_to_regain: u32,
    calls: Option<u32>,
}

async fn throttle(State(sim): State<GraphSim>, Json(b): Json<Throttle>) -> Response {
    sim.throttle(&b.object_id, b.code, b.minutes_to_regain, b.calls);
    done(Ok(()))
}

#[derive(Deserialize)]
struct ObjectId {
    object_id: String,
}

async fn clear_throttle(State(sim): State<GraphSim>, Json(b): Json<ObjectId>) -> Response {
    sim.clear_throttle(&b.object_id);
    done(Ok(()))
}

#[derive(Deserialize)]
struct SetUsage {
    object_id: Option<String>,
    call_count_pct: u32,
}

async fn set_usage(State(sim): State<GraphSim>, Json(b): Json<SetUsage>) -> Response {
    sim.set_usage(b.object_id.as_deref(), b.call_count_pct);
    done(Ok(()))
}

async fn drop_subscription(State(sim): State<GraphSim>, Json(b): Json<ObjectId>) -> Response {
    done(sim.lock().drop_subscription(&b.object_id))
}

#[derive(Deserialize)]
struct DialogDenies {
    denies: bool,
}

async fn dialog_denies(State(sim): State<GraphSim>, Json(b): Json<DialogDenies>) -> Response {
    sim.set_dialog_denies(b.denies);
    done(Ok(()))
}

#[derive(Deserialize)]
struct ConsentingUser {
    user_id: String,
}

async fn consenting_user(State(sim): State<GraphSim>, Json(b): Json<ConsentingUser>) -> Response {
    done(sim.lock().set_consenting_user(&b.user_id))
}

#[derive(Deserialize)]
struct AdvanceClock {
    seconds: u64,
}

async fn advance_clock(State(sim): State<GraphSim>, Json(b): Json<AdvanceClock>) -> Response {
    sim.advance_clock(std::time::Duration::from_secs(b.seconds));
    done(Ok(()))
}

#[derive(Deserialize)]
struct EmbeddedSignup {
    waba_id: String,
    scopes: Vec<String>,
}

async fn embedded_signup_code(State(sim): State<GraphSim>, Json(b): Json<EmbeddedSignup>) -> Response {
    match sim.lock().embedded_signup_code(&b.waba_id, &b.scopes) {
        Ok(code) => Json(json!({ "code": code })).into_response(),
        Err(e) => done(Err(e)),
    }
}

async fn subscribed_fields(State(sim): State<GraphSim>, Path(object_id): Path<String>) -> Response {
    Json(json!({ "subscribed_fields": sim.subscribed_fields(&object_id) })).into_response()
}

async fn calls(State(sim): State<GraphSim>) -> Response {
    Json(sim.calls()).into_response()
}

async fn sent_messages(State(sim): State<GraphSim>) -> Response {
    Json(sim.sent_messages()).into_response()
}
