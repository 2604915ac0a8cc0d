//! Every call is scoped by the workspace the gateway names in the metadata.

use scifer_proto::{
    events::v1::ChannelKind,
    inbox::v1::{GetConversationRequest, ListConversationsRequest},
};
use tonic::{Code, Request};

use crate::helpers::*;

#[tokio::test]
async fn another_workspaces_conversation_is_not_found_and_metadata_is_required() {
    let app = spawn_app().await;
    let (ws_a, ws_b) = (workspace(), workspace());
    app.publish_channel(&connected(&ws_a, "ch-a", ChannelKind::Messenger, "PAGE_A"))
        .await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE_A",
        "PSID",
        "m_1",
        "secret",
        1_000,
    ))
    .await;
    app.wait_for_messages(&ws_a, 1).await;
    let conv_a = app.conversations(&ws_a).await.remove(0);

    let mut client = app.grpc().await;
    assert!(app.conversations(&ws_b).await.is_empty());
    let get = |ws: &str, id: &str| {
        with_workspace(
            ws,
            GetConversationRequest {
                conversation_id: id.into(),
                ..Default::default()
            },
        )
    };
    let err = client.get_conversation(get(&ws_b, &conv_a.id)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let missing = client
        .get_conversation(get(&ws_a, "0190b7e2-0000-7000-8000-000000000000"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(
        err.message(),
        missing.message(),
        "indistinguishable from a missing id"
    );

    let err = client
        .list_conversations(Request::new(ListConversationsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = client
        .get_conversation(Request::new(GetConversationRequest {
            conversation_id: conv_a.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = client
        .list_conversations(with_workspace("a.b", ListConversationsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "a subject-breaking workspace id is refused"
    );
    app.stop().await;
}
