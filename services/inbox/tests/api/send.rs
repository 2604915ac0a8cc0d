//! Replies: the send gate, the vault's answer, and the webhooks that follow, applied in any order
//! to one message. token-vault is played by a double here (its own tests and the end-to-end suite
//! run the real one against the Meta simulator); what is under test is inbox's side.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use scifer_proto::{
    events::v1::{ChannelKind, MetaEvent, WhatsAppStatusKind, meta_event::Kind},
    inbox::v1::{
        Author, AuthorKind, CheckSendRequest, DeliveryStatus, GetConversationResponse, Message,
        RetryMessageRequest, SendMessageRequest, SendMessageResponse, send_message_response,
    },
    tokenvault::v1::{
        self as vault, EgressRequest, EgressResponse, GraphFailure, egress_response, graph_failure,
        token_vault_service_server::{TokenVaultService, TokenVaultServiceServer},
    },
};
use tonic::{Code, Request, Response, Status};

use crate::helpers::*;

pub const INBOX_CREDENTIAL: &str = "inbox-test-credential";

/// What the double answers to the next egress call.
#[derive(Clone)]
pub enum Scripted {
    Sent(&'static str),
    WhatsAppSent(&'static str),
    Meta {
        code: i64,
        subcode: i64,
        kind: graph_failure::Kind,
    },
    /// Answers after the inbox gave up waiting.
    TooLate,
}

#[derive(Clone, Default)]
pub struct VaultDouble {
    url: Arc<Mutex<String>>,
    script: Arc<Mutex<Vec<Scripted>>>,
    pub calls: Arc<Mutex<Vec<(String, EgressRequest)>>>,
    // Issue 5: the WABA's template list Graph serves (two per page), and the list calls.
    templates: Arc<Mutex<Vec<serde_json::Value>>>,
    pub template_calls: Arc<Mutex<Vec<EgressRequest>>>,
    /// How many template list calls to answer UNAVAILABLE first.
    template_failures: Arc<Mutex<usize>>,
}

impl VaultDouble {
    pub async fn start(script: Vec<Scripted>) -> Self {
        let double = Self {
            script: Arc::new(Mutex::new(script)),
            ..Self::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *double.url.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
        let served = double.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(TokenVaultServiceServer::new(served))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        double
    }

    pub fn url(&self) -> String {
        self.url.lock().unwrap().clone()
    }

    pub fn calls(&self) -> Vec<(String, EgressRequest)> {
        self.calls.lock().unwrap().clone()
    }

    pub fn body(&self, i: usize) -> serde_json::Value {
        serde_json::from_str(&self.calls()[i].1.params_json).unwrap()
    }

    // ---- Issue 5: WhatsApp template sync ----

    /// What `GET /{waba}/message_templates` lists from now on.
    pub fn serve_templates(&self, list: Vec<serde_json::Value>) {
        *self.templates.lock().unwrap() = list;
    }

    /// The next `n` template list calls fail.
    pub fn fail_template_lists(&self, n: usize) {
        *self.template_failures.lock().unwrap() = n;
    }

    pub fn template_calls(&self) -> Vec<EgressRequest> {
        self.template_calls.lock().unwrap().clone()
    }

    /// Graph's paging: two per page, `after` the index of the next one, `next` while more remain.
    fn template_page(&self, request: EgressRequest) -> EgressResponse {
        let params: serde_json::Value = serde_json::from_str(&request.params_json).unwrap();
        self.template_calls.lock().unwrap().push(request);
        let list = self.templates.lock().unwrap().clone();
        let start: usize = params["after"].as_str().map_or(0, |a| a.parse().unwrap());
        let end = (start + 2).min(list.len());
        let mut body = serde_json::json!({"data": list[start..end].to_vec()});
        if end < list.len() {
            body["paging"] = serde_json::json!({
                "cursors": {"before": start.to_string(), "after": end.to_string()},
                "next": format!("https://graph.facebook.com/v23.0/WABA/message_templates?after={end}"),
            });
        }
        EgressResponse {
            outcome: Some(egress_response::Outcome::ResultJson(body.to_string())),
        }
    }
}

#[tonic::async_trait]
impl TokenVaultService for VaultDouble {
    type FetchMediaStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<vault::MediaChunk, Status>> + Send + 'static>>;

    async fn fetch_media(
        &self,
        _: Request<vault::FetchMediaRequest>,
    ) -> Result<Response<Self::FetchMediaStream>, Status> {
        Err(Status::unimplemented("double"))
    }

    async fn egress(&self, request: Request<EgressRequest>) -> Result<Response<EgressResponse>, Status> {
        let md = request.metadata();
        let service = md
            .get("x-scifer-service")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bearer = md
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if bearer != format!("Bearer {INBOX_CREDENTIAL}") {
            return Err(Status::unauthenticated("service credential missing or not valid"));
        }
        if request.get_ref().action == vault::EgressAction::ListMessageTemplates as i32 {
            let mut failures = self.template_failures.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                self.template_calls.lock().unwrap().push(request.into_inner());
                return Err(Status::unavailable("graph unreachable"));
            }
            drop(failures);
            return Ok(Response::new(self.template_page(request.into_inner())));
        }
        self.calls.lock().unwrap().push((service, request.into_inner()));
        let next = {
            let mut script = self.script.lock().unwrap();
            if script.len() > 1 {
                script.remove(0)
            } else {
                script[0].clone()
            }
        };
        let outcome = match next {
            Scripted::Sent(mid) => egress_response::Outcome::ResultJson(
                serde_json::json!({"recipient_id": "PSID", "message_id": mid}).to_string(),
            ),
            Scripted::WhatsAppSent(wamid) => egress_response::Outcome::ResultJson(
                serde_json::json!({"messaging_product":"whatsapp","messages":[{"id": wamid}]}).to_string(),
            ),
            Scripted::Meta { code, subcode, kind } => egress_response::Outcome::Failure(GraphFailure {
                kind: kind as i32,
                code,
                subcode,
                message: "(#10) Meta refused".into(),
                ..Default::default()
            }),
            Scripted::TooLate => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                egress_response::Outcome::ResultJson(serde_json::json!({"message_id": "m_late"}).to_string())
            }
        };
        Ok(Response::new(EgressResponse {
            outcome: Some(outcome),
        }))
    }

    async fn get_info(
        &self,
        _: Request<vault::GetInfoRequest>,
    ) -> Result<Response<vault::GetInfoResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn start_connect(
        &self,
        _: Request<vault::StartConnectRequest>,
    ) -> Result<Response<vault::StartConnectResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn complete_connect(
        &self,
        _: Request<vault::CompleteConnectRequest>,
    ) -> Result<Response<vault::CompleteConnectResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn confirm_connect(
        &self,
        _: Request<vault::ConfirmConnectRequest>,
    ) -> Result<Response<vault::ConnectResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn connect_whats_app(
        &self,
        _: Request<vault::ConnectWhatsAppRequest>,
    ) -> Result<Response<vault::ConnectResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn list_channels(
        &self,
        _: Request<vault::ListChannelsRequest>,
    ) -> Result<Response<vault::ListChannelsResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn disconnect_channel(
        &self,
        _: Request<vault::DisconnectChannelRequest>,
    ) -> Result<Response<vault::DisconnectChannelResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn check_channel(
        &self,
        _: Request<vault::CheckChannelRequest>,
    ) -> Result<Response<vault::Channel>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn rotate_data_key(
        &self,
        _: Request<vault::RotateDataKeyRequest>,
    ) -> Result<Response<vault::RotationStatus>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn get_rotation_status(
        &self,
        _: Request<vault::GetRotationStatusRequest>,
    ) -> Result<Response<vault::RotationStatus>, Status> {
        Err(Status::unimplemented("double"))
    }
}

const PAGE: &str = "PAGE_1";
const PSID: &str = "PSID_1";
const HOUR: i64 = 3_600_000;

fn human() -> Author {
    Author {
        kind: AuthorKind::Human as i32,
        id: "agent-1".into(),
    }
}

fn bot() -> Author {
    Author {
        kind: AuthorKind::Automation as i32,
        id: "rule-1".into(),
    }
}

fn reply(conversation_id: &str, key: &str, author: Author, text: &str) -> SendMessageRequest {
    SendMessageRequest {
        conversation_id: conversation_id.into(),
        idempotency_key: key.into(),
        author: Some(author),
        text: text.into(),
        ..Default::default()
    }
}

fn sent(r: SendMessageResponse) -> Message {
    match r.result {
        Some(send_message_response::Result::Message(m)) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// A workspace with a Messenger channel and one customer message `age_ms` old; returns the
/// workspace and the conversation id.
async fn conversation_with_customer_message(
    app: &TestApp,
    kind: ChannelKind,
    account: &str,
    age_ms: i64,
) -> (String, String) {
    let ws = workspace();
    app.publish_channel(&connected(&ws, &format!("ch-{account}"), kind, account))
        .await;
    app.publish_meta(&inbound(
        kind,
        account,
        PSID,
        &format!("m_in_{account}"),
        "Hello?",
        now_ms() - age_ms,
    ))
    .await;
    app.wait_for_messages(&ws, 1).await;
    let conversation = app.conversations(&ws).await.remove(0);
    (ws, conversation.id)
}

async fn send(app: &TestApp, ws: &str, request: SendMessageRequest) -> Result<SendMessageResponse, Status> {
    app.grpc()
        .await
        .send_message(with_workspace(ws, request))
        .await
        .map(|r| r.into_inner())
}

async fn message_in(
    app: &TestApp,
    ws: &str,
    id: &str,
    check: impl Fn(&Message) -> bool,
) -> GetConversationResponse {
    app.wait_for(ws, id, |c: &GetConversationResponse| {
        c.messages.iter().any(|m| m.id == id && check(m))
    })
    .await
}

fn own(id: &str) -> String {
    format!("scifer:{id}")
}

fn own_echo(account: &str, mid: &str, message_id: &str, at_ms: i64) -> MetaEvent {
    let mut e = echo(ChannelKind::Messenger, account, PSID, mid, "Thanks!", at_ms);
    if let Some(Kind::Echo(echo)) = &mut e.kind {
        echo.metadata = own(message_id);
    }
    e
}

#[tokio::test]
async fn the_gate_refuses_automation_after_24_hours_and_tags_a_human_reply_human_agent() {
    let vault = VaultDouble::start(vec![Scripted::Sent("m_out_1")]).await;
    let app = spawn_app_with_vault(&vault).await;
    let (ws, conv) = conversation_with_customer_message(&app, ChannelKind::Messenger, PAGE, 30 * HOUR).await;

    let refused = send(&app, &ws, reply(&conv, "k-bot", bot(), "Auto answer"))
        .await
        .unwrap();
    let Some(send_message_response::Result::Refusal(r)) = refused.result else {
        panic!("automation must be refused after 24 h: {refused:?}");
    };
    assert_eq!(r.reason, "human_agent_tag_forbidden_for_automation");
    assert!(r.human_agent_until.is_some() && !r.explanation.is_empty());
    assert!(
        vault.calls().is_empty(),
        "a refused message never reaches the vault"
    );

    let check = app
        .grpc()
        .await
        .check_send(with_workspace(
            &ws,
            CheckSendRequest {
                conversation_id: conv.clone(),
                author: AuthorKind::Human as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(check.allowed);
    assert_eq!(check.messaging_type, "MESSAGE_TAG:HUMAN_AGENT");
    assert!(check.until.is_some());

    let m = sent(
        send(&app, &ws, reply(&conv, "k-human", human(), "Sorry for the wait"))
            .await
            .unwrap(),
    );
    assert_eq!(m.status, DeliveryStatus::Sent as i32);
    assert_eq!(m.external_id, "m_out_1");
    let body = vault.body(0);
    assert_eq!(body["messaging_type"], "MESSAGE_TAG");
    assert_eq!(body["tag"], "HUMAN_AGENT");
    assert_eq!(body["recipient"]["id"], PSID);
    assert_eq!(body["message"]["metadata"], own(&m.id));
    let (service, request) = &vault.calls()[0];
    assert_eq!(service, "inbox");
    assert_eq!(request.actor.as_ref().unwrap().id, "agent-1");
    assert_eq!(request.action, vault::EgressAction::SendMessage as i32);

    // After 7 days nobody may send.
    let (ws2, conv2) =
        conversation_with_customer_message(&app, ChannelKind::Messenger, "PAGE_OLD", 8 * 24 * HOUR).await;
    let refused = send(&app, &ws2, reply(&conv2, "k-late", human(), "Hello again"))
        .await
        .unwrap();
    assert!(
        matches!(refused.result, Some(send_message_response::Result::Refusal(ref r)) if r.reason == "human_agent_window_closed")
    );
}

#[tokio::test]
async fn a_reply_takes_metas_id_then_its_echo_and_receipts_move_the_same_message() {
    let vault = VaultDouble::start(vec![Scripted::Sent("m_out_1")]).await;
    let app = spawn_app_with_vault(&vault).await;
    let (ws, conv) = conversation_with_customer_message(&app, ChannelKind::Messenger, PAGE, 60_000).await;
    let m = sent(
        send(&app, &ws, reply(&conv, "k1", human(), "Thanks!"))
            .await
            .unwrap(),
    );
    assert_eq!(m.author.as_ref().unwrap().id, "agent-1");
    message_in(&app, &ws, &m.id, |x| {
        x.status == DeliveryStatus::Sent as i32 && x.external_id == "m_out_1"
    })
    .await;
    app.wait_for_messages(&ws, 2).await;

    // Our own echo is the same message, not a new one; then the receipts.
    app.publish_meta(&own_echo(PAGE, "m_out_1", &m.id, now_ms()))
        .await;
    app.publish_meta(&delivery(PAGE, PSID, now_ms() + 1_000)).await;
    let got = message_in(&app, &ws, &m.id, |x| x.status == DeliveryStatus::Delivered as i32).await;
    assert_eq!(
        got.messages.len(),
        2,
        "customer message and our reply, no echo copy"
    );
    assert!(!got.messages.iter().any(|x| x.is_echo));
    app.publish_meta(&read(PAGE, PSID, now_ms() + 2_000)).await;
    message_in(&app, &ws, &m.id, |x| x.status == DeliveryStatus::Read as i32).await;
    app.wait_for_messages(&ws, 2).await;
}

#[tokio::test]
async fn a_retried_call_with_the_same_key_sends_once() {
    let vault = VaultDouble::start(vec![Scripted::Sent("m_out_1")]).await;
    let app = spawn_app_with_vault(&vault).await;
    let (ws, conv) = conversation_with_customer_message(&app, ChannelKind::Messenger, PAGE, 60_000).await;
    let first = send(&app, &ws, reply(&conv, "same-key", human(), "Once"))
        .await
        .unwrap();
    let second = send(&app, &ws, reply(&conv, "same-key", human(), "Once"))
        .await
        .unwrap();
    assert!(!first.replayed, "the first call sent");
    assert!(
        second.replayed,
        "the repeat says it sent nothing, so it is not audited again"
    );
    assert_eq!(sent(first).id, sent(second).id);
    assert_eq!(vault.calls().len(), 1, "the retried call did not send again");
    let err = send(&app, &ws, reply(&conv, "", human(), "no key"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_failure_is_shown_with_metas_code_and_reason_and_a_retry_sends_it_once_more() {
    let vault = VaultDouble::start(vec![
        Scripted::Meta {
            code: 1200,
            subcode: 0,
            kind: graph_failure::Kind::Transient,
        },
        Scripted::Sent("m_out_2"),
    ])
    .await;
    let app = spawn_app_with_vault(&vault).await;
    let (ws, conv) = conversation_with_customer_message(&app, ChannelKind::Messenger, PAGE, 60_000).await;
    let m = sent(
        send(&app, &ws, reply(&conv, "k1", human(), "Try me"))
            .await
            .unwrap(),
    );
    assert_eq!(m.status, DeliveryStatus::Failed as i32, "never shown as sent");
    assert_eq!(m.error_code, 1200);
    assert!(m.retryable);
    assert!(!m.failure_reason.is_empty() && !m.error_message.is_empty());
    message_in(&app, &ws, &m.id, |x| {
        x.status == DeliveryStatus::Failed as i32 && x.error_code == 1200
    })
    .await;

    let retried = app
        .grpc()
        .await
        .retry_message(with_workspace(
            &ws,
            RetryMessageRequest {
                message_id: m.id.clone(),
                author: Some(human()),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let retried = sent(retried);
    assert_eq!(retried.id, m.id);
    assert_eq!(retried.status, DeliveryStatus::Sent as i32);
    message_in(&app, &ws, &m.id, |x| {
        x.status == DeliveryStatus::Sent as i32 && x.external_id == "m_out_2"
    })
    .await;
    assert_eq!(vault.calls().len(), 2);
    // Counted once in its conversation although it was sent twice.
    app.wait_for_messages(&ws, 2).await;
    // A sent message cannot be retried.
    let err = app
        .grpc()
        .await
        .retry_message(with_workspace(
            &ws,
            RetryMessageRequest {
                message_id: m.id.clone(),
                author: Some(human()),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn a_lost_answer_is_unconfirmed_until_the_echo_proves_the_message_went_out() {
    let vault = VaultDouble::start(vec![Scripted::TooLate]).await;
    let app = spawn_app_with_vault(&vault).await;
    let (ws, conv) = conversation_with_customer_message(&app, ChannelKind::Messenger, PAGE, 60_000).await;
    let m = sent(
        send(&app, &ws, reply(&conv, "k1", human(), "Thanks!"))
            .await
            .unwrap(),
    );
    assert_eq!(m.status, DeliveryStatus::Failed as i32);
    assert_eq!(m.failure_reason, "send_unconfirmed");
    assert!(m.retryable);
    message_in(&app, &ws, &m.id, |x| x.failure_reason == "send_unconfirmed").await;
    // Meta did take it: its echo names our message.
    app.publish_meta(&own_echo(PAGE, "m_late", &m.id, now_ms())).await;
    let got = message_in(&app, &ws, &m.id, |x| {
        x.status == DeliveryStatus::Sent as i32 && x.external_id == "m_late"
    })
    .await;
    assert_eq!(got.messages.len(), 2, "no second copy from the echo");
    assert!(got.messages.iter().all(|x| x.failure_reason.is_empty()));
}

#[tokio::test]
async fn whatsapp_statuses_that_arrive_before_the_answer_are_applied_to_the_message() {
    let vault = VaultDouble::start(vec![Scripted::WhatsAppSent("wamid.OUT1")]).await;
    let app = spawn_app_with_vault(&vault).await;
    let (ws, conv) = conversation_with_customer_message(&app, ChannelKind::Whatsapp, "PHONE_1", 60_000).await;
    // The status for the wamid is already on the bus when Meta's answer is applied.
    app.publish_meta(&wa_status(
        "PHONE_1",
        "wamid.OUT1",
        WhatsAppStatusKind::Delivered,
        now_ms(),
    ))
    .await;
    let m = sent(
        send(&app, &ws, reply(&conv, "k1", human(), "Your order shipped"))
            .await
            .unwrap(),
    );
    let body = vault.body(0);
    assert_eq!(body["type"], "text");
    assert_eq!(body["to"], PSID);
    assert_eq!(body["biz_opaque_callback_data"], own(&m.id));
    message_in(&app, &ws, &m.id, |x| {
        x.status == DeliveryStatus::Delivered as i32 && x.external_id == "wamid.OUT1"
    })
    .await;
}

#[tokio::test]
async fn whatsapp_needs_a_template_outside_the_window() {
    let vault = VaultDouble::start(vec![Scripted::WhatsAppSent("wamid.T1")]).await;
    // Issue 5: the template must be one of the WABA's, approved.
    vault.serve_templates(vec![crate::templates::listed("order_update", "APPROVED")]);
    let app = spawn_app_with_vault(&vault).await;
    let (ws, conv) = crate::templates::whatsapp_conversation(&app, "PHONE_1", 30 * HOUR).await;
    let refused = send(&app, &ws, reply(&conv, "k1", human(), "Free text"))
        .await
        .unwrap();
    assert!(
        matches!(refused.result, Some(send_message_response::Result::Refusal(ref r))
        if r.reason == "template_required" && r.template_required)
    );
    let mut template = reply(&conv, "k2", human(), "");
    template.template = Some(scifer_proto::inbox::v1::TemplateMessage {
        name: "order_update".into(),
        language: "en_US".into(),
        body_parameters: vec!["#77".into()],
    });
    let m = sent(send(&app, &ws, template).await.unwrap());
    assert_eq!(m.status, DeliveryStatus::Sent as i32);
    assert_eq!(vault.body(0)["template"]["name"], "order_update");
    assert_eq!(vault.calls().len(), 1);
}

#[tokio::test]
async fn without_a_vault_credential_sending_is_refused_and_reading_works() {
    let mut app = build_app(30).await;
    app.start();
    let (ws, conv) = conversation_with_customer_message(&app, ChannelKind::Messenger, PAGE, 60_000).await;
    let err = send(&app, &ws, reply(&conv, "k1", human(), "hi"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(app.conversations(&ws).await.len(), 1);
}
