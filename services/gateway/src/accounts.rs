//! `scifer.gateway.v1.AccountApi`: sign-up, login with its failure limits, logout, the account,
//! password and email change (both revoke the account's other sessions). Sign-up, logins, logouts
//! and every account change are audited in the global chain. Passwords and tokens never reach a
//! log line: they live in [`Password`] and [`SessionToken`], which do not print.

use std::{net::IpAddr, sync::Arc, time::Duration};

use ring::rand::SystemRandom;
use scifer_audit::{Actor as AuditActor, Outcome, action};
use scifer_proto::gateway::v1::{
    self as proto, AcceptInvitationRequest, ChangeEmailRequest, ChangePasswordRequest,
    ChangePasswordResponse, GetAccountRequest, LoginRequest, LogoutRequest, LogoutResponse, SessionResponse,
    SignUpRequest, UpdateAccountRequest, account_api_server,
};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use crate::{
    audit::{Auditor, EMAIL_SHA256, email_digest},
    auth::{Actor, ClientAddr},
    clock::{Clock, millis},
    domain::{Email, InvitationToken, Name, PERSON_NAME, Password, PasswordHasher, Role, SessionToken},
    error::GatewayError,
    mail::Mailer,
    store::{self, AcceptError, InsertError, entity},
};

/// One answer for an invitation token that is malformed, unknown, spent or expired.
const NO_OPEN_INVITATION: &str = "no open invitation for this token (unknown, already used or expired)";

/// Limits on failed logins: at most `per_account` per email and `per_address` per client address
/// within `window`.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_account: u32,
    pub per_address: u32,
    pub window: Duration,
}

/// What the account and workspace handlers share.
pub struct Identity {
    pub db: DatabaseConnection,
    pub clock: Clock,
    pub hasher: PasswordHasher,
    pub rng: SystemRandom,
    pub session_ttl: Duration,
    pub limits: LoginLimits,
    pub auditor: Auditor,
    pub mailer: Arc<dyn Mailer>,
    pub invitation_ttl: Duration,
}

impl Identity {
    async fn hash(&self, password: Password) -> Result<String, GatewayError> {
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || hasher.hash(&password))
            .await
            .map_err(|e| GatewayError::Internal(format!("hashing task: {e}")))?
            .map_err(GatewayError::from)
    }

    async fn verify(&self, password: Password, stored: Option<String>) -> Result<bool, GatewayError> {
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || hasher.verify(&password, stored.as_deref()))
            .await
            .map_err(|e| GatewayError::Internal(format!("verifying task: {e}")))?
            .map_err(GatewayError::from)
    }

    /// Opens a session for `user` and returns what the client needs, with the session's id.
    async fn open_session(
        &self,
        user: entity::user::Model,
    ) -> Result<(SessionResponse, String), GatewayError> {
        let token = SessionToken::generate(&self.rng)
            .ok_or_else(|| GatewayError::Internal("the system RNG failed".into()))?;
        let now = self.clock.now_ms();
        let expires_at_ms = now.saturating_add(millis(self.session_ttl));
        let session_id = uuid::Uuid::now_v7().to_string();
        store::insert_session(
            &self.db,
            entity::session::Model {
                id: session_id.clone(),
                user_id: user.id.clone(),
                token_hash: token.hash().as_str().to_string(),
                created_at_ms: now,
                expires_at_ms,
                revoked_at_ms: None,
                last_seen_at_ms: now,
            },
        )
        .await?;
        let response = SessionResponse {
            session_token: token.reveal(),
            account: Some(account(&user)),
            expires_at_ms,
        };
        Ok((response, session_id))
    }

    /// Records a refused login. The actor is the account when `email` has one; otherwise the
    /// system, with the attempted email only as [`email_digest`].
    async fn audit_failed_login(
        &self,
        user: Option<&entity::user::Model>,
        email: &str,
        outcome: Outcome,
        detail: &str,
    ) {
        let audit = match user {
            Some(user) => self
                .auditor
                .account_event(AuditActor::user(&user.id), action::AUTH_LOGIN_FAILED, outcome)
                .target("account", &user.id),
            None => self
                .auditor
                .account_event(AuditActor::system(), action::AUTH_LOGIN_FAILED, outcome)
                .target(EMAIL_SHA256, email_digest(email)),
        };
        self.auditor.record(audit.detail(detail)).await;
    }

    /// Records an email change (or a refused one) of `user_id`'s account. The addresses are not
    /// part of the record, in clear or otherwise.
    async fn audit_email_change(&self, user_id: &str, outcome: Outcome, detail: &str) {
        let audit = self
            .auditor
            .account_event(AuditActor::user(user_id), action::ACCOUNT_EMAIL_CHANGED, outcome)
            .target("account", user_id)
            .detail(detail);
        self.auditor.record(audit).await;
    }

    /// Refuses the attempt when any of `keys` has used up its failures in the current window.
    async fn check_limits(&self, keys: &[(String, u32)]) -> Result<(), GatewayError> {
        let now = self.clock.now_ms();
        let window = millis(self.limits.window);
        for (key, limit) in keys {
            if let Some(row) = store::current_failures(&self.db, key, window, now).await?
                && i64::from(row.count) >= i64::from(*limit)
            {
                let retry_after_ms = (row.window_start_ms + window - now).max(0);
                return Err(GatewayError::TooManyLogins {
                    retry_after: Duration::from_millis(retry_after_ms.unsigned_abs()),
                });
            }
        }
        Ok(())
    }

    async fn record_failure(&self, keys: &[(String, u32)]) -> Result<(), GatewayError> {
        let now = self.clock.now_ms();
        for (key, _) in keys {
            store::record_failure(&self.db, key, millis(self.limits.window), now).await?;
        }
        Ok(())
    }

    /// Checks `offered` against the account's password before a sensitive change, under the
    /// account's login limit: a stolen session must not become a way to guess the password.
    async fn reverify(&self, user: &entity::user::Model, offered: String) -> Result<(), GatewayError> {
        let current = Password::offered(offered).map_err(|_| GatewayError::WrongCurrentPassword)?;
        let email = Email::parse(&user.email)?;
        let keys = [self.account_key(&email)];
        self.check_limits(&keys).await?;
        if !self.verify(current, Some(user.password_hash.clone())).await? {
            self.record_failure(&keys).await?;
            return Err(GatewayError::WrongCurrentPassword);
        }
        Ok(())
    }

    async fn current_user(&self, actor: &Actor) -> Result<entity::user::Model, GatewayError> {
        store::find_user(&self.db, &actor.user_id)
            .await?
            .ok_or(GatewayError::Unauthenticated)
    }

    fn account_key(&self, email: &Email) -> (String, u32) {
        (format!("account:{}", email.as_str()), self.limits.per_account)
    }

    fn address_key(&self, addr: IpAddr) -> (String, u32) {
        (format!("address:{addr}"), self.limits.per_address)
    }
}

pub fn account(user: &entity::user::Model) -> proto::Account {
    proto::Account {
        user_id: user.id.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
    }
}

pub struct AccountApi {
    identity: Arc<Identity>,
}

impl AccountApi {
    pub fn new(identity: Arc<Identity>) -> Self {
        Self { identity }
    }
}

#[tonic::async_trait]
impl account_api_server::AccountApi for AccountApi {
    async fn sign_up(&self, request: Request<SignUpRequest>) -> Result<Response<SessionResponse>, Status> {
        let request = request.into_inner();
        let email = Email::parse(&request.email).map_err(GatewayError::from)?;
        let name = Name::parse(&request.name, &PERSON_NAME).map_err(GatewayError::from)?;
        let password = Password::parse_new(request.password).map_err(GatewayError::from)?;
        let password_hash = self.identity.hash(password).await?;
        let user = entity::user::Model {
            id: uuid::Uuid::now_v7().to_string(),
            email: email.as_str().to_string(),
            name: name.as_str().to_string(),
            password_hash,
            created_at_ms: self.identity.clock.now_ms(),
        };
        let auditor = &self.identity.auditor;
        match store::insert_user(&self.identity.db, user.clone()).await {
            Ok(()) => {}
            Err(InsertError::Duplicate) => {
                // Someone may be probing which addresses have accounts: recorded under the
                // address's digest, never the address.
                auditor
                    .account(AuditActor::system(), action::ACCOUNT_CREATED, Outcome::Failure)
                    .target(EMAIL_SHA256, email_digest(email.as_str()))
                    .detail("an account with this email exists")
                    .record()
                    .await;
                return Err(GatewayError::AlreadyExists("an account with this email exists").into());
            }
            Err(InsertError::Db(e)) => return Err(GatewayError::from(e).into()),
        }
        tracing::info!(user_id = %user.id, "account created");
        auditor
            .account(
                AuditActor::user(&user.id),
                action::ACCOUNT_CREATED,
                Outcome::Success,
            )
            .target("account", &user.id)
            .record()
            .await;
        let (response, _) = self.identity.open_session(user).await?;
        Ok(Response::new(response))
    }

    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<SessionResponse>, Status> {
        let client = request.extensions().get::<ClientAddr>().and_then(|c| c.0);
        let request = request.into_inner();
        // A malformed email cannot have an account: the same answer as a wrong password.
        let Ok(email) = Email::parse(&request.email) else {
            self.identity
                .audit_failed_login(None, &request.email, Outcome::Failure, "malformed email")
                .await;
            return Err(GatewayError::BadCredentials.into());
        };
        let user = store::find_user_by_email(&self.identity.db, email.as_str())
            .await
            .map_err(GatewayError::from)?;
        let Ok(password) = Password::offered(request.password) else {
            self.identity
                .audit_failed_login(user.as_ref(), email.as_str(), Outcome::Failure, "no password")
                .await;
            return Err(GatewayError::BadCredentials.into());
        };
        let mut keys = vec![self.identity.account_key(&email)];
        keys.extend(client.map(|addr| self.identity.address_key(addr)));
        if let Err(error) = self.identity.check_limits(&keys).await {
            tracing::warn!(client = ?client, "login refused: too many failures");
            self.identity
                .audit_failed_login(
                    user.as_ref(),
                    email.as_str(),
                    Outcome::Denied,
                    "too many failed logins",
                )
                .await;
            return Err(error.into());
        }
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let matches = self.identity.verify(password, stored).await?;
        let user = match user {
            Some(user) if matches => user,
            user => {
                self.identity.record_failure(&keys).await?;
                tracing::info!(client = ?client, "login failed");
                let detail = if user.is_some() {
                    "wrong password"
                } else {
                    "no such account"
                };
                self.identity
                    .audit_failed_login(user.as_ref(), email.as_str(), Outcome::Failure, detail)
                    .await;
                return Err(GatewayError::BadCredentials.into());
            }
        };
        // A success ends the account's run of failures; the address keeps its count.
        store::clear_failures(&self.identity.db, &keys[0].0)
            .await
            .map_err(GatewayError::from)?;
        tracing::info!(user_id = %user.id, "logged in");
        let user_id = user.id.clone();
        let (response, session_id) = self.identity.open_session(user).await?;
        let auditor = &self.identity.auditor;
        auditor
            .account(AuditActor::user(&user_id), action::AUTH_LOGIN, Outcome::Success)
            .target("session", session_id)
            .record()
            .await;
        Ok(Response::new(response))
    }

    async fn logout(&self, request: Request<LogoutRequest>) -> Result<Response<LogoutResponse>, Status> {
        let actor = Actor::of(&request)?;
        store::revoke_session(&self.identity.db, &actor.session_id, self.identity.clock.now_ms())
            .await
            .map_err(GatewayError::from)?;
        tracing::info!(user_id = %actor.user_id, session_id = %actor.session_id, "logged out");
        let auditor = &self.identity.auditor;
        auditor
            .account(
                AuditActor::user(&actor.user_id),
                action::AUTH_SESSION_REVOKED,
                Outcome::Success,
            )
            .target("session", &actor.session_id)
            .detail("logout")
            .record()
            .await;
        Ok(Response::new(LogoutResponse {}))
    }

    async fn get_account(
        &self,
        request: Request<GetAccountRequest>,
    ) -> Result<Response<proto::Account>, Status> {
        let actor = Actor::of(&request)?;
        let user = store::find_user(&self.identity.db, &actor.user_id)
            .await
            .map_err(GatewayError::from)?
            .ok_or(GatewayError::Unauthenticated)?;
        Ok(Response::new(account(&user)))
    }

    async fn change_password(
        &self,
        request: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        let actor = Actor::of(&request)?;
        let request = request.into_inner();
        let new_password = Password::parse_new(request.new_password).map_err(GatewayError::from)?;
        let user = self.identity.current_user(&actor).await?;
        self.identity.reverify(&user, request.current_password).await?;
        let hash = self.identity.hash(new_password).await?;
        store::set_password_hash(&self.identity.db, &user.id, hash)
            .await
            .map_err(GatewayError::from)?;
        let revoked = store::revoke_other_sessions(
            &self.identity.db,
            &user.id,
            &actor.session_id,
            self.identity.clock.now_ms(),
        )
        .await
        .map_err(GatewayError::from)?;
        tracing::info!(user_id = %user.id, revoked_sessions = revoked, "password changed");
        // One record for the change: the catalogue has no password action, and the sessions it
        // ended are what an investigator needs.
        let auditor = &self.identity.auditor;
        auditor
            .account(
                AuditActor::user(&user.id),
                action::AUTH_SESSION_REVOKED,
                Outcome::Success,
            )
            .target("account", &user.id)
            .detail(format!(
                "password changed; {revoked} other session(s) revoked, session {} kept",
                actor.session_id
            ))
            .record()
            .await;
        Ok(Response::new(ChangePasswordResponse {}))
    }

    async fn update_account(
        &self,
        request: Request<UpdateAccountRequest>,
    ) -> Result<Response<proto::Account>, Status> {
        let actor = Actor::of(&request)?;
        let name = Name::parse(&request.get_ref().name, &PERSON_NAME).map_err(GatewayError::from)?;
        let mut user = self.identity.current_user(&actor).await?;
        store::set_name(&self.identity.db, &user.id, name.as_str())
            .await
            .map_err(GatewayError::from)?;
        tracing::info!(user_id = %user.id, "account name changed");
        let auditor = &self.identity.auditor;
        auditor
            .account(
                AuditActor::user(&user.id),
                action::ACCOUNT_UPDATED,
                Outcome::Success,
            )
            .target("account", &user.id)
            .detail("name changed")
            .record()
            .await;
        user.name = name.as_str().to_string();
        Ok(Response::new(account(&user)))
    }

    async fn change_email(
        &self,
        request: Request<ChangeEmailRequest>,
    ) -> Result<Response<proto::Account>, Status> {
        let actor = Actor::of(&request)?;
        let request = request.into_inner();
        let new_email = Email::parse(&request.new_email).map_err(GatewayError::from)?;
        let mut user = self.identity.current_user(&actor).await?;
        let identity = &self.identity;
        if let Err(error) = identity.reverify(&user, request.current_password).await {
            let detail = match &error {
                GatewayError::TooManyLogins { .. } => "too many failed password checks",
                _ => "wrong current password",
            };
            identity
                .audit_email_change(&user.id, Outcome::Failure, detail)
                .await;
            return Err(error.into());
        }
        // The same address again changes nothing: no record, no session ended.
        if new_email.as_str() != user.email {
            match store::set_email(&identity.db, &user.id, new_email.as_str()).await {
                Ok(()) => {}
                Err(InsertError::Duplicate) => {
                    identity
                        .audit_email_change(
                            &user.id,
                            Outcome::Failure,
                            "the new email belongs to another account",
                        )
                        .await;
                    return Err(GatewayError::AlreadyExists("an account with this email exists").into());
                }
                Err(InsertError::Db(e)) => return Err(GatewayError::from(e).into()),
            }
            // Whoever held another session signed in under the old address: like a password
            // change, the change ends every session but the one that made it.
            let revoked = store::revoke_other_sessions(
                &identity.db,
                &user.id,
                &actor.session_id,
                identity.clock.now_ms(),
            )
            .await
            .map_err(GatewayError::from)?;
            tracing::info!(user_id = %user.id, revoked_sessions = revoked, "account email changed");
            identity
                .audit_email_change(
                    &user.id,
                    Outcome::Success,
                    &format!(
                        "{revoked} other session(s) revoked, session {} kept",
                        actor.session_id
                    ),
                )
                .await;
        }
        user.email = new_email.as_str().to_string();
        Ok(Response::new(account(&user)))
    }

    async fn accept_invitation(
        &self,
        request: Request<AcceptInvitationRequest>,
    ) -> Result<Response<proto::Workspace>, Status> {
        let actor = Actor::of(&request)?;
        let token = InvitationToken::offered(&request.get_ref().token)
            .ok_or(GatewayError::NotFound(NO_OPEN_INVITATION))?;
        let identity = &self.identity;
        let now = identity.clock.now_ms();
        let invitation = store::find_open_invitation(&identity.db, &token.hash(), now)
            .await
            .map_err(GatewayError::from)?
            .ok_or(GatewayError::NotFound(NO_OPEN_INVITATION))?;
        let user = identity.current_user(&actor).await?;
        if user.email != invitation.email {
            tracing::info!(
                user_id = %user.id,
                invitation_id = %invitation.id,
                "invitation refused: addressed to another email"
            );
            return Err(GatewayError::PermissionDenied(
                "this invitation was sent to another email address; sign in with that one",
            )
            .into());
        }
        let role = Role::from_stored(&invitation.role)
            .ok_or_else(|| GatewayError::Internal(format!("stored role {:?}", invitation.role)))?;
        let workspace = store::find_workspace(&identity.db, &invitation.workspace_id)
            .await
            .map_err(GatewayError::from)?
            .ok_or(GatewayError::NotFound(NO_OPEN_INVITATION))?;
        let member = entity::membership::Model {
            workspace_id: invitation.workspace_id.clone(),
            user_id: user.id.clone(),
            role: role.as_str().to_string(),
            can_approve_posts: invitation.can_approve_posts,
            created_at_ms: now,
        };
        match store::accept_invitation(&identity.db, &invitation, member, now).await {
            Ok(()) => {}
            Err(AcceptError::NotOpen) => return Err(GatewayError::NotFound(NO_OPEN_INVITATION).into()),
            Err(AcceptError::AlreadyMember) => {
                return Err(GatewayError::AlreadyExists("already a member of this workspace").into());
            }
            Err(AcceptError::Db(e)) => return Err(GatewayError::from(e).into()),
        }
        tracing::info!(
            user_id = %user.id,
            workspace = %invitation.workspace_id,
            invitation_id = %invitation.id,
            role = role.as_str(),
            "invitation accepted"
        );
        // The catalogue has no `member.joined`: the acceptance is a second `member.invited`
        // record for the same invitation, in the workspace's chain, marked "accepted".
        match scifer_ids::WorkspaceId::parse(&invitation.workspace_id) {
            Ok(workspace_id) => {
                identity
                    .auditor
                    .record(
                        scifer_audit::Audit::new(
                            &workspace_id,
                            AuditActor::user(&user.id),
                            action::MEMBER_INVITED,
                            Outcome::Success,
                        )
                        .target("invitation", &invitation.id)
                        .detail(format!("accepted as {}", role.as_str())),
                    )
                    .await;
            }
            Err(e) => tracing::error!(error = %e, "an invitation's workspace id does not parse; not audited"),
        }
        Ok(Response::new(proto::Workspace {
            workspace_id: workspace.id,
            name: workspace.name,
            role: role.to_proto() as i32,
        }))
    }
}
