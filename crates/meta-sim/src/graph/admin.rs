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

use super::world::WorldError;
use super::{
    GraphSim, RecipientBehaviour, TemplateCategory, TemplateStatus, UnknownRecipients, WhatsAppReengagement,
};
use crate::AppSecret;

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
        .route("/_sim/thread_control_calls", get(thread_control_calls))
        .route("/_sim/customer_wrote", post(customer_wrote))
        .route("/_sim/inbound_text", post(inbound_text))
        .route("/_sim/add_template", post(add_template))
        .route("/_sim/set_template_status", post(set_template_status))
        .route("/_sim/set_webhook_target", post(set_webhook_target))
        .route("/_sim/set_recipient_behaviour", post(set_recipient_behaviour))
        .route("/_sim/set_thread_owner", post(set_thread_owner))
        .route("/_sim/unknown_recipients", post(unknown_recipients))
        .route("/_sim/whatsapp_reengagement", post(whatsapp_reengagement))
        .route("/_sim/emitted_webhooks", get(emitted_webhooks))
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

async fn thread_control_calls(State(sim): State<GraphSim>) -> Response {
    Json(sim.thread_control_calls()).into_response()
}

#[derive(Deserialize)]
struct CustomerWrote {
    /// Page, Instagram account or phone number id.
    object_id: String,
    customer_id: String,
    /// RFC 3339; default now on the simulated clock.
    at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    via_ad: bool,
    /// With `text`, the message also goes into the conversation history.
    message_id: Option<String>,
    text: Option<String>,
}

async fn customer_wrote(State(sim): State<GraphSim>, Json(b): Json<CustomerWrote>) -> Response {
    let mut w = sim.lock();
    let at = b.at.map_or_else(|| w.now_ms(), |t| t.timestamp_millis());
    let r = w
        .customer_wrote(&b.object_id, &b.customer_id, at, b.via_ad)
        .and_then(|()| match (&b.message_id, &b.text) {
            (Some(id), Some(text)) => w.record_customer_message(&b.object_id, &b.customer_id, id, text, at),
            _ => Ok(()),
        });
    done(r)
}

#[derive(Deserialize)]
struct InboundText {
    object_id: String,
    customer_id: String,
    text: String,
    /// Also send it to the webhook target (default true).
    emit: Option<bool>,
}

async fn inbound_text(State(sim): State<GraphSim>, Json(b): Json<InboundText>) -> Response {
    let known = sim.lock().node(&b.object_id).map(|_| ());
    if let Err(e) = known {
        return done(Err(e));
    }
    let delivery = sim.inbound_text(&b.object_id, &b.customer_id, &b.text);
    let body = delivery.to_value();
    if b.emit.unwrap_or(true) {
        sim.emit(delivery);
    }
    Json(json!({ "delivery": body })).into_response()
}

#[derive(Deserialize)]
struct AddTemplate {
    waba_id: String,
    name: String,
    language: String,
    category: TemplateCategory,
    status: TemplateStatus,
    #[serde(default)]
    body_params: usize,
}

async fn add_template(State(sim): State<GraphSim>, Json(b): Json<AddTemplate>) -> Response {
    let r = sim.lock().add_template(
        &b.waba_id,
        &b.name,
        &b.language,
        b.category,
        b.status,
        b.body_params,
    );
    match r {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(e) => done(Err(e)),
    }
}

#[derive(Deserialize)]
struct SetTemplateStatus {
    template_id: String,
    status: TemplateStatus,
    reason: Option<String>,
}

async fn set_template_status(State(sim): State<GraphSim>, Json(b): Json<SetTemplateStatus>) -> Response {
    let r = sim
        .lock()
        .set_template_status(&b.template_id, b.status, b.reason.as_deref());
    sim.flush_webhooks();
    done(r)
}

#[derive(Deserialize)]
struct WebhookTarget {
    url: String,
    app_secret: String,
}

async fn set_webhook_target(State(sim): State<GraphSim>, Json(b): Json<WebhookTarget>) -> Response {
    match sim.set_webhook_target(b.url, AppSecret::new(b.app_secret)) {
        Ok(()) => done(Ok(())),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct SetRecipientBehaviour {
    customer_id: String,
    #[serde(flatten)]
    behaviour: RecipientBehaviour,
}

async fn set_recipient_behaviour(
    State(sim): State<GraphSim>,
    Json(b): Json<SetRecipientBehaviour>,
) -> Response {
    sim.set_recipient_behaviour(&b.customer_id, b.behaviour);
    done(Ok(()))
}

#[derive(Deserialize)]
struct SetThreadOwner {
    page_id: String,
    customer_id: String,
    /// `null` = idle.
    app_id: Option<String>,
}

async fn set_thread_owner(State(sim): State<GraphSim>, Json(b): Json<SetThreadOwner>) -> Response {
    let mut w = sim.lock();
    let Some((key, channel)) = w.messaging_thread(&b.page_id, &b.customer_id) else {
        return done(Err(WorldError::Unknown {
            what: "page or instagram account",
            id: b.page_id,
        }));
    };
    w.threads.entry(channel, &key).owner = b.app_id;
    done(Ok(()))
}

#[derive(Deserialize)]
struct Policy<T> {
    policy: T,
}

async fn unknown_recipients(
    State(sim): State<GraphSim>,
    Json(b): Json<Policy<UnknownRecipients>>,
) -> Response {
    sim.set_unknown_recipients(b.policy);
    done(Ok(()))
}

async fn whatsapp_reengagement(
    State(sim): State<GraphSim>,
    Json(b): Json<Policy<WhatsAppReengagement>>,
) -> Response {
    sim.set_whatsapp_reengagement(b.policy);
    done(Ok(()))
}

async fn emitted_webhooks(State(sim): State<GraphSim>) -> Response {
    Json(sim.emitted_webhooks()).into_response()
}
