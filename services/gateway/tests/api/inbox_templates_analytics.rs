//! Issue 5 through the gateway: ListTemplates for agents and GetInboxAnalytics for admins, each
//! forwarded to inbox (the recording double) with the caller's workspace and identity, the answer
//! passed back unchanged; an agent's analytics call never reaches inbox.

use scifer_proto::{
    gateway::v1::{GetInboxAnalyticsRequest, ListTemplatesRequest},
    inbox::v1::{self as inbox, AnalyticsGroupBy},
};
use tonic::Code;

use crate::{
    helpers::{InboxRequest, spawn_app},
    inbox_workflow::team,
};

#[tokio::test]
async fn an_agent_lists_a_channels_templates() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut agent = app.inbox_client(Some(&team.agent.token));
    let listed = agent
        .list_templates(ListTemplatesRequest {
            workspace_id: team.workspace.clone(),
            channel_id: "wa1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.templates.len(), 1);
    assert_eq!(listed.templates[0].name, "order_update");
    assert_eq!(listed.templates[0].status, "APPROVED");
    let calls = app.inbox.requests();
    assert_eq!(
        calls.iter().map(|c| c.request.clone()).collect::<Vec<_>>(),
        [InboxRequest::ListTemplates(inbox::ListTemplatesRequest {
            channel_id: "wa1".into()
        })]
    );
    assert_eq!(
        calls[0].metadata.get(gateway::WORKSPACE_METADATA).unwrap(),
        team.workspace.as_str()
    );
    // inbox's NOT_FOUND passes through.
    let missing = agent
        .list_templates(ListTemplatesRequest {
            workspace_id: team.workspace.clone(),
            channel_id: "other".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

fn analytics(workspace: &str) -> GetInboxAnalyticsRequest {
    GetInboxAnalyticsRequest {
        workspace_id: workspace.into(),
        from_day: "2026-03-01".into(),
        to_day: "2026-03-31".into(),
        time_zone: "Europe/Paris".into(),
        group_by: AnalyticsGroupBy::Agent as i32,
    }
}

#[tokio::test]
async fn analytics_are_for_admins_and_forwarded_whole() {
    let app = spawn_app().await;
    let team = team(&app).await;

    let refused = app
        .inbox_client(Some(&team.agent.token))
        .get_inbox_analytics(analytics(&team.workspace))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(app.inbox.requests().is_empty(), "nothing reached inbox");

    let report = app
        .inbox_client(Some(&team.admin.token))
        .get_inbox_analytics(analytics(&team.workspace))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.time_zone, "Europe/Paris");
    assert_eq!(report.rows[0].day, "2026-03-01");
    assert_eq!(report.rows[0].conversations_opened, 3);
    let calls = app.inbox.requests();
    assert_eq!(
        calls.iter().map(|c| c.request.clone()).collect::<Vec<_>>(),
        [InboxRequest::GetInboxAnalytics(inbox::GetInboxAnalyticsRequest {
            from_day: "2026-03-01".into(),
            to_day: "2026-03-31".into(),
            time_zone: "Europe/Paris".into(),
            group_by: AnalyticsGroupBy::Agent as i32,
        })]
    );
    assert_eq!(
        calls[0].metadata.get(gateway::WORKSPACE_METADATA).unwrap(),
        team.workspace.as_str()
    );
    assert_eq!(
        calls[0].metadata.get(gateway::ACTOR_METADATA).unwrap(),
        format!("user:{}", team.admin.user_id).as_str()
    );
}
