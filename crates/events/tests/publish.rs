//! Publishing against a real JetStream: ids, types and duplicates.

use scifer_events::{Bus, EVENT_TYPE_HEADER, Publisher, StreamKind, async_nats::jetstream};
use scifer_proto::events::v1::{ChannelEvent, ChannelState};
use scifer_test_support::{NatsServer, unique_prefix};

#[tokio::test]
async fn an_event_published_twice_with_one_id_is_stored_once_with_its_id_and_type() {
    let nats = NatsServer::start().await;
    let js = jetstream::new(scifer_events::connect(&nats.url()).await.unwrap());
    let bus = Bus::new(&unique_prefix()).unwrap();
    let stream = bus
        .ensure_default_stream(&js, StreamKind::Channels)
        .await
        .unwrap();
    let publisher = Publisher::new(js);

    let event = ChannelEvent {
        state_reason: String::new(),
        parent_account_id: String::new(),
        event_id: "ch-1:v1".into(),
        channel_id: "ch-1".into(),
        ..Default::default()
    };
    for _ in 0..2 {
        publisher
            .publish(
                bus.channel_event(ChannelState::Connected),
                &event.event_id,
                &event,
            )
            .await
            .unwrap();
    }

    let mut stream = stream;
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        1,
        "the duplicate was not collapsed"
    );
    let stored = stream.get_raw_message(1).await.unwrap();
    assert_eq!(
        stored.headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some("ch-1:v1")
    );
    assert_eq!(
        stored.headers.get(EVENT_TYPE_HEADER).map(|v| v.as_str()),
        Some("scifer.events.v1.ChannelEvent")
    );
}
