use scifer_meta_sim::demo::DEMO_PHONE_NUMBER_ID;
use scifer_proto::tokenvault::v1::{FetchMediaRequest, OnBehalfOf, media_chunk::Part};
use tonic::Code;

use crate::helpers::*;

fn request(channel_id: &str, media_id: &str) -> FetchMediaRequest {
    FetchMediaRequest {
        workspace_id: WORKSPACE.into(),
        channel_id: channel_id.into(),
        media_id: media_id.into(),
        actor: Some(OnBehalfOf {
            kind: "service".into(),
            id: "inbox-media".into(),
        }),
    }
}

#[tokio::test]
async fn whatsapp_media_is_fetched_with_the_channels_token_and_checked_against_metas_sha256() {
    let vault = TestVault::start().await;
    let wa = vault.connect_whatsapp(WORKSPACE).await.channels[0].clone();
    // Big enough to come in several chunks.
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let media_id = vault
        .sim
        .add_whatsapp_media(DEMO_PHONE_NUMBER_ID, bytes.clone(), "image/jpeg");

    let mut stream = vault
        .client("inbox")
        .await
        .fetch_media(request(&wa.channel_id, &media_id))
        .await
        .unwrap()
        .into_inner();
    let mut info = None;
    let mut got = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.message().await.unwrap() {
        match chunk.part.unwrap() {
            Part::Info(i) => {
                assert!(
                    info.is_none() && got.is_empty(),
                    "the description comes first, once"
                );
                info = Some(i);
            }
            Part::Data(d) => {
                chunks += 1;
                got.extend(d);
            }
        }
    }
    let info = info.expect("media description");
    assert_eq!(info.mime_type, "image/jpeg");
    assert_eq!(info.file_size, bytes.len() as u64);
    assert_eq!(
        info.sha256,
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes))
    );
    assert_eq!(got, bytes);
    assert!(chunks > 1, "streamed, not held whole");
    let used = vault.wait_audit("token.used", 1).await;
    assert!(used[0].detail.contains("FETCH_MEDIA") && used[0].detail.contains("caller=inbox"));
}

#[tokio::test]
async fn media_by_id_is_whatsapps_and_only_for_the_services_that_use_tokens() {
    let vault = TestVault::start().await;
    let page = vault.connect_demo_page().await.channels[0].clone();
    let err = vault
        .client("inbox")
        .await
        .fetch_media(request(&page.channel_id, "1234"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    let err = vault
        .client("gateway")
        .await
        .fetch_media(request(&page.channel_id, "1234"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let wa = vault.connect_whatsapp(WORKSPACE).await.channels[0].clone();
    let err = vault
        .client("inbox")
        .await
        .fetch_media(request(&wa.channel_id, "../me/accounts"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}
