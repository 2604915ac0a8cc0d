//! History, gaps and media: each inbound attachment copied once into media storage, served back
//! by GetMedia, expired links marked, WhatsApp media through the vault, and a disconnect deleting
//! the files.

use std::time::Duration;

use futures::StreamExt;
use scifer_proto::{
    events::v1::{self as ev, ChannelKind, ChannelState, MetaEvent, meta_event::Kind},
    inbox::v1::{GetMediaRequest, MediaState, Message, media_chunk},
};
use scifer_test_support::wait_until;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::{
    helpers::*,
    history::{SimChannel, SimVault, messages, spawn, world},
};
use inbox::store::entity::media_file;

fn with_attachment(mut event: MetaEvent, kind: &str, url: &str, media_id: &str) -> MetaEvent {
    if let Some(Kind::Message(m)) = &mut event.kind {
        m.attachments.push(ev::Attachment {
            r#type: kind.into(),
            url: url.into(),
            media_id: media_id.into(),
            filename: "photo.png".into(),
            ..Default::default()
        });
    }
    event
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Waits until the message's first attachment leaves PENDING; returns the message.
async fn settled(app: &TestApp, ws: &str, mid: &str) -> Message {
    let found = wait_until(WAIT, || async {
        messages(app, ws)
            .await
            .get(mid)
            .and_then(|m| m.attachments.first().cloned())
            .is_some_and(|a| a.media_state != MediaState::Pending as i32)
    })
    .await;
    let m = messages(app, ws).await.remove(mid);
    assert!(found.is_ok(), "attachment of {mid} still pending: {m:?}");
    m.unwrap()
}

/// The bytes GetMedia streams, with its description.
async fn get_media(
    app: &TestApp,
    ws: &str,
    message_id: &str,
) -> Result<(scifer_proto::inbox::v1::MediaInfo, Vec<u8>), tonic::Status> {
    let mut stream = app
        .grpc()
        .await
        .get_media(with_workspace(
            ws,
            GetMediaRequest {
                message_id: message_id.into(),
                attachment_index: 0,
            },
        ))
        .await?
        .into_inner();
    let mut info = None;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk?.part {
            Some(media_chunk::Part::Info(i)) => info = Some(i),
            Some(media_chunk::Part::Data(d)) => bytes.extend(d),
            None => {}
        }
    }
    Ok((info.expect("a description first"), bytes))
}

fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_in(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn an_attachment_is_fetched_once_with_its_hash_served_back_and_deleted_with_its_channel() {
    let vault = SimVault::start().await;
    let w = world(&vault);
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let url = vault.sim.media_url(bytes.clone(), "image/png");
    let app = spawn(&vault, &[]).await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-fb", ChannelKind::Messenger, &w.page))
        .await;
    let event = with_attachment(
        inbound(ChannelKind::Messenger, &w.page, "PSID-1", "m_photo", "", now_ms()),
        "image",
        &url,
        "",
    );
    app.publish_meta(&event).await;
    // Meta redelivers it under a new envelope: still one message, one copy.
    app.publish_meta_as(&event, "redelivered").await;

    let m = settled(&app, &ws, "m_photo").await;
    let a = &m.attachments[0];
    assert_eq!(a.media_state, MediaState::Stored as i32, "{a:?}");
    assert_eq!(a.sha256, sha256(&bytes));
    assert_eq!(a.size_bytes, bytes.len() as u64);
    assert_eq!(a.content_type, "image/png");
    let (info, served) = get_media(&app, &ws, &m.id).await.unwrap();
    assert_eq!(served, bytes);
    assert_eq!(
        (info.sha256.as_str(), info.filename.as_str()),
        (a.sha256.as_str(), "photo.png")
    );
    let rows = media_file::Entity::find().all(&app.store).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 1, "fetched once");
    assert_eq!(files_in(app.media_dir.path()).len(), 1);
    // Another workspace cannot read it.
    let denied = get_media(&app, &workspace(), &m.id).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::NotFound);

    let mut gone = channel(
        &ws,
        "ch-fb",
        ChannelKind::Messenger,
        &w.page,
        ChannelState::Disconnected,
        2,
    );
    gone.event_id = "ch-fb-v2".into();
    app.publish_channel(&gone).await;
    let purged = wait_until(WAIT, || async { files_in(app.media_dir.path()).is_empty() }).await;
    assert!(purged.is_ok(), "files left: {:?}", files_in(app.media_dir.path()));
    assert_eq!(media_file::Entity::find().count(&app.store).await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn an_expired_url_ends_expired_without_retries() {
    let vault = SimVault::start().await;
    let w = world(&vault);
    let url = vault.sim.media_url(b"too late".to_vec(), "image/jpeg");
    vault.sim.advance_clock(Duration::from_secs(3_600));
    let app = spawn(&vault, &[]).await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-fb", ChannelKind::Messenger, &w.page))
        .await;
    app.publish_meta(&with_attachment(
        inbound(ChannelKind::Messenger, &w.page, "PSID-1", "m_old", "", now_ms()),
        "image",
        &url,
        "",
    ))
    .await;
    let m = settled(&app, &ws, "m_old").await;
    assert_eq!(m.attachments[0].media_state, MediaState::Expired as i32);
    assert_eq!(m.attachments[0].media_failure, "http_403");
    let refused = get_media(&app, &ws, &m.id).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let row = media_file::Entity::find()
        .filter(media_file::Column::MessageId.eq(m.id.as_str()))
        .one(&app.store)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.attempts, 1, "an expired link is not retried");
    app.stop().await;
}

#[tokio::test]
async fn a_host_outside_the_allow_list_is_never_fetched() {
    let vault = SimVault::start().await;
    let w = world(&vault);
    let app = spawn(&vault, &[]).await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-fb", ChannelKind::Messenger, &w.page))
        .await;
    app.publish_meta(&with_attachment(
        inbound(ChannelKind::Messenger, &w.page, "PSID-1", "m_evil", "", now_ms()),
        "file",
        "http://localhost:1/secret",
        "",
    ))
    .await;
    let m = settled(&app, &ws, "m_evil").await;
    assert_eq!(m.attachments[0].media_state, MediaState::Failed as i32);
    assert_eq!(m.attachments[0].media_failure, "host_not_allowed");
    app.stop().await;
}

#[tokio::test]
async fn whatsapp_media_comes_through_the_vault() {
    let vault = SimVault::start().await;
    let waba = vault.sim.add_waba("History WABA");
    let phone = vault
        .sim
        .add_phone_number(&waba.id, "+1 555 0100", "History Shop");
    let token = vault.sim.issue_system_user_token(
        &waba.id,
        &["whatsapp_business_messaging", "whatsapp_business_management"],
    );
    let bytes = b"%PDF-1.7 an invoice".to_vec();
    let media_id = vault
        .sim
        .add_whatsapp_media(&phone, bytes.clone(), "application/pdf");
    vault.add_channel(
        "ch-wa",
        SimChannel {
            kind: ChannelKind::Whatsapp,
            node: phone.clone(),
            token,
        },
    );
    let app = spawn(&vault, &[]).await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-wa", ChannelKind::Whatsapp, &phone))
        .await;
    app.publish_meta(&with_attachment(
        inbound(
            ChannelKind::Whatsapp,
            &phone,
            "15550001111",
            "wamid.DOC",
            "",
            now_ms(),
        ),
        "document",
        "",
        &media_id,
    ))
    .await;
    let m = settled(&app, &ws, "wamid.DOC").await;
    let a = &m.attachments[0];
    assert_eq!(a.media_state, MediaState::Stored as i32, "{a:?}");
    assert_eq!(a.sha256, sha256(&bytes));
    assert_eq!(a.content_type, "application/pdf");
    assert_eq!(*vault.media_calls.lock().unwrap(), vec![media_id]);
    let (_, served) = get_media(&app, &ws, &m.id).await.unwrap();
    assert_eq!(served, bytes);
    app.stop().await;
}
