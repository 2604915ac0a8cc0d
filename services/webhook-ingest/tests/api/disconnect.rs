//! A disconnected channel's deliveries and events are deleted from INGEST and META.

use std::collections::BTreeSet;

use prost::Message as _;
use prost_types::Timestamp;
use scifer_events::{Publisher, StreamKind};
use scifer_meta_sim::webhooks::{
    Delivery, Encoding,
    messaging::{MessagingEvent, Platform, Reaction},
    messenger,
    whatsapp::{Business, Contact, Message},
};
use scifer_proto::events::v1::{ChannelEvent, ChannelKind, ChannelState, MetaEvent, UnhandledMetaItem};
use scifer_test_support::wait_until;
use serde_json::json;
use webhook_ingest::{purge, splitter};

use crate::helpers::{Settings, TestApp, WAIT, sha256_hex, spawn_app};

/// What one stored message is about: its subject, an id (delivery id or event id) and the accounts
/// it names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Stored {
    subject: String,
    id: String,
    accounts: BTreeSet<String>,
}

impl Stored {
    fn names(&self, account: &str) -> bool {
        self.accounts.contains(account)
    }
}

/// Every raw delivery in INGEST with the accounts its items belong to (split as the splitter does).
async fn ingest_contents(app: &TestApp) -> Vec<Stored> {
    app.messages(StreamKind::Ingest)
        .await
        .into_iter()
        .map(|m| {
            let split = scifer_meta::split_delivery(&m.payload, "", Timestamp::default()).unwrap();
            Stored {
                subject: m.subject.to_string(),
                id: sha256_hex(&m.payload),
                accounts: split
                    .events
                    .iter()
                    .map(|e| e.account_id.clone())
                    .chain(split.unhandled.iter().map(|u| u.account_id.clone()))
                    .collect(),
            }
        })
        .collect()
}

/// Every MetaEvent and unhandled item in META with its account.
async fn meta_contents(app: &TestApp) -> Vec<Stored> {
    let unhandled = app.bus.meta_unhandled();
    app.messages(StreamKind::Meta)
        .await
        .into_iter()
        .map(|m| {
            let (id, account) = if m.subject.as_str() == unhandled {
                let u = UnhandledMetaItem::decode(m.payload.as_ref()).unwrap();
                (u.event_id, u.account_id)
            } else {
                let e = MetaEvent::decode(m.payload.as_ref()).unwrap();
                (e.event_id, e.account_id)
            };
            Stored {
                subject: m.subject.to_string(),
                id,
                accounts: BTreeSet::from([account]),
            }
        })
        .collect()
}

fn without(contents: &[Stored], account: &str) -> Vec<Stored> {
    contents.iter().filter(|s| !s.names(account)).cloned().collect()
}

async fn post(app: &TestApp, delivery: &Delivery) {
    let body = delivery.encode(Encoding::META);
    assert_eq!(app.post_signed(&body).await.status(), 200);
}

/// Waits until a durable consumer has nothing left to deliver or to be acknowledged.
async fn wait_consumer_idle(app: &TestApp, stream: StreamKind, consumer: &str) {
    let stream = app.js.get_stream(app.bus.stream_name(stream)).await.unwrap();
    wait_until(WAIT, || {
        let stream = stream.clone();
        async move {
            let info = stream.consumer_info(consumer).await;
            info.is_ok_and(|i| i.num_pending == 0 && i.num_ack_pending == 0)
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{consumer} did not finish: {e}"));
}

async fn disconnect(app: &TestApp, kind: ChannelKind, account: &str, msg_id: &str) {
    let event = ChannelEvent {
        event_id: msg_id.into(),
        workspace_id: "0190f5c8-0000-7000-8000-000000000001".into(),
        channel_id: format!("ch-{account}"),
        kind: kind as i32,
        account_id: account.into(),
        display_name: String::new(),
        state: ChannelState::Disconnected as i32,
        version: 2,
        at: Some(Timestamp::from(std::time::SystemTime::now())),
        state_reason: String::new(),
        parent_account_id: String::new(),
    };
    Publisher::new(app.js.clone())
        .publish(app.bus.channel_event(ChannelState::Disconnected), msg_id, &event)
        .await
        .unwrap();
}

/// Waits until nothing in INGEST or META names `account`.
async fn wait_until_gone(app: &TestApp, account: &str) {
    let gone = wait_until(WAIT, || async {
        !ingest_contents(app).await.iter().any(|s| s.names(account))
            && !meta_contents(app).await.iter().any(|s| s.names(account))
    })
    .await;
    if gone.is_err() {
        panic!(
            "{account} still in the streams: INGEST {:?}, META {:?}",
            ingest_contents(app).await,
            meta_contents(app).await
        );
    }
}

const PAGE_A: &str = "104000000000001";
const PAGE_B: &str = "104000000000002";

fn love() -> Reaction {
    Reaction::React {
        reaction: "love".into(),
        emoji: "❤".into(),
    }
}

/// Two Pages' traffic: A alone (message, echo, read, reaction, an item Scifer does not know), B
/// alone, and one delivery Meta batched with an entry for each Page.
async fn post_two_pages(app: &TestApp) {
    let a_text = messenger::text(PAGE_A, "PSID_A", "hello from a customer of A");
    let a_mid = a_text.mid_value().unwrap().to_string();
    post(app, &a_text.into_delivery()).await;
    let a_more = Delivery::from_items([
        messenger::echo(PAGE_A, "PSID_A", 263902037430900, "our answer", None).into_item(),
        messenger::read(PAGE_A, "PSID_A", 1_767_225_600_000).into_item(),
        messenger::reaction(PAGE_A, "PSID_A", &a_mid, &love()).into_item(),
        MessagingEvent::new(
            Platform::Messenger,
            PAGE_A,
            "PSID_A",
            true,
            "brand_new_event",
            json!({"x": 1}),
        )
        .into_item(),
    ])
    .unwrap();
    post(app, &a_more).await;
    post(app, &messenger::text(PAGE_B, "PSID_B", "hello B").into_delivery()).await;
    let mixed = Delivery::from_items([
        messenger::text(PAGE_A, "PSID_A2", "A in a batch").into_item(),
        messenger::text(PAGE_B, "PSID_B2", "B in a batch").into_item(),
    ])
    .unwrap();
    post(app, &mixed).await;
    wait_consumer_idle(app, StreamKind::Ingest, splitter::CONSUMER_NAME).await;
}

#[tokio::test]
async fn disconnecting_a_page_deletes_its_deliveries_and_events_and_keeps_the_other_pages() {
    let app = spawn_app().await;
    post_two_pages(&app).await;

    let ingest_before = ingest_contents(&app).await;
    let meta_before = meta_contents(&app).await;
    assert_eq!(ingest_before.len(), 4);
    assert_eq!(ingest_before.iter().filter(|s| s.names(PAGE_A)).count(), 3);
    // A: text, echo, read, reaction, the batched text, and one unhandled item. B: two texts.
    assert_eq!(meta_before.iter().filter(|s| s.names(PAGE_A)).count(), 6);
    assert_eq!(meta_before.iter().filter(|s| s.names(PAGE_B)).count(), 2);
    assert!(
        meta_before
            .iter()
            .any(|s| s.names(PAGE_A) && s.subject == app.bus.meta_unhandled())
    );

    disconnect(&app, ChannelKind::Messenger, PAGE_A, "disconnect-a-v2").await;
    wait_until_gone(&app, PAGE_A).await;
    wait_consumer_idle(&app, StreamKind::Channels, purge::CONSUMER_NAME).await;

    // B's own delivery stays; the batched one held A's item too and went with it (its B event
    // was split long before and stays in META).
    let ingest_after = ingest_contents(&app).await;
    assert_eq!(ingest_after, without(&ingest_before, PAGE_A));
    assert_eq!(ingest_after.len(), 1);
    assert_eq!(ingest_after[0].accounts, BTreeSet::from([PAGE_B.to_string()]));
    let meta_after = meta_contents(&app).await;
    assert_eq!(meta_after, without(&meta_before, PAGE_A));
    assert_eq!(meta_after.len(), 2);

    // The same announcement again (a redelivery, or the vault repeating itself) changes nothing.
    disconnect(&app, ChannelKind::Messenger, PAGE_A, "disconnect-a-v2-again").await;
    wait_consumer_idle(&app, StreamKind::Channels, purge::CONSUMER_NAME).await;
    assert_eq!(ingest_contents(&app).await, ingest_after);
    assert_eq!(meta_contents(&app).await, meta_after);
}

#[tokio::test]
async fn a_purge_run_again_later_spares_what_a_reconnect_brought_in() {
    let mut app = spawn_app().await;
    post_two_pages(&app).await;
    disconnect(&app, ChannelKind::Messenger, PAGE_A, "disconnect-a-v2").await;
    wait_until_gone(&app, PAGE_A).await;
    wait_consumer_idle(&app, StreamKind::Channels, purge::CONSUMER_NAME).await;

    // The Page is connected again and receives a message.
    post(
        &app,
        &messenger::text(PAGE_A, "PSID_A", "after the reconnect").into_delivery(),
    )
    .await;
    wait_consumer_idle(&app, StreamKind::Ingest, splitter::CONSUMER_NAME).await;
    let ingest_before = ingest_contents(&app).await;
    let meta_before = meta_contents(&app).await;
    assert_eq!(ingest_before.iter().filter(|s| s.names(PAGE_A)).count(), 1);
    assert_eq!(meta_before.iter().filter(|s| s.names(PAGE_A)).count(), 1);

    // A new consumer (a fresh deployment) replays every disconnect ever announced.
    app.stop_service().await;
    app.js
        .get_stream(app.bus.stream_name(StreamKind::Channels))
        .await
        .unwrap()
        .delete_consumer(purge::CONSUMER_NAME)
        .await
        .unwrap();
    app.start_service(Settings::default()).await;
    wait_consumer_idle(&app, StreamKind::Channels, purge::CONSUMER_NAME).await;
    assert_eq!(ingest_contents(&app).await, ingest_before);
    assert_eq!(meta_contents(&app).await, meta_before);
}

#[tokio::test]
async fn disconnecting_a_whatsapp_number_keeps_the_other_number_of_its_business() {
    let app = spawn_app().await;
    let number_a = Business::new("WABA1", "PN_A", "15550001111");
    let number_b = Business::new("WABA1", "PN_B", "15550002222");
    let ann = Contact::new("15550009999", "Ann");
    post(
        &app,
        &number_a
            .inbound(&ann, Message::text("15550009999", "to A"))
            .into_delivery(),
    )
    .await;
    post(
        &app,
        &number_b
            .inbound(&ann, Message::text("15550009999", "to B"))
            .into_delivery(),
    )
    .await;
    // Also a Page whose id happens to equal the number's: another kind, not touched.
    post(&app, &messenger::text("PN_A", "PSID", "a Page").into_delivery()).await;
    wait_consumer_idle(&app, StreamKind::Ingest, splitter::CONSUMER_NAME).await;
    let ingest_before = ingest_contents(&app).await;
    let meta_before = meta_contents(&app).await;
    assert_eq!(ingest_before.len(), 3);
    assert_eq!(meta_before.len(), 3);

    disconnect(&app, ChannelKind::Whatsapp, "PN_A", "disconnect-pn-a").await;
    wait_consumer_idle(&app, StreamKind::Channels, purge::CONSUMER_NAME).await;

    let whatsapp = app.bus.ingest_raw(Some(ChannelKind::Whatsapp));
    let ingest_after = ingest_contents(&app).await;
    let expected: Vec<Stored> = ingest_before
        .iter()
        .filter(|s| !(s.subject == whatsapp && s.names("PN_A")))
        .cloned()
        .collect();
    assert_eq!(ingest_after, expected);
    assert_eq!(ingest_after.len(), 2);
    let meta_after = meta_contents(&app).await;
    assert_eq!(meta_after.len(), 2);
    assert!(
        !meta_after
            .iter()
            .any(|s| s.names("PN_A") && s.subject.contains(".whatsapp."))
    );
    assert!(meta_after.iter().any(|s| s.names("PN_B")));
    assert!(
        meta_after
            .iter()
            .any(|s| s.names("PN_A") && s.subject.contains(".messenger."))
    );
}

#[tokio::test]
async fn a_long_log_is_purged_in_bounded_pulls() {
    use futures::StreamExt as _;

    let app = spawn_app().await;
    // Interleaved, more than one pull, one ack stretch and one deletion chunk of each stream.
    let deliveries: Vec<Delivery> = (0..700)
        .map(|i| {
            let page = if i % 7 == 0 { PAGE_B } else { PAGE_A };
            messenger::text(page, &format!("PSID_{i}"), &format!("message {i}")).into_delivery()
        })
        .collect();
    futures::stream::iter(&deliveries)
        .for_each_concurrent(32, |d| post(&app, d))
        .await;
    wait_consumer_idle(&app, StreamKind::Ingest, splitter::CONSUMER_NAME).await;
    assert_eq!(app.count(StreamKind::Ingest).await, 700);
    assert_eq!(app.count(StreamKind::Meta).await, 700);

    disconnect(&app, ChannelKind::Messenger, PAGE_A, "disconnect-a").await;
    wait_consumer_idle(&app, StreamKind::Channels, purge::CONSUMER_NAME).await;
    let ingest = ingest_contents(&app).await;
    let meta = meta_contents(&app).await;
    assert_eq!(ingest.len(), 100);
    assert_eq!(meta.len(), 100);
    assert!(ingest.iter().chain(&meta).all(|s| s.names(PAGE_B)));
}
