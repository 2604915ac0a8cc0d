use scifer_meta_sim::demo::DEMO_PAGE_ID;
use scifer_proto::{
    events::v1::ChannelState,
    tokenvault::v1::{DisconnectChannelRequest, ListChannelsRequest},
};
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn disconnecting_a_page_unsubscribes_it_destroys_its_tokens_and_keys_and_announces_it() {
    let vault = TestVault::start().await;
    let channels = vault.connect_demo_page().await.channels;
    let page = channels[0].clone();
    let store = vault.store().await;
    assert_eq!(count_rows(&store, "tokens", "workspace_id", WORKSPACE).await, 2);
    assert_eq!(
        count_rows(&store, "data_keys", "workspace_id", WORKSPACE).await,
        1
    );

    let mut gw = vault.client("gateway").await;
    let removed = gw
        .disconnect_channel(DisconnectChannelRequest {
            workspace_id: WORKSPACE.into(),
            user_id: USER.into(),
            channel_id: page.channel_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.channel_ids.len(), 2, "the Page and its Instagram account");
    assert!(
        vault.sim.subscribed_fields(DEMO_PAGE_ID).is_none(),
        "unsubscribed at Meta"
    );

    for table in ["tokens", "channels", "data_keys", "connect_sessions"] {
        assert_eq!(
            count_rows(&store, table, "workspace_id", WORKSPACE).await,
            0,
            "{table}"
        );
    }
    let gone = vault
        .wait_channel_events(2, |e| e.state == ChannelState::Disconnected as i32)
        .await;
    for e in &gone {
        assert!(channels.iter().any(|c| c.channel_id == e.channel_id));
        assert_eq!(e.version, 2);
        assert!(
            e.display_name.is_empty(),
            "a disconnect event carries no account data"
        );
    }
    vault.wait_audit("channel.disconnected", 2).await;
    let listed = gw
        .list_channels(ListChannelsRequest {
            workspace_id: WORKSPACE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.channels.is_empty());
    // Twice is NOT_FOUND, not a second set of events.
    let again = gw
        .disconnect_channel(DisconnectChannelRequest {
            workspace_id: WORKSPACE.into(),
            user_id: USER.into(),
            channel_id: page.channel_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
}

#[tokio::test]
async fn a_channel_whose_token_meta_revoked_still_disconnects_completely() {
    let vault = TestVault::start().await;
    let wa = vault.connect_whatsapp(WORKSPACE).await.channels[0].clone();
    vault.sim.invalidate_token(&vault.whatsapp_token, 467);
    vault
        .client("gateway")
        .await
        .disconnect_channel(DisconnectChannelRequest {
            workspace_id: WORKSPACE.into(),
            user_id: USER.into(),
            channel_id: wa.channel_id.clone(),
        })
        .await
        .unwrap();
    let store = vault.store().await;
    for table in ["tokens", "channels", "data_keys"] {
        assert_eq!(
            count_rows(&store, table, "workspace_id", WORKSPACE).await,
            0,
            "{table}"
        );
    }
    let audit = vault.wait_audit("channel.disconnected", 1).await;
    assert!(
        audit[0].detail.contains("not unsubscribed"),
        "{}",
        audit[0].detail
    );
}
