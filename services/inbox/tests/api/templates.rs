//! Issue 5, WhatsApp templates: each WABA's list read from Graph (through the vault double) when
//! a number connects and periodically, kept current by status webhooks applied by the consumer,
//! and the send gate's source of truth: an unknown or unapproved template never reaches the vault.

use scifer_proto::{
    events::v1::{ChannelKind, MetaEvent, TemplateStatusUpdate, meta_event::Kind},
    inbox::v1::{
        Author, AuthorKind, ListTemplatesRequest, ListTemplatesResponse, SendMessageRequest, TemplateMessage,
        send_message_response,
    },
    tokenvault::v1::EgressAction,
};
use scifer_test_support::wait_until;
use tonic::Code;

use crate::{
    helpers::*,
    send::{Scripted, VaultDouble},
};

pub const WABA: &str = "WABA_1";
const HOUR: i64 = 3_600_000;

/// One template as Graph lists it.
pub fn listed(name: &str, status: &str) -> serde_json::Value {
    serde_json::json!({
        "id": format!("id-{name}"),
        "name": name,
        "language": "en_US",
        "status": status,
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": format!("{name} {{{{1}}}}")}],
    })
}

pub async fn list(app: &TestApp, ws: &str, channel_id: &str) -> Result<ListTemplatesResponse, tonic::Status> {
    app.grpc()
        .await
        .list_templates(with_workspace(
            ws,
            ListTemplatesRequest {
                channel_id: channel_id.into(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// Waits until the channel's list satisfies `check`.
async fn wait_list(
    app: &TestApp,
    ws: &str,
    channel_id: &str,
    what: &str,
    check: impl Fn(&ListTemplatesResponse) -> bool,
) {
    let reached = wait_until(WAIT, || async {
        list(app, ws, channel_id).await.is_ok_and(|l| check(&l))
    })
    .await;
    assert!(
        reached.is_ok(),
        "{what}: not reached; last {:?}",
        list(app, ws, channel_id).await
    );
}

fn statuses(l: &ListTemplatesResponse) -> Vec<(&str, &str)> {
    l.templates
        .iter()
        .map(|t| (t.name.as_str(), t.status.as_str()))
        .collect()
}

/// Connects WhatsApp number `phone` of [`WABA`] in a new workspace (channel `ch-<phone>`).
pub async fn connect_whatsapp(app: &TestApp, ws: &str, phone: &str) -> String {
    let channel_id = format!("ch-{phone}");
    let mut event = connected(ws, &channel_id, ChannelKind::Whatsapp, phone);
    event.parent_account_id = WABA.into();
    app.publish_channel(&event).await;
    channel_id
}

/// A workspace with WhatsApp number `phone` (its WABA's templates synced) and one customer
/// message `age_ms` old; returns the workspace and the conversation id.
pub async fn whatsapp_conversation(app: &TestApp, phone: &str, age_ms: i64) -> (String, String) {
    let ws = workspace();
    let channel_id = connect_whatsapp(app, &ws, phone).await;
    wait_list(app, &ws, &channel_id, "templates synced", |l| {
        l.synced_at.is_some()
    })
    .await;
    app.publish_meta(&inbound(
        ChannelKind::Whatsapp,
        phone,
        "5511999990000",
        &format!("wamid.IN_{phone}"),
        "Hello?",
        now_ms() - age_ms,
    ))
    .await;
    app.wait_for_messages(&ws, 1).await;
    let conversation = app.conversations(&ws).await.remove(0);
    (ws, conversation.id)
}

fn status_update(name: &str, status: &str, reason: &str, at_ms: i64) -> MetaEvent {
    MetaEvent {
        event_id: format!("wa:template_status:id-{name}:{status}:{at_ms}"),
        delivery_id: "d".into(),
        channel_kind: ChannelKind::Whatsapp as i32,
        account_id: WABA.into(),
        business_account_id: WABA.into(),
        raw_item_json: "{}".into(),
        kind: Some(Kind::TemplateStatus(TemplateStatusUpdate {
            waba_id: WABA.into(),
            template_id: format!("id-{name}"),
            name: name.into(),
            language: "en_US".into(),
            status: status.into(),
            reason: reason.into(),
            category: String::new(),
            at_ms,
        })),
        ..Default::default()
    }
}

fn template_send(conversation: &str, key: &str, name: &str) -> SendMessageRequest {
    SendMessageRequest {
        conversation_id: conversation.into(),
        idempotency_key: key.into(),
        author: Some(Author {
            kind: AuthorKind::Human as i32,
            id: "agent-1".into(),
        }),
        template: Some(TemplateMessage {
            name: name.into(),
            language: "en_US".into(),
            body_parameters: vec!["#77".into()],
        }),
        ..Default::default()
    }
}

async fn refusal_of(app: &TestApp, ws: &str, request: SendMessageRequest) -> String {
    let answer = app
        .grpc()
        .await
        .send_message(with_workspace(ws, request))
        .await
        .unwrap()
        .into_inner();
    match answer.result {
        Some(send_message_response::Result::Refusal(r)) => r.reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_connected_number_gets_its_wabas_templates_page_by_page() {
    let vault = VaultDouble::start(vec![Scripted::WhatsAppSent("wamid.X")]).await;
    vault.serve_templates(vec![
        listed("order_update", "APPROVED"),
        listed("promo", "REJECTED"),
        listed("appointment", "PENDING"),
    ]);
    let app = spawn_app_with_vault(&vault).await;
    let ws = workspace();
    let channel_id = connect_whatsapp(&app, &ws, "PHONE_1").await;
    wait_list(&app, &ws, &channel_id, "three templates", |l| {
        l.templates.len() == 3
    })
    .await;

    let listed = list(&app, &ws, &channel_id).await.unwrap();
    assert_eq!(
        statuses(&listed),
        [
            ("appointment", "PENDING"),
            ("order_update", "APPROVED"),
            ("promo", "REJECTED")
        ],
        "by name"
    );
    let order = &listed.templates[1];
    assert_eq!(
        (
            order.id.as_str(),
            order.language.as_str(),
            order.category.as_str()
        ),
        ("id-order_update", "en_US", "UTILITY")
    );
    assert!(order.components_json.contains("BODY"));
    assert!(listed.synced_at.is_some());

    // Two pages, through the channel's own egress, the second after the first's cursor.
    let calls = vault.template_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|c| c.action == EgressAction::ListMessageTemplates as i32
                && c.channel_id == channel_id
                && c.workspace_id == ws)
    );
    let second: serde_json::Value = serde_json::from_str(&calls[1].params_json).unwrap();
    assert_eq!(second["after"], "2");
    assert!(vault.calls().is_empty(), "no send");

    // Another number of the same WABA shares the list.
    let other = connect_whatsapp(&app, &ws, "PHONE_2").await;
    wait_list(&app, &ws, &other, "shared list", |l| l.templates.len() == 3).await;

    // Only WhatsApp channels have templates; other workspaces see no channel.
    app.publish_channel(&connected(&ws, "ch-page", ChannelKind::Messenger, "PAGE_9"))
        .await;
    let not_wa = wait_until(WAIT, || async {
        matches!(list(&app, &ws, "ch-page").await, Err(e) if e.code() == Code::InvalidArgument)
    })
    .await;
    assert!(not_wa.is_ok());
    let foreign = list(&app, &workspace(), &channel_id).await.unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
}

#[tokio::test]
async fn status_webhooks_keep_the_list_current_and_refused_templates_never_reach_the_vault() {
    let vault = VaultDouble::start(vec![Scripted::WhatsAppSent("wamid.OUT1")]).await;
    vault.serve_templates(vec![
        listed("order_update", "APPROVED"),
        listed("promo", "APPROVED"),
    ]);
    let app = spawn_app_with_vault(&vault).await;
    let (ws, conv) = whatsapp_conversation(&app, "PHONE_1", HOUR).await;
    let channel_id = "ch-PHONE_1";

    // Approved: sent.
    let answer = app
        .grpc()
        .await
        .send_message(with_workspace(&ws, template_send(&conv, "k1", "order_update")))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(answer.result, Some(send_message_response::Result::Message(_))),
        "{answer:?}"
    );
    assert_eq!(vault.calls().len(), 1);

    // Meta pauses one and rejects the other: the consumer applies both.
    let t0 = now_ms();
    app.publish_meta(&status_update("order_update", "PAUSED", "", t0))
        .await;
    app.publish_meta(&status_update("promo", "REJECTED", "INVALID_FORMAT", t0))
        .await;
    wait_list(&app, &ws, channel_id, "paused and rejected", |l| {
        statuses(l) == [("order_update", "PAUSED"), ("promo", "REJECTED")]
    })
    .await;
    let promo = list(&app, &ws, channel_id).await.unwrap().templates[1].clone();
    assert_eq!(promo.reason, "INVALID_FORMAT");

    // Neither is sent any more, nor a template the WABA does not have.
    assert_eq!(
        refusal_of(&app, &ws, template_send(&conv, "k2", "order_update")).await,
        "template_not_approved"
    );
    assert_eq!(
        refusal_of(&app, &ws, template_send(&conv, "k3", "promo")).await,
        "template_not_approved"
    );
    assert_eq!(
        refusal_of(&app, &ws, template_send(&conv, "k4", "no_such_template")).await,
        "template_unknown"
    );
    assert_eq!(vault.calls().len(), 1, "nothing more reached the vault");

    // An older status arriving late (a redelivery) changes nothing; a newer one applies.
    app.publish_meta(&status_update("order_update", "APPROVED", "", t0 - 60_000))
        .await;
    app.publish_meta(&status_update("promo", "APPROVED", "", t0 + 60_000))
        .await;
    wait_list(&app, &ws, channel_id, "promo approved again", |l| {
        statuses(l) == [("order_update", "PAUSED"), ("promo", "APPROVED")]
    })
    .await;
    assert_eq!(
        list(&app, &ws, channel_id).await.unwrap().templates[1].reason,
        "",
        "the reason went with the rejection"
    );
}

#[tokio::test]
async fn the_periodic_sync_follows_the_wabas_list() {
    let vault = VaultDouble::start(vec![Scripted::WhatsAppSent("wamid.X")]).await;
    vault.serve_templates(vec![
        listed("order_update", "APPROVED"),
        listed("promo", "APPROVED"),
    ]);
    let app = spawn_app_with(&[
        ("TOKEN_VAULT_URL", &vault.url()),
        ("TOKEN_VAULT_CREDENTIAL", crate::send::INBOX_CREDENTIAL),
        ("TEMPLATE_SYNC_INTERVAL_SECS", "1"),
    ])
    .await;
    let ws = workspace();
    let channel_id = connect_whatsapp(&app, &ws, "PHONE_1").await;
    wait_list(&app, &ws, &channel_id, "first sync", |l| l.templates.len() == 2).await;

    // Deleted at Meta and a new one added: the next sync replaces the list.
    vault.serve_templates(vec![listed("welcome", "PENDING")]);
    wait_list(&app, &ws, &channel_id, "resynced", |l| {
        statuses(l) == [("welcome", "PENDING")]
    })
    .await;
}

#[tokio::test]
async fn a_template_send_reads_a_list_that_was_never_synced() {
    let vault = VaultDouble::start(vec![Scripted::WhatsAppSent("wamid.OUT1")]).await;
    vault.serve_templates(vec![listed("order_update", "APPROVED")]);
    // The sync on connect fails (Graph unreachable): the list stays never-synced.
    vault.fail_template_lists(1);
    let app = spawn_app_with_vault(&vault).await;
    let ws = workspace();
    let channel_id = connect_whatsapp(&app, &ws, "PHONE_1").await;
    let tried = wait_until(WAIT, || async { !vault.template_calls().is_empty() }).await;
    assert!(tried.is_ok(), "no sync on connect");
    let listed = list(&app, &ws, &channel_id).await.unwrap();
    assert!(
        listed.templates.is_empty() && listed.synced_at.is_none(),
        "{listed:?}"
    );
    app.publish_meta(&inbound(
        ChannelKind::Whatsapp,
        "PHONE_1",
        "5511999990000",
        "wamid.IN_1",
        "Hello?",
        now_ms() - HOUR,
    ))
    .await;
    app.wait_for_messages(&ws, 1).await;
    let conv = app.conversations(&ws).await.remove(0).id;

    // The send reads the list first, and the template is Meta's approved one.
    let answer = app
        .grpc()
        .await
        .send_message(with_workspace(&ws, template_send(&conv, "k1", "order_update")))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(answer.result, Some(send_message_response::Result::Message(_))),
        "{answer:?}"
    );
    assert_eq!(vault.template_calls().len(), 2);
    assert_eq!(vault.calls().len(), 1);
    assert!(list(&app, &ws, &channel_id).await.unwrap().synced_at.is_some());
}

#[tokio::test]
async fn a_number_whose_waba_is_unknown_leaves_the_template_to_meta() {
    // Connected before its channel events named the WABA: nothing to check against.
    let vault = VaultDouble::start(vec![Scripted::WhatsAppSent("wamid.OUT1")]).await;
    let app = spawn_app_with_vault(&vault).await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-PHONE_1", ChannelKind::Whatsapp, "PHONE_1"))
        .await;
    app.publish_meta(&inbound(
        ChannelKind::Whatsapp,
        "PHONE_1",
        "5511999990000",
        "wamid.IN_1",
        "Hello?",
        now_ms() - HOUR,
    ))
    .await;
    app.wait_for_messages(&ws, 1).await;
    let conv = app.conversations(&ws).await.remove(0).id;
    let answer = app
        .grpc()
        .await
        .send_message(with_workspace(&ws, template_send(&conv, "k1", "order_update")))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(answer.result, Some(send_message_response::Result::Message(_))),
        "{answer:?}"
    );
    assert_eq!(vault.calls().len(), 1, "sent for Meta to judge");
    assert!(vault.template_calls().is_empty(), "no WABA to list");
    let listed = list(&app, &ws, "ch-PHONE_1").await.unwrap();
    assert!(listed.templates.is_empty() && listed.synced_at.is_none());
}
