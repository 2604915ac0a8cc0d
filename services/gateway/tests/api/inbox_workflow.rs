//! The team workflow through the gateway: UpdateConversation, assignment settings and agent
//! availability forwarded to inbox (the recording double) with the workspace and actor in
//! metadata; what only admins may do (assigning others or a team, other members' availability)
//! refused for agents before inbox and recorded; the assignee guard set from the session, never
//! from the client.

use scifer_audit::store::{self, Filter, PageRequest, entity::audit_record};
use scifer_proto::{
    gateway::v1::{
        GetAssignmentSettingsRequest, Role, SetAgentAvailabilityRequest, UpdateAssignmentSettingsRequest,
        UpdateConversationRequest,
    },
    inbox::v1::{self as inbox, ConversationStatus},
};
use tonic::Code;

use crate::helpers::{InboxRequest, PATIENCE, TestApp, User, spawn_app};

/// A workspace with its owner, an admin, two agents and a viewer.
pub struct Team {
    pub workspace: String,
    pub admin: User,
    pub agent: User,
    pub other_agent: User,
    pub viewer: User,
}

pub async fn team(app: &TestApp) -> Team {
    let (owner, workspace) = app.owner_with_workspace().await;
    let admin = app.sign_up("admin").await;
    let agent = app.sign_up("agent").await;
    let other_agent = app.sign_up("agent2").await;
    let viewer = app.sign_up("viewer").await;
    app.add_member(&owner, &workspace, &admin, Role::Admin).await;
    app.add_member(&owner, &workspace, &agent, Role::Agent).await;
    app.add_member(&owner, &workspace, &other_agent, Role::Agent)
        .await;
    app.add_member(&owner, &workspace, &viewer, Role::Viewer).await;
    Team {
        workspace,
        admin,
        agent,
        other_agent,
        viewer,
    }
}

fn update(workspace: &str, update: inbox::UpdateConversationRequest) -> UpdateConversationRequest {
    UpdateConversationRequest {
        workspace_id: workspace.into(),
        update: Some(update),
    }
}

fn assign(to: &str) -> inbox::UpdateConversationRequest {
    inbox::UpdateConversationRequest {
        conversation_id: "c1".into(),
        assignee_id: Some(to.into()),
        ..Default::default()
    }
}

/// The last request that reached the inbox double.
fn last(app: &TestApp) -> InboxRequest {
    app.inbox.requests().pop().expect("a call reached inbox").request
}

/// The workspace's `access.denied` records, oldest first, once there are at least `count`.
pub async fn denials(app: &TestApp, workspace: &str, count: usize) -> Vec<audit_record::Model> {
    records(app, workspace, "access.denied", count).await
}

/// The workspace's records of `action`, oldest first, once there are at least `count`.
pub async fn records(app: &TestApp, workspace: &str, action: &str, count: usize) -> Vec<audit_record::Model> {
    let db = scifer_db::connect(&app.db_url).await.unwrap();
    let workspace = scifer_ids::WorkspaceId::parse(workspace).unwrap();
    let filter = Filter {
        action: Some(action.into()),
        ..Filter::default()
    };
    let page = PageRequest {
        before: None,
        limit: store::MAX_PAGE,
    };
    let list = || async {
        let mut records = store::list(&db, &workspace, &filter, page).await.unwrap().records;
        records.reverse();
        records
    };
    let stored = scifer_test_support::wait_until(PATIENCE, || async { list().await.len() >= count }).await;
    let records = list().await;
    assert!(
        stored.is_ok(),
        "{} of {count} denials: {records:#?}",
        records.len()
    );
    records
}

#[tokio::test]
async fn an_agent_takes_and_releases_with_the_guard_set_from_the_session() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut client = app.inbox_client(Some(&team.agent.token));

    // The client claims the guard is someone else's: the gateway sets it to the caller.
    let taken = client
        .update_conversation(update(
            &team.workspace,
            inbox::UpdateConversationRequest {
                assignee_guard: team.admin.user_id.clone(),
                status: ConversationStatus::Pending as i32,
                ..assign(&team.agent.user_id)
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(taken.assignee_id, team.agent.user_id);
    assert_eq!(taken.status, ConversationStatus::Pending as i32);
    let InboxRequest::UpdateConversation(forwarded) = last(&app) else {
        panic!("{:?}", last(&app))
    };
    assert_eq!(forwarded.assignee_guard, team.agent.user_id);
    assert_eq!(
        forwarded.assignee_id.as_deref(),
        Some(team.agent.user_id.as_str())
    );
    let metadata = &app.inbox.requests().pop().unwrap().metadata;
    assert_eq!(
        metadata.get(gateway::WORKSPACE_METADATA).unwrap(),
        team.workspace.as_str()
    );
    assert_eq!(
        metadata.get(gateway::ACTOR_METADATA).unwrap(),
        format!("user:{}", team.agent.user_id).as_str()
    );

    // Releasing (an empty assignee) and a status change alone are theirs to do too.
    for change in [
        assign(""),
        inbox::UpdateConversationRequest {
            conversation_id: "c1".into(),
            status: ConversationStatus::Resolved as i32,
            ..Default::default()
        },
    ] {
        client
            .update_conversation(update(&team.workspace, change.clone()))
            .await
            .unwrap();
        let InboxRequest::UpdateConversation(forwarded) = last(&app) else {
            panic!()
        };
        assert_eq!(
            forwarded,
            inbox::UpdateConversationRequest {
                assignee_guard: team.agent.user_id.clone(),
                ..change
            }
        );
    }
    // Inbox's NOT_FOUND passes through.
    let missing = client
        .update_conversation(update(
            &team.workspace,
            inbox::UpdateConversationRequest {
                conversation_id: "c404".into(),
                ..assign(&team.agent.user_id)
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn agents_may_not_assign_other_members_or_teams_and_the_refusals_are_recorded() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut client = app.inbox_client(Some(&team.agent.token));
    let refused = client
        .update_conversation(update(&team.workspace, assign(&team.other_agent.user_id)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = client
        .update_conversation(update(
            &team.workspace,
            inbox::UpdateConversationRequest {
                team_id: Some("billing".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(app.inbox.calls(), 0, "a refused change reached inbox");

    let denied = denials(&app, &team.workspace, 2).await;
    let rows: Vec<_> = denied
        .iter()
        .map(|r| {
            (
                r.actor_id.as_str(),
                r.target_id.as_str(),
                r.outcome.as_str(),
                r.detail.as_str(),
            )
        })
        .collect();
    let rpc = "/scifer.gateway.v1.InboxApi/UpdateConversation";
    let agent = team.agent.user_id.as_str();
    assert_eq!(
        rows,
        [
            (
                agent,
                rpc,
                "denied",
                "role agent; assigning another member is for admins"
            ),
            (agent, rpc, "denied", "role agent; assigning a team is for admins"),
        ]
    );
}

#[tokio::test]
async fn admins_assign_members_with_the_agent_role_and_teams_without_a_guard() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut client = app.inbox_client(Some(&team.admin.token));

    let assigned = client
        .update_conversation(update(
            &team.workspace,
            inbox::UpdateConversationRequest {
                team_id: Some("billing".into()),
                assignee_guard: team.admin.user_id.clone(),
                ..assign(&team.other_agent.user_id)
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(assigned.assignee_id, team.other_agent.user_id);
    assert_eq!(assigned.team_id, "billing");
    let InboxRequest::UpdateConversation(forwarded) = last(&app) else {
        panic!()
    };
    assert_eq!(forwarded.assignee_guard, "", "admins are not guarded");

    // A viewer, a member of no workspace here, or a made-up id cannot be given conversations.
    let stranger = app.sign_up("stranger").await;
    for user in [
        team.viewer.user_id.as_str(),
        stranger.user_id.as_str(),
        "not-a-user",
    ] {
        let refused = client
            .update_conversation(update(&team.workspace, assign(user)))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{user}: {refused:?}");
    }
    assert_eq!(app.inbox.calls(), 1, "only the valid change reached inbox");
}

#[tokio::test]
async fn assignment_settings_are_read_by_members_and_changed_by_admins() {
    let app = spawn_app().await;
    let team = team(&app).await;

    let read = app
        .inbox_client(Some(&team.viewer.token))
        .get_assignment_settings(GetAssignmentSettingsRequest {
            workspace_id: team.workspace.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(read.auto_assign);
    assert_eq!(read.agents[0].open_assigned, 2);

    let change = UpdateAssignmentSettingsRequest {
        workspace_id: team.workspace.clone(),
        settings: Some(inbox::UpdateAssignmentSettingsRequest {
            auto_assign: true,
            max_open_per_agent: 5,
        }),
    };
    let refused = app
        .inbox_client(Some(&team.agent.token))
        .update_assignment_settings(change.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let changed = app
        .inbox_client(Some(&team.admin.token))
        .update_assignment_settings(change)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.max_open_per_agent, 5);
    assert_eq!(
        last(&app),
        InboxRequest::UpdateAssignmentSettings(inbox::UpdateAssignmentSettingsRequest {
            auto_assign: true,
            max_open_per_agent: 5,
        })
    );
}

#[tokio::test]
async fn agents_set_their_own_availability_and_admins_anyones() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let availability = |agent_id: &str, available: bool| SetAgentAvailabilityRequest {
        workspace_id: team.workspace.clone(),
        agent_id: agent_id.into(),
        available,
    };
    let mut agent = app.inbox_client(Some(&team.agent.token));

    // No id means the caller.
    let own = agent
        .set_agent_availability(availability("", true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.agent_id, team.agent.user_id);
    assert_eq!(
        last(&app),
        InboxRequest::SetAgentAvailability(inbox::SetAgentAvailabilityRequest {
            agent_id: team.agent.user_id.clone(),
            available: true,
        })
    );
    let refused = agent
        .set_agent_availability(availability(&team.other_agent.user_id, true))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(app.inbox.calls(), 1);

    let mut admin = app.inbox_client(Some(&team.admin.token));
    admin
        .set_agent_availability(availability(&team.other_agent.user_id, false))
        .await
        .unwrap();
    assert_eq!(
        last(&app),
        InboxRequest::SetAgentAvailability(inbox::SetAgentAvailabilityRequest {
            agent_id: team.other_agent.user_id.clone(),
            available: false,
        })
    );
    let refused = admin
        .set_agent_availability(availability(&team.viewer.user_id, true))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "viewers are not agents");
    let refused = app
        .inbox_client(Some(&team.viewer.token))
        .set_agent_availability(availability("", true))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(app.inbox.calls(), 2);
}
