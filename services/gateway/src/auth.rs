//! The one layer in front of every gateway service: looks the call up in
//! [`crate::permissions::TABLE`], authenticates the session, and for workspace-scoped calls loads
//! the caller's membership of the request's workspace and checks the role, all before the handler
//! runs. Handlers read the outcome, an [`Actor`], from the request extensions; nothing about who
//! the caller is comes from a field the client wrote.
//!
//! It sits inside tonic-web's layer, so gRPC-web and native gRPC calls look the same here: a
//! gRPC-framed body. Errors leave as ordinary gRPC statuses through [`GatewayError`]'s mapping.

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    task::{Context, Poll},
};

use axum::extract::ConnectInfo;
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use prost::Message as _;
use sea_orm::DatabaseConnection;
use tonic::{body::Body, server::NamedService};
use tower::{Service, ServiceExt};

use scifer_ids::WorkspaceId;

use scifer_audit::{Audit, Outcome as AuditOutcome};

use crate::{
    audit::{ACCESS_DENIED, Auditor},
    clock::Clock,
    domain::{Role, SessionToken},
    error::GatewayError,
    permissions::{self, Access},
    store,
};

/// The largest request body the layer reads to find a workspace id. Workspace-scoped requests are
/// ids, small queries and composed messages (Meta caps a text at a few thousand characters; media
/// travel as URLs).
const MAX_SCOPED_REQUEST_BYTES: usize = 64 * 1024;

/// `last_seen` is written at most this often per session, not on every call.
const TOUCH_EVERY_MS: i64 = 60_000;

/// Who is calling, as the auth layer established it.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub session_id: String,
    /// Set for workspace-scoped calls: the caller's membership of the request's workspace.
    pub membership: Option<Membership>,
}

#[derive(Debug, Clone)]
pub struct Membership {
    pub workspace: WorkspaceId,
    pub role: Role,
    /// Publishing approval, granted per member; read by the approval RPCs when they land.
    #[allow(dead_code)]
    pub can_approve_posts: bool,
}

impl Actor {
    /// The actor the layer put on `request`. Missing means the layer did not run: fail closed.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Actor, GatewayError> {
        request
            .extensions()
            .get::<Actor>()
            .cloned()
            .ok_or(GatewayError::MissingActor)
    }

    /// The membership of a workspace-scoped call.
    pub fn membership(&self) -> Result<&Membership, GatewayError> {
        self.membership.as_ref().ok_or(GatewayError::MissingActor)
    }

    /// How internal services see this actor (`x-scifer-actor`).
    pub fn principal(&self) -> String {
        format!("user:{}", self.user_id)
    }
}

/// The client's address: the peer, or the first `x-forwarded-for` hop when that is trusted.
/// None only when neither is known (in-memory transports).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

/// What the layer needs; shared by every wrapped service.
pub struct Authenticator {
    db: DatabaseConnection,
    clock: Clock,
    trust_forwarded_for: bool,
    auditor: Auditor,
}

impl Authenticator {
    pub fn new(
        db: DatabaseConnection,
        clock: Clock,
        trust_forwarded_for: bool,
        auditor: Auditor,
    ) -> Arc<Self> {
        Arc::new(Self {
            db,
            clock,
            trust_forwarded_for,
            auditor,
        })
    }

    /// Wraps one generated service.
    pub fn wrap<S>(self: &Arc<Self>, inner: S) -> Authorized<S> {
        Authorized {
            inner,
            auth: self.clone(),
        }
    }

    async fn authorize(&self, request: http::Request<Body>) -> Result<http::Request<Body>, GatewayError> {
        let (mut parts, body) = request.into_parts();
        let client = self.client_addr(&parts);
        parts.extensions.insert(client);
        let path = parts.uri.path().to_string();
        let Some(access) = permissions::required(&path) else {
            return Err(GatewayError::NoPermissionEntry(path));
        };
        let body = match access {
            Access::Public => body,
            Access::Authenticated => {
                let actor = self.session(&parts.headers).await?;
                parts.extensions.insert(actor);
                body
            }
            Access::Workspace(required) => {
                let mut actor = self.session(&parts.headers).await?;
                let bytes = read_body(body).await?;
                let workspace = WorkspaceId::parse(&scoped_workspace_id(&bytes)?)?;
                let membership = store::find_membership(&self.db, workspace.as_str(), &actor.user_id).await?;
                // Not a member answers exactly as a workspace that does not exist.
                let Some(membership) = membership else {
                    tracing::warn!(
                        user_id = %actor.user_id,
                        %workspace,
                        %path,
                        "refused a call on a workspace the caller is not a member of"
                    );
                    self.record_outsider(&actor, workspace, &path).await?;
                    return Err(GatewayError::WorkspaceNotFound);
                };
                let role = Role::from_stored(&membership.role)
                    .ok_or_else(|| GatewayError::Internal(format!("stored role {:?}", membership.role)))?;
                if role < required {
                    tracing::info!(
                        user_id = %actor.user_id,
                        %workspace,
                        %path,
                        role = role.as_str(),
                        required = required.as_str(),
                        "refused a call the caller's role does not allow"
                    );
                    let detail = format!("role {}; requires {}", role.as_str(), required.as_str());
                    self.auditor
                        .record(denied(&workspace, &actor, &path).detail(detail))
                        .await;
                    return Err(GatewayError::PermissionDenied(
                        "your role in this workspace does not allow this",
                    ));
                }
                actor.membership = Some(Membership {
                    workspace,
                    role,
                    can_approve_posts: membership.can_approve_posts,
                });
                parts.extensions.insert(actor);
                Body::new(Full::new(bytes))
            }
        };
        Ok(http::Request::from_parts(parts, body))
    }

    /// Records a call on a workspace the caller is not a member of. When the workspace exists the
    /// record goes to its chain, so its admins see who probed it; otherwise to the global chain
    /// (operators), since a chain must not be created for any id a caller makes up.
    async fn record_outsider(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        path: &str,
    ) -> Result<(), GatewayError> {
        let audit = if store::workspace_exists(&self.db, workspace.as_str()).await? {
            denied(&workspace, actor, path).detail("not a member of this workspace")
        } else {
            self.auditor
                .account_event(
                    scifer_audit::Actor::user(&actor.user_id),
                    ACCESS_DENIED,
                    AuditOutcome::Denied,
                )
                .target("rpc", path)
                .detail(format!("no workspace {workspace}"))
        };
        self.auditor.record(audit).await;
        Ok(())
    }

    /// Whether `actor` may still do what this layer let it start: its session is still live
    /// (UNAUTHENTICATED otherwise) and, for a workspace-scoped call, it is still a member of the
    /// workspace (NOT_FOUND otherwise, as at the start). For calls that outlive the check at their
    /// start, such as WatchInbox. Every role may read, so only the membership itself matters.
    pub async fn still_allowed(&self, actor: &Actor) -> Result<(), GatewayError> {
        if !store::session_is_live(&self.db, &actor.session_id, self.clock.now_ms()).await? {
            return Err(GatewayError::Unauthenticated);
        }
        if let Some(membership) = &actor.membership
            && store::find_membership(&self.db, membership.workspace.as_str(), &actor.user_id)
                .await?
                .is_none()
        {
            return Err(GatewayError::WorkspaceNotFound);
        }
        Ok(())
    }

    /// The live session the `authorization` header names. Every way of failing (no header, not a
    /// bearer token, unknown, revoked, expired) is the same UNAUTHENTICATED.
    async fn session(&self, headers: &http::HeaderMap) -> Result<Actor, GatewayError> {
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(SessionToken::from_authorization)
            .ok_or(GatewayError::Unauthenticated)?;
        let now = self.clock.now_ms();
        let session = store::find_live_session(&self.db, &token.hash(), now)
            .await?
            .ok_or(GatewayError::Unauthenticated)?;
        if now - session.last_seen_at_ms >= TOUCH_EVERY_MS {
            // Bookkeeping only: a failed write must not fail the call.
            if let Err(e) = store::touch_session(&self.db, &session.id, now).await {
                tracing::warn!(error = %e, "cannot record a session's last use");
            }
        }
        Ok(Actor {
            user_id: session.user_id,
            session_id: session.id,
            membership: None,
        })
    }

    fn client_addr(&self, parts: &http::request::Parts) -> ClientAddr {
        if self.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|hop| hop.trim().parse::<IpAddr>().ok());
            if forwarded.is_some() {
                return ClientAddr(forwarded);
            }
        }
        ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        )
    }
}

/// A refused call on `workspace`, by `actor`, of the RPC at `path`.
fn denied(workspace: &WorkspaceId, actor: &Actor, path: &str) -> Audit {
    Audit::new(
        workspace,
        scifer_audit::Actor::user(&actor.user_id),
        ACCESS_DENIED,
        AuditOutcome::Denied,
    )
    .target("rpc", path)
}

/// Field 1 of a workspace-scoped request; the rest of the message is left to the handler.
#[derive(Clone, PartialEq, prost::Message)]
struct WorkspaceScoped {
    #[prost(string, tag = "1")]
    workspace_id: String,
}

async fn read_body(body: Body) -> Result<Bytes, GatewayError> {
    Limited::new(body, MAX_SCOPED_REQUEST_BYTES)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|_| GatewayError::BadRequestBody("the request is too large or was cut off"))
}

/// The workspace id in the first gRPC message of `body` (unary and server-streaming requests carry
/// exactly one). Compressed messages are refused: the gateway does not accept compression.
fn scoped_workspace_id(body: &[u8]) -> Result<String, GatewayError> {
    let malformed = GatewayError::BadRequestBody("the request is not a gRPC message");
    let (header, rest) = body.split_at_checked(5).ok_or(malformed)?;
    if header[0] != 0 {
        return Err(GatewayError::BadRequestBody(
            "compressed requests are not accepted",
        ));
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let message = rest
        .get(..len)
        .ok_or(GatewayError::BadRequestBody("the request is not a gRPC message"))?;
    WorkspaceScoped::decode(message)
        .map(|m| m.workspace_id)
        .map_err(|_| GatewayError::BadRequestBody("the request is not a valid message"))
}

/// A gateway service behind the auth layer.
pub struct Authorized<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S: Clone> Clone for Authorized<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            auth: self.auth.clone(),
        }
    }
}

impl<S: NamedService> NamedService for Authorized<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Authorized<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is awaited on the clone that serves the call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let auth = self.auth.clone();
        Box::pin(async move {
            match auth.authorize(request).await {
                Ok(request) => inner.oneshot(request).await,
                Err(error) => Ok(tonic::Status::from(error).into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(message: &[u8]) -> Vec<u8> {
        let mut body = vec![0u8];
        body.extend_from_slice(&(message.len() as u32).to_be_bytes());
        body.extend_from_slice(message);
        body
    }

    #[test]
    fn the_workspace_id_is_read_from_field_1_of_the_first_message() {
        let message = WorkspaceScoped {
            workspace_id: "ws-1".into(),
        }
        .encode_to_vec();
        // Other fields after it are left alone.
        let mut with_more = message.clone();
        with_more.extend_from_slice(&[0x12, 0x02, b'h', b'i']);
        assert_eq!(scoped_workspace_id(&frame(&with_more)).unwrap(), "ws-1");
        assert_eq!(scoped_workspace_id(&frame(&[])).unwrap(), "", "absent is empty");
    }

    #[test]
    fn truncated_and_compressed_frames_are_refused() {
        assert!(scoped_workspace_id(&[0, 0, 0]).is_err());
        assert!(scoped_workspace_id(&[0, 0, 0, 0, 9, 1]).is_err());
        let mut compressed = frame(&[0x0a, 0x01, b'a']);
        compressed[0] = 1;
        assert!(scoped_workspace_id(&compressed).is_err());
    }
}
