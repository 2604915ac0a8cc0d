//! SuggestReply through the gateway: for agents, forwarded to inbox (the recording double) as the
//! caller, the draft passed back unchanged and never sent, and each suggestion that reached a
//! provider audited `ai.suggested` with the user as actor and the conversation as target.

use scifer_proto::{
    gateway::v1::SuggestReplyRequest,
    inbox::v1::{self as inbox},
};
use tonic::Code;

use crate::{
    helpers::{DRAFT, InboxRequest, spawn_app},
    inbox_workflow::{records, team},
};

fn suggest(workspace: &str, conversation_id: &str) -> SuggestReplyRequest {
    SuggestReplyRequest {
        workspace_id: workspace.into(),
        conversation_id: conversation_id.into(),
    }
}

#[tokio::test]
async fn an_agent_gets_a_draft_and_the_suggestion_is_audited() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut agent = app.inbox_client(Some(&team.agent.token));

    let draft = agent
        .suggest_reply(suggest(&team.workspace, "c1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(draft.text, DRAFT);
    assert_eq!(draft.model, "gpt-test");
    let calls = app.inbox.requests();
    assert_eq!(
        calls.iter().map(|c| c.request.clone()).collect::<Vec<_>>(),
        [InboxRequest::SuggestReply(inbox::SuggestReplyRequest {
            conversation_id: "c1".into()
        })],
        "one suggestion, and no send"
    );
    assert_eq!(
        calls[0].metadata.get(gateway::ACTOR_METADATA).unwrap(),
        format!("user:{}", team.agent.user_id).as_str()
    );

    // The provider down: the caller hears UNAVAILABLE, the log a failure.
    let down = agent
        .suggest_reply(suggest(&team.workspace, "down"))
        .await
        .unwrap_err();
    assert_eq!(down.code(), Code::Unavailable);

    let audited = records(&app, &team.workspace, "ai.suggested", 2).await;
    let rows: Vec<_> = audited
        .iter()
        .map(|r| {
            (
                r.actor_kind.as_str(),
                r.actor_id.as_str(),
                r.target_kind.as_str(),
                r.target_id.as_str(),
                r.outcome.as_str(),
                r.detail.as_str(),
            )
        })
        .collect();
    let agent_id = team.agent.user_id.as_str();
    assert_eq!(
        rows,
        [
            (
                "user",
                agent_id,
                "conversation",
                "c1",
                "success",
                "model gpt-test; confidence 0.75; wants_human false"
            ),
            (
                "user",
                agent_id,
                "conversation",
                "down",
                "failure",
                "provider unavailable"
            ),
        ]
    );
    assert!(
        audited.iter().all(|r| !r.detail.contains(DRAFT)),
        "the draft is about a customer: not in the log"
    );
}

#[tokio::test]
async fn a_disabled_feature_says_so_viewers_may_not_ask_and_neither_is_audited() {
    let app = spawn_app().await;
    let team = team(&app).await;

    let disabled = app
        .inbox_client(Some(&team.agent.token))
        .suggest_reply(suggest(&team.workspace, "disabled"))
        .await
        .unwrap_err();
    assert_eq!(disabled.code(), Code::FailedPrecondition);
    assert_eq!(disabled.message(), "AI suggestions are not configured");

    let refused = app
        .inbox_client(Some(&team.viewer.token))
        .suggest_reply(suggest(&team.workspace, "c1"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(app.inbox.calls(), 1, "the viewer's call reached inbox");

    // A success afterwards is the first and only ai.suggested record: audit events are stored in
    // the order they were published, so once it is stored, one for the refusals would be too.
    app.inbox_client(Some(&team.agent.token))
        .suggest_reply(suggest(&team.workspace, "c1"))
        .await
        .unwrap();
    let audited = records(&app, &team.workspace, "ai.suggested", 1).await;
    let targets: Vec<&str> = audited.iter().map(|r| r.target_id.as_str()).collect();
    assert_eq!(targets, ["c1"]);
}
