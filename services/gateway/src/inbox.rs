//! The gateway's client of the internal inbox service. The gateway never reads inbox's store; it
//! forwards each call with the authenticated workspace and actor in metadata (inbox takes them only
//! from there) and the caller's trace context.

use std::{future::Future, time::Duration};

use scifer_proto::inbox::v1::{
    GetConversationRequest, GetConversationResponse, ListConversationsRequest, ListConversationsResponse,
    inbox_service_client::InboxServiceClient,
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
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("INBOX_URL {url:?} is not a valid URL: {reason}")]
pub struct InvalidInboxUrl {
    url: String,
    reason: String,
}

impl InboxClient {
    /// A client whose channel connects on first use (and reconnects after failures), so the
    /// gateway starts and answers health checks while inbox is still down. `timeout` bounds each
    /// call, connecting included.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, InvalidInboxUrl> {
        let endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| InvalidInboxUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let channel = endpoint.connect_timeout(timeout).connect_lazy();
        let interceptor: Interceptor = scifer_plumbing::grpc::propagate_trace;
        Ok(Self {
            client: InboxServiceClient::with_interceptor(channel, interceptor),
            timeout,
        })
    }

    pub async fn list_conversations(
        &self,
        actor: &Actor,
        query: ListConversationsRequest,
    ) -> Result<ListConversationsResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = self.request(actor, query)?;
        self.call(client.list_conversations(request)).await
    }

    pub async fn get_conversation(
        &self,
        actor: &Actor,
        query: GetConversationRequest,
    ) -> Result<GetConversationResponse, GatewayError> {
        let mut client = self.client.clone();
        let request = self.request(actor, query)?;
        self.call(client.get_conversation(request)).await
    }

    fn request<T>(&self, actor: &Actor, message: T) -> Result<Request<T>, GatewayError> {
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
        request.set_timeout(self.timeout);
        Ok(request)
    }

    async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, GatewayError> {
        upstream::call(self.timeout, call)
            .await
            .map_err(|failure| match failure {
                Failure::Rejected(status) => GatewayError::InboxRejected(status),
                Failure::Unreachable(status) => GatewayError::InboxUnreachable(status),
                Failure::TimedOut => GatewayError::InboxTimeout(self.timeout),
            })
    }
}
