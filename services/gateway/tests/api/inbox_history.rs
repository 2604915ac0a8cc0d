//! History, gaps and media through the gateway: GetChannelSync and the GetMedia stream, for every
//! member, forwarded to inbox (the recording double) in the caller's workspace, with inbox's
//! chunks and statuses passed through.

use futures::StreamExt;
use scifer_proto::{
    gateway::v1::{GetChannelSyncRequest, GetMediaRequest},
    inbox::v1::{self as inbox, media_chunk::Part},
};
use tonic::Code;

use crate::{
    helpers::{InboxRequest, MEDIA_BYTES, spawn_app},
    inbox_workflow::team,
};

fn media(workspace: &str, message_id: &str) -> GetMediaRequest {
    GetMediaRequest {
        workspace_id: workspace.into(),
        message_id: message_id.into(),
        attachment_index: 0,
    }
}

#[tokio::test]
async fn a_viewer_reads_the_channel_sync_and_streams_a_stored_attachment() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut viewer = app.inbox_client(Some(&team.viewer.token));

    let sync = viewer
        .get_channel_sync(GetChannelSyncRequest {
            workspace_id: team.workspace.clone(),
            channel_id: "ch-ig".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((sync.messages_seen, sync.reconciled_messages), (20, 20));
    assert!(sync.limits.contains("20 most recent"));

    let mut stream = viewer
        .get_media(media(&team.workspace, "m1"))
        .await
        .unwrap()
        .into_inner();
    let mut info = None;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk.unwrap().part {
            Some(Part::Info(i)) => info = Some(i),
            Some(Part::Data(d)) => bytes.extend(d),
            None => {}
        }
    }
    assert_eq!(bytes, MEDIA_BYTES);
    assert_eq!(info.unwrap().content_type, "image/png");

    let calls = app.inbox.requests();
    assert_eq!(
        calls.iter().map(|c| c.request.clone()).collect::<Vec<_>>(),
        [
            InboxRequest::GetChannelSync(inbox::GetChannelSyncRequest {
                channel_id: "ch-ig".into()
            }),
            InboxRequest::GetMedia(inbox::GetMediaRequest {
                message_id: "m1".into(),
                attachment_index: 0
            }),
        ]
    );
    for call in &calls {
        assert_eq!(
            call.metadata.get(gateway::WORKSPACE_METADATA).unwrap(),
            team.workspace.as_str()
        );
        assert_eq!(
            call.metadata.get(gateway::ACTOR_METADATA).unwrap(),
            format!("user:{}", team.viewer.user_id).as_str()
        );
    }
}

#[tokio::test]
async fn inbox_refusals_pass_through() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut agent = app.inbox_client(Some(&team.agent.token));
    let pending = agent
        .get_media(media(&team.workspace, "pending"))
        .await
        .unwrap_err();
    assert_eq!(pending.code(), Code::FailedPrecondition);
    assert_eq!(pending.message(), "the attachment is still being fetched");
    let missing = agent.get_media(media(&team.workspace, "nope")).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let unknown = agent
        .get_channel_sync(GetChannelSyncRequest {
            workspace_id: team.workspace.clone(),
            channel_id: "other".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}
