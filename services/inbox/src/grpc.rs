//! `scifer.inbox.v1.InboxService`. The workspace comes only from the gateway's metadata, and this is
//! the one place where [`InboxError`] becomes a `tonic::Status`.

use std::collections::HashMap;

use scifer_proto::inbox::v1::{
    CheckSendRequest, ConversationStatus, GetConversationRequest, GetConversationResponse,
    ListConversationsRequest, ListConversationsResponse, RetryMessageRequest, SendCheck, SendMessageRequest,
    SendMessageResponse, inbox_service_server::InboxService,
};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use crate::{
    convert,
    domain::{Cursor, PageSize, WorkspaceId},
    error::InboxError,
    send::Sender,
    store::{self, ConversationFilter, entity::conversation},
};

pub const WORKSPACE_METADATA: &str = "x-scifer-workspace-id";

pub struct Inbox {
    db: DatabaseConnection,
    sender: std::sync::Arc<Sender>,
}

impl Inbox {
    pub fn new(db: DatabaseConnection, sender: std::sync::Arc<Sender>) -> Self {
        Self { db, sender }
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
            InboxError::MessageNotFound => Status::not_found(e.to_string()),
            InboxError::NotRetryable(_) => Status::failed_precondition(e.to_string()),
            InboxError::SendingNotConfigured => {
                tracing::error!("a send was asked for, but TOKEN_VAULT_CREDENTIAL is unset");
                Status::failed_precondition(e.to_string())
            }
            InboxError::Internal(ref cause) => {
                tracing::error!(error = %scifer_plumbing::error_chain(cause), "inbox request failed");
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

impl Inbox {
    async fn conversations_with_details(
        &self,
        ws: &WorkspaceId,
        rows: &[conversation::Model],
    ) -> Result<Vec<scifer_proto::inbox::v1::Conversation>, InboxError> {
        let contacts: HashMap<String, _> =
            store::contacts_by_id(&self.db, ws, rows.iter().map(|c| c.contact_id.clone()).collect())
                .await?
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect();
        let kinds: HashMap<String, i32> =
            store::channels_by_id(&self.db, ws, rows.iter().map(|c| c.channel_id.clone()).collect())
                .await?
                .into_iter()
                .map(|c| (c.id, c.kind))
                .collect();
        Ok(rows
            .iter()
            .map(|c| {
                let kind = kinds.get(&c.channel_id).copied().unwrap_or_default();
                convert::conversation(c, contacts.get(&c.contact_id), kind)
            })
            .collect())
    }

    async fn list(
        &self,
        ws: WorkspaceId,
        req: ListConversationsRequest,
    ) -> Result<ListConversationsResponse, InboxError> {
        let size = PageSize::from_request(req.page_size).get();
        let cursor = Cursor::decode(&req.page_token)?;
        let status = match ConversationStatus::try_from(req.status) {
            Ok(ConversationStatus::Unspecified) => None,
            Ok(s) => Some(s as i32),
            Err(_) => return Err(InboxError::InvalidStatus),
        };
        let filter = ConversationFilter {
            channel_id: Some(req.channel_id).filter(|c| !c.is_empty()),
            status,
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
        let conversations = self.conversations_with_details(&ws, &rows).await?;
        Ok(ListConversationsResponse {
            conversations,
            next_page_token,
        })
    }

    async fn get(
        &self,
        ws: WorkspaceId,
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
        let conversation = self
            .conversations_with_details(&ws, std::slice::from_ref(&conv))
            .await?
            .pop();
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
        Ok(Response::new(self.list(ws, request.into_inner()).await?))
    }

    async fn get_conversation(
        &self,
        request: Request<GetConversationRequest>,
    ) -> Result<Response<GetConversationResponse>, Status> {
        let ws = workspace(&request)?;
        Ok(Response::new(self.get(ws, request.into_inner()).await?))
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
}
