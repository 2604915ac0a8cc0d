//! ListConversations and GetConversation: forwarded to inbox with the workspace, the actor and the
//! trace context in metadata, inbox's answers and statuses passed through.

use scifer_proto::{
    gateway::v1::{GetConversationRequest, ListConversationsRequest, inbox_api_client::InboxApiClient},
    inbox::v1,
};
use tonic::{Code, Request};

use crate::helpers::{Bearer, InboxMode, conversation, spawn_app, spawn_app_with};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn list(workspace: &str) -> ListConversationsRequest {
    ListConversationsRequest {
        workspace_id: workspace.into(),
        query: Some(v1::ListConversationsRequest {
            page_size: 20,
            ..Default::default()
        }),
    }
}

fn get(workspace: &str, conversation_id: &str) -> GetConversationRequest {
    GetConversationRequest {
        workspace_id: workspace.into(),
        query: Some(v1::GetConversationRequest {
            conversation_id: conversation_id.into(),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn list_and_get_over_grpc_web_return_inbox_data_with_workspace_actor_and_trace_in_metadata() {
    let app = spawn_app().await;
    let (owner, ws) = app.owner_with_workspace().await;
    let mut client = app.inbox_client(Some(&owner.token));

    // The browser's trace continues through the gateway into inbox.
    let mut request = Request::new(list(&ws));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-00f067aa0ba902b7-01").parse().unwrap(),
    );
    let listed = client.list_conversations(request).await.unwrap().into_inner();
    assert_eq!(listed.conversations, vec![conversation("c1"), conversation("c2")]);
    assert_eq!(listed.next_page_token, "after-20", "the query reached inbox");

    let got = client
        .get_conversation(get(&ws, "c1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.conversation, Some(conversation("c1")));
    assert_eq!(got.messages.len(), 1);
    assert_eq!(got.messages[0].text, "hello");

    let seen = app.inbox.seen();
    assert_eq!(seen.len(), 2);
    for metadata in &seen {
        assert_eq!(
            metadata.get(gateway::WORKSPACE_METADATA).unwrap(),
            ws.as_str(),
            "inbox takes the workspace only from metadata"
        );
        assert_eq!(
            metadata.get(gateway::ACTOR_METADATA).unwrap(),
            format!("user:{}", owner.user_id).as_str()
        );
        assert!(
            metadata.get("authorization").is_none(),
            "the session token stays at the gateway"
        );
        assert!(
            metadata.get("traceparent").is_some(),
            "no trace context: {metadata:?}"
        );
    }
    let traceparent = seen[0].get("traceparent").unwrap().to_str().unwrap();
    assert!(
        traceparent.contains(TRACE_ID),
        "the caller's trace must continue: {traceparent}"
    );
}

#[tokio::test]
async fn native_grpc_reaches_the_same_api_on_the_same_port() {
    let app = spawn_app().await;
    let (owner, ws) = app.owner_with_workspace().await;
    let mut client =
        InboxApiClient::with_interceptor(app.native_channel().await, Bearer::new(Some(&owner.token)));
    let listed = client.list_conversations(list(&ws)).await.unwrap().into_inner();
    assert_eq!(listed.conversations.len(), 2);
}

#[tokio::test]
async fn an_invalid_workspace_id_is_invalid_argument_and_never_reaches_inbox() {
    let app = spawn_app().await;
    let (owner, _) = app.owner_with_workspace().await;
    let mut client = app.inbox_client(Some(&owner.token));
    for bad in ["", "ws.1", "*", ">", "ws 1", "ws\t1", "a.>"] {
        let listed = client.list_conversations(list(bad)).await.unwrap_err();
        assert_eq!(listed.code(), Code::InvalidArgument, "{bad:?}: {listed:?}");
        let got = client.get_conversation(get(bad, "c1")).await.unwrap_err();
        assert_eq!(got.code(), Code::InvalidArgument, "{bad:?}: {got:?}");
    }
    assert!(app.inbox.seen().is_empty());
}

#[tokio::test]
async fn inbox_down_is_unavailable_without_internal_detail() {
    let app = spawn_app_with(InboxMode::Down).await;
    let (owner, ws) = app.owner_with_workspace().await;
    let status = app
        .inbox_client(Some(&owner.token))
        .list_conversations(list(&ws))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("inbox"), "{status:?}");
    assert!(
        !status.message().contains("127.0.0.1") && !status.message().contains("tcp"),
        "internal detail leaked: {status:?}"
    );
}

#[tokio::test]
async fn not_found_from_inbox_passes_through() {
    let app = spawn_app().await;
    let (owner, ws) = app.owner_with_workspace().await;
    let status = app
        .inbox_client(Some(&owner.token))
        .get_conversation(get(&ws, "no-such-conversation"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(status.message(), "conversation not found");
}

#[tokio::test]
async fn an_inbox_that_does_not_answer_in_time_is_deadline_exceeded() {
    let app = spawn_app().await;
    let (owner, ws) = app.owner_with_workspace().await;
    let status = app
        .inbox_client(Some(&owner.token))
        .get_conversation(get(&ws, "hang"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}
