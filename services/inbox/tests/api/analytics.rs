
#[tokio::test]
async fn a_disconnect_takes_the_channels_figures_and_templates_with_it() {
    use scifer_proto::events::v1::ChannelState;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

    let vault = VaultDouble::start(vec![Scripted::WhatsAppSent("wamid.X")]).await;
    vault.serve_templates(vec![crate::templates::listed("order_update", "APPROVED")]);
    let app = spawn_app_with_vault(&vault).await;
    let (ws, _conv) = crate::templates::whatsapp_conversation(&app, "PHONE_1", MIN).await;
    app.publish_channel(&connected(&ws, "ch-A", ChannelKind::Messenger, "PAGE_A"))
        .await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE_A",
        "PSID_1",
        "m_a",
        "hi",
        now_ms(),
    ))
    .await;
    app.wait_for_messages(&ws, 2).await;
    let facts = |channel: &'static str| {
        let store = app.store.clone();
        async move {
            inbox::store::entity::analytics_fact::Entity::find()
                .filter(inbox::store::entity::analytics_fact::Column::ChannelId.eq(channel))
                .count(&store)
                .await
                .unwrap()
        }
    };
    // Opened and one message in, on each channel.
    assert_eq!((facts("ch-PHONE_1").await, facts("ch-A").await), (2, 2));

    let mut gone = channel(
        &ws,
        "ch-PHONE_1",
        ChannelKind::Whatsapp,
        "PHONE_1",
        ChannelState::Disconnected,
        2,
    );
    gone.parent_account_id = crate::templates::WABA.into();
    app.publish_channel(&gone).await;
    let erased = scifer_test_support::wait_until(WAIT, || async { facts("ch-PHONE_1").await == 0 }).await;
    assert!(erased.is_ok(), "the channel's facts stay");
    assert_eq!(facts("ch-A").await, 2, "other channels keep theirs");
    let templates = inbox::store::entity::whatsapp_template::Entity::find()
        .count(&app.store)
        .await
        .unwrap();
    assert_eq!(templates, 0, "the WABA's last number took its templates along");
    let cycles = inbox::store::entity::analytics_cycle::Entity::find()
        .filter(inbox::store::entity::analytics_cycle::Column::ChannelId.eq("ch-PHONE_1"))
        .count(&app.store)
        .await
        .unwrap();
    assert_eq!(cycles, 0);
}
