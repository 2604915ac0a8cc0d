use scifer_meta_sim::demo::DEMO_PAGE_ID;
use scifer_proto::{events::v1::ChannelState, tokenvault::v1::CheckChannelRequest};

use crate::helpers::*;

fn check(channel_id: &str) -> CheckChannelRequest {
    CheckChannelRequest {
        workspace_id: WORKSPACE.into(),
        channel_id: channel_id.into(),
    }
}

#[tokio::test]
async fn the_check_restores_a_webhook_subscription_meta_dropped() {
    let vault = TestVault::start().await;
    let page = vault.connect_demo_page().await.channels[0].clone();
    vault.sim.drop_subscription(DEMO_PAGE_ID);
    assert!(vault.sim.subscribed_fields(DEMO_PAGE_ID).is_none());
    let checked = vault
        .client("gateway")
        .await
        .check_channel(check(&page.channel_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.state, ChannelState::Connected as i32);
    assert!(checked.last_checked_at.is_some());
    let fields = vault
        .sim
        .subscribed_fields(DEMO_PAGE_ID)
        .expect("subscribed again");
    assert!(fields.iter().any(|f| f == "messages"));
    vault.wait_audit("channel.resubscribed", 1).await;
}

#[tokio::test]
async fn a_lost_permission_and_an_invalid_token_are_found_by_the_check() {
    let vault = TestVault::start().await;
    let channels = vault.connect_demo_page().await.channels;
    let page = channels[0].clone();
    vault
        .sim
        .revoke_scope(&vault.sim.consenting_user_id(), "pages_messaging");
    let checked = vault
        .client("gateway")
        .await
        .check_channel(check(&page.channel_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.state, ChannelState::NeedsReauth as i32);
    assert_eq!(checked.state_reason, "missing_scope:pages_messaging");

    let wa = vault.connect_whatsapp(WORKSPACE).await.channels[0].clone();
    vault.sim.invalidate_token(&vault.whatsapp_token, 460);
    let checked = vault
        .client("gateway")
        .await
        .check_channel(check(&wa.channel_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.state, ChannelState::NeedsReauth as i32);
    assert_eq!(checked.state_reason, "token_invalid:460");
    vault
        .wait_channel_events(1, |e| {
            e.channel_id == wa.channel_id && e.state == ChannelState::NeedsReauth as i32
        })
        .await;
}
