//! `scifer.inbox.v1.InboxService`. The workspace comes only from the gateway's metadata, and this is
//! the one place where [`InboxError`] becomes a `tonic::Status`.

use scifer_proto::inbox::v1::{
    AddNoteRequest, AgentAvailability, AssignmentSettings, CannedResponse, CheckSendRequest, ContactProfile,
    Conversation, ConversationStatus, CreateCannedResponseRequest, DeleteCannedResponseRequest,
    DeleteCannedResponseResponse, GetAssignmentSettingsRequest, GetContactRequest, GetConversationRequest,
    GetConversationResponse, ListCannedResponsesRequest, ListCannedResponsesResponse,
    ListConversationsRequest, ListConversationsResponse, MarkReadRequest, MarkReadResponse,
    MergeContactsRequest, Message, RenderCannedResponseRequest, RenderCannedResponseResponse,
    RetryMessageRequest, SearchMessagesRequest, SearchMessagesResponse, SendCheck, SendMessageRequest,
    SendMessageResponse, SetAgentAvailabilityRequest, SuggestReplyRequest, SuggestReplyResponse,
    UpdateAssignmentSettingsRequest, UpdateCannedResponseRequest, UpdateContactRequest,
    UpdateConversationRequest, UpdateLabelsRequest, inbox_service_server::InboxService,
};
// Issue 5: WhatsApp template sync, inbox analytics.
use scifer_proto::inbox::v1::{
    GetInboxAnalyticsRequest, GetInboxAnalyticsResponse, ListTemplatesRequest, ListTemplatesResponse,
};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use crate::{
    canned::Canned,
    consumer::Engine,
    contacts::Contacts,
    convert,
    domain::{AgentId, Cursor, PageSize, WorkspaceId, assignment::optional_id, label::Label},
    error::InboxError,
    send::Sender,
    store::{self, Assignee, ConversationFilter},
    suggest::Suggester,
    unread, views,
    workflow::Workflow,
};

pub const WORKSPACE_METADATA: &str = "x-scifer-workspace-id";
/// Who acts, as the gateway names them: `user:<id>` for a signed-in person.
pub const ACTOR_METADATA: &str = "x-scifer-actor";

pub struct Inbox {
    db: DatabaseConnection,
    engine: std::sync::Arc<Engine>,
    sender: std::sync::Arc<Sender>,
    workflow: Workflow,
    canned: Canned,
    contacts: Contacts,
    suggester: Suggester,
    // Automation and handoff (issue 5).
    rules: crate::automation::Rules,
    handoff: Option<std::sync::Arc<crate::automation::Handoff>>,
    // History, gaps and media (set by `with_history_and_media`; None answers UNAVAILABLE).
    history: Option<crate::history::HistorySettings>,
    media: Option<crate::media::MediaStorage>,
    // Issue 5: WhatsApp template sync.
    templates: crate::templates::Syncer,
}

impl Inbox {
    /// `ai`: the AI provider, None when none is configured.
    pub fn new(
        db: DatabaseConnection,
        engine: std::sync::Arc<Engine>,
        sender: std::sync::Arc<Sender>,
        ai: Option<std::sync::Arc<scifer_ai::OpenAiCompatible>>,
    ) -> Self {
        Self {
            suggester: Suggester::new(db.clone(), ai),
            canned: Canned::new(db.clone()),
            contacts: Contacts::new(db.clone(), engine.clone()),
            workflow: Workflow::new(db.clone(), engine.clone()),
            rules: crate::automation::Rules::new(db.clone()),
            handoff: None,
            templates: crate::templates::Syncer::new(
                db.clone(),
                engine.clone(),
                sender.vault_client(),
                sender.vault_timeout(),
            ),
            db,
            engine,
            sender,
            history: None,
            media: None,
        }
    }

    /// History, gaps and media: what `GetChannelSync` and `GetMedia` need.
    pub fn with_history_and_media(
        mut self,
        history: crate::history::HistorySettings,
        media: crate::media::MediaStorage,
    ) -> Self {
        self.history = Some(history);
        self.media = Some(media);
        self
    }
}

// Automation and handoff (issue 5).
impl Inbox {
    /// Handoff and hand back need the thread-control client and the audit emitter.
    pub fn with_handoff(mut self, handoff: std::sync::Arc<crate::automation::Handoff>) -> Self {
        self.handoff = Some(handoff);
        self
    }

    fn handoff(&self) -> Result<&crate::automation::Handoff, InboxError> {
        self.handoff
            .as_deref()
            .ok_or(InboxError::Precondition("handoff is not set up on this server"))
    }
}

impl From<InboxError> for Status {
    fn from(e: InboxError) -> Self {
        match e {
            InboxError::MissingWorkspace => Status::unauthenticated(e.to_string()),
            InboxError::ConversationNotFound => Status::not_found(e.to_string()),
            InboxError::InvalidPageToken | InboxError::InvalidStatus | InboxError::Invalid(_) => {
                Status::invalid_argument(e.to_string())
            }
            InboxError::MessageNotFound
            | InboxError::CannedResponseNotFound
            | InboxError::ContactNotFound
            | InboxError::ChannelNotFound => Status::not_found(e.to_string()),
            InboxError::AlreadyExists(_) => Status::already_exists(e.to_string()),
            InboxError::Precondition(_) => Status::failed_precondition(e.to_string()),
            InboxError::NotRetryable(_) => Status::failed_precondition(e.to_string()),
            InboxError::Forbidden(_) => Status::permission_denied(e.to_string()),
            InboxError::MissingActor => Status::unauthenticated(e.to_string()),
            InboxError::SendingNotConfigured => {
                tracing::error!("a send was asked for, but TOKEN_VAULT_CREDENTIAL is unset");
                Status::failed_precondition(e.to_string())
            }
            InboxError::Ai(ref cause) => match cause {
                scifer_ai::AiError::Disabled => {
                    Status::failed_precondition("AI suggestions are not configured")
                }
                scifer_ai::AiError::Unavailable(_)
                | scifer_ai::AiError::RateLimited { .. }
                | scifer_ai::AiError::Malformed(_) => {
                    tracing::warn!(error = %cause, "no reply suggestion");
                    Status::unavailable("the AI provider is unavailable; try again later")
                }
                // Our settings, not the request: the operator's to fix.
                scifer_ai::AiError::Rejected(_) | scifer_ai::AiError::Config(_) => {
                    tracing::error!(error = %cause, "the AI provider refused a suggestion; check AI_MODEL and AI_API_KEY");
                    Status::internal("the AI provider refused the request")
                }
            },
            InboxError::Internal(ref cause) => {
                tracing::error!(error = %scifer_plumbing::error_chain(cause), "inbox request failed");
                Status::internal("internal error")
            }
            // Automation and handoff (issue 5).
            InboxError::RuleNotFound => Status::not_found(e.to_string()),
            InboxError::ThreadControl(_) => Status::unavailable(e.to_string()),
            // History, gaps and media.
            InboxError::AttachmentNotFound => Status::not_found(e.to_string()),
            InboxError::MediaNotStored(_) => Status::failed_precondition(e.to_string()),
            InboxError::MediaStorage(ref cause) => {
                tracing::error!(error = %scifer_plumbing::error_chain(cause), "media storage failed");
                Status::internal("internal error")
            }
        }
    }
}

fn workspace<T>(request: &Request<T>) -> Result<WorkspaceId, InboxError> {
    let raw = request
        .metadata()
        .get(WORKSPACE_METADATA)
        .and_then(|v| v.to_str().ok())
        .ok_or(InboxError::MissingWorkspace)?;
    WorkspaceId::parse(raw).map_err(|_| InboxError::MissingWorkspace)
}

/// The person calling, from the gateway's `x-scifer-actor` (`user:<id>`); None for other callers.
fn viewer<T>(request: &Request<T>) -> Option<AgentId> {
    request
        .metadata()
        .get(ACTOR_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("user:"))
        .and_then(|id| AgentId::parse(id).ok())
}

/// The person calling, for calls that only people make.
fn person<T>(request: &Request<T>) -> Result<AgentId, InboxError> {
    viewer(request).ok_or(InboxError::MissingActor)
}

impl Inbox {
    async fn list(
        &self,
        ws: WorkspaceId,
        viewer: Option<AgentId>,
        req: ListConversationsRequest,
    ) -> Result<ListConversationsResponse, InboxError> {
        let size = PageSize::from_request(req.page_size).get();
        let cursor = Cursor::decode(&req.page_token)?;
        let status = match ConversationStatus::try_from(req.status) {
            Ok(ConversationStatus::Unspecified) => None,
            Ok(s) => Some(s as i32),
            Err(_) => return Err(InboxError::InvalidStatus),
        };
        let invalid = |e: crate::domain::assignment::InvalidId| InboxError::Invalid(e.to_string());
        let assignee = match optional_id(&req.assignee_id, "assignee_id").map_err(invalid)? {
            Some(agent) => Some(Assignee::Agent(agent)),
            None if req.unassigned => Some(Assignee::Nobody),
            None => None,
        };
        let filter = ConversationFilter {
            channel_id: Some(req.channel_id).filter(|c| !c.is_empty()),
            status,
            assignee,
            team_id: optional_id(&req.team_id, "team_id").map_err(invalid)?,
            label: match req.label.trim() {
                "" => None,
                raw => Some(
                    Label::parse(raw)
                        .map_err(|e| InboxError::Invalid(e.to_string()))?
                        .into_string(),
                ),
            },
        };
        // One extra row tells whether another page exists without a COUNT.
        let mut rows = store::list_conversations(&self.db, &ws, &filter, cursor.as_ref(), size + 1).await?;
        let next_page_token = if rows.len() as u64 > size {
            rows.truncate(size as usize);
            rows.last()
                .map(|c| {
                    Cursor {
                        at_ms: c.last_activity_at_ms,
                        id: c.id.clone(),
                    }
                    .encode()
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        let mut conversations = views::conversations(&self.db, &ws, &rows).await?;
        if let Some(agent) = &viewer {
            unread::fill(&self.db, agent, &mut conversations).await?;
        }
        Ok(ListConversationsResponse {
            conversations,
            next_page_token,
        })
    }

    async fn get(
        &self,
        ws: WorkspaceId,
        viewer: Option<AgentId>,
        req: GetConversationRequest,
    ) -> Result<GetConversationResponse, InboxError> {
        let size = PageSize::from_request(req.page_size).get();
        let cursor = Cursor::decode(&req.page_token)?;
        let conv = store::find_conversation(&self.db, &ws, &req.conversation_id)
            .await?
            .ok_or(InboxError::ConversationNotFound)?;
        let mut rows = store::list_messages(&self.db, &ws, &conv.id, cursor.as_ref(), size + 1).await?;
        let next_page_token = if rows.len() as u64 > size {
            rows.truncate(size as usize);
            // The oldest message of this page is where the next (older) page starts.
            rows.last()
                .map(|m| {
                    Cursor {
                        at_ms: m.sent_at_ms,
                        id: m.id.clone(),
                    }
                    .encode()
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        rows.reverse();
        let mut conversation = views::conversation(&self.db, &ws, &conv).await?;
        if let Some(agent) = &viewer {
            unread::fill(&self.db, agent, std::slice::from_mut(&mut conversation)).await?;
        }
        let conversation = Some(conversation);
        Ok(GetConversationResponse {
            conversation,
            messages: rows.iter().map(convert::message).collect(),
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl InboxService for Inbox {
    async fn list_conversations(
        &self,
        request: Request<ListConversationsRequest>,
    ) -> Result<Response<ListConversationsResponse>, Status> {
        let ws = workspace(&request)?;
        let viewer = viewer(&request);
        Ok(Response::new(self.list(ws, viewer, request.into_inner()).await?))
    }

    async fn get_conversation(
        &self,
        request: Request<GetConversationRequest>,
    ) -> Result<Response<GetConversationResponse>, Status> {
        let ws = workspace(&request)?;
        let viewer = viewer(&request);
        Ok(Response::new(self.get(ws, viewer, request.into_inner()).await?))
    }

    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(self.sender.send(&ws, request.into_inner()).await?))
    }

    async fn check_send(&self, request: Request<CheckSendRequest>) -> Result<Response<SendCheck>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(self.sender.check(&ws, request.get_ref()).await?))
    }

    async fn retry_message(
        &self,
        request: Request<RetryMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(self.sender.retry(&ws, request.into_inner()).await?))
    }

    async fn update_conversation(
        &self,
        request: Request<UpdateConversationRequest>,
    ) -> Result<Response<Conversation>, Status> {
        let ws = workspace(&request)?;
        let updated = self
            .workflow
            .update_conversation(&ws, request.into_inner())
            .await?;
        Ok(Response::new(updated))
    }

    async fn get_assignment_settings(
        &self,
        request: Request<GetAssignmentSettingsRequest>,
    ) -> Result<Response<AssignmentSettings>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(self.workflow.settings(&ws).await?))
    }

    async fn update_assignment_settings(
        &self,
        request: Request<UpdateAssignmentSettingsRequest>,
    ) -> Result<Response<AssignmentSettings>, Status> {
        let ws = workspace(&request)?;
        let settings = self.workflow.update_settings(&ws, request.into_inner()).await?;
        Ok(Response::new(settings))
    }

    async fn set_agent_availability(
        &self,
        request: Request<SetAgentAvailabilityRequest>,
    ) -> Result<Response<AgentAvailability>, Status> {
        let ws = workspace(&request)?;
        let req = request.into_inner();
        let agent = AgentId::parse(&req.agent_id).map_err(|e| InboxError::Invalid(e.to_string()))?;
        let availability = self.workflow.set_availability(&ws, &agent, req.available).await?;
        Ok(Response::new(availability))
    }

    async fn update_labels(
        &self,
        request: Request<UpdateLabelsRequest>,
    ) -> Result<Response<Conversation>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(
            self.workflow.update_labels(&ws, request.into_inner()).await?,
        ))
    }

    async fn add_note(&self, request: Request<AddNoteRequest>) -> Result<Response<Message>, Status> {
        let ws = workspace(&request)?;
        let author = person(&request)?;
        Ok(Response::new(
            self.workflow.add_note(&ws, &author, request.into_inner()).await?,
        ))
    }

    async fn list_canned_responses(
        &self,
        request: Request<ListCannedResponsesRequest>,
    ) -> Result<Response<ListCannedResponsesResponse>, Status> {
        let ws = workspace(&request)?;
        let canned_responses = self.canned.list(&ws, request.into_inner()).await?;
        Ok(Response::new(ListCannedResponsesResponse { canned_responses }))
    }

    async fn create_canned_response(
        &self,
        request: Request<CreateCannedResponseRequest>,
    ) -> Result<Response<CannedResponse>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(
            self.canned.create(&ws, request.into_inner()).await?,
        ))
    }

    async fn update_canned_response(
        &self,
        request: Request<UpdateCannedResponseRequest>,
    ) -> Result<Response<CannedResponse>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(
            self.canned.update(&ws, request.into_inner()).await?,
        ))
    }

    async fn delete_canned_response(
        &self,
        request: Request<DeleteCannedResponseRequest>,
    ) -> Result<Response<DeleteCannedResponseResponse>, Status> {
        let ws = workspace(&request)?;
        self.canned.delete(&ws, &request.get_ref().id).await?;
        Ok(Response::new(DeleteCannedResponseResponse {}))
    }

    async fn render_canned_response(
        &self,
        request: Request<RenderCannedResponseRequest>,
    ) -> Result<Response<RenderCannedResponseResponse>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(
            self.canned.render(&ws, request.into_inner()).await?,
        ))
    }

    async fn mark_read(
        &self,
        request: Request<MarkReadRequest>,
    ) -> Result<Response<MarkReadResponse>, Status> {
        let ws = workspace(&request)?;
        let agent = person(&request)?;
        let marked = unread::mark_read(&self.db, &self.engine, &ws, &agent, request.into_inner()).await?;
        Ok(Response::new(marked))
    }

    async fn search_messages(
        &self,
        request: Request<SearchMessagesRequest>,
    ) -> Result<Response<SearchMessagesResponse>, Status> {
        let ws = workspace(&request)?;
        let viewer = viewer(&request);
        let found = crate::search::search(&self.db, &ws, viewer.as_ref(), request.into_inner()).await?;
        Ok(Response::new(found))
    }

    async fn get_contact(
        &self,
        request: Request<GetContactRequest>,
    ) -> Result<Response<ContactProfile>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(self.contacts.get(&ws, request.into_inner()).await?))
    }

    async fn update_contact(
        &self,
        request: Request<UpdateContactRequest>,
    ) -> Result<Response<ContactProfile>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(
            self.contacts.update(&ws, request.into_inner()).await?,
        ))
    }

    async fn merge_contacts(
        &self,
        request: Request<MergeContactsRequest>,
    ) -> Result<Response<ContactProfile>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(
            self.contacts.merge(&ws, request.into_inner()).await?,
        ))
    }

    async fn suggest_reply(
        &self,
        request: Request<SuggestReplyRequest>,
    ) -> Result<Response<SuggestReplyResponse>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(
            self.suggester.suggest(&ws, request.into_inner()).await?,
        ))
    }

    // Automation and handoff (issue 5).
    async fn list_rules(
        &self,
        request: Request<scifer_proto::inbox::v1::ListRulesRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::ListRulesResponse>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(self.rules.list(&ws).await?))
    }

    async fn create_rule(
        &self,
        request: Request<scifer_proto::inbox::v1::CreateRuleRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::AutomationRule>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(self.rules.create(&ws, request.into_inner()).await?))
    }

    async fn update_rule(
        &self,
        request: Request<scifer_proto::inbox::v1::UpdateRuleRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::AutomationRule>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(self.rules.update(&ws, request.into_inner()).await?))
    }

    async fn delete_rule(
        &self,
        request: Request<scifer_proto::inbox::v1::DeleteRuleRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::DeleteRuleResponse>, Status> {
        let ws = workspace(&request)?;
        self.rules.delete(&ws, &request.get_ref().id).await?;
        Ok(Response::new(scifer_proto::inbox::v1::DeleteRuleResponse {}))
    }

    async fn get_automation_settings(
        &self,
        request: Request<scifer_proto::inbox::v1::GetAutomationSettingsRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::AutomationSettings>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(self.rules.get_settings(&ws).await?))
    }

    async fn update_automation_settings(
        &self,
        request: Request<scifer_proto::inbox::v1::UpdateAutomationSettingsRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::AutomationSettings>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(
            self.rules.update_settings(&ws, request.into_inner()).await?,
        ))
    }

    async fn hand_off(
        &self,
        request: Request<scifer_proto::inbox::v1::HandOffRequest>,
    ) -> Result<Response<Conversation>, Status> {
        let ws = workspace(&request)?;
        let agent = person(&request)?;
        let handoff = self.handoff()?;
        Ok(Response::new(
            handoff
                .hand_off(&ws, agent.as_str(), request.into_inner())
                .await?,
        ))
    }

    async fn hand_back(
        &self,
        request: Request<scifer_proto::inbox::v1::HandBackRequest>,
    ) -> Result<Response<Conversation>, Status> {
        let ws = workspace(&request)?;
        let agent = person(&request)?;
        let handoff = self.handoff()?;
        Ok(Response::new(
            handoff
                .hand_back(&ws, agent.as_str(), request.into_inner())
                .await?,
        ))
    }

    // --- History, gaps and media ---

    async fn get_channel_sync(
        &self,
        request: Request<scifer_proto::inbox::v1::GetChannelSyncRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::ChannelSync>, Status> {
        let ws = workspace(&request)?;
        let settings = self
            .history
            .as_ref()
            .ok_or_else(|| Status::unavailable("history sync is not set up"))?;
        let channel_id = request.into_inner().channel_id;
        if channel_id.is_empty() {
            return Err(InboxError::Invalid("channel_id is required".into()).into());
        }
        Ok(Response::new(
            crate::history::status::get(&self.db, settings, &ws, &channel_id).await?,
        ))
    }

    type GetMediaStream = crate::media::serve::MediaStream;

    async fn get_media(
        &self,
        request: Request<scifer_proto::inbox::v1::GetMediaRequest>,
    ) -> Result<Response<Self::GetMediaStream>, Status> {
        let ws = workspace(&request)?;
        let storage = self
            .media
            .as_ref()
            .ok_or_else(|| Status::unavailable("media storage is not set up"))?;
        let stream = crate::media::serve::get_media(&self.db, storage, &ws, request.get_ref()).await?;
        Ok(Response::new(stream))
    }

    // ---- Issue 5: WhatsApp template sync, inbox analytics ----

    async fn list_templates(
        &self,
        request: Request<ListTemplatesRequest>,
    ) -> Result<Response<ListTemplatesResponse>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(
            self.templates.list(&ws, &request.get_ref().channel_id).await?,
        ))
    }

    async fn get_inbox_analytics(
        &self,
        request: Request<GetInboxAnalyticsRequest>,
    ) -> Result<Response<GetInboxAnalyticsResponse>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(
            crate::analytics::report(&self.db, &ws, request.get_ref()).await?,
        ))
    }
}
