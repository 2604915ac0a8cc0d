//! A signed-in gateway user: what the phases that call the gateway's public API need first. The
//! gateway authenticates every InboxApi/ChannelApi call with a session, and the workspace id the
//! services share is the one the gateway's WorkspaceApi creates.

use scifer_proto::gateway::v1::{
    CreateWorkspaceRequest, SignUpRequest, account_api_client::AccountApiClient,
    workspace_api_client::WorkspaceApiClient,
};
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

use crate::error::{BenchError, Result};

/// Sends `authorization: Bearer <session>` on every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> std::result::Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A native gRPC transport to the gateway that carries a session (or none).
pub type Authed = InterceptedService<Channel, Bearer>;

/// The owner of a fresh workspace, signed in.
pub struct Session {
    pub token: String,
    pub workspace: String,
    channel: Channel,
}

impl Session {
    /// Signs up a new user through the gateway and creates a workspace they own.
    pub async fn sign_up(gateway_url: &str) -> Result<Self> {
        let channel = Channel::from_shared(gateway_url.to_string())
            .map_err(|e| BenchError::msg(format!("bad gateway URL {gateway_url:?}: {e}")))?
            .connect()
            .await
            .map_err(|e| BenchError::msg(format!("cannot connect to the gateway at {gateway_url}: {e}")))?;
        let email = format!("bench-{}@bench.test", uuid::Uuid::new_v4().simple());
        let session = AccountApiClient::with_interceptor(channel.clone(), Bearer(None))
            .sign_up(SignUpRequest {
                email,
                password: "bench passphrase, long enough".into(),
                name: "Bench Owner".into(),
            })
            .await
            .map_err(|s| BenchError::msg(format!("SignUp at the gateway: {s}")))?
            .into_inner();
        let mut this = Self {
            token: session.session_token,
            workspace: String::new(),
            channel,
        };
        this.workspace = WorkspaceApiClient::new(this.authed()?)
            .create_workspace(CreateWorkspaceRequest { name: "Bench".into() })
            .await
            .map_err(|s| BenchError::msg(format!("CreateWorkspace at the gateway: {s}")))?
            .into_inner()
            .workspace_id;
        Ok(this)
    }

    /// The gateway transport with this session as the bearer (one HTTP/2 connection, shared).
    pub fn authed(&self) -> Result<Authed> {
        let value = format!("Bearer {}", self.token)
            .parse()
            .map_err(|_| BenchError::msg("the gateway's session token is not valid metadata"))?;
        Ok(InterceptedService::new(self.channel.clone(), Bearer(Some(value))))
    }
}
