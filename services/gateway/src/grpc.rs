//! `scifer.gateway.v1.InboxApi`: what frontends call. Every RPC first resolves the workspace it acts
//! on through [`InboxApi::workspace`]; that is where the authentication issue adds "is the caller a
//! member of this workspace, with a role allowed to do this".

use futures::{StreamExt, stream::BoxStream};
use scifer_proto::{
    events::v1::InboxEvent,
    gateway::v1::{GetConversationRequest, ListConversationsRequest, WatchInboxRequest, inbox_api_server},
    inbox::v1::{GetConversationResponse, ListConversationsResponse},
};
use tonic::{Request, Response, Status};

use scifer_ids::WorkspaceId;

use crate::{error::GatewayError, inbox::InboxClient, watch::Watcher};

pub struct InboxApi {
    inbox: InboxClient,
    watcher: Watcher,
}

impl InboxApi {
    pub fn new(inbox: InboxClient, watcher: Watcher) -> Self {
        Self { inbox, watcher }
    }

    /// The workspace a call acts on, from the request's `workspace_id`.
    fn workspace(&self, workspace_id: &str) -> Result<WorkspaceId, GatewayError> {
        Ok(WorkspaceId::parse(workspace_id)?)
    }
}

#[tonic::async_trait]
impl inbox_api_server::InboxApi for InboxApi {
    async fn list_conversations(
        &self,
        request: Request<ListConversationsRequest>,
    ) -> Result<Response<ListConversationsResponse>, Status> {
        let request = request.into_inner();
        let workspace = self.workspace(&request.workspace_id)?;
        // An absent query means inbox's defaults (first page, every channel and status).
        let query = request.query.unwrap_or_default();
        let response = self.inbox.list_conversations(&workspace, query).await?;
        Ok(Response::new(response))
    }

    async fn get_conversation(
        &self,
        request: Request<GetConversationRequest>,
    ) -> Result<Response<GetConversationResponse>, Status> {
        let request = request.into_inner();
        let workspace = self.workspace(&request.workspace_id)?;
        // Inbox validates the query (a missing conversation id is its INVALID_ARGUMENT).
        let query = request.query.unwrap_or_default();
        let response = self.inbox.get_conversation(&workspace, query).await?;
        Ok(Response::new(response))
    }

    type WatchInboxStream = BoxStream<'static, Result<InboxEvent, Status>>;

    async fn watch_inbox(
        &self,
        request: Request<WatchInboxRequest>,
    ) -> Result<Response<Self::WatchInboxStream>, Status> {
        let workspace = self.workspace(&request.get_ref().workspace_id)?;
        let events = self.watcher.watch(&workspace).await?;
        Ok(Response::new(
            events.map(|item| item.map_err(Status::from)).boxed(),
        ))
    }
}
