//! `scifer.gateway.v1.ChannelApi`: connecting and managing a workspace's Meta channels. The auth
//! layer has checked the caller's role (any member lists; admins and owners connect and
//! disconnect); every RPC is forwarded to token-vault with the workspace of that membership and the
//! caller's user id, filled here, never taken from the client. StartConnect adds the gateway's
//! configured redirect URI. The vault validates the rest and answers; its statuses reach the
//! caller through [`crate::error`].

use scifer_proto::{
    gateway::v1::{
        CompleteConnectRequest, ConfirmConnectRequest, ConnectWhatsAppRequest, DisconnectChannelRequest,
        ListChannelsRequest, StartConnectRequest, channel_api_server, connect_whats_app_request,
    },
    tokenvault::v1::{
        self as vault, CompleteConnectResponse, ConnectResponse, DisconnectChannelResponse,
        ListChannelsResponse, StartConnectResponse,
    },
};
use tonic::{Request, Response, Status};

use crate::{auth::Actor, error::GatewayError, vault::VaultClient};

pub struct ChannelApi {
    /// None when `TOKEN_VAULT_CREDENTIAL` is unset: every call is refused.
    vault: Option<VaultClient>,
    redirect_uri: String,
}

impl ChannelApi {
    pub fn new(vault: Option<VaultClient>, redirect_uri: String) -> Self {
        Self { vault, redirect_uri }
    }

    fn vault(&self) -> Result<&VaultClient, GatewayError> {
        self.vault.as_ref().ok_or(GatewayError::VaultNotConfigured)
    }
}

/// The caller's workspace (from the auth layer's membership check) and user id.
fn scope<T>(request: &Request<T>) -> Result<(String, String), GatewayError> {
    let actor = Actor::of(request)?;
    let workspace = actor.membership()?.workspace.as_str().to_string();
    Ok((workspace, actor.user_id))
}

#[tonic::async_trait]
impl channel_api_server::ChannelApi for ChannelApi {
    async fn start_connect(
        &self,
        request: Request<StartConnectRequest>,
    ) -> Result<Response<StartConnectResponse>, Status> {
        let (workspace_id, user_id) = scope(&request)?;
        let forwarded = vault::StartConnectRequest {
            workspace_id,
            user_id,
            redirect_uri: self.redirect_uri.clone(),
        };
        Ok(Response::new(self.vault()?.start_connect(forwarded).await?))
    }

    async fn complete_connect(
        &self,
        request: Request<CompleteConnectRequest>,
    ) -> Result<Response<CompleteConnectResponse>, Status> {
        let (workspace_id, user_id) = scope(&request)?;
        let CompleteConnectRequest { state, code, .. } = request.into_inner();
        let forwarded = vault::CompleteConnectRequest {
            workspace_id,
            user_id,
            state,
            code,
        };
        Ok(Response::new(self.vault()?.complete_connect(forwarded).await?))
    }

    async fn confirm_connect(
        &self,
        request: Request<ConfirmConnectRequest>,
    ) -> Result<Response<ConnectResponse>, Status> {
        let (workspace_id, user_id) = scope(&request)?;
        let ConfirmConnectRequest {
            session_id, page_ids, ..
        } = request.into_inner();
        let forwarded = vault::ConfirmConnectRequest {
            workspace_id,
            user_id,
            session_id,
            page_ids,
        };
        Ok(Response::new(self.vault()?.confirm_connect(forwarded).await?))
    }

    async fn connect_whats_app(
        &self,
        request: Request<ConnectWhatsAppRequest>,
    ) -> Result<Response<ConnectResponse>, Status> {
        let (workspace_id, user_id) = scope(&request)?;
        let ConnectWhatsAppRequest {
            waba_id, credential, ..
        } = request.into_inner();
        // A missing credential is the vault's INVALID_ARGUMENT, like every other field.
        let credential = credential.map(|c| match c {
            connect_whats_app_request::Credential::SystemUserToken(token) => {
                vault::connect_whats_app_request::Credential::SystemUserToken(token)
            }
            connect_whats_app_request::Credential::EmbeddedSignupCode(code) => {
                vault::connect_whats_app_request::Credential::EmbeddedSignupCode(code)
            }
        });
        let forwarded = vault::ConnectWhatsAppRequest {
            workspace_id,
            user_id,
            waba_id,
            credential,
        };
        Ok(Response::new(self.vault()?.connect_whatsapp(forwarded).await?))
    }

    async fn list_channels(
        &self,
        request: Request<ListChannelsRequest>,
    ) -> Result<Response<ListChannelsResponse>, Status> {
        let (workspace_id, _) = scope(&request)?;
        let forwarded = vault::ListChannelsRequest { workspace_id };
        Ok(Response::new(self.vault()?.list_channels(forwarded).await?))
    }

    async fn disconnect_channel(
        &self,
        request: Request<DisconnectChannelRequest>,
    ) -> Result<Response<DisconnectChannelResponse>, Status> {
        let (workspace_id, user_id) = scope(&request)?;
        let channel_id = request.into_inner().channel_id;
        let forwarded = vault::DisconnectChannelRequest {
            workspace_id,
            user_id,
            channel_id,
        };
        Ok(Response::new(self.vault()?.disconnect_channel(forwarded).await?))
    }
}
