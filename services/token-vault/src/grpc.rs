//! The gRPC surface: authenticate the calling service, check it may use the RPC, parse ids, run
//! the flow, convert. Errors become `Status` only through `VaultError`.

use std::sync::Arc;

use scifer_ids::WorkspaceId;
use scifer_plumbing::service_identity::ServiceAuthenticator;
use scifer_proto::tokenvault::v1::{
    self as pb, CheckChannelRequest, CompleteConnectRequest, CompleteConnectResponse, ConfirmConnectRequest,
    ConnectResponse, ConnectWhatsAppRequest, DisconnectChannelRequest, DisconnectChannelResponse,
    EgressRequest, EgressResponse, FetchMediaRequest, GetInfoRequest, GetInfoResponse,
    GetRotationStatusRequest, ListChannelsRequest, ListChannelsResponse, MediaChunk, RotateDataKeyRequest,
    RotationStatus, StartConnectRequest, StartConnectResponse, connect_whats_app_request::Credential,
    media_chunk, token_vault_service_server::TokenVaultService,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tonic::{Request, Response, Status};

use crate::{
    connect::WhatsAppCredential,
    domain::caller::{RpcGroup, allowed},
    egress::EgressCall,
    error::VaultError,
    store::entity::channel,
    vault::Vault,
};

#[derive(Clone)]
pub struct TokenVault {
    vault: Arc<Vault>,
    callers: Arc<ServiceAuthenticator>,
}

fn ts(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

pub fn channel_to_proto(c: &channel::Model) -> pb::Channel {
    pb::Channel {
        channel_id: c.id.clone(),
        workspace_id: c.workspace_id.clone(),
        kind: c.kind,
        account_id: c.account_id.clone(),
        display_name: c.display_name.clone(),
        state: c.state,
        state_reason: c.state_reason.clone(),
        parent_account_id: c.parent_account_id.clone(),
        scopes: c
            .scopes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        token_expires_at: c.token_expires_at_ms.map(ts),
        last_checked_at: c.last_checked_at_ms.map(ts),
        connected_at: Some(ts(c.connected_at_ms)),
        connected_by: c.connected_by.clone(),
    }
}

impl TokenVault {
    pub fn new(vault: Arc<Vault>, callers: ServiceAuthenticator) -> Self {
        Self {
            vault,
            callers: Arc::new(callers),
        }
    }

    /// The calling service, if it authenticated and may use `group`.
    fn caller<T>(&self, request: &Request<T>, group: RpcGroup) -> Result<String, VaultError> {
        let service = self
            .callers
            .authenticate(request.metadata())
            .map_err(|s| VaultError::Unauthenticated(Box::new(s)))?;
        if !allowed(group, &service) {
            tracing::warn!(service, ?group, "service called an RPC outside its permissions");
            return Err(VaultError::CallerNotAllowed(service));
        }
        tracing::Span::current().record("caller", service.as_str());
        Ok(service)
    }
}

fn workspace(raw: &str) -> Result<WorkspaceId, VaultError> {
    Ok(WorkspaceId::parse(raw)?)
}

fn required<'a>(value: &'a str, name: &str) -> Result<&'a str, VaultError> {
    if value.is_empty() {
        Err(VaultError::InvalidArgument(format!("{name} is required")))
    } else {
        Ok(value)
    }
}

/// The chunks of one media download, checked against Meta's SHA-256 at the end.
type MediaStream = tokio_stream::wrappers::ReceiverStream<Result<MediaChunk, Status>>;

#[tonic::async_trait]
impl TokenVaultService for TokenVault {
    type FetchMediaStream = MediaStream;

    async fn fetch_media(
        &self,
        request: Request<FetchMediaRequest>,
    ) -> Result<Response<Self::FetchMediaStream>, Status> {
        let caller = self.caller(&request, RpcGroup::Egress)?;
        let r = request.into_inner();
        let ws = workspace(&r.workspace_id)?;
        let (info, mut download) = self
            .vault
            .open_media(
                &ws,
                required(&r.channel_id, "channel_id")?,
                required(&r.media_id, "media_id")?,
                r.actor.as_ref(),
                &caller,
            )
            .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let expected = info.sha256.clone();
        tokio::spawn(async move {
            let chunk = |part| Ok(MediaChunk { part: Some(part) });
            if tx.send(chunk(media_chunk::Part::Info(info))).await.is_err() {
                return;
            }
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            loop {
                match download.next_chunk().await {
                    Ok(Some(bytes)) => {
                        digest.update(&bytes);
                        if tx
                            .send(chunk(media_chunk::Part::Data(bytes.to_vec())))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx
                            .send(Err(Status::unavailable(format!("media download failed: {e}"))))
                            .await;
                        return;
                    }
                }
            }
            let got = hex::encode(digest.finish());
            if !expected.is_empty() && got != expected {
                tracing::warn!("media bytes do not match the SHA-256 Meta reported");
                let _ = tx
                    .send(Err(Status::data_loss(
                        "the media bytes do not match Meta's SHA-256",
                    )))
                    .await;
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    async fn get_info(&self, request: Request<GetInfoRequest>) -> Result<Response<GetInfoResponse>, Status> {
        self.caller(&request, RpcGroup::Info)?;
        Ok(Response::new(GetInfoResponse {
            service: "token-vault".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }))
    }

    async fn start_connect(
        &self,
        request: Request<StartConnectRequest>,
    ) -> Result<Response<StartConnectResponse>, Status> {
        self.caller(&request, RpcGroup::Manage)?;
        let r = request.into_inner();
        let ws = workspace(&r.workspace_id)?;
        let started = self
            .vault
            .start_connect(&ws, required(&r.user_id, "user_id")?, &r.redirect_uri)
            .await?;
        Ok(Response::new(StartConnectResponse {
            dialog_url: started.dialog_url,
            state: started.state,
            expires_at: Some(ts(started.expires_at_ms)),
        }))
    }

    async fn complete_connect(
        &self,
        request: Request<CompleteConnectRequest>,
    ) -> Result<Response<CompleteConnectResponse>, Status> {
        self.caller(&request, RpcGroup::Manage)?;
        let r = request.into_inner();
        let ws = workspace(&r.workspace_id)?;
        let c = self
            .vault
            .complete_connect(
                &ws,
                required(&r.user_id, "user_id")?,
                required(&r.state, "state")?,
                required(&r.code, "code")?,
            )
            .await?;
        Ok(Response::new(CompleteConnectResponse {
            session_id: c.session_id,
            pages: c.pages,
            expires_at: Some(ts(c.expires_at_ms)),
        }))
    }

    async fn confirm_connect(
        &self,
        request: Request<ConfirmConnectRequest>,
    ) -> Result<Response<ConnectResponse>, Status> {
        self.caller(&request, RpcGroup::Manage)?;
        let r = request.into_inner();
        let ws = workspace(&r.workspace_id)?;
        let channels = self
            .vault
            .confirm_connect(
                &ws,
                required(&r.user_id, "user_id")?,
                required(&r.session_id, "session_id")?,
                &r.page_ids,
            )
            .await?;
        Ok(Response::new(ConnectResponse {
            channels: channels.iter().map(channel_to_proto).collect(),
        }))
    }

    async fn connect_whats_app(
        &self,
        request: Request<ConnectWhatsAppRequest>,
    ) -> Result<Response<ConnectResponse>, Status> {
        self.caller(&request, RpcGroup::Manage)?;
        let r = request.into_inner();
        let ws = workspace(&r.workspace_id)?;
        let credential = match r.credential {
            Some(Credential::SystemUserToken(t)) if !t.is_empty() => WhatsAppCredential::SystemUserToken(t),
            Some(Credential::EmbeddedSignupCode(c)) if !c.is_empty() => {
                WhatsAppCredential::EmbeddedSignupCode(c)
            }
            _ => {
                return Err(VaultError::InvalidArgument(
                    "a system_user_token or an embedded_signup_code is required".into(),
                )
                .into());
            }
        };
        let channels = self
            .vault
            .connect_whatsapp(&ws, required(&r.user_id, "user_id")?, &r.waba_id, credential)
            .await?;
        Ok(Response::new(ConnectResponse {
            channels: channels.iter().map(channel_to_proto).collect(),
        }))
    }

    async fn list_channels(
        &self,
        request: Request<ListChannelsRequest>,
    ) -> Result<Response<ListChannelsResponse>, Status> {
        self.caller(&request, RpcGroup::Manage)?;
        let ws = workspace(&request.get_ref().workspace_id)?;
        let rows = channel::Entity::find()
            .filter(channel::Column::WorkspaceId.eq(ws.as_str()))
            .order_by_asc(channel::Column::ConnectedAtMs)
            .order_by_asc(channel::Column::Id)
            .all(self.vault.db())
            .await
            .map_err(VaultError::from)?;
        Ok(Response::new(ListChannelsResponse {
            channels: rows.iter().map(channel_to_proto).collect(),
        }))
    }

    async fn disconnect_channel(
        &self,
        request: Request<DisconnectChannelRequest>,
    ) -> Result<Response<DisconnectChannelResponse>, Status> {
        let caller = self.caller(&request, RpcGroup::Manage)?;
        let r = request.into_inner();
        let ws = workspace(&r.workspace_id)?;
        // The deletion service acts for Meta's callbacks, not for a person.
        let actor = if r.user_id.is_empty() { caller } else { r.user_id };
        let channel_ids = self
            .vault
            .disconnect(&ws, &actor, required(&r.channel_id, "channel_id")?)
            .await?;
        Ok(Response::new(DisconnectChannelResponse { channel_ids }))
    }

    async fn check_channel(
        &self,
        request: Request<CheckChannelRequest>,
    ) -> Result<Response<pb::Channel>, Status> {
        self.caller(&request, RpcGroup::Manage)?;
        let r = request.into_inner();
        let ws = workspace(&r.workspace_id)?;
        let (ch, health) = self
            .vault
            .check_channel(&ws, required(&r.channel_id, "channel_id")?)
            .await?;
        tracing::info!(channel_id = %ch.id, ?health, "channel checked on request");
        Ok(Response::new(channel_to_proto(&ch)))
    }

    async fn egress(&self, request: Request<EgressRequest>) -> Result<Response<EgressResponse>, Status> {
        let caller = self.caller(&request, RpcGroup::Egress)?;
        let r = request.into_inner();
        let ws = workspace(&r.workspace_id)?;
        let action = pb::EgressAction::try_from(r.action)
            .map_err(|_| VaultError::InvalidArgument("unknown egress action".into()))?;
        let outcome = self
            .vault
            .egress(EgressCall {
                workspace: &ws,
                channel_id: required(&r.channel_id, "channel_id")?,
                action,
                params_json: &r.params_json,
                on_behalf: r.actor.as_ref(),
                caller: &caller,
            })
            .await?;
        Ok(Response::new(EgressResponse {
            outcome: Some(outcome),
        }))
    }

    async fn rotate_data_key(
        &self,
        request: Request<RotateDataKeyRequest>,
    ) -> Result<Response<RotationStatus>, Status> {
        let caller = self.caller(&request, RpcGroup::Rotation)?;
        let ws = workspace(&request.get_ref().workspace_id)?;
        self.vault.rotate_data_key(&ws, &caller).await?;
        Ok(Response::new(self.vault.rotation_status().await?))
    }

    async fn get_rotation_status(
        &self,
        request: Request<GetRotationStatusRequest>,
    ) -> Result<Response<RotationStatus>, Status> {
        self.caller(&request, RpcGroup::Rotation)?;
        Ok(Response::new(self.vault.rotation_status().await?))
    }
}
