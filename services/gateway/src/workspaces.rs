//! `scifer.gateway.v1.WorkspaceApi`: workspaces and their members. The auth layer has already
//! checked the caller's role for the workspace-scoped calls; what stays here are the rules that
//! depend on the member being changed (see [`check_membership_change`]).

use std::sync::Arc;

use scifer_audit::{Actor as AuditActor, Audit, Outcome, action};
use scifer_proto::gateway::v1::{
    self as proto, AddMemberRequest, ChangeRoleRequest, CreateWorkspaceRequest, InviteMemberRequest,
    ListMembersRequest, ListMembersResponse, ListWorkspacesRequest, ListWorkspacesResponse,
    RemoveMemberRequest, RemoveMemberResponse, workspace_api_server,
};
use tonic::{Request, Response, Status};

use crate::{
    accounts::Identity,
    auth::{Actor, Membership},
    clock::millis,
    domain::{
        Email, Invalid, InvitationToken, MembershipRule, Name, Role, WORKSPACE_NAME, check_membership_change,
    },
    error::GatewayError,
    mail::InvitationEmail,
    store::{self, InsertError, entity},
};

pub struct WorkspaceApi {
    identity: Arc<Identity>,
}

impl WorkspaceApi {
    pub fn new(identity: Arc<Identity>) -> Self {
        Self { identity }
    }

    /// The target member of a change, in the caller's workspace; NOT_FOUND when there is none.
    async fn member(
        &self,
        membership: &Membership,
        user_id: &str,
    ) -> Result<(entity::membership::Model, Role), GatewayError> {
        // Ids are UUIDs; anything else cannot be a member.
        uuid::Uuid::parse_str(user_id).map_err(|_| Invalid("user_id is not a valid id"))?;
        let member = store::find_membership(&self.identity.db, membership.workspace.as_str(), user_id)
            .await?
            .ok_or(GatewayError::NotFound("member not found"))?;
        let role = stored_role(&member.role)?;
        Ok((member, role))
    }

    async fn check(
        &self,
        membership: &Membership,
        from: Option<Role>,
        to: Option<Role>,
    ) -> Result<(), GatewayError> {
        let owners = store::count_owners(&self.identity.db, membership.workspace.as_str()).await?;
        check_membership_change(membership.role, from, to, owners).map_err(|rule| match rule {
            MembershipRule::OwnerRoleIsOwners => {
                GatewayError::PermissionDenied("only owners grant, change or remove the owner role")
            }
            MembershipRule::LastOwner => {
                GatewayError::FailedPrecondition("a workspace needs at least one owner")
            }
        })
    }
}

/// A successful change to a member of the caller's workspace, in that workspace's chain.
fn member_event(actor: &Actor, membership: &Membership, action: &str, member_id: &str) -> Audit {
    Audit::new(
        &membership.workspace,
        AuditActor::user(&actor.user_id),
        action,
        Outcome::Success,
    )
    .target("member", member_id)
}

fn stored_role(value: &str) -> Result<Role, GatewayError> {
    Role::from_stored(value).ok_or_else(|| GatewayError::Internal(format!("stored role {value:?}")))
}

fn member(membership: &entity::membership::Model, user: &entity::user::Model, role: Role) -> proto::Member {
    proto::Member {
        user_id: user.id.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        role: role.to_proto() as i32,
        can_approve_posts: membership.can_approve_posts,
    }
}

#[tonic::async_trait]
impl workspace_api_server::WorkspaceApi for WorkspaceApi {
    async fn create_workspace(
        &self,
        request: Request<CreateWorkspaceRequest>,
    ) -> Result<Response<proto::Workspace>, Status> {
        let actor = Actor::of(&request)?;
        let name = Name::parse(&request.get_ref().name, &WORKSPACE_NAME).map_err(GatewayError::from)?;
        let now = self.identity.clock.now_ms();
        let workspace = entity::workspace::Model {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.as_str().to_string(),
            created_at_ms: now,
        };
        let owner = entity::membership::Model {
            workspace_id: workspace.id.clone(),
            user_id: actor.user_id.clone(),
            role: Role::Owner.as_str().to_string(),
            can_approve_posts: true,
            created_at_ms: now,
        };
        store::create_workspace(&self.identity.db, workspace.clone(), owner)
            .await
            .map_err(GatewayError::from)?;
        tracing::info!(user_id = %actor.user_id, workspace = %workspace.id, "workspace created");
        Ok(Response::new(proto::Workspace {
            workspace_id: workspace.id,
            name: workspace.name,
            role: Role::Owner.to_proto() as i32,
        }))
    }

    async fn list_workspaces(
        &self,
        request: Request<ListWorkspacesRequest>,
    ) -> Result<Response<ListWorkspacesResponse>, Status> {
        let actor = Actor::of(&request)?;
        let rows = store::workspaces_of(&self.identity.db, &actor.user_id)
            .await
            .map_err(GatewayError::from)?;
        let mut workspaces = Vec::with_capacity(rows.len());
        for (membership, workspace) in rows {
            workspaces.push(proto::Workspace {
                workspace_id: workspace.id,
                name: workspace.name,
                role: stored_role(&membership.role)?.to_proto() as i32,
            });
        }
        Ok(Response::new(ListWorkspacesResponse { workspaces }))
    }

    async fn list_members(
        &self,
        request: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        let actor = Actor::of(&request)?;
        let membership = actor.membership()?;
        let rows = store::members_of(&self.identity.db, membership.workspace.as_str())
            .await
            .map_err(GatewayError::from)?;
        let mut members = Vec::with_capacity(rows.len());
        for (m, user) in rows {
            let role = stored_role(&m.role)?;
            members.push(member(&m, &user, role));
        }
        Ok(Response::new(ListMembersResponse { members }))
    }

    async fn add_member(
        &self,
        request: Request<AddMemberRequest>,
    ) -> Result<Response<proto::Member>, Status> {
        let actor = Actor::of(&request)?;
        let membership = actor.membership()?;
        let request = request.into_inner();
        let email = Email::parse(&request.email).map_err(GatewayError::from)?;
        let role = Role::from_proto(request.role).map_err(GatewayError::from)?;
        self.check(membership, None, Some(role)).await?;
        let user = store::find_user_by_email(&self.identity.db, email.as_str())
            .await
            .map_err(GatewayError::from)?
            .ok_or(GatewayError::NotFound("no account with this email"))?;
        let row = entity::membership::Model {
            workspace_id: membership.workspace.as_str().to_string(),
            user_id: user.id.clone(),
            role: role.as_str().to_string(),
            can_approve_posts: request.can_approve_posts,
            created_at_ms: self.identity.clock.now_ms(),
        };
        match store::insert_membership(&self.identity.db, row.clone()).await {
            Ok(()) => {}
            Err(InsertError::Duplicate) => {
                return Err(GatewayError::AlreadyExists("already a member of this workspace").into());
            }
            Err(InsertError::Db(e)) => return Err(GatewayError::from(e).into()),
        }
        tracing::info!(
            user_id = %actor.user_id,
            workspace = %membership.workspace,
            member = %user.id,
            role = role.as_str(),
            "member added"
        );
        // Invitations do not exist yet: adding an account by email is what stands in for one.
        self.identity
            .auditor
            .record(
                member_event(&actor, membership, action::MEMBER_INVITED, &user.id)
                    .detail(format!("added directly as {}", role.as_str())),
            )
            .await;
        Ok(Response::new(member(&row, &user, role)))
    }

    async fn change_role(
        &self,
        request: Request<ChangeRoleRequest>,
    ) -> Result<Response<proto::Member>, Status> {
        let actor = Actor::of(&request)?;
        let membership = actor.membership()?;
        let request = request.into_inner();
        let role = Role::from_proto(request.role).map_err(GatewayError::from)?;
        let (mut target, from) = self.member(membership, &request.user_id).await?;
        self.check(membership, Some(from), Some(role)).await?;
        store::set_role(
            &self.identity.db,
            membership.workspace.as_str(),
            &target.user_id,
            role,
        )
        .await
        .map_err(GatewayError::from)?;
        let user = store::find_user(&self.identity.db, &target.user_id)
            .await
            .map_err(GatewayError::from)?
            .ok_or(GatewayError::NotFound("member not found"))?;
        tracing::info!(
            user_id = %actor.user_id,
            workspace = %membership.workspace,
            member = %target.user_id,
            from = from.as_str(),
            to = role.as_str(),
            "member role changed"
        );
        self.identity
            .auditor
            .record(
                member_event(&actor, membership, action::MEMBER_ROLE_CHANGED, &target.user_id)
                    .detail(format!("{} -> {}", from.as_str(), role.as_str())),
            )
            .await;
        target.role = role.as_str().to_string();
        Ok(Response::new(member(&target, &user, role)))
    }

    async fn remove_member(
        &self,
        request: Request<RemoveMemberRequest>,
    ) -> Result<Response<RemoveMemberResponse>, Status> {
        let actor = Actor::of(&request)?;
        let membership = actor.membership()?;
        let (target, from) = self.member(membership, &request.get_ref().user_id).await?;
        self.check(membership, Some(from), None).await?;
        store::delete_membership(&self.identity.db, membership.workspace.as_str(), &target.user_id)
            .await
            .map_err(GatewayError::from)?;
        tracing::info!(
            user_id = %actor.user_id,
            workspace = %membership.workspace,
            member = %target.user_id,
            "member removed"
        );
        self.identity
            .auditor
            .record(
                member_event(&actor, membership, action::MEMBER_REMOVED, &target.user_id)
                    .detail(format!("was {}", from.as_str())),
            )
            .await;
        Ok(Response::new(RemoveMemberResponse {}))
    }

    async fn invite_member(
        &self,
        request: Request<InviteMemberRequest>,
    ) -> Result<Response<proto::Invitation>, Status> {
        let actor = Actor::of(&request)?;
        let membership = actor.membership()?;
        let request = request.into_inner();
        let email = Email::parse(&request.email).map_err(GatewayError::from)?;
        let role = Role::from_proto(request.role).map_err(GatewayError::from)?;
        self.check(membership, None, Some(role)).await?;
        let identity = &self.identity;
        let workspace_id = membership.workspace.as_str();
        if let Some(user) = store::find_user_by_email(&identity.db, email.as_str())
            .await
            .map_err(GatewayError::from)?
            && store::find_membership(&identity.db, workspace_id, &user.id)
                .await
                .map_err(GatewayError::from)?
                .is_some()
        {
            return Err(GatewayError::AlreadyExists("already a member of this workspace").into());
        }
        let workspace = store::find_workspace(&identity.db, workspace_id)
            .await
            .map_err(GatewayError::from)?
            .ok_or(GatewayError::WorkspaceNotFound)?;
        let inviter = store::find_user(&identity.db, &actor.user_id)
            .await
            .map_err(GatewayError::from)?
            .ok_or(GatewayError::Unauthenticated)?;
        let token = InvitationToken::generate(&identity.rng)
            .ok_or_else(|| GatewayError::Internal("the system RNG failed".into()))?;
        let now = identity.clock.now_ms();
        let row = entity::invitation::Model {
            id: uuid::Uuid::now_v7().to_string(),
            workspace_id: workspace_id.to_string(),
            email: email.as_str().to_string(),
            role: role.as_str().to_string(),
            can_approve_posts: request.can_approve_posts,
            token_hash: token.hash().as_str().to_string(),
            invited_by: actor.user_id.clone(),
            created_at_ms: now,
            expires_at_ms: now.saturating_add(millis(identity.invitation_ttl)),
            accepted_at_ms: None,
            accepted_by: None,
        };
        store::insert_invitation(&identity.db, row.clone())
            .await
            .map_err(GatewayError::from)?;
        let message = InvitationEmail {
            invitation_id: row.id.clone(),
            to: email,
            workspace_name: workspace.name,
            inviter_name: inviter.name,
            role,
            token,
            valid_for: identity.invitation_ttl,
        };
        if let Err(error) = identity.mailer.send_invitation(&message).await {
            tracing::warn!(
                error = %scifer_plumbing::error_chain(&error),
                invitation_id = %row.id,
                "the invitation email could not be sent; the invitation is withdrawn"
            );
            // Nobody can hold this token: the invitation goes too.
            if let Err(e) = store::delete_invitation(&identity.db, &row.id).await {
                tracing::error!(error = %e, invitation_id = %row.id, "cannot withdraw an unsent invitation");
            }
            identity
                .auditor
                .record(
                    Audit::new(
                        &membership.workspace,
                        AuditActor::user(&actor.user_id),
                        action::MEMBER_INVITED,
                        Outcome::Failure,
                    )
                    .target("invitation", &row.id)
                    .detail("the email could not be sent"),
                )
                .await;
            return Err(Status::unavailable(
                "the invitation email could not be sent; try again later",
            ));
        }
        tracing::info!(
            user_id = %actor.user_id,
            workspace = %membership.workspace,
            invitation_id = %row.id,
            role = role.as_str(),
            "member invited"
        );
        identity
            .auditor
            .record(
                Audit::new(
                    &membership.workspace,
                    AuditActor::user(&actor.user_id),
                    action::MEMBER_INVITED,
                    Outcome::Success,
                )
                .target("invitation", &row.id)
                .detail(format!("invited as {}", role.as_str())),
            )
            .await;
        Ok(Response::new(proto::Invitation {
            invitation_id: row.id,
            workspace_id: row.workspace_id,
            email: row.email,
            role: role.to_proto() as i32,
            can_approve_posts: row.can_approve_posts,
            expires_at_ms: row.expires_at_ms,
        }))
    }
}
