//! `scifer.gateway.v1.InboxApi`: what frontends call. The auth layer has checked that the caller is
//! a member of the request's workspace with a role the permission table allows; every RPC acts on
//! the workspace of that membership and names the caller to inbox. Sends and retries are sent as
//! the caller (author HUMAN, their user id) and recorded in the workspace's audit chain.

use futures::{StreamExt, stream::BoxStream};
use scifer_audit::{Actor as AuditActor, Audit, Outcome, action};
use scifer_proto::gateway::v1 as gw;
use scifer_proto::{
    events::v1::InboxEvent,
    gateway::v1::{
        AddNoteRequest, CheckSendRequest, CreateCannedResponseRequest, DeleteCannedResponseRequest,
        GetAssignmentSettingsRequest, GetContactRequest, GetConversationRequest, ListCannedResponsesRequest,
        ListConversationsRequest, MarkReadRequest, MergeContactsRequest, RenderCannedResponseRequest,
        RetryMessageRequest, SearchMessagesRequest, SendMessageRequest, SetAgentAvailabilityRequest,
        SetTypingRequest, SetTypingResponse, SuggestReplyRequest, UpdateAssignmentSettingsRequest,
        UpdateCannedResponseRequest, UpdateContactRequest, UpdateConversationRequest, UpdateLabelsRequest,
        WatchInboxRequest, inbox_api_server,
    },
    inbox::v1::{
        self as inbox, AgentAvailability, AssignmentSettings, CannedResponse, ContactProfile, Conversation,
        DeleteCannedResponseResponse, DeliveryStatus, GetConversationResponse, ListCannedResponsesResponse,
        ListConversationsResponse, MarkReadResponse, Message, RenderCannedResponseResponse,
        SearchMessagesResponse, SendCheck, SendMessageResponse, SuggestReplyResponse, send_message_response,
    },
};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use std::sync::Arc;

use crate::{
    audit::{ACCESS_DENIED, AI_SUGGESTED, Auditor},
    auth::{Actor, Authenticator},
    domain::{Invalid, Role, WatchScope, timestamp, typing_event},
    error::GatewayError,
    inbox::InboxClient,
    store,
    watch::{Check, Watcher},
};

pub struct InboxApi {
    inbox: InboxClient,
    watcher: Watcher,
    /// Re-checks a watcher's session and membership while its stream is open.
    auth: Arc<Authenticator>,
    auditor: Auditor,
    /// Memberships (who a conversation may be assigned to) and the caller's name.
    db: DatabaseConnection,
}

impl InboxApi {
    pub fn new(
        inbox: InboxClient,
        watcher: Watcher,
        auth: Arc<Authenticator>,
        auditor: Auditor,
        db: DatabaseConnection,
    ) -> Self {
        Self {
            inbox,
            watcher,
            auth,
            auditor,
            db,
        }
    }

    /// Refuses what the caller's role does not allow in this request (the permission table
    /// allowed the call itself), recorded like the auth layer's refusals.
    async fn deny(&self, actor: &Actor, rpc: &str, message: &'static str) -> Result<(), GatewayError> {
        let membership = actor.membership()?;
        let audit = Audit::new(
            &membership.workspace,
            AuditActor::user(&actor.user_id),
            ACCESS_DENIED,
            Outcome::Denied,
        )
        .target("rpc", format!("/scifer.gateway.v1.InboxApi/{rpc}"))
        .detail(format!("role {}; {message}", membership.role.as_str()));
        self.auditor.record(audit).await;
        Err(GatewayError::PermissionDenied(message))
    }

    /// Whether `user_id` may be given conversations in the caller's workspace: a member with the
    /// agent role or above. Anything else is the caller's mistake, said without telling members
    /// from strangers.
    async fn check_assignable(&self, actor: &Actor, user_id: &str) -> Result<(), GatewayError> {
        let workspace = &actor.membership()?.workspace;
        let membership = store::find_membership(&self.db, workspace.as_str(), user_id).await?;
        let role = membership.and_then(|m| Role::from_stored(&m.role));
        if role.is_some_and(|r| r >= Role::Agent) {
            Ok(())
        } else {
            Err(GatewayError::Invalid(Invalid(
                "the assignee must be a member of this workspace with the agent role or above",
            )))
        }
    }

    /// Records a send or retry in the workspace's chain, when it produced a message (see
    /// [`sent`]).
    async fn record_sent(&self, actor: &Actor, response: &SendMessageResponse) -> Result<(), Status> {
        let Some(sent) = sent(response) else {
            return Ok(());
        };
        let workspace = &actor.membership()?.workspace;
        let audit = Audit::new(
            workspace,
            AuditActor::user(&actor.user_id),
            action::MESSAGE_SENT,
            sent.outcome,
        )
        .target("message", sent.message_id)
        .detail(sent.detail);
        self.auditor.record(audit).await;
        Ok(())
    }
}

/// What `message.sent` records of a send or retry.
#[derive(Debug, PartialEq, Eq)]
struct Sent<'a> {
    message_id: &'a str,
    outcome: Outcome,
    detail: &'a str,
}

/// The record of an answer that is a message: a success unless Meta's answer left it FAILED (the
/// detail is then inbox's reason code, e.g. `recipient_unavailable`). None for a refusal: the send
/// gate sent nothing, and the log keeps to actions that reached Meta. None too for an answer
/// replayed for a repeated idempotency key: the first call's record stands for the one send.
fn sent(response: &SendMessageResponse) -> Option<Sent<'_>> {
    if response.replayed {
        return None;
    }
    let message = match &response.result {
        Some(send_message_response::Result::Message(message)) => message,
        Some(send_message_response::Result::Refusal(_)) | None => return None,
    };
    Some(if message.status() == DeliveryStatus::Failed {
        Sent {
            message_id: &message.id,
            outcome: Outcome::Failure,
            detail: &message.failure_reason,
        }
    } else {
        Sent {
            message_id: &message.id,
            outcome: Outcome::Success,
            detail: "",
        }
    })
}

#[tonic::async_trait]
impl inbox_api_server::InboxApi for InboxApi {
    async fn list_conversations(
        &self,
        request: Request<ListConversationsRequest>,
    ) -> Result<Response<ListConversationsResponse>, Status> {
        let actor = Actor::of(&request)?;
        // An absent query means inbox's defaults (first page, every channel and status).
        let query = request.into_inner().query.unwrap_or_default();
        let response = self.inbox.list_conversations(&actor, query).await?;
        Ok(Response::new(response))
    }

    async fn get_conversation(
        &self,
        request: Request<GetConversationRequest>,
    ) -> Result<Response<GetConversationResponse>, Status> {
        let actor = Actor::of(&request)?;
        // Inbox validates the query (a missing conversation id is its INVALID_ARGUMENT).
        let query = request.into_inner().query.unwrap_or_default();
        let response = self.inbox.get_conversation(&actor, query).await?;
        Ok(Response::new(response))
    }

    type WatchInboxStream = BoxStream<'static, Result<InboxEvent, Status>>;

    async fn watch_inbox(
        &self,
        request: Request<WatchInboxRequest>,
    ) -> Result<Response<Self::WatchInboxStream>, Status> {
        let actor = Actor::of(&request)?;
        let workspace = actor.membership()?.workspace.clone();
        let scope = WatchScope::new(actor.user_id.clone(), &request.get_ref().conversation_id);
        let auth = self.auth.clone();
        let check: Check = Box::new(move || {
            let (auth, actor) = (auth.clone(), actor.clone());
            Box::pin(async move { auth.still_allowed(&actor).await })
        });
        let events = self.watcher.watch(&workspace, scope, check).await?;
        Ok(Response::new(
            events.map(|item| item.map_err(Status::from)).boxed(),
        ))
    }

    async fn set_typing(
        &self,
        request: Request<SetTypingRequest>,
    ) -> Result<Response<SetTypingResponse>, Status> {
        let actor = Actor::of(&request)?;
        let workspace = actor.membership()?.workspace.clone();
        let req = request.into_inner();
        let (event, expires_at) = typing_event(
            workspace.as_str(),
            &req.conversation_id,
            &actor.user_id,
            req.typing,
            chrono::Utc::now(),
        )
        .map_err(GatewayError::from)?;
        self.watcher.publish_live("typing", &event).await?;
        Ok(Response::new(SetTypingResponse {
            expires_at: Some(timestamp(expires_at)),
        }))
    }

    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let actor = Actor::of(&request)?;
        // Inbox validates the message (a missing one lacks its conversation id and idempotency
        // key: its INVALID_ARGUMENT). [`InboxClient`] replaces the author with the caller.
        let message = request.into_inner().message.unwrap_or_default();
        let response = self.inbox.send_message(&actor, message).await?;
        self.record_sent(&actor, &response).await?;
        Ok(Response::new(response))
    }

    async fn check_send(&self, request: Request<CheckSendRequest>) -> Result<Response<SendCheck>, Status> {
        let actor = Actor::of(&request)?;
        let query = inbox::CheckSendRequest {
            conversation_id: request.into_inner().conversation_id,
            // Set by [`InboxClient`] from the caller.
            author: inbox::AuthorKind::Unspecified as i32,
        };
        Ok(Response::new(self.inbox.check_send(&actor, query).await?))
    }

    async fn retry_message(
        &self,
        request: Request<RetryMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let actor = Actor::of(&request)?;
        let retry = inbox::RetryMessageRequest {
            message_id: request.into_inner().message_id,
            // Set by [`InboxClient`] from the caller.
            author: None,
        };
        let response = self.inbox.retry_message(&actor, retry).await?;
        self.record_sent(&actor, &response).await?;
        Ok(Response::new(response))
    }

    async fn update_conversation(
        &self,
        request: Request<UpdateConversationRequest>,
    ) -> Result<Response<Conversation>, Status> {
        let actor = Actor::of(&request)?;
        let role = actor.membership()?.role;
        let mut update = request.into_inner().update.unwrap_or_default();
        let other = update
            .assignee_id
            .as_deref()
            .filter(|a| !a.is_empty() && *a != actor.user_id)
            .map(str::to_string);
        if role >= Role::Admin {
            update.assignee_guard = String::new();
            if let Some(other) = &other {
                self.check_assignable(&actor, other).await?;
            }
        } else {
            if other.is_some() {
                self.deny(
                    &actor,
                    "UpdateConversation",
                    "assigning another member is for admins",
                )
                .await?;
            }
            if update.team_id.is_some() {
                self.deny(&actor, "UpdateConversation", "assigning a team is for admins")
                    .await?;
            }
            // Inbox lets them take an unassigned conversation or release their own, nothing more.
            update.assignee_guard = actor.user_id.clone();
        }
        Ok(Response::new(
            self.inbox.update_conversation(&actor, update).await?,
        ))
    }

    async fn get_assignment_settings(
        &self,
        request: Request<GetAssignmentSettingsRequest>,
    ) -> Result<Response<AssignmentSettings>, Status> {
        let actor = Actor::of(&request)?;
        Ok(Response::new(self.inbox.get_assignment_settings(&actor).await?))
    }

    async fn update_assignment_settings(
        &self,
        request: Request<UpdateAssignmentSettingsRequest>,
    ) -> Result<Response<AssignmentSettings>, Status> {
        let actor = Actor::of(&request)?;
        let settings = request.into_inner().settings.unwrap_or_default();
        Ok(Response::new(
            self.inbox.update_assignment_settings(&actor, settings).await?,
        ))
    }

    async fn set_agent_availability(
        &self,
        request: Request<SetAgentAvailabilityRequest>,
    ) -> Result<Response<AgentAvailability>, Status> {
        let actor = Actor::of(&request)?;
        let req = request.into_inner();
        let agent_id = if req.agent_id.is_empty() || req.agent_id == actor.user_id {
            actor.user_id.clone()
        } else {
            if actor.membership()?.role < Role::Admin {
                self.deny(
                    &actor,
                    "SetAgentAvailability",
                    "setting another member's availability is for admins",
                )
                .await?;
            }
            self.check_assignable(&actor, &req.agent_id).await?;
            req.agent_id
        };
        let availability = inbox::SetAgentAvailabilityRequest {
            agent_id,
            available: req.available,
        };
        Ok(Response::new(
            self.inbox.set_agent_availability(&actor, availability).await?,
        ))
    }

    async fn update_labels(
        &self,
        request: Request<UpdateLabelsRequest>,
    ) -> Result<Response<Conversation>, Status> {
        let actor = Actor::of(&request)?;
        let labels = request.into_inner().labels.unwrap_or_default();
        Ok(Response::new(self.inbox.update_labels(&actor, labels).await?))
    }

    async fn add_note(&self, request: Request<AddNoteRequest>) -> Result<Response<Message>, Status> {
        let actor = Actor::of(&request)?;
        let note = request.into_inner().note.unwrap_or_default();
        Ok(Response::new(self.inbox.add_note(&actor, note).await?))
    }

    async fn list_canned_responses(
        &self,
        request: Request<ListCannedResponsesRequest>,
    ) -> Result<Response<ListCannedResponsesResponse>, Status> {
        let actor = Actor::of(&request)?;
        let query = inbox::ListCannedResponsesRequest {
            query: request.into_inner().query,
        };
        Ok(Response::new(
            self.inbox.list_canned_responses(&actor, query).await?,
        ))
    }

    async fn create_canned_response(
        &self,
        request: Request<CreateCannedResponseRequest>,
    ) -> Result<Response<CannedResponse>, Status> {
        let actor = Actor::of(&request)?;
        let canned = request.into_inner().canned_response.unwrap_or_default();
        Ok(Response::new(
            self.inbox.create_canned_response(&actor, canned).await?,
        ))
    }

    async fn update_canned_response(
        &self,
        request: Request<UpdateCannedResponseRequest>,
    ) -> Result<Response<CannedResponse>, Status> {
        let actor = Actor::of(&request)?;
        let canned = request.into_inner().canned_response.unwrap_or_default();
        Ok(Response::new(
            self.inbox.update_canned_response(&actor, canned).await?,
        ))
    }

    async fn delete_canned_response(
        &self,
        request: Request<DeleteCannedResponseRequest>,
    ) -> Result<Response<DeleteCannedResponseResponse>, Status> {
        let actor = Actor::of(&request)?;
        let canned = inbox::DeleteCannedResponseRequest {
            id: request.into_inner().id,
        };
        Ok(Response::new(
            self.inbox.delete_canned_response(&actor, canned).await?,
        ))
    }

    /// Renders with the caller's display name as `{{agent.name}}`.
    async fn render_canned_response(
        &self,
        request: Request<RenderCannedResponseRequest>,
    ) -> Result<Response<RenderCannedResponseResponse>, Status> {
        let actor = Actor::of(&request)?;
        let req = request.into_inner();
        let agent_name = store::find_user(&self.db, &actor.user_id)
            .await
            .map_err(GatewayError::from)?
            .map(|u| u.name)
            .unwrap_or_default();
        let render = inbox::RenderCannedResponseRequest {
            canned_response_id: req.canned_response_id,
            conversation_id: req.conversation_id,
            agent_name,
        };
        Ok(Response::new(
            self.inbox.render_canned_response(&actor, render).await?,
        ))
    }

    async fn mark_read(
        &self,
        request: Request<MarkReadRequest>,
    ) -> Result<Response<MarkReadResponse>, Status> {
        let actor = Actor::of(&request)?;
        let req = request.into_inner();
        let mark = inbox::MarkReadRequest {
            conversation_id: req.conversation_id,
            up_to_message_id: req.up_to_message_id,
        };
        Ok(Response::new(self.inbox.mark_read(&actor, mark).await?))
    }

    async fn search_messages(
        &self,
        request: Request<SearchMessagesRequest>,
    ) -> Result<Response<SearchMessagesResponse>, Status> {
        let actor = Actor::of(&request)?;
        let req = request.into_inner();
        let query = inbox::SearchMessagesRequest {
            query: req.query,
            limit: req.limit,
        };
        Ok(Response::new(self.inbox.search_messages(&actor, query).await?))
    }

    // --- History, gaps and media ---

    async fn get_channel_sync(
        &self,
        request: Request<scifer_proto::gateway::v1::GetChannelSyncRequest>,
    ) -> Result<Response<inbox::ChannelSync>, Status> {
        let actor = Actor::of(&request)?;
        let get = inbox::GetChannelSyncRequest {
            channel_id: request.into_inner().channel_id,
        };
        Ok(Response::new(self.inbox.get_channel_sync(&actor, get).await?))
    }

    type GetMediaStream = BoxStream<'static, Result<inbox::MediaChunk, Status>>;

    async fn get_media(
        &self,
        request: Request<scifer_proto::gateway::v1::GetMediaRequest>,
    ) -> Result<Response<Self::GetMediaStream>, Status> {
        let actor = Actor::of(&request)?;
        let req = request.into_inner();
        let get = inbox::GetMediaRequest {
            message_id: req.message_id,
            attachment_index: req.attachment_index,
        };
        // inbox's chunks pass through as they come; its errors are already fit for callers.
        Ok(Response::new(self.inbox.get_media(&actor, get).await?.boxed()))
    }

    async fn get_contact(
        &self,
        request: Request<GetContactRequest>,
    ) -> Result<Response<ContactProfile>, Status> {
        let actor = Actor::of(&request)?;
        let get = inbox::GetContactRequest {
            contact_id: request.into_inner().contact_id,
        };
        Ok(Response::new(self.inbox.get_contact(&actor, get).await?))
    }

    async fn update_contact(
        &self,
        request: Request<UpdateContactRequest>,
    ) -> Result<Response<ContactProfile>, Status> {
        let actor = Actor::of(&request)?;
        let update = request.into_inner().contact.unwrap_or_default();
        Ok(Response::new(self.inbox.update_contact(&actor, update).await?))
    }

    async fn merge_contacts(
        &self,
        request: Request<MergeContactsRequest>,
    ) -> Result<Response<ContactProfile>, Status> {
        let actor = Actor::of(&request)?;
        let req = request.into_inner();
        let merge = inbox::MergeContactsRequest {
            contact_id: req.contact_id,
            other_contact_id: req.other_contact_id,
        };
        Ok(Response::new(self.inbox.merge_contacts(&actor, merge).await?))
    }

    async fn suggest_reply(
        &self,
        request: Request<SuggestReplyRequest>,
    ) -> Result<Response<SuggestReplyResponse>, Status> {
        let actor = Actor::of(&request)?;
        let conversation_id = request.into_inner().conversation_id;
        let suggest = inbox::SuggestReplyRequest {
            conversation_id: conversation_id.clone(),
        };
        let answer = self.inbox.suggest_reply(&actor, suggest).await;
        if let Some((outcome, detail)) = suggested(&answer) {
            let workspace = &actor.membership()?.workspace;
            let audit = Audit::new(workspace, AuditActor::user(&actor.user_id), AI_SUGGESTED, outcome)
                .target("conversation", conversation_id)
                .detail(detail);
            self.auditor.record(audit).await;
        }
        Ok(Response::new(answer?))
    }

    // Automation and handoff (issue 5).
    async fn list_rules(
        &self,
        request: Request<gw::ListRulesRequest>,
    ) -> Result<Response<inbox::ListRulesResponse>, Status> {
        Ok(Response::new(self.list_rules_(request).await?))
    }

    async fn create_rule(
        &self,
        request: Request<gw::CreateRuleRequest>,
    ) -> Result<Response<inbox::AutomationRule>, Status> {
        Ok(Response::new(self.create_rule_(request).await?))
    }

    async fn update_rule(
        &self,
        request: Request<gw::UpdateRuleRequest>,
    ) -> Result<Response<inbox::AutomationRule>, Status> {
        Ok(Response::new(self.update_rule_(request).await?))
    }

    async fn delete_rule(
        &self,
        request: Request<gw::DeleteRuleRequest>,
    ) -> Result<Response<inbox::DeleteRuleResponse>, Status> {
        Ok(Response::new(self.delete_rule_(request).await?))
    }

    async fn get_automation_settings(
        &self,
        request: Request<gw::GetAutomationSettingsRequest>,
    ) -> Result<Response<inbox::AutomationSettings>, Status> {
        let actor = Actor::of(&request)?;
        Ok(Response::new(self.inbox.get_automation_settings(&actor).await?))
    }

    async fn update_automation_settings(
        &self,
        request: Request<gw::UpdateAutomationSettingsRequest>,
    ) -> Result<Response<inbox::AutomationSettings>, Status> {
        Ok(Response::new(self.update_automation_settings_(request).await?))
    }

    async fn hand_off(&self, request: Request<gw::HandOffRequest>) -> Result<Response<Conversation>, Status> {
        Ok(Response::new(self.hand_off_(request).await?))
    }

    async fn hand_back(
        &self,
        request: Request<gw::HandBackRequest>,
    ) -> Result<Response<Conversation>, Status> {
        Ok(Response::new(self.hand_back_(request).await?))
    }

    // ---- Issue 5: WhatsApp template sync, inbox analytics ----

    async fn list_templates(
        &self,
        request: Request<scifer_proto::gateway::v1::ListTemplatesRequest>,
    ) -> Result<Response<inbox::ListTemplatesResponse>, Status> {
        let actor = Actor::of(&request)?;
        let list = inbox::ListTemplatesRequest {
            channel_id: request.into_inner().channel_id,
        };
        Ok(Response::new(self.inbox.list_templates(&actor, list).await?))
    }

    async fn get_inbox_analytics(
        &self,
        request: Request<scifer_proto::gateway::v1::GetInboxAnalyticsRequest>,
    ) -> Result<Response<inbox::GetInboxAnalyticsResponse>, Status> {
        let actor = Actor::of(&request)?;
        let req = request.into_inner();
        let query = inbox::GetInboxAnalyticsRequest {
            from_day: req.from_day,
            to_day: req.to_day,
            time_zone: req.time_zone,
            group_by: req.group_by,
        };
        Ok(Response::new(
            self.inbox.get_inbox_analytics(&actor, query).await?,
        ))
    }
}

// Automation and handoff (issue 5).
impl InboxApi {
    /// Records a privileged automation change by the caller.
    async fn audit_automation(
        &self,
        actor: &Actor,
        action: &str,
        kind: &str,
        id: &str,
        detail: String,
    ) -> Result<(), Status> {
        let workspace = &actor.membership()?.workspace;
        let audit = Audit::new(
            workspace,
            AuditActor::user(&actor.user_id),
            action,
            Outcome::Success,
        )
        .target(kind, id)
        .detail(detail);
        self.auditor.record(audit).await;
        Ok(())
    }

    async fn list_rules_(
        &self,
        request: Request<gw::ListRulesRequest>,
    ) -> Result<inbox::ListRulesResponse, Status> {
        let actor = Actor::of(&request)?;
        Ok(self.inbox.list_rules(&actor).await?)
    }

    async fn create_rule_(
        &self,
        request: Request<gw::CreateRuleRequest>,
    ) -> Result<inbox::AutomationRule, Status> {
        let actor = Actor::of(&request)?;
        let rule = request.into_inner().rule.unwrap_or_default();
        let created = self.inbox.create_rule(&actor, rule).await?;
        self.audit_automation(
            &actor,
            RULE_CREATED,
            "automation_rule",
            &created.id,
            String::new(),
        )
        .await?;
        Ok(created)
    }

    async fn update_rule_(
        &self,
        request: Request<gw::UpdateRuleRequest>,
    ) -> Result<inbox::AutomationRule, Status> {
        let actor = Actor::of(&request)?;
        let rule = request.into_inner().rule.unwrap_or_default();
        let updated = self.inbox.update_rule(&actor, rule).await?;
        self.audit_automation(
            &actor,
            RULE_UPDATED,
            "automation_rule",
            &updated.id,
            String::new(),
        )
        .await?;
        Ok(updated)
    }

    async fn delete_rule_(
        &self,
        request: Request<gw::DeleteRuleRequest>,
    ) -> Result<inbox::DeleteRuleResponse, Status> {
        let actor = Actor::of(&request)?;
        let id = request.into_inner().id;
        let deleted = self
            .inbox
            .delete_rule(&actor, inbox::DeleteRuleRequest { id: id.clone() })
            .await?;
        self.audit_automation(&actor, RULE_DELETED, "automation_rule", &id, String::new())
            .await?;
        Ok(deleted)
    }

    async fn update_automation_settings_(
        &self,
        request: Request<gw::UpdateAutomationSettingsRequest>,
    ) -> Result<inbox::AutomationSettings, Status> {
        let actor = Actor::of(&request)?;
        let settings = request.into_inner().settings.unwrap_or_default();
        let rotated = settings.rotate_webhook_secret;
        let updated = self.inbox.update_automation_settings(&actor, settings).await?;
        let workspace = actor.membership()?.workspace.to_string();
        // Never the secret itself.
        let detail = if rotated { "webhook secret rotated" } else { "" };
        self.audit_automation(&actor, SETTINGS_UPDATED, "workspace", &workspace, detail.into())
            .await?;
        Ok(updated)
    }

    async fn hand_off_(&self, request: Request<gw::HandOffRequest>) -> Result<Conversation, Status> {
        let actor = Actor::of(&request)?;
        let handoff = request.into_inner().handoff.unwrap_or_default();
        let reason = handoff.reason.clone();
        let conversation = self.inbox.hand_off(&actor, handoff).await?;
        self.audit_automation(&actor, HANDED_OFF, "conversation", &conversation.id, reason)
            .await?;
        Ok(conversation)
    }

    async fn hand_back_(&self, request: Request<gw::HandBackRequest>) -> Result<Conversation, Status> {
        let actor = Actor::of(&request)?;
        let back = inbox::HandBackRequest {
            conversation_id: request.into_inner().conversation_id,
        };
        let conversation = self.inbox.hand_back(&actor, back).await?;
        self.audit_automation(
            &actor,
            HANDED_BACK,
            "conversation",
            &conversation.id,
            String::new(),
        )
        .await?;
        Ok(conversation)
    }
}

use scifer_audit::action::{
    AUTOMATION_RULE_CREATED as RULE_CREATED, AUTOMATION_RULE_DELETED as RULE_DELETED,
    AUTOMATION_RULE_UPDATED as RULE_UPDATED, AUTOMATION_SETTINGS_UPDATED as SETTINGS_UPDATED,
    CONVERSATION_HANDED_BACK as HANDED_BACK, CONVERSATION_HANDED_OFF as HANDED_OFF,
};

/// What `ai.suggested` records of a suggestion: a success with the model and its reading, or a
/// failure when inbox asked the provider and got nothing usable (UNAVAILABLE, INTERNAL) or did
/// not answer in time. None when nothing reached a provider (none configured, an unknown
/// conversation).
fn suggested(answer: &Result<SuggestReplyResponse, GatewayError>) -> Option<(Outcome, String)> {
    match answer {
        Ok(s) => Some((
            Outcome::Success,
            format!(
                "model {}; confidence {:.2}; wants_human {}",
                s.model, s.confidence, s.wants_human
            ),
        )),
        Err(GatewayError::InboxRejected(status)) => match status.code() {
            tonic::Code::Unavailable => Some((Outcome::Failure, "provider unavailable".into())),
            tonic::Code::Internal => Some((Outcome::Failure, "provider refused".into())),
            _ => None,
        },
        Err(GatewayError::InboxTimeout(_)) => Some((Outcome::Failure, "no answer in time".into())),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(message: inbox::Message) -> SendMessageResponse {
        SendMessageResponse {
            result: Some(send_message_response::Result::Message(message)),
            replayed: false,
        }
    }

    #[test]
    fn a_sent_or_pending_message_is_a_success_on_the_message() {
        for status in [DeliveryStatus::Sent, DeliveryStatus::Pending] {
            let response = answer(inbox::Message {
                id: "m-1".into(),
                status: status as i32,
                ..Default::default()
            });
            let want = Sent {
                message_id: "m-1",
                outcome: Outcome::Success,
                detail: "",
            };
            assert_eq!(sent(&response), Some(want), "{status:?}");
        }
    }

    #[test]
    fn a_failed_message_is_a_failure_with_inboxs_reason() {
        let response = answer(inbox::Message {
            id: "m-1".into(),
            status: DeliveryStatus::Failed as i32,
            failure_reason: "recipient_unavailable".into(),
            error_message: "(#551) This person isn't available right now.".into(),
            ..Default::default()
        });
        let want = Sent {
            message_id: "m-1",
            outcome: Outcome::Failure,
            detail: "recipient_unavailable",
        };
        assert_eq!(sent(&response), Some(want));
    }

    #[test]
    fn a_suggestion_is_recorded_when_a_provider_was_asked() {
        let ok = Ok(SuggestReplyResponse {
            text: "We open at 8.".into(),
            confidence: 0.5,
            wants_human: true,
            model: "m".into(),
            truncated: false,
        });
        assert_eq!(
            suggested(&ok),
            Some((
                Outcome::Success,
                "model m; confidence 0.50; wants_human true".into()
            ))
        );
        let failed = |status| suggested(&Err(GatewayError::InboxRejected(status))).map(|(o, _)| o);
        assert_eq!(failed(Status::unavailable("x")), Some(Outcome::Failure));
        assert_eq!(failed(Status::internal("x")), Some(Outcome::Failure));
        assert_eq!(
            suggested(&Err(GatewayError::InboxTimeout(std::time::Duration::from_secs(
                1
            ))))
            .map(|(o, _)| o),
            Some(Outcome::Failure)
        );
        for nothing_asked in [
            Status::failed_precondition("AI suggestions are not configured"),
            Status::not_found("conversation not found"),
        ] {
            assert_eq!(failed(nothing_asked), None);
        }
    }

    #[test]
    fn a_refusal_or_an_empty_answer_is_not_recorded() {
        let refused = SendMessageResponse {
            result: Some(send_message_response::Result::Refusal(inbox::SendRefusal {
                reason: "window_closed".into(),
                ..Default::default()
            })),
            replayed: false,
        };
        assert_eq!(sent(&refused), None);
        assert_eq!(sent(&SendMessageResponse::default()), None);
    }

    #[test]
    fn a_replayed_answer_is_not_recorded_again() {
        let first = answer(inbox::Message {
            id: "m1".into(),
            status: DeliveryStatus::Sent as i32,
            ..Default::default()
        });
        assert!(sent(&first).is_some());
        let replayed = SendMessageResponse {
            replayed: true,
            ..first
        };
        assert_eq!(sent(&replayed), None);
    }
}
