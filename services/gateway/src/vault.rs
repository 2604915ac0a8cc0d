//! The gateway's client of token-vault. Every call carries the gateway's service identity
//! (`x-scifer-service: gateway` and its credential as the bearer) and the caller's trace context;
//! the workspace and the user travel in the request messages, which [`crate::channels`] fills from
//! the authenticated actor. Tokens never pass through here on the way back: no vault response
//! carries one.

use std::{future::Future, time::Duration};

use scifer_plumbing::service_identity::{Identify, ServiceCredential, identified_channel};
use scifer_proto::tokenvault::v1::{
    CompleteConnectRequest, CompleteConnectResponse, ConfirmConnectRequest, ConnectResponse,
    ConnectWhatsAppRequest, DisconnectChannelRequest, DisconnectChannelResponse, ListChannelsRequest,
    ListChannelsResponse, StartConnectRequest, StartConnectResponse,
    token_vault_service_client::TokenVaultServiceClient,
};
use tonic::{Request, Status, service::interceptor::InterceptedService, transport::Channel};

use crate::{
    error::GatewayError,
    upstream::{self, Failure},
};

/// The name the gateway calls token-vault as.
pub const SERVICE_NAME: &str = "gateway";

#[derive(Clone)]
pub struct VaultClient {
    client: TokenVaultServiceClient<InterceptedService<Channel, Identify>>,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("TOKEN_VAULT_URL: {0}")]
pub struct InvalidVaultUrl(#[from] scifer_plumbing::service_identity::InvalidUrl);

impl VaultClient {
    /// A client whose channel connects on first use (and reconnects after failures), so the
    /// gateway starts while token-vault is still down. `timeout` bounds each call, connecting
    /// included.
    pub fn new(url: &str, timeout: Duration, credential: ServiceCredential) -> Result<Self, InvalidVaultUrl> {
        let channel = identified_channel(url, timeout, credential)?;
        Ok(Self {
            client: TokenVaultServiceClient::new(channel),
            timeout,
        })
    }

    pub async fn start_connect(
        &self,
        message: StartConnectRequest,
    ) -> Result<StartConnectResponse, GatewayError> {
        let mut client = self.client.clone();
        self.call(client.start_connect(self.request(message))).await
    }

    pub async fn complete_connect(
        &self,
        message: CompleteConnectRequest,
    ) -> Result<CompleteConnectResponse, GatewayError> {
        let mut client = self.client.clone();
        self.call(client.complete_connect(self.request(message))).await
    }

    pub async fn confirm_connect(
        &self,
        message: ConfirmConnectRequest,
    ) -> Result<ConnectResponse, GatewayError> {
        let mut client = self.client.clone();
        self.call(client.confirm_connect(self.request(message))).await
    }

    pub async fn connect_whatsapp(
        &self,
        message: ConnectWhatsAppRequest,
    ) -> Result<ConnectResponse, GatewayError> {
        let mut client = self.client.clone();
        self.call(client.connect_whats_app(self.request(message))).await
    }

    pub async fn list_channels(
        &self,
        message: ListChannelsRequest,
    ) -> Result<ListChannelsResponse, GatewayError> {
        let mut client = self.client.clone();
        self.call(client.list_channels(self.request(message))).await
    }

    pub async fn disconnect_channel(
        &self,
        message: DisconnectChannelRequest,
    ) -> Result<DisconnectChannelResponse, GatewayError> {
        let mut client = self.client.clone();
        self.call(client.disconnect_channel(self.request(message))).await
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        // grpc-timeout lets the vault give up on work nobody waits for any more.
        request.set_timeout(self.timeout);
        request
    }

    async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, GatewayError> {
        upstream::call(self.timeout, call)
            .await
            .map_err(|failure| match failure {
                Failure::Rejected(status) => GatewayError::VaultRejected(status),
                Failure::Unreachable(status) => GatewayError::VaultUnreachable(status),
                Failure::TimedOut => GatewayError::VaultTimeout(self.timeout),
            })
    }
}
