//! Channels end to end: connected through the gateway and token-vault (Facebook Login and WhatsApp
//! against the simulator's Graph API), then disconnected: the privacy policy's "disconnecting
//! removes stored tokens and connected account data for that channel", checked in every store.

use std::time::Duration;

use scifer_meta_sim::{
    demo::{self, DEMO_CUSTOMERS},
    webhooks::{
        SendMode, instagram,
        messaging::now_ms,
        messenger,
        whatsapp::{Contact, Message},
    },
};
use scifer_proto::{
    events::v1::{ChannelKind, ChannelState},
    gateway::v1::{DisconnectChannelRequest, ListChannelsRequest},
};
use scifer_test_support::wait_until;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::helpers::Stack;

const WAIT: Duration = Duration::from_secs(30);

/// Rows in any table of `db` whose `channel_id` or `account_id` column holds one of `values`.
async fn rows_mentioning(db: &DatabaseConnection, values: &[&str]) -> Vec<String> {
    let backend = db.get_database_backend();
    let columns_sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "SELECT table_name AS t, column_name AS c FROM information_schema.columns \
             WHERE table_schema = 'public' AND column_name IN ('channel_id', 'account_id')"
                .to_string()
        }
        _ => "SELECT m.name AS t, p.name AS c FROM sqlite_master m JOIN pragma_table_info(m.name) p \
              WHERE m.type = 'table' AND p.name IN ('channel_id', 'account_id')"
            .to_string(),
    };
    let columns = db
        .query_all_raw(Statement::from_string(backend, columns_sql))
        .await
        .unwrap();
    assert!(!columns.is_empty(), "the store has channel-scoped tables");
    let mut found = Vec::new();
    for col in columns {
        let (table, column): (String, String) =
            (col.try_get("", "t").unwrap(), col.try_get("", "c").unwrap());
        for value in values {
            let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} = '{value}'");
            let n: i64 = db
                .query_one_raw(Statement::from_string(backend, sql))
                .await
                .unwrap()
                .unwrap()
                .try_get("", "n")
                .unwrap();
            if n > 0 {
                found.push(format!("{table}.{column}={value}: {n}"));
            }
        }
    }
    found
}

/// Messages on the stack's INGEST and META streams whose bytes contain one of `needles`.
async fn stream_messages_mentioning(stack: &Stack, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for kind in [scifer_events::StreamKind::Ingest, scifer_events::StreamKind::Meta] {
        let mut stream = stack.js.get_stream(stack.bus.stream_name(kind)).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        for seq in 1..=last {
            let Ok(msg) = stream.get_raw_message(seq).await else {
                continue; // deleted
            };
            for needle in needles {
                if msg.payload.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(format!("{kind:?} #{seq} mentions {needle}"));
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_a_page_leaves_no_row_for_it_or_its_instagram_account_in_any_store() {
    let stack = Stack::start().await;
    let page = stack
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Messenger as i32)
        .unwrap()
        .clone();
    let ig = stack
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Instagram as i32)
        .unwrap()
        .clone();
    let wa = stack
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Whatsapp as i32)
        .unwrap()
        .clone();

    // Customers write on all three channels.
    let (ana, elodie, jurgen) = (&DEMO_CUSTOMERS[0], &DEMO_CUSTOMERS[1], &DEMO_CUSTOMERS[2]);
    let t0 = now_ms() - 60_000;
    let sender = stack.sender();
    for delivery in [
        messenger::text(demo::DEMO_PAGE_ID, ana.psid, ana.lines[0])
            .timestamp_ms(t0)
            .into_delivery(),
        instagram::text(demo::DEMO_IG_ACCOUNT_ID, elodie.igsid, elodie.lines[0])
            .timestamp_ms(t0 + 1)
            .into_delivery(),
        demo::demo_business()
            .inbound(
                &Contact::new(jurgen.wa_id, jurgen.name),
                Message::text(jurgen.wa_id, jurgen.lines[0]).timestamp_s(t0 / 1000 + 1),
            )
            .into_item()
            .into_delivery(),
    ] {
        let outcome = sender
            .send(&stack.webhook_url, &delivery, &SendMode::Valid)
            .await
            .unwrap();
        assert_eq!(outcome.status, 200, "{}", outcome.body);
    }
    let all_three = wait_until(WAIT, || async { stack.conversations().await.len() == 3 }).await;
    assert!(
        all_three.is_ok(),
        "conversations did not arrive\n{}",
        stack.logs()
    );

    let inbox_db = Database::connect(stack.inbox_db.url()).await.unwrap();
    let vault_db = Database::connect(stack.vault_db.url()).await.unwrap();
    let gone_ids = [page.channel_id.as_str(), ig.channel_id.as_str()];
    let gone_accounts = [demo::DEMO_PAGE_ID, demo::DEMO_IG_ACCOUNT_ID];
    assert!(
        !rows_mentioning(&inbox_db, &gone_ids).await.is_empty(),
        "inbox holds the Page's data"
    );
    assert!(
        !rows_mentioning(&vault_db, &gone_ids).await.is_empty(),
        "the vault holds the Page's token"
    );

    // The admin disconnects the Page through the gateway.
    let removed = stack
        .channel_api()
        .disconnect_channel(DisconnectChannelRequest {
            workspace_id: stack.workspace.clone(),
            channel_id: page.channel_id.clone(),
        })
        .await
        .expect("disconnect through the gateway")
        .into_inner();
    assert_eq!(removed.channel_ids.len(), 2, "the Page and its Instagram account");
    assert!(
        stack.sim.subscribed_fields(demo::DEMO_PAGE_ID).is_none(),
        "Meta no longer sends its webhooks"
    );

    // Every store lets go of it: vault (tokens, channel), inbox (contacts, conversations,
    // messages...), webhook-ingest (raw deliveries and split events).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut left = rows_mentioning(&inbox_db, &gone_ids).await;
        left.extend(rows_mentioning(&inbox_db, &gone_accounts).await);
        left.extend(rows_mentioning(&vault_db, &gone_ids).await);
        left.extend(rows_mentioning(&vault_db, &gone_accounts).await);
        left.extend(stream_messages_mentioning(&stack, &gone_accounts).await);
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left behind: {left:?}\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // What inbox keeps of each: a tombstone (channel id, kind, version, disconnect time and a
    // one-way key of the account) so late or redelivered events are refused instead of
    // re-creating data. No name, no account id, nothing of the customers.
    let backend = inbox_db.get_database_backend();
    for id in gone_ids {
        let row = inbox_db
            .query_one_raw(Statement::from_string(
                backend,
                format!("SELECT account_id, display_name, state FROM channels WHERE id = '{id}'"),
            ))
            .await
            .unwrap()
            .expect("tombstone");
        let account: String = row.try_get("", "account_id").unwrap();
        let name: String = row.try_get("", "display_name").unwrap();
        assert!(
            account.starts_with("sha256:") && name.is_empty(),
            "{account} {name}"
        );
    }

    // The WhatsApp number is untouched.
    assert!(
        !rows_mentioning(&inbox_db, &[wa.channel_id.as_str()])
            .await
            .is_empty()
    );
    assert!(
        !stream_messages_mentioning(&stack, &[demo::DEMO_PHONE_NUMBER_ID])
            .await
            .is_empty()
    );
    let left = stack.conversations().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].channel_kind, ChannelKind::Whatsapp as i32);
    let listed = stack
        .channel_api()
        .list_channels(ListChannelsRequest {
            workspace_id: stack.workspace.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .channels;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, ChannelState::Connected as i32);
}
