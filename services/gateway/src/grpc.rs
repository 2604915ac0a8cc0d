//! `scifer.gateway.v1.InboxApi`: what frontends call. The auth layer has checked that the caller is
//! a member of the request's workspace with a role the permission table allows; every RPC acts on
//! the workspace of that membership and names the caller to inbox.

use futures::{StreamExt, stream::BoxStream};
use scifer_proto::{
    events::v1::InboxEvent,
    gateway::v1::{GetConversationRequest, ListConversationsRequest, WatchInboxRequest, inbox_api_server},
    inbox::v1::{GetConversationResponse, ListConversationsResponse},
};
use tonic::{Request, Response, Status};

use std::sync::Arc;

use crate::{
    auth::{Actor, Authenticator},
    inbox::InboxClient,
    watch::{Check, Watcher},
};

pub struct InboxApi {
    inbox: InboxClient,
    watcher: Watcher,
    /// Re-checks a watcher's session and membership while its stream is open.
    auth: Arc<Authenticator>,
}

impl InboxApi {
    pub fn new(inbox: InboxClient, watcher: Watcher, auth: Arc<Authenticator>) -> Self {
        Self { inbox, watcher, auth }
    }
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
        let auth = self.auth.clone();
        let check: Check = Box::new(move || {
            let (auth, actor) = (auth.clone(), actor.clone());
            Box::pin(async move { auth.still_allowed(&actor).await })
        });
        let events = self.watcher.watch(&workspace, check).await?;
        Ok(Response::new(
            events.map(|item| item.map_err(Status::from)).boxed(),
        ))
    }
}
