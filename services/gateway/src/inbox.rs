//! The gateway's client of the internal inbox service. The gateway never reads inbox's store; it
//! forwards each call with the authenticated workspace and actor in metadata (inbox takes them only
//! from there) and the caller's trace context. Sends and retries name the actor as the message's
//! author too, overwriting whatever the client wrote there.

use std::{future::Future, time::Duration};

use scifer_proto::inbox::v1::{
    AddNoteRequest, AgentAvailability, AssignmentSettings, Author, AuthorKind, CannedResponse,
    CheckSendRequest, ContactProfile, Conversation, CreateCannedResponseRequest, DeleteCannedResponseRequest,
    DeleteCannedResponseResponse, GetAssignmentSettingsRequest, GetContactRequest, GetConversationRequest,
    GetConversationResponse, ListCannedResponsesRequest, ListCannedResponsesResponse,
    ListConversationsRequest, ListConversationsResponse, MarkReadRequest, MarkReadResponse,
    MergeContactsRequest, Message, RenderCannedResponseRequest, RenderCannedResponseResponse,
    RetryMessageRequest, SearchMessagesRequest, SearchMessagesResponse, SendCheck, SendMessageRequest,
    SendMessageResponse, SetAgentAvailabilityRequest, SuggestReplyRequest, SuggestReplyResponse,
    UpdateAssignmentSettingsRequest, UpdateCannedResponseRequest, UpdateContactRequest,
    UpdateConversationRequest, UpdateLabelsRequest, inbox_service_client::InboxServiceClient,
};
use tonic::{
    Request, Status,
    metadata::MetadataValue,
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

use crate::{
    auth::Actor,
    error::GatewayError,
    upstream::{self, Failure},
};

/// Metadata key inbox reads the workspace from.
pub const WORKSPACE_METADATA: &str = "x-scifer-workspace-id";
/// Metadata key naming who acts, e.g. `user:<id>`.
pub const ACTOR_METADATA: &str = "x-scifer-actor";

type Interceptor = fn(Request<()>) -> Result<Request<()>, Status>;

#[derive(Clone)]
pub struct InboxClient {
    client: InboxServiceClient<InterceptedService<Channel, Interceptor>>,
    /// Reads, and connecting.
    timeout: Duration,
    /// Sends and retries: inbox answers them only once Meta has, through token-vault.
    send_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("INBOX_URL {url:?} is not a valid URL: {reason}")]
pub struct InvalidInboxUrl {
    url: String,
    reason: String,
}

impl InboxClient {
    /// A client whose channel connects on first use (and reconnects after failures), so the
    /// gateway starts and answers health checks while inbox is still down. `timeout` bounds
    /// connecting and each read (CheckSend included: inbox answers it from its own store);
    /// `send_timeout` bounds SendMessage and RetryMessage, which wait for Meta.
    pub fn new(url: &str, timeout: Duration, send_timeout: Duration) -> Result<Self, InvalidInboxUrl> {
        let endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| InvalidInboxUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let channel = endpoint.connect_timeout(timeout).connect_lazy();
        let interceptor: Interceptor = scifer_plumbing::grpc::propagate_trace;
        Ok(Self {
            client: InboxServiceClient::with_interceptor(channel, interceptor),
            timeout,
            send_timeout,
        })
    }

    pub async fn list_conversations(
        &self,
        actor: &Actor,
        query: ListConversationsRequest,
    ) -> Result<ListConversationsResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, query, self.timeout)?;
        call(self.timeout, client.list_conversations(request)).await
    }

    pub async fn get_conversation(
        &self,
        actor: &Actor,
        query: GetConversationRequest,
    ) -> Result<GetConversationResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, query, self.timeout)?;
        call(self.timeout, client.get_conversation(request)).await
    }

    /// Sends as `actor`, whatever author `message` names: inbox's send gate trusts the author
    /// (HUMAN_AGENT is for humans only), so it must never come from the client.
    pub async fn send_message(
        &self,
        actor: &Actor,
        mut message: SendMessageRequest,
    ) -> Result<SendMessageResponse, GatewayError> {
        message.author = Some(human(actor));
        let mut client = self.client.clone();
        let request = request(actor, message, self.send_timeout)?;
        call(self.send_timeout, client.send_message(request)).await
    }

    /// Asks for a human author: the gateway's callers are people.
    pub async fn check_send(
        &self,
        actor: &Actor,
        mut query: CheckSendRequest,
    ) -> Result<SendCheck, GatewayError> {
        query.author = AuthorKind::Human as i32;
        let mut client = self.client.clone();
        let request = request(actor, query, self.timeout)?;
        call(self.timeout, client.check_send(request)).await
    }

    /// Retries as `actor`, whatever author `retry` names (see [`InboxClient::send_message`]).
    pub async fn retry_message(
        &self,
        actor: &Actor,
        mut retry: RetryMessageRequest,
    ) -> Result<SendMessageResponse, GatewayError> {
        retry.author = Some(human(actor));
        let mut client = self.client.clone();
        let request = request(actor, retry, self.send_timeout)?;
        call(self.send_timeout, client.retry_message(request)).await
    }
}

/// The team workflow. What a caller may do is decided before these calls (the permission table
/// and [`crate::grpc`]'s checks); these only forward.
impl InboxClient {
    pub async fn update_conversation(
        &self,
        actor: &Actor,
        update: UpdateConversationRequest,
    ) -> Result<Conversation, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, update, self.timeout)?;
        call(self.timeout, client.update_conversation(request)).await
    }

    pub async fn get_assignment_settings(&self, actor: &Actor) -> Result<AssignmentSettings, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, GetAssignmentSettingsRequest {}, self.timeout)?;
        call(self.timeout, client.get_assignment_settings(request)).await
    }

    pub async fn update_assignment_settings(
        &self,
        actor: &Actor,
        settings: UpdateAssignmentSettingsRequest,
    ) -> Result<AssignmentSettings, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, settings, self.timeout)?;
        call(self.timeout, client.update_assignment_settings(request)).await
    }

    pub async fn set_agent_availability(
        &self,
        actor: &Actor,
        availability: SetAgentAvailabilityRequest,
    ) -> Result<AgentAvailability, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, availability, self.timeout)?;
        call(self.timeout, client.set_agent_availability(request)).await
    }

    pub async fn update_labels(
        &self,
        actor: &Actor,
        labels: UpdateLabelsRequest,
    ) -> Result<Conversation, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, labels, self.timeout)?;
        call(self.timeout, client.update_labels(request)).await
    }

    /// Inbox takes the note's author from the actor metadata.
    pub async fn add_note(&self, actor: &Actor, note: AddNoteRequest) -> Result<Message, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, note, self.timeout)?;
        call(self.timeout, client.add_note(request)).await
    }

    pub async fn list_canned_responses(
        &self,
        actor: &Actor,
        query: ListCannedResponsesRequest,
    ) -> Result<ListCannedResponsesResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, query, self.timeout)?;
        call(self.timeout, client.list_canned_responses(request)).await
    }

    pub async fn create_canned_response(
        &self,
        actor: &Actor,
        canned: CreateCannedResponseRequest,
    ) -> Result<CannedResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, canned, self.timeout)?;
        call(self.timeout, client.create_canned_response(request)).await
    }

    pub async fn update_canned_response(
        &self,
        actor: &Actor,
        canned: UpdateCannedResponseRequest,
    ) -> Result<CannedResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, canned, self.timeout)?;
        call(self.timeout, client.update_canned_response(request)).await
    }

    pub async fn delete_canned_response(
        &self,
        actor: &Actor,
        canned: DeleteCannedResponseRequest,
    ) -> Result<DeleteCannedResponseResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, canned, self.timeout)?;
        call(self.timeout, client.delete_canned_response(request)).await
    }

    pub async fn render_canned_response(
        &self,
        actor: &Actor,
        render: RenderCannedResponseRequest,
    ) -> Result<RenderCannedResponseResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, render, self.timeout)?;
        call(self.timeout, client.render_canned_response(request)).await
    }

    /// Moves the marker of the user in the actor metadata.
    pub async fn mark_read(
        &self,
        actor: &Actor,
        mark: MarkReadRequest,
    ) -> Result<MarkReadResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, mark, self.timeout)?;
        call(self.timeout, client.mark_read(request)).await
    }

    pub async fn search_messages(
        &self,
        actor: &Actor,
        query: SearchMessagesRequest,
    ) -> Result<SearchMessagesResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, query, self.timeout)?;
        call(self.timeout, client.search_messages(request)).await
    }

    /// Bounded by the send timeout: the AI provider takes seconds.
    pub async fn suggest_reply(
        &self,
        actor: &Actor,
        suggest: SuggestReplyRequest,
    ) -> Result<SuggestReplyResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, suggest, self.send_timeout)?;
        call(self.send_timeout, client.suggest_reply(request)).await
    }

    pub async fn get_contact(
        &self,
        actor: &Actor,
        get: GetContactRequest,
    ) -> Result<ContactProfile, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, get, self.timeout)?;
        call(self.timeout, client.get_contact(request)).await
    }

    pub async fn update_contact(
        &self,
        actor: &Actor,
        update: UpdateContactRequest,
    ) -> Result<ContactProfile, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, update, self.timeout)?;
        call(self.timeout, client.update_contact(request)).await
    }

    pub async fn merge_contacts(
        &self,
        actor: &Actor,
        merge: MergeContactsRequest,
    ) -> Result<ContactProfile, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, merge, self.timeout)?;
        call(self.timeout, client.merge_contacts(request)).await
    }

    // ---- Issue 5: WhatsApp template sync, inbox analytics ----

    pub async fn list_templates(
        &self,
        actor: &Actor,
        list: scifer_proto::inbox::v1::ListTemplatesRequest,
    ) -> Result<scifer_proto::inbox::v1::ListTemplatesResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, list, self.timeout)?;
        call(self.timeout, client.list_templates(request)).await
    }

    pub async fn get_inbox_analytics(
        &self,
        actor: &Actor,
        query: scifer_proto::inbox::v1::GetInboxAnalyticsRequest,
    ) -> Result<scifer_proto::inbox::v1::GetInboxAnalyticsResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, query, self.timeout)?;
        call(self.timeout, client.get_inbox_analytics(request)).await
    }
}

// Automation and handoff (issue 5): forwarded as they are; roles are checked before.
impl InboxClient {
    pub async fn list_rules(
        &self,
        actor: &Actor,
    ) -> Result<scifer_proto::inbox::v1::ListRulesResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, scifer_proto::inbox::v1::ListRulesRequest {}, self.timeout)?;
        call(self.timeout, client.list_rules(request)).await
    }

    pub async fn create_rule(
        &self,
        actor: &Actor,
        rule: scifer_proto::inbox::v1::CreateRuleRequest,
    ) -> Result<scifer_proto::inbox::v1::AutomationRule, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, rule, self.timeout)?;
        call(self.timeout, client.create_rule(request)).await
    }

    pub async fn update_rule(
        &self,
        actor: &Actor,
        rule: scifer_proto::inbox::v1::UpdateRuleRequest,
    ) -> Result<scifer_proto::inbox::v1::AutomationRule, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, rule, self.timeout)?;
        call(self.timeout, client.update_rule(request)).await
    }

    pub async fn delete_rule(
        &self,
        actor: &Actor,
        rule: scifer_proto::inbox::v1::DeleteRuleRequest,
    ) -> Result<scifer_proto::inbox::v1::DeleteRuleResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, rule, self.timeout)?;
        call(self.timeout, client.delete_rule(request)).await
    }

    pub async fn get_automation_settings(
        &self,
        actor: &Actor,
    ) -> Result<scifer_proto::inbox::v1::AutomationSettings, GatewayError> {
        let mut client = self.client.clone();
        let request = request(
            actor,
            scifer_proto::inbox::v1::GetAutomationSettingsRequest {},
            self.timeout,
        )?;
        call(self.timeout, client.get_automation_settings(request)).await
    }

    pub async fn update_automation_settings(
        &self,
        actor: &Actor,
        settings: scifer_proto::inbox::v1::UpdateAutomationSettingsRequest,
    ) -> Result<scifer_proto::inbox::v1::AutomationSettings, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, settings, self.timeout)?;
        call(self.timeout, client.update_automation_settings(request)).await
    }

    /// Bounded by the send timeout: it may wait for Meta's thread-control call.
    pub async fn hand_off(
        &self,
        actor: &Actor,
        handoff: scifer_proto::inbox::v1::HandOffRequest,
    ) -> Result<Conversation, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, handoff, self.send_timeout)?;
        call(self.send_timeout, client.hand_off(request)).await
    }

    pub async fn hand_back(
        &self,
        actor: &Actor,
        back: scifer_proto::inbox::v1::HandBackRequest,
    ) -> Result<Conversation, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, back, self.send_timeout)?;
        call(self.send_timeout, client.hand_back(request)).await
    }
}

/// The signed-in person `actor` as the author of a message.
fn human(actor: &Actor) -> Author {
    Author {
        kind: AuthorKind::Human as i32,
        id: actor.user_id.clone(),
    }
}

/// `message` with the workspace and the actor in metadata, and `timeout` as its `grpc-timeout`.
fn request<T>(actor: &Actor, message: T, timeout: Duration) -> Result<Request<T>, GatewayError> {
    let mut request = Request::new(message);
    let workspace = &actor.membership()?.workspace;
    // A parsed WorkspaceId and a UUID are plain ASCII, so these cannot fail; no panic path all
    // the same.
    let value = MetadataValue::try_from(workspace.as_str())
        .map_err(|e| GatewayError::Internal(format!("workspace id as metadata: {e}")))?;
    request.metadata_mut().insert(WORKSPACE_METADATA, value);
    let value = MetadataValue::try_from(actor.principal())
        .map_err(|e| GatewayError::Internal(format!("actor as metadata: {e}")))?;
    request.metadata_mut().insert(ACTOR_METADATA, value);
    // grpc-timeout lets inbox give up on work nobody waits for any more.
    request.set_timeout(timeout);
    Ok(request)
}

// --- History, gaps and media ---
impl InboxClient {
    pub async fn get_channel_sync(
        &self,
        actor: &Actor,
        get: scifer_proto::inbox::v1::GetChannelSyncRequest,
    ) -> Result<scifer_proto::inbox::v1::ChannelSync, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, get, self.timeout)?;
        call(self.timeout, client.get_channel_sync(request)).await
    }

    /// The stream of a stored attachment. Its start is bounded by the read timeout; the whole
    /// download by the send timeout (a large file takes longer than a read).
    pub async fn get_media(
        &self,
        actor: &Actor,
        get: scifer_proto::inbox::v1::GetMediaRequest,
    ) -> Result<tonic::Streaming<scifer_proto::inbox::v1::MediaChunk>, GatewayError> {
        let mut client = self.client.clone();
        let request = request(actor, get, self.send_timeout.max(self.timeout))?;
        call(self.timeout, client.get_media(request)).await
    }
}

/// Awaits `call` for at most `timeout`, its failure as a [`GatewayError`].
async fn call<T>(
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, GatewayError> {
    upstream::call(timeout, call)
        .await
        .map_err(|failure| match failure {
            Failure::Rejected(status) => GatewayError::InboxRejected(status),
            Failure::Unreachable(status) => GatewayError::InboxUnreachable(status),
            Failure::TimedOut => GatewayError::InboxTimeout(timeout),
        })
}
