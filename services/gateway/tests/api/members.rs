//! WorkspaceApi: creating workspaces, adding members by email (the stand-in for invitations),
//! changing roles and removing members under the owner rules.

use scifer_proto::gateway::v1::{
    AddMemberRequest, ChangeRoleRequest, ListMembersRequest, ListWorkspacesRequest, RemoveMemberRequest, Role,
};
use tonic::Code;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_creator_owns_the_workspace_and_members_see_it_with_their_role() {
    let app = spawn_app().await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let agent = app.sign_up("agent").await;
    app.add_member(&owner, &workspace, &agent, Role::Agent).await;

    let listed = app
        .workspaces(Some(&agent.token))
        .list_workspaces(ListWorkspacesRequest {})
        .await
        .unwrap()
        .into_inner()
        .workspaces;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].workspace_id, workspace);
    assert_eq!(listed[0].role, Role::Agent as i32);

    let members = app
        .workspaces(Some(&agent.token))
        .list_members(ListMembersRequest {
            workspace_id: workspace.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .members;
    let roles: Vec<_> = members.iter().map(|m| (m.user_id.clone(), m.role)).collect();
    assert_eq!(
        roles,
        vec![
            (owner.user_id.clone(), Role::Owner as i32),
            (agent.user_id.clone(), Role::Agent as i32)
        ]
    );

    let again = app
        .workspaces(Some(&owner.token))
        .add_member(AddMemberRequest {
            workspace_id: workspace.clone(),
            email: agent.email.to_uppercase(),
            role: Role::Viewer as i32,
            can_approve_posts: false,
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
}

#[tokio::test]
async fn only_owners_touch_the_owner_role_and_the_last_owner_stays() {
    let app = spawn_app().await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let admin = app.sign_up("admin").await;
    app.add_member(&owner, &workspace, &admin, Role::Admin).await;
    let mut as_admin = app.workspaces(Some(&admin.token));

    let status = as_admin
        .change_role(ChangeRoleRequest {
            workspace_id: workspace.clone(),
            user_id: admin.user_id.clone(),
            role: Role::Owner as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = as_admin
        .remove_member(RemoveMemberRequest {
            workspace_id: workspace.clone(),
            user_id: owner.user_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let mut as_owner = app.workspaces(Some(&owner.token));
    let status = as_owner
        .change_role(ChangeRoleRequest {
            workspace_id: workspace.clone(),
            user_id: owner.user_id.clone(),
            role: Role::Admin as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    // With a second owner, the first may step down; the change applies on the next call.
    as_owner
        .change_role(ChangeRoleRequest {
            workspace_id: workspace.clone(),
            user_id: admin.user_id.clone(),
            role: Role::Owner as i32,
        })
        .await
        .unwrap();
    as_owner
        .change_role(ChangeRoleRequest {
            workspace_id: workspace.clone(),
            user_id: owner.user_id.clone(),
            role: Role::Viewer as i32,
        })
        .await
        .unwrap();
    let status = as_owner
        .list_members(ListMembersRequest {
            workspace_id: workspace.clone(),
        })
        .await;
    assert!(status.is_ok(), "viewers list members");
    let status = as_owner
        .remove_member(RemoveMemberRequest {
            workspace_id: workspace.clone(),
            user_id: admin.user_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "now a viewer: {status:?}");
}

#[tokio::test]
async fn members_of_another_workspace_cannot_be_named_from_this_one() {
    let app = spawn_app().await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let (stranger, _) = app.owner_with_workspace().await;
    let status = app
        .workspaces(Some(&owner.token))
        .remove_member(RemoveMemberRequest {
            workspace_id: workspace,
            user_id: stranger.user_id,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(status.message(), "member not found");
}
