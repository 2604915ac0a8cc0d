//! Sending to a customer: the one send gate decides (Meta's messaging windows, HUMAN_AGENT for
//! humans only, WhatsApp templates outside the window), the message is stored PENDING under the
//! client's idempotency key, token-vault's Graph egress sends it with the channel's token, and
//! Meta's answer is published as an `OutboundResult` MetaEvent. The consumer that applies every
//! webhook applies that answer too, so a message's id, status, echo, receipts and WhatsApp
//! statuses are all written by one writer, in order, whichever arrives first.
//!
//! The Send API call carries our message id back to us (`metadata` on Messenger/Instagram, echoed;
//! `biz_opaque_callback_data` on WhatsApp, in every status): an echo of our own send updates the
//! message instead of adding one, and confirms a send whose answer was lost.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use scifer_events::{Bus, Publisher};
use scifer_proto::{
    events::v1::{self as ev, ChannelKind, MetaEvent, OutboundResult, inbox_event, meta_event},
    inbox::v1::{
        self as pb, AuthorKind, CheckSendRequest, MessageDirection, RetryMessageRequest, SendCheck,
        SendMessageRequest, SendMessageResponse, SendRefusal, send_message_response,
    },
    tokenvault::v1::{
        EgressAction, EgressRequest, OnBehalfOf, egress_response, graph_failure::Kind as FailureKind,
    },
};
use scifer_send_gate::{self as gate, Decision};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Set,
    sea_query::Expr,
};

use crate::{
    convert,
    domain::{
        DeliveryState, WorkspaceId,
        outgoing::{self, Outgoing, QuickReply},
        template::Approval,
    },
    error::InboxError,
    store::entity::{channel, contact, conversation, message},
};

/// The external id of a message until Meta names it.
pub const PLACEHOLDER_PREFIX: &str = "pending:";
/// Our message id as carried through Meta and back.
pub const OWN_METADATA_PREFIX: &str = "scifer:";
/// The failure reason of a send whose answer never came (a timeout, the vault unreachable after
/// the call started): the message may have gone out; its echo or status will say.
pub const UNCONFIRMED: &str = "send_unconfirmed";

pub use crate::vault::SERVICE_NAME;
pub(crate) use crate::vault::VaultClient;

pub struct Sender {
    db: DatabaseConnection,
    vault: Option<VaultClient>,
    timeout: Duration,
    publisher: Publisher,
    bus: Bus,
    policy: gate::Policy,
    /// Issue 5: when a message is sent (tests pin it to script a history), and the template
    /// list a WhatsApp template send is checked against.
    clock: crate::clock::Clock,
    templates: Option<std::sync::Arc<crate::templates::Syncer>>,
}

/// Everything a send needs to know about its conversation.
struct Target {
    conversation: conversation::Model,
    channel: channel::Model,
    contact: contact::Model,
    kind: ChannelKind,
    last_customer_message_at: Option<DateTime<Utc>>,
}

impl Target {
    fn gate_conversation(&self) -> gate::Conversation {
        gate::Conversation {
            channel: gate_channel(self.kind),
            last_customer_message_at: self.last_customer_message_at,
            ad_referral_at: None,
        }
    }
}

fn gate_channel(kind: ChannelKind) -> gate::ChannelKind {
    match kind {
        ChannelKind::Instagram => gate::ChannelKind::Instagram,
        ChannelKind::Whatsapp => gate::ChannelKind::WhatsApp,
        _ => gate::ChannelKind::Messenger,
    }
}

fn outgoing_channel(kind: ChannelKind) -> outgoing::Channel {
    match kind {
        ChannelKind::Instagram => outgoing::Channel::Instagram,
        ChannelKind::Whatsapp => outgoing::Channel::WhatsApp,
        _ => outgoing::Channel::Messenger,
    }
}

fn gate_author(kind: i32) -> Result<gate::AuthorKind, InboxError> {
    match AuthorKind::try_from(kind) {
        Ok(AuthorKind::Human) => Ok(gate::AuthorKind::Human),
        Ok(AuthorKind::Automation) => Ok(gate::AuthorKind::Automation),
        Ok(AuthorKind::Ai) => Ok(gate::AuthorKind::Ai),
        _ => Err(InboxError::Invalid("author.kind is required".into())),
    }
}

fn ts(at: DateTime<Utc>) -> prost_types::Timestamp {
    convert::timestamp(at.timestamp_millis())
}

fn refusal(r: &gate::Refusal) -> SendRefusal {
    SendRefusal {
        reason: r.reason.code().to_string(),
        explanation: r.reason.explain().to_string(),
        last_customer_message_at: r.last_customer_message_at.map(ts),
        human_agent_until: match r.alternative {
            Some(gate::Alternative::HumanAgentUntil(at)) => Some(ts(at)),
            _ => None,
        },
        template_required: matches!(r.alternative, Some(gate::Alternative::Template)),
    }
}

/// How Meta (or the road to it) answered one send.
struct Answer {
    accepted: bool,
    external_id: String,
    error_code: i64,
    error_subcode: i64,
    error_message: String,
    failure_reason: String,
    retryable: bool,
}

impl Answer {
    fn failed(reason: &str, message: impl Into<String>, retryable: bool) -> Self {
        Self {
            accepted: false,
            external_id: String::new(),
            error_code: 0,
            error_subcode: 0,
            error_message: message.into(),
            failure_reason: reason.to_string(),
            retryable,
        }
    }
}

/// The mid or wamid in a Send API answer.
fn sent_id(kind: ChannelKind, body: &serde_json::Value) -> Option<String> {
    let id = match kind {
        ChannelKind::Whatsapp => body["messages"][0]["id"].as_str(),
        _ => body["message_id"].as_str(),
    };
    id.filter(|s| !s.is_empty()).map(str::to_string)
}

impl Sender {
    /// `vault` None (no credential): sending is refused with FAILED_PRECONDITION (reading works).
    pub fn new(
        db: DatabaseConnection,
        publisher: Publisher,
        bus: Bus,
        policy: gate::Policy,
        vault: Option<VaultClient>,
        timeout: Duration,
    ) -> Self {
        if vault.is_none() {
            tracing::warn!("TOKEN_VAULT_CREDENTIAL is unset: sending messages is disabled");
        }
        Self {
            db,
            vault,
            timeout,
            publisher,
            bus,
            policy,
            clock: crate::clock::Clock::system(),
            templates: None,
        }
    }

    // ---- Issue 5: WhatsApp template sync, inbox analytics ----

    /// Stamps sends with `clock` (the engine's, so sends and status changes share one time).
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks WhatsApp template sends against `templates` (which reads a never-synced list first).
    pub fn with_templates(mut self, templates: std::sync::Arc<crate::templates::Syncer>) -> Self {
        self.templates = Some(templates);
        self
    }

    /// The vault client, for the template sync (None when sending is not configured).
    pub(crate) fn vault_client(&self) -> Option<VaultClient> {
        self.vault.clone()
    }

    pub(crate) fn vault_timeout(&self) -> Duration {
        self.timeout
    }

    async fn target(&self, ws: &WorkspaceId, conversation_id: &str) -> Result<Target, InboxError> {
        let conversation = conversation::Entity::find_by_id(conversation_id.to_string())
            .filter(conversation::Column::WorkspaceId.eq(ws.as_str()))
            .one(&self.db)
            .await?
            .ok_or(InboxError::ConversationNotFound)?;
        let channel = channel::Entity::find_by_id(conversation.channel_id.clone())
            .one(&self.db)
            .await?
            .ok_or(InboxError::ConversationNotFound)?;
        let contact = contact::Entity::find_by_id(conversation.contact_id.clone())
            .one(&self.db)
            .await?
            .ok_or(InboxError::ConversationNotFound)?;
        // The window is the customer's, across conversations: their newest message anywhere on
        // this channel.
        let last: Option<i64> = message::Entity::find()
            .select_only()
            .column_as(message::Column::SentAtMs.max(), "last")
            .filter(message::Column::ContactId.eq(contact.id.as_str()))
            .filter(message::Column::Direction.eq(MessageDirection::Inbound as i32))
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
            .flatten();
        let kind = ChannelKind::try_from(channel.kind).unwrap_or(ChannelKind::Unspecified);
        Ok(Target {
            conversation,
            channel,
            contact,
            kind,
            last_customer_message_at: last.and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        })
    }

    /// The composer's question.
    pub async fn check(&self, ws: &WorkspaceId, request: &CheckSendRequest) -> Result<SendCheck, InboxError> {
        let target = self.target(ws, &request.conversation_id).await?;
        let author = gate_author(request.author)?;
        let decision = gate::free_text_status(
            &self.policy,
            &target.gate_conversation(),
            author,
            self.clock.now(),
        );
        Ok(match decision {
            Decision::Allowed(a) => SendCheck {
                allowed: true,
                until: a.window_closes_at.map(ts),
                messaging_type: a
                    .messaging_type
                    .map(|m| match m.as_meta() {
                        (t, Some(tag)) => format!("{t}:{tag}"),
                        (t, None) => t.to_string(),
                    })
                    .unwrap_or_default(),
                refusal: None,
            },
            Decision::Refused(r) => SendCheck {
                allowed: false,
                until: None,
                messaging_type: String::new(),
                refusal: Some(refusal(&r)),
            },
        })
    }

    pub async fn send(
        &self,
        ws: &WorkspaceId,
        request: SendMessageRequest,
    ) -> Result<SendMessageResponse, InboxError> {
        let key = request.idempotency_key.trim().to_string();
        if key.is_empty() || key.len() > 128 {
            return Err(InboxError::Invalid(
                "idempotency_key is required (at most 128 characters)".into(),
            ));
        }
        let author = request
            .author
            .clone()
            .ok_or_else(|| InboxError::Invalid("author is required".into()))?;
        let gate_author = gate_author(author.kind)?;
        // A retried call: the first one's message, sent once.
        if let Some(existing) = self.by_key(ws, &key).await? {
            if existing.conversation_id != request.conversation_id {
                return Err(InboxError::Invalid(
                    "idempotency_key was already used for another conversation".into(),
                ));
            }
            return Ok(replayed_response(&existing));
        }
        let target = self.target(ws, &request.conversation_id).await?;
        let outgoing = Outgoing::compose(
            outgoing_channel(target.kind),
            &request.text,
            request
                .quick_replies
                .iter()
                .map(|q| QuickReply {
                    title: q.title.clone(),
                    payload: q.payload.clone(),
                })
                .collect(),
            request
                .attachments
                .iter()
                .map(|a| {
                    (
                        a.r#type.clone(),
                        a.url.clone(),
                        a.caption.clone(),
                        a.filename.clone(),
                    )
                })
                .collect(),
            request
                .template
                .as_ref()
                .map(|t| (t.name.clone(), t.language.clone(), t.body_parameters.clone())),
        )
        .map_err(|e| InboxError::Invalid(e.to_string()))?;
        let content = match &outgoing {
            // Issue 5: the WABA's templates as last synced (and kept current by Meta's status
            // webhooks) decide; nothing is sent for a template Meta would refuse.
            Outgoing::Template { name, language, .. } if target.kind == ChannelKind::Whatsapp => {
                let approval = match &self.templates {
                    Some(templates) => {
                        templates
                            .approval_for_send(&target.channel.id, name, language)
                            .await?
                    }
                    None => crate::templates::approval(&self.db, &target.channel.id, name, language).await?,
                };
                match approval {
                    Approval::Approved | Approval::Unchecked => gate::Content::Template { approved: true },
                    Approval::NotApproved { .. } => gate::Content::Template { approved: false },
                    Approval::Unknown => {
                        return Ok(SendMessageResponse {
                            result: Some(send_message_response::Result::Refusal(template_unknown(
                                name, language,
                            ))),
                            replayed: false,
                        });
                    }
                }
            }
            // Messenger and Instagram have no templates: the gate refuses them.
            Outgoing::Template { .. } => gate::Content::Template { approved: true },
            _ => gate::Content::FreeForm,
        };
        let intent = if request.proactive {
            gate::Intent::Proactive
        } else {
            gate::Intent::Reply
        };
        let allowed = match self.gate(&target, gate_author, content, intent) {
            Ok(allowed) => allowed,
            Err(refused) => {
                return Ok(SendMessageResponse {
                    result: Some(send_message_response::Result::Refusal(refused)),
                    replayed: false,
                });
            }
        };
        let vault = self.vault.clone().ok_or(InboxError::SendingNotConfigured)?;

        let now = self.clock.now_ms();
        let id = uuid::Uuid::now_v7().to_string();
        let attachments = match &outgoing {
            Outgoing::Attachment {
                kind,
                url,
                caption,
                filename,
            } => serde_json::to_string(&[convert::AttachmentRecord {
                kind: kind.as_str().to_string(),
                url: url.clone(),
                media_id: String::new(),
                mime_type: String::new(),
                caption: caption.clone(),
                filename: filename.clone(),
                ..Default::default()
            }])
            .unwrap_or_else(|_| "[]".into()),
            _ => "[]".into(),
        };
        let row = message::ActiveModel {
            id: Set(id.clone()),
            workspace_id: Set(ws.as_str().to_string()),
            channel_id: Set(target.channel.id.clone()),
            conversation_id: Set(target.conversation.id.clone()),
            contact_id: Set(target.contact.id.clone()),
            external_id: Set(format!("{PLACEHOLDER_PREFIX}{id}")),
            direction: Set(MessageDirection::Outbound as i32),
            text: Set(outgoing.display_text()),
            attachments_json: Set(attachments),
            sent_at_ms: Set(now),
            status: Set(DeliveryState::Pending.to_i32()),
            error_code: Set(0),
            error_message: Set(String::new()),
            is_echo: Set(false),
            reactions_json: Set("[]".into()),
            edited: Set(false),
            edit_seq: Set(0),
            edited_at_ms: Set(0),
            reply_to_external_id: Set(String::new()),
            payload: Set(String::new()),
            created_at_ms: Set(now),
            updated_at_ms: Set(now),
            author_kind: Set(author.kind),
            author_id: Set(author.id.clone()),
            idempotency_key: Set(Some(key.clone())),
            failure_reason: Set(String::new()),
            retryable: Set(false),
            attempt: Set(1),
            reconciled: Set(false),
        };
        let stored = match row.insert(&self.db).await {
            Ok(m) => m,
            // Two calls with one key at once: the other one won; answer with its message.
            Err(e) => match self.by_key(ws, &key).await? {
                Some(existing) => return Ok(replayed_response(&existing)),
                None => return Err(e.into()),
            },
        };
        self.announce_created(&stored).await;
        let messaging = allowed.messaging_type.map(|m| m.as_meta());
        let body = outgoing.body(
            outgoing_channel(target.kind),
            &target.contact.external_id,
            messaging,
            &format!("{OWN_METADATA_PREFIX}{id}"),
        );
        let answered = self.deliver(vault, &target, &stored, &body, &author).await;
        Ok(message_response(&answered))
    }

    pub async fn retry(
        &self,
        ws: &WorkspaceId,
        request: RetryMessageRequest,
    ) -> Result<SendMessageResponse, InboxError> {
        let author = request
            .author
            .ok_or_else(|| InboxError::Invalid("author is required".into()))?;
        let gate_author = gate_author(author.kind)?;
        let stored = message::Entity::find_by_id(request.message_id.clone())
            .filter(message::Column::WorkspaceId.eq(ws.as_str()))
            .one(&self.db)
            .await?
            .ok_or(InboxError::MessageNotFound)?;
        if stored.attempt == 0 || DeliveryState::from_i32(stored.status) != DeliveryState::Failed {
            return Err(InboxError::NotRetryable(
                "only a failed message sent through Scifer can be retried",
            ));
        }
        if !stored.external_id.starts_with(PLACEHOLDER_PREFIX) {
            return Err(InboxError::NotRetryable(
                "Meta accepted this message; it failed on its way",
            ));
        }
        let target = self.target(ws, &stored.conversation_id).await?;
        let attachments: Vec<convert::AttachmentRecord> =
            serde_json::from_str(&stored.attachments_json).unwrap_or_default();
        let template = parse_template_text(&stored.text);
        let outgoing = match (attachments.first(), template) {
            (Some(a), _) => Outgoing::Attachment {
                kind: outgoing::AttachmentKind::parse(&a.kind)
                    .map_err(|e| InboxError::Invalid(e.to_string()))?,
                url: a.url.clone(),
                caption: a.caption.clone(),
                filename: a.filename.clone(),
            },
            (None, Some(_)) => {
                return Err(InboxError::NotRetryable(
                    "send the template again as a new message",
                ));
            }
            (None, None) => Outgoing::Text {
                text: stored.text.clone(),
                quick_replies: Vec::new(),
            },
        };
        let allowed = match self.gate(&target, gate_author, gate::Content::FreeForm, gate::Intent::Reply) {
            Ok(allowed) => allowed,
            Err(refused) => {
                return Ok(SendMessageResponse {
                    result: Some(send_message_response::Result::Refusal(refused)),
                    replayed: false,
                });
            }
        };
        let vault = self.vault.clone().ok_or(InboxError::SendingNotConfigured)?;
        // Back to PENDING for the new attempt, only from FAILED (the consumer never moves a
        // failed message it has not been told about, so this write does not race it).
        let attempt = stored.attempt + 1;
        let reset = message::Entity::update_many()
            .col_expr(
                message::Column::Status,
                Expr::value(DeliveryState::Pending.to_i32()),
            )
            .col_expr(message::Column::Attempt, Expr::value(attempt))
            .col_expr(message::Column::ErrorCode, Expr::value(0))
            .col_expr(message::Column::ErrorMessage, Expr::value(""))
            .col_expr(message::Column::FailureReason, Expr::value(""))
            .col_expr(message::Column::Retryable, Expr::value(false))
            .filter(message::Column::Id.eq(stored.id.as_str()))
            .filter(message::Column::Status.eq(DeliveryState::Failed.to_i32()))
            .exec(&self.db)
            .await?;
        if reset.rows_affected != 1 {
            return Err(InboxError::NotRetryable("the message is being sent already"));
        }
        let pending = message::Model {
            status: DeliveryState::Pending.to_i32(),
            attempt,
            error_code: 0,
            error_message: String::new(),
            failure_reason: String::new(),
            retryable: false,
            ..stored
        };
        let body = outgoing.body(
            outgoing_channel(target.kind),
            &target.contact.external_id,
            allowed.messaging_type.map(|m| m.as_meta()),
            &format!("{OWN_METADATA_PREFIX}{}", pending.id),
        );
        let answered = self.deliver(vault, &target, &pending, &body, &author).await;
        Ok(message_response(&answered))
    }

    /// The send gate's answer for a send now: how to send it, or why not.
    fn gate(
        &self,
        target: &Target,
        author: gate::AuthorKind,
        content: gate::Content,
        intent: gate::Intent,
    ) -> Result<gate::Allowed, SendRefusal> {
        let request = gate::SendRequest {
            author,
            content,
            intent,
        };
        match gate::decide(
            &self.policy,
            &target.gate_conversation(),
            &request,
            self.clock.now(),
        ) {
            Decision::Allowed(a) => Ok(a),
            Decision::Refused(r) => Err(refusal(&r)),
        }
    }

    async fn by_key(&self, ws: &WorkspaceId, key: &str) -> Result<Option<message::Model>, InboxError> {
        Ok(message::Entity::find()
            .filter(message::Column::WorkspaceId.eq(ws.as_str()))
            .filter(message::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?)
    }

    /// Calls the vault, publishes Meta's answer for the consumer and returns the message as that
    /// answer makes it.
    async fn deliver(
        &self,
        mut vault: VaultClient,
        target: &Target,
        stored: &message::Model,
        body: &serde_json::Value,
        author: &pb::Author,
    ) -> message::Model {
        let actor_kind = match AuthorKind::try_from(author.kind) {
            Ok(AuthorKind::Automation) => "automation_rule",
            Ok(AuthorKind::Ai) => "ai",
            _ => "user",
        };
        let mut request = tonic::Request::new(EgressRequest {
            workspace_id: stored.workspace_id.clone(),
            channel_id: target.channel.id.clone(),
            action: EgressAction::SendMessage as i32,
            params_json: body.to_string(),
            actor: Some(OnBehalfOf {
                kind: actor_kind.into(),
                id: author.id.clone(),
            }),
        });
        request.set_timeout(self.timeout);
        let answer = match tokio::time::timeout(self.timeout, vault.egress(request)).await {
            Err(_) => Answer::failed(UNCONFIRMED, "token-vault did not answer in time", true),
            Ok(Err(status)) => match status.code() {
                // Our deadline ran out while the call was under way: Meta may have taken it.
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                    Answer::failed(UNCONFIRMED, "token-vault did not answer in time", true)
                }
                tonic::Code::FailedPrecondition => Answer::failed(
                    "channel_needs_reconnect",
                    format!("the channel needs reconnecting: {}", status.message()),
                    false,
                ),
                tonic::Code::NotFound => {
                    Answer::failed("channel_not_connected", "the channel is not connected", false)
                }
                tonic::Code::Unavailable => Answer::failed(
                    "vault_unavailable",
                    "token-vault is unreachable; nothing was sent",
                    true,
                ),
                code => {
                    tracing::error!(%code, message = %status.message(), "token-vault refused a send");
                    Answer::failed("send_refused_internally", "the send could not be made", false)
                }
            },
            Ok(Ok(response)) => match response.into_inner().outcome {
                Some(egress_response::Outcome::ResultJson(json)) => {
                    let body: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
                    match sent_id(target.kind, &body) {
                        Some(external_id) => Answer {
                            accepted: true,
                            external_id,
                            error_code: 0,
                            error_subcode: 0,
                            error_message: String::new(),
                            failure_reason: String::new(),
                            retryable: false,
                        },
                        None => Answer::failed(UNCONFIRMED, "Meta's answer named no message id", true),
                    }
                }
                Some(egress_response::Outcome::Failure(f)) => {
                    let explained = gate::explain_send_failure(
                        gate_channel(target.kind),
                        f.code,
                        (f.subcode != 0).then_some(f.subcode),
                    );
                    let reason = match FailureKind::try_from(f.kind) {
                        // The vault held the call: nothing reached Meta.
                        Ok(FailureKind::Throttled) if f.code == 0 => "rate_limited",
                        Ok(FailureKind::Transient) if f.code == 0 => "meta_unreachable",
                        _ => explained.code,
                    };
                    Answer {
                        accepted: false,
                        external_id: String::new(),
                        error_code: f.code,
                        error_subcode: f.subcode,
                        error_message: if f.code == 0 {
                            f.message
                        } else {
                            format!("{} ({})", explained.text, f.message)
                        },
                        failure_reason: reason.to_string(),
                        retryable: explained.retryable || f.code == 0,
                    }
                }
                None => Answer::failed(UNCONFIRMED, "token-vault answered nothing", true),
            },
        };
        let result = OutboundResult {
            message_id: stored.id.clone(),
            contact_id: target.contact.external_id.clone(),
            attempt: stored.attempt,
            accepted: answer.accepted,
            external_id: answer.external_id.clone(),
            at_ms: self.clock.now_ms(),
            error_code: answer.error_code,
            error_subcode: answer.error_subcode,
            error_message: answer.error_message.clone(),
            failure_reason: answer.failure_reason.clone(),
            retryable: answer.retryable,
        };
        self.publish_result(target, result).await;
        let mut answered = stored.clone();
        if answer.accepted {
            answered.external_id = answer.external_id;
            answered.status = DeliveryState::Sent.to_i32();
        } else {
            answered.status = DeliveryState::Failed.to_i32();
            answered.error_code = i32::try_from(answer.error_code).unwrap_or(i32::MAX);
            answered.error_message = answer.error_message;
            answered.failure_reason = answer.failure_reason;
            answered.retryable = answer.retryable;
        }
        answered
    }

    /// Hands Meta's answer to the consumer. A few tries: if the bus stays down, the echo (or
    /// the WhatsApp statuses) still name the message and confirm it.
    async fn publish_result(&self, target: &Target, result: OutboundResult) {
        let event_id = format!("outbound:{}:{}", result.message_id, result.attempt);
        let event = MetaEvent {
            event_id: event_id.clone(),
            channel_kind: target.kind as i32,
            account_id: target.channel.account_id.clone(),
            received_at: Some(convert::timestamp(Utc::now().timestamp_millis())),
            kind: Some(meta_event::Kind::OutboundResult(result)),
            ..Default::default()
        };
        let subject = self.bus.meta_event(target.kind, "outbound_result");
        for attempt in 1..=3 {
            match self.publisher.publish(subject.clone(), &event_id, &event).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "cannot publish a send result yet");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
            }
        }
        tracing::error!(
            event_id,
            "send result not published; the message stays pending until its echo or status"
        );
    }

    /// Announces the new PENDING message to live watchers (the consumer announces what follows).
    async fn announce_created(&self, m: &message::Model) {
        let msg_id = format!("inbox.message_created.{}", m.id);
        let mut event = crate::apply::inbox_event(
            m,
            inbox_event::Kind::MessageCreated(ev::MessageCreated {
                message: Some(convert::message(m)),
            }),
        );
        event.event_id = msg_id.clone();
        let subject = self.bus.inbox_event(&m.workspace_id, "message_created");
        if let Err(e) = self.publisher.publish(subject, &msg_id, &event).await {
            tracing::warn!(error = %e, message_id = %m.id, "new message not announced live");
        }
    }
}

/// Issue 5: the refusal of a template the channel's WABA does not have (as last synced).
fn template_unknown(name: &str, language: &str) -> SendRefusal {
    SendRefusal {
        reason: "template_unknown".into(),
        explanation: format!(
            "This WhatsApp number's business account has no template \"{name}\" in {language}; choose one of its templates."
        ),
        last_customer_message_at: None,
        human_agent_until: None,
        template_required: false,
    }
}

fn message_response(m: &message::Model) -> SendMessageResponse {
    SendMessageResponse {
        result: Some(send_message_response::Result::Message(convert::message(m))),
        replayed: false,
    }
}

/// The answer to a call whose idempotency key an earlier call already used: its message.
fn replayed_response(m: &message::Model) -> SendMessageResponse {
    SendMessageResponse {
        replayed: true,
        ..message_response(m)
    }
}

/// A stored template message's text is `[template name...]`.
fn parse_template_text(text: &str) -> Option<&str> {
    text.strip_prefix("[template ").and_then(|t| t.strip_suffix(']'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_sent_id_is_read_where_each_channel_puts_it() {
        assert_eq!(
            sent_id(
                ChannelKind::Messenger,
                &json!({"recipient_id":"1","message_id":"m_1"})
            ),
            Some("m_1".into())
        );
        assert_eq!(
            sent_id(
                ChannelKind::Whatsapp,
                &json!({"messaging_product":"whatsapp","messages":[{"id":"wamid.X"}]})
            ),
            Some("wamid.X".into())
        );
        assert_eq!(
            sent_id(ChannelKind::Instagram, &json!({"recipient_id":"1"})),
            None
        );
    }
}
