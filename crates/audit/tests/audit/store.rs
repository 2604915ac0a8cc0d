//! The store: appends, tampering found by `verify_workspace`, idempotency, listing and export.

use std::collections::HashSet;

use scifer_audit::{
    ActorKind, BreakReason, ChainBroken, action,
    chain::{self, GENESIS},
    store::{
        self, Filter, PageRequest, VerifyError,
        entity::audit_record::{self, Entity as Records},
    },
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::helpers::{entries, entry, sql, store, ws};

async fn records(db: &DatabaseConnection, workspace: &str) -> Vec<audit_record::Model> {
    Records::find()
        .filter(audit_record::Column::WorkspaceId.eq(workspace))
        .order_by_asc(audit_record::Column::Sequence)
        .all(db)
        .await
        .unwrap()
}

fn broken_at(result: Result<chain::ChainReport, VerifyError>) -> ChainBroken {
    match result {
        Err(VerifyError::Broken(b)) => b,
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[tokio::test]
async fn appended_records_form_a_chain_that_verifies() {
    let s = store().await;
    let all = entries("ws1", 10);
    assert_eq!(store::append_batch(&s.db, &all[..3]).await.unwrap(), 3);
    assert_eq!(store::append_batch(&s.db, &all[3..]).await.unwrap(), 7);

    let rows = records(&s.db, "ws1").await;
    assert_eq!(
        rows.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(rows[0].prev_hash, hex::encode(GENESIS));
    for pair in rows.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    // Stored in the order given.
    for (row, e) in rows.iter().zip(&all) {
        assert_eq!(row.event_id, e.event_id());
        assert_eq!(row.actor_kind, "user");
        assert_eq!(row.outcome, "success");
    }

    let report = store::verify_workspace(&s.db, &ws("ws1")).await.unwrap();
    assert_eq!(report.records, 10);
    assert_eq!(report.head.sequence, 10);
    assert_eq!(report.head_hash_hex(), rows[9].hash);
    // A workspace without records verifies as empty.
    let empty = store::verify_workspace(&s.db, &ws("nobody")).await.unwrap();
    assert_eq!(empty.records, 0);
}

#[tokio::test]
async fn a_field_changed_in_the_database_is_named_by_its_sequence() {
    let s = store().await;
    store::append_batch(&s.db, &entries("ws1", 8)).await.unwrap();
    sql(
        &s.db,
        "UPDATE audit_records SET detail = 'nothing happened' WHERE workspace_id = 'ws1' AND sequence = 4",
    )
    .await;
    let broken = broken_at(store::verify_workspace(&s.db, &ws("ws1")).await);
    assert_eq!(broken.sequence, 4);
    assert_eq!(broken.reason, BreakReason::Altered);
    assert!(broken.to_string().contains("sequence 4"), "{broken}");

    // Any other column too, e.g. the outcome of a denied action turned into a success.
    let s = store().await;
    store::append_batch(&s.db, &entries("ws1", 5)).await.unwrap();
    sql(
        &s.db,
        "UPDATE audit_records SET at_ms = at_ms + 1 WHERE sequence = 2",
    )
    .await;
    assert_eq!(
        broken_at(store::verify_workspace(&s.db, &ws("ws1")).await).sequence,
        2
    );
}

#[tokio::test]
async fn a_record_altered_and_rehashed_is_detected() {
    let s = store().await;
    store::append_batch(&s.db, &entries("ws1", 6)).await.unwrap();
    let rows = records(&s.db, "ws1").await;

    // Record 3 rewritten with a recomputed hash: record 4 no longer chains from it.
    let mut forged = rows[2].chain_record().unwrap();
    forged.detail = "forged".into();
    let hash = hex::encode(chain::compute_hash(&forged.prev_hash, &forged));
    sql(
        &s.db,
        &format!(
            "UPDATE audit_records SET detail = 'forged', hash = '{hash}' WHERE id = '{}'",
            rows[2].id
        ),
    )
    .await;
    let broken = broken_at(store::verify_workspace(&s.db, &ws("ws1")).await);
    assert_eq!(broken.sequence, 3);
    assert_eq!(broken.reason, BreakReason::Rehashed { successor: 4 });

    // The newest record rewritten the same way: nothing follows it, but the stored head disagrees.
    let s = store().await;
    store::append_batch(&s.db, &entries("ws1", 6)).await.unwrap();
    let last = records(&s.db, "ws1").await.pop().unwrap();
    let mut forged = last.chain_record().unwrap();
    forged.detail = "forged".into();
    let hash = hex::encode(chain::compute_hash(&forged.prev_hash, &forged));
    sql(
        &s.db,
        &format!(
            "UPDATE audit_records SET detail = 'forged', hash = '{hash}' WHERE id = '{}'",
            last.id
        ),
    )
    .await;
    let broken = broken_at(store::verify_workspace(&s.db, &ws("ws1")).await);
    assert_eq!((broken.sequence, broken.reason), (6, BreakReason::HeadMismatch));
}

#[tokio::test]
async fn a_deleted_record_is_detected() {
    let s = store().await;
    store::append_batch(&s.db, &entries("ws1", 8)).await.unwrap();
    sql(
        &s.db,
        "DELETE FROM audit_records WHERE workspace_id = 'ws1' AND sequence = 5",
    )
    .await;
    let broken = broken_at(store::verify_workspace(&s.db, &ws("ws1")).await);
    assert_eq!(broken.sequence, 5);
    assert_eq!(broken.reason, BreakReason::Missing { found: 6 });

    // The newest records deleted: the chain that is left is consistent, the head is not.
    let s = store().await;
    store::append_batch(&s.db, &entries("ws1", 8)).await.unwrap();
    sql(
        &s.db,
        "DELETE FROM audit_records WHERE workspace_id = 'ws1' AND sequence >= 7",
    )
    .await;
    let broken = broken_at(store::verify_workspace(&s.db, &ws("ws1")).await);
    assert_eq!((broken.sequence, broken.reason), (7, BreakReason::HeadMismatch));

    // Records kept but the head row deleted.
    let s = store().await;
    store::append_batch(&s.db, &entries("ws1", 3)).await.unwrap();
    sql(&s.db, "DELETE FROM audit_heads WHERE workspace_id = 'ws1'").await;
    let broken = broken_at(store::verify_workspace(&s.db, &ws("ws1")).await);
    assert_eq!(broken.reason, BreakReason::HeadMismatch);
}

#[tokio::test]
async fn an_event_appended_twice_is_stored_once() {
    let s = store().await;
    let e = entry("ws1", action::MEMBER_INVITED, "user-1", 1_700_000_000_000);
    // Twice in one batch, then again in a later batch (a redelivery).
    assert_eq!(
        store::append_batch(&s.db, &[e.clone(), e.clone()]).await.unwrap(),
        1
    );
    assert_eq!(
        store::append_batch(&s.db, std::slice::from_ref(&e))
            .await
            .unwrap(),
        0
    );
    let more = entries("ws1", 2);
    let batch = vec![e.clone(), more[0].clone(), more[1].clone()];
    assert_eq!(store::append_batch(&s.db, &batch).await.unwrap(), 2);

    let rows = records(&s.db, "ws1").await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.iter().filter(|r| r.event_id == e.event_id()).count(), 1);
    assert_eq!(
        store::verify_workspace(&s.db, &ws("ws1")).await.unwrap().records,
        3
    );
}

#[tokio::test]
async fn workspaces_have_independent_chains() {
    let s = store().await;
    let a = entries("ws-a", 5);
    let b = entries("ws-b", 4);
    // Interleaved in one batch.
    let mut batch = Vec::new();
    for (i, e) in a.iter().enumerate() {
        batch.push(e.clone());
        if let Some(e) = b.get(i) {
            batch.push(e.clone());
        }
    }
    assert_eq!(store::append_batch(&s.db, &batch).await.unwrap(), 9);

    for (workspace, n) in [("ws-a", 5), ("ws-b", 4)] {
        let rows = records(&s.db, workspace).await;
        assert_eq!(
            rows.iter().map(|r| r.sequence).collect::<Vec<_>>(),
            (1..=n).collect::<Vec<_>>()
        );
        assert_eq!(rows[0].prev_hash, hex::encode(GENESIS));
        assert_eq!(
            store::verify_workspace(&s.db, &ws(workspace))
                .await
                .unwrap()
                .records,
            n as u64
        );
    }

    // Tampering with one leaves the other intact.
    sql(
        &s.db,
        "UPDATE audit_records SET actor_id = 'x' WHERE workspace_id = 'ws-a' AND sequence = 2",
    )
    .await;
    assert_eq!(
        broken_at(store::verify_workspace(&s.db, &ws("ws-a")).await).sequence,
        2
    );
    assert!(store::verify_workspace(&s.db, &ws("ws-b")).await.is_ok());

    // A record moved to the other workspace breaks both.
    sql(&s.db, "UPDATE audit_records SET workspace_id = 'ws-a', sequence = 6 WHERE workspace_id = 'ws-b' AND sequence = 4").await;
    assert!(store::verify_workspace(&s.db, &ws("ws-b")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_keep_one_chain_per_workspace() {
    let s = store().await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let db = s.db.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..8 {
                let mut batch = entries("ws1", 3);
                batch.extend(entries("ws2", 1));
                // Appenders of one workspace take turns on its head row: none fails.
                assert_eq!(store::append_batch(&db, &batch).await.unwrap(), 4);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = store::verify_workspace(&s.db, &ws("ws1")).await.unwrap();
    assert_eq!((report.records, report.head.sequence), (96, 96));
    let report = store::verify_workspace(&s.db, &ws("ws2")).await.unwrap();
    assert_eq!(report.records, 32);
}

#[tokio::test]
async fn listing_filters_and_pages_newest_first() {
    let s = store().await;
    let t0 = 1_700_000_000_000;
    let mut batch = Vec::new();
    for i in 0..30i64 {
        let (act, actor) = match i % 3 {
            0 => (action::AUTH_LOGIN, "alice"),
            1 => (action::MEMBER_INVITED, "bob"),
            _ => (action::MESSAGE_SENT, "alice"),
        };
        batch.push(entry("ws1", act, actor, t0 + i * 60_000));
    }
    batch.extend(entries("ws2", 5));
    store::append_batch(&s.db, &batch).await.unwrap();
    let w = ws("ws1");

    // Every record once, newest first, across pages of 7.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store::list(&s.db, &w, &Filter::default(), PageRequest { before, limit: 7 })
            .await
            .unwrap();
        assert!(page.records.len() <= 7);
        seen.extend(page.records.iter().map(|r| r.sequence));
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, (1..=30).rev().collect::<Vec<_>>());

    let by_action = Filter {
        action: Some(action::MEMBER_INVITED.into()),
        ..Default::default()
    };
    let page = store::list(
        &s.db,
        &w,
        &by_action,
        PageRequest {
            before: None,
            limit: 100,
        },
    )
    .await
    .unwrap();
    assert_eq!(page.records.len(), 10);
    assert!(
        page.records
            .iter()
            .all(|r| r.action == action::MEMBER_INVITED && r.actor_id == "bob")
    );
    assert_eq!(page.next_before, None);

    let by_actor = Filter {
        actor_kind: Some(ActorKind::User),
        actor_id: Some("alice".into()),
        ..Default::default()
    };
    let page = store::list(
        &s.db,
        &w,
        &by_actor,
        PageRequest {
            before: None,
            limit: 100,
        },
    )
    .await
    .unwrap();
    assert_eq!(page.records.len(), 20);
    let by_system = Filter {
        actor_kind: Some(ActorKind::System),
        ..Default::default()
    };
    let page = store::list(
        &s.db,
        &w,
        &by_system,
        PageRequest {
            before: None,
            limit: 100,
        },
    )
    .await
    .unwrap();
    assert!(page.records.is_empty());

    // [from, to): minutes 10..20.
    let window = Filter {
        from_ms: Some(t0 + 10 * 60_000),
        to_ms: Some(t0 + 20 * 60_000),
        ..Default::default()
    };
    let first = store::list(
        &s.db,
        &w,
        &window,
        PageRequest {
            before: None,
            limit: 4,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        first.records.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        vec![20, 19, 18, 17]
    );
    let second = store::list(
        &s.db,
        &w,
        &window,
        PageRequest {
            before: first.next_before,
            limit: 100,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        second.records.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        (11..=16).rev().collect::<Vec<_>>()
    );

    // Scoped by workspace.
    let other = store::list(
        &s.db,
        &ws("ws2"),
        &Filter::default(),
        PageRequest {
            before: None,
            limit: 100,
        },
    )
    .await
    .unwrap();
    assert_eq!(other.records.len(), 5);
    assert!(other.records.iter().all(|r| r.workspace_id == "ws2"));
}

#[tokio::test]
async fn the_export_is_json_lines_oldest_first_and_reverifiable() {
    let s = store().await;
    let mut batch = entries("ws1", 12);
    batch.extend(entries("ws2", 3));
    store::append_batch(&s.db, &batch).await.unwrap();

    let mut out = Vec::new();
    let written = store::export_jsonl(&s.db, &ws("ws1"), &Filter::default(), &mut out)
        .await
        .unwrap();
    assert_eq!(written, 12);
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 12);
    let mut prev = hex::encode(GENESIS);
    let mut event_ids = HashSet::new();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["sequence"], i as i64 + 1);
        assert_eq!(line["workspace_id"], "ws1");
        assert_eq!(line["actor"]["kind"], "user");
        assert_eq!(line["actor"]["id"], "user-1");
        assert_eq!(line["target"]["kind"], "member");
        assert_eq!(line["outcome"], "success");
        assert_eq!(line["event_id"], batch[i].event_id());
        assert_eq!(line["at_ms"], batch[i].at_ms());
        assert!(line["at"].as_str().unwrap().ends_with('Z'));
        // The export carries its own chain.
        assert_eq!(line["prev_hash"], prev.as_str());
        prev = line["hash"].as_str().unwrap().to_string();
        event_ids.insert(line["event_id"].as_str().unwrap().to_string());
    }
    assert_eq!(event_ids.len(), 12);
    assert_eq!(lines[0]["at"], "2023-11-14T22:13:20.000Z");

    let filter = Filter {
        action: Some(action::AUTH_LOGIN.into()),
        ..Default::default()
    };
    let mut out = Vec::new();
    let written = store::export_jsonl(&s.db, &ws("ws1"), &filter, &mut out)
        .await
        .unwrap();
    // entries() cycles through the 16 catalogue actions; auth.login is the first.
    assert_eq!(written, 1);
}
