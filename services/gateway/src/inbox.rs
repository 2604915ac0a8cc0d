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

use crate::{auth::Actor, error::GatewayError};

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
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(GatewayError::InboxTimeout(self.timeout)),
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(classify(status, self.timeout)),
        }
    }
}

/// A status that inbox sent carries no source; one the client made up carries the error behind it:
/// the channel enforcing our `grpc-timeout` (a timeout, like ours around the call), or a transport
/// failure (refused, reset, h2 protocol error).
fn classify(status: Status, timeout: Duration) -> GatewayError {
    let mut cause = std::error::Error::source(&status);
    if cause.is_none() {
        return GatewayError::InboxRejected(status);
    }
    while let Some(error) = cause {
        if error.is::<tonic::TimeoutExpired>() {
            return GatewayError::InboxTimeout(timeout);
        }
        cause = error.source();
    }
    GatewayError::InboxUnreachable(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[test]
    fn a_status_inbox_sent_is_a_rejection() {
        let error = classify(Status::not_found("conversation not found"), TIMEOUT);
        assert!(matches!(error, GatewayError::InboxRejected(s) if s.code() == tonic::Code::NotFound));
    }

    #[test]
    fn the_channel_enforcing_grpc_timeout_is_a_timeout() {
        let status = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert!(matches!(classify(status, TIMEOUT), GatewayError::InboxTimeout(_)));
    }

    #[test]
    fn a_transport_failure_is_unreachable() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let status = Status::from_error(Box::new(refused));
        assert!(matches!(
            classify(status, TIMEOUT),
            GatewayError::InboxUnreachable(_)
        ));
    }
}
