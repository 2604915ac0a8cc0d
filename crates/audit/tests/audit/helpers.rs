use scifer_audit::{AuditEntry, store::Migrator};
use scifer_ids::WorkspaceId;
use scifer_proto::events::v1 as proto;
use scifer_test_support::TestDb;
use sea_orm::{ConnectionTrait, DatabaseConnection};

/// A migrated audit store of its own; the database goes when this does.
pub struct Store {
    pub db: DatabaseConnection,
    _test_db: TestDb,
}

pub async fn store() -> Store {
    let test_db = TestDb::new().await;
    let db = scifer_db::open::<Migrator>(test_db.url()).await.unwrap();
    Store {
        db,
        _test_db: test_db,
    }
}

pub fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).unwrap()
}

pub fn event(workspace: &str, action: &str, actor_id: &str, at_ms: i64) -> proto::AuditEvent {
    proto::AuditEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        workspace_id: workspace.into(),
        actor: Some(proto::Actor {
            kind: proto::ActorKind::User as i32,
            id: actor_id.into(),
        }),
        action: action.into(),
        target: Some(proto::Target {
            kind: "member".into(),
            id: "user-9".into(),
        }),
        at: Some(prost_types::Timestamp {
            seconds: at_ms / 1000,
            nanos: ((at_ms % 1000) * 1_000_000) as i32,
        }),
        trace_id: String::new(),
        outcome: proto::audit_event::Outcome::Success as i32,
        detail: format!("{action} by {actor_id}"),
        service: "gateway".into(),
    }
}

pub fn entry(workspace: &str, action: &str, actor_id: &str, at_ms: i64) -> AuditEntry {
    AuditEntry::try_from(event(workspace, action, actor_id, at_ms)).unwrap()
}

/// `n` entries of one workspace, one second apart.
pub fn entries(workspace: &str, n: usize) -> Vec<AuditEntry> {
    (0..n)
        .map(|i| {
            entry(
                workspace,
                scifer_audit::action::ALL[i % scifer_audit::action::ALL.len()],
                "user-1",
                1_700_000_000_000 + i as i64 * 1000,
            )
        })
        .collect()
}

pub async fn sql(db: &DatabaseConnection, statement: &str) {
    db.execute_unprepared(statement).await.unwrap();
}
