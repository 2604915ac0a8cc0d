//! Who handles a conversation, and Meta's thread control on Messenger/Instagram.
//!
//! A handoff to a human passes the thread to the configured human-inbox app
//! (`THREAD_CONTROL_HUMAN_APP_ID`, e.g. Meta's Page Inbox) and a hand back takes it again, both
//! through token-vault's egress. Without such an app Scifer's own agents are the humans: the
//! change is recorded and no Graph call is made (our app keeps the thread, so our agents can
//! answer). An agent taking over by replying in Scifer never passes the thread for the same reason.
//! Meta's handover events then keep the stored owner and handler true ([`super::routing`]).

use std::{sync::Arc, time::Duration};

use scifer_audit::{Actor, Audit, AuditEmitter, Outcome};
use scifer_automation::{HandlerKind, HandoffEvent, next_handler};
use scifer_proto::{
    events::v1::ChannelKind,
    inbox::v1 as pb,
    tokenvault::v1::{EgressAction, EgressRequest, OnBehalfOf, egress_response},
};
use sea_orm::{DatabaseConnection, EntityTrait};

use super::{domain, state};
use crate::{
    consumer::Engine,
    domain::WorkspaceId,
    error::InboxError,
    store::{
        self,
        entity::{channel, contact, conversation},
    },
    views,
};

use crate::vault::VaultClient;

/// Audit actions of handler changes.
pub use scifer_audit::action::{
    CONVERSATION_HANDED_BACK as HANDED_BACK, CONVERSATION_HANDED_OFF as HANDED_OFF,
};

/// What to ask Meta along with a handler change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadCall {
    /// Pass the thread to the human inbox.
    Pass,
    /// Take it back for our app.
    Take,
    /// Record only.
    None,
}

/// Routing settings (see `crate::config::Config`).
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// Our own Meta app id.
    pub our_app_id: Option<String>,
    /// Where a handoff passes the thread; None: Scifer's agents are the humans, no Graph call.
    pub human_app_id: Option<String>,
}

pub struct Handoff {
    db: DatabaseConnection,
    engine: Arc<Engine>,
    vault: Option<VaultClient>,
    timeout: Duration,
    pub(crate) routing: Routing,
    audit: AuditEmitter,
}

/// Who changed the handler, for the audit log and the vault's record.
#[derive(Debug, Clone)]
pub struct Changer {
    pub audit: Actor,
    /// token-vault's `OnBehalfOf.kind`.
    pub vault_kind: &'static str,
    pub id: String,
    /// The change came through the gateway's HandOff/HandBack: the gateway records it in the
    /// audit log as the signed-in member's action (as it does every member's action), so it is
    /// not recorded again here.
    pub member_call: bool,
}

impl Changer {
    pub fn user(id: &str) -> Self {
        Self {
            audit: Actor::user(id),
            vault_kind: "user",
            id: id.to_string(),
            member_call: false,
        }
    }

    /// A member's HandOff/HandBack call through the gateway.
    pub fn member_call(id: &str) -> Self {
        Self {
            member_call: true,
            ..Self::user(id)
        }
    }

    pub fn rule(id: &str) -> Self {
        Self {
            audit: Actor::automation_rule(id),
            vault_kind: "automation_rule",
            id: id.to_string(),
            member_call: false,
        }
    }

    /// A handoff automation decided without a rule (the customer asked for a person, the AI was
    /// unsure): named by what decided it.
    pub fn system(what: &str) -> Self {
        Self {
            audit: Actor::system(),
            vault_kind: "automation_rule",
            id: what.to_string(),
            member_call: false,
        }
    }
}

impl Handoff {
    pub fn new(
        db: DatabaseConnection,
        engine: Arc<Engine>,
        vault: Option<VaultClient>,
        timeout: Duration,
        routing: Routing,
        audit: AuditEmitter,
    ) -> Self {
        Self {
            db,
            engine,
            vault,
            timeout,
            routing,
            audit,
        }
    }

    /// `HandOff` RPC: an agent puts a person in charge.
    pub async fn hand_off(
        &self,
        ws: &WorkspaceId,
        agent: &str,
        req: pb::HandOffRequest,
    ) -> Result<pb::Conversation, InboxError> {
        let reason = req.reason.trim();
        if reason.chars().count() > domain::MAX_REASON_CHARS {
            return Err(InboxError::Invalid(format!(
                "reason is at most {} characters",
                domain::MAX_REASON_CHARS
            )));
        }
        self.change(
            ws,
            &req.conversation_id,
            HandoffEvent::AgentTookOver,
            &Changer::member_call(agent),
            reason,
            ThreadCall::Pass,
        )
        .await
    }

    /// `HandBack` RPC: automation answers again.
    pub async fn hand_back(
        &self,
        ws: &WorkspaceId,
        agent: &str,
        req: pb::HandBackRequest,
    ) -> Result<pb::Conversation, InboxError> {
        self.change(
            ws,
            &req.conversation_id,
            HandoffEvent::AgentHandedBack,
            &Changer::member_call(agent),
            "handed back",
            ThreadCall::Take,
        )
        .await
    }

    /// Moves the handler by `event` and, on Messenger/Instagram with a human inbox configured,
    /// makes the thread-control `call` first: when Meta refuses, nothing changes and the caller
    /// hears why. The change is announced and audited; an unchanged handler is neither.
    pub async fn change(
        &self,
        ws: &WorkspaceId,
        conversation_id: &str,
        event: HandoffEvent,
        by: &Changer,
        reason: &str,
        call: ThreadCall,
    ) -> Result<pb::Conversation, InboxError> {
        let conv = store::find_conversation(&self.db, ws, conversation_id)
            .await?
            .ok_or(InboxError::ConversationNotFound)?;
        let current = state::load(&self.db, &conv).await?;
        let before = domain::handler_from_i32(current.handler);
        let after = next_handler(before, event);
        let mut owner = current.thread_owner_app_id.clone();
        if before != after
            && let Some(new_owner) = self.thread_control(&conv, call, by, reason).await?
        {
            owner = new_owner;
        }
        let changed = {
            let _writer = self.engine.lock_writes().await;
            let txn = scifer_db::begin_write(&self.db).await?;
            // Re-read under the lock: a handover event may have moved it meanwhile.
            let Some(conv) = store::find_conversation(&txn, ws, conversation_id).await? else {
                return Err(InboxError::ConversationNotFound);
            };
            let mut row = state::load(&txn, &conv).await?;
            let was = domain::handler_from_i32(row.handler);
            let now = next_handler(was, event);
            let changed = was != now || row.thread_owner_app_id != owner;
            if changed {
                let at_ms = self.engine.clock().now_ms();
                row.handler = domain::handler_to_proto(now) as i32;
                row.thread_owner_app_id = owner;
                row.updated_at_ms = at_ms;
                state::save(&txn, row).await?;
                // A handoff is a fact of the inbox analytics, counted in the same transaction:
                // a rule's, the customer's or the AI's, or an agent's HandOff. An agent's mere
                // reply is a takeover, not counted: otherwise every conversation of a workspace
                // without rules would count one.
                let takeover_by_reply = event == HandoffEvent::AgentTookOver && !by.member_call;
                if was != now && now == HandlerKind::Human && !takeover_by_reply {
                    crate::analytics::record_handoff(
                        &txn,
                        ws,
                        &conv.id,
                        &conv.channel_id,
                        &conv.assignee_id,
                        at_ms,
                    )
                    .await?;
                }
            }
            txn.commit().await?;
            changed && was != now
        };
        let mut view = views::conversation(&self.db, ws, &conv).await?;
        state::fill(&self.db, std::slice::from_mut(&mut view)).await?;
        if changed {
            self.engine
                .announce(vec![views::conversation_updated(ws.as_str(), view.clone())])
                .await;
        }
        if changed && !by.member_call {
            let action = match after {
                HandlerKind::Human => HANDED_OFF,
                HandlerKind::Automation => HANDED_BACK,
            };
            self.record(
                ws,
                by.audit.clone(),
                action,
                &conv.id,
                &format!("{event:?}: {reason}"),
            )
            .await;
        }
        Ok(view)
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Publishes a successful action's audit event; a failure is logged (the change stands).
    pub async fn record(
        &self,
        ws: &WorkspaceId,
        actor: Actor,
        action: &str,
        conversation_id: &str,
        detail: &str,
    ) {
        self.record_outcome(ws, actor, action, Outcome::Success, conversation_id, detail)
            .await;
    }

    pub async fn record_outcome(
        &self,
        ws: &WorkspaceId,
        actor: Actor,
        action: &str,
        outcome: Outcome,
        conversation_id: &str,
        detail: &str,
    ) {
        let Ok(workspace) = scifer_ids::WorkspaceId::parse(ws.as_str()) else {
            return;
        };
        let audit = Audit::new(&workspace, actor, action, outcome)
            .target("conversation", conversation_id)
            .detail(detail);
        if let Err(e) = self.audit.emit(audit).await {
            tracing::warn!(error = %e, action, "automation audit event not published");
        }
    }

    /// Makes the thread-control call when it applies; returns the new owner it established.
    async fn thread_control(
        &self,
        conv: &conversation::Model,
        call: ThreadCall,
        by: &Changer,
        reason: &str,
    ) -> Result<Option<String>, InboxError> {
        let Some(human_app) = self.routing.human_app_id.clone() else {
            return Ok(None);
        };
        let (action, new_owner) = match call {
            ThreadCall::None => return Ok(None),
            ThreadCall::Pass => (EgressAction::PassThreadControl, human_app.clone()),
            ThreadCall::Take => (
                EgressAction::TakeThreadControl,
                self.routing.our_app_id.clone().unwrap_or_default(),
            ),
        };
        let Some(ch) = channel::Entity::find_by_id(conv.channel_id.clone())
            .one(&self.db)
            .await?
        else {
            return Err(InboxError::ConversationNotFound);
        };
        match ChannelKind::try_from(ch.kind) {
            Ok(ChannelKind::Messenger | ChannelKind::Instagram) => {}
            // WhatsApp's routing is not settled (reference §4, UNCERTAIN): record only.
            _ => return Ok(None),
        }
        let Some(customer) = contact::Entity::find_by_id(conv.contact_id.clone())
            .one(&self.db)
            .await?
        else {
            return Err(InboxError::ConversationNotFound);
        };
        let mut vault = self.vault.clone().ok_or(InboxError::SendingNotConfigured)?;
        let metadata: String = reason.chars().take(domain::MAX_REASON_CHARS).collect();
        let params = match call {
            ThreadCall::Pass => serde_json::json!({
                "recipient": {"id": customer.external_id},
                "target_app_id": human_app,
                "metadata": metadata,
            }),
            _ => serde_json::json!({
                "recipient": {"id": customer.external_id},
                "metadata": metadata,
            }),
        };
        let mut request = tonic::Request::new(EgressRequest {
            workspace_id: conv.workspace_id.clone(),
            channel_id: ch.id.clone(),
            action: action as i32,
            params_json: params.to_string(),
            actor: Some(OnBehalfOf {
                kind: by.vault_kind.into(),
                id: by.id.clone(),
            }),
        });
        request.set_timeout(self.timeout);
        let answer = tokio::time::timeout(self.timeout, vault.egress(request)).await;
        match answer {
            Ok(Ok(response)) => match response.into_inner().outcome {
                Some(egress_response::Outcome::ResultJson(_)) => Ok(Some(new_owner)),
                Some(egress_response::Outcome::Failure(f)) => {
                    tracing::warn!(code = f.code, subcode = f.subcode, conversation_id = %conv.id, ?call,
                        "Meta refused the thread-control call");
                    Err(InboxError::ThreadControl(format!(
                        "Meta refused the thread-control call (code {})",
                        f.code
                    )))
                }
                None => Err(InboxError::ThreadControl("token-vault answered nothing".into())),
            },
            Ok(Err(status)) => {
                tracing::warn!(code = %status.code(), conversation_id = %conv.id, "thread-control call failed");
                Err(InboxError::ThreadControl(format!(
                    "the thread-control call failed: {}",
                    status.code()
                )))
            }
            Err(_) => Err(InboxError::ThreadControl(
                "token-vault did not answer in time".into(),
            )),
        }
    }
}
