//! The audit store: append-only, hash-chained records per workspace (see [`crate::chain`]), on
//! SQLite or PostgreSQL. Every read is scoped by workspace.
//!
//! Appending locks each touched workspace's head row before reading it (on PostgreSQL with
//! `SELECT ... FOR UPDATE`; on SQLite the transaction's first statement is a write, which takes
//! the database's single write lock), so concurrent appenders of one workspace take turns; the
//! head is then moved with a conditional update and the `(workspace_id, sequence)` unique index
//! backs both up. A lost race therefore fails the transaction (the caller retries) and never forks
//! a chain.

pub mod entity;
pub mod migration;

use std::collections::{BTreeMap, HashMap, HashSet};

use scifer_ids::WorkspaceId;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, TransactionSession, TransactionTrait, sea_query::Expr,
};
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::{
    chain::{self, BreakReason, ChainBroken, ChainReport, Head, Verifier},
    entry::{ActorKind, AuditEntry},
};
use entity::{audit_head, audit_record};

pub use migration::{CreateAuditRecords, Migrator};

/// Most bind parameters per statement (SQLite's limit is 32766; PostgreSQL's 65535).
const MAX_BINDS: usize = 8_000;
/// Rows read per query when exporting or verifying.
const SCAN_PAGE: u64 = 1_000;
/// The largest page [`list`] returns.
pub const MAX_PAGE: u64 = 500;

/// Appends `entries` to their workspaces' chains in one transaction, in the order given; entries
/// whose event id is already stored (or repeated within `entries`) are skipped. Returns how many
/// records were appended.
///
/// Pass a connection (a transaction is opened and committed) or a transaction (a savepoint is
/// used, and the caller commits).
pub async fn append_batch<C>(db: &C, entries: &[AuditEntry]) -> Result<u64, DbErr>
where
    C: TransactionTrait,
{
    if entries.is_empty() {
        return Ok(0);
    }
    let txn = db.begin().await?;
    let appended = append_in(&txn, entries).await?;
    txn.commit().await?;
    Ok(appended)
}

async fn append_in<C: ConnectionTrait>(txn: &C, entries: &[AuditEntry]) -> Result<u64, DbErr> {
    // By workspace, in a fixed (sorted) order so that two appenders lock heads in the same order
    // and cannot deadlock; within a workspace, in the order given.
    let mut seen = HashSet::new();
    let mut by_workspace: BTreeMap<&str, Vec<&AuditEntry>> = BTreeMap::new();
    for e in entries {
        if seen.insert(e.event_id()) {
            by_workspace.entry(e.workspace_id().as_str()).or_default().push(e);
        }
    }

    let mut heads = HashMap::new();
    for workspace in by_workspace.keys() {
        heads.insert(*workspace, lock_head(txn, workspace).await?);
    }

    // Checked only now, under the locks: an appender that stored the same event has committed.
    let ids: Vec<&str> = seen.into_iter().collect();
    let mut stored = HashSet::new();
    for chunk in ids.chunks(MAX_BINDS) {
        let rows: Vec<String> = audit_record::Entity::find()
            .select_only()
            .column(audit_record::Column::EventId)
            .filter(audit_record::Column::EventId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await?;
        stored.extend(rows);
    }

    let mut appended = 0;
    for (workspace, entries) in by_workspace {
        let fresh: Vec<&AuditEntry> = entries
            .into_iter()
            .filter(|e| !stored.contains(e.event_id()))
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let Some(before) = heads.get(workspace).copied() else {
            return Err(DbErr::Custom(format!(
                "no locked audit head for workspace {workspace}"
            )));
        };
        let mut head = before;
        let rows: Vec<audit_record::Model> = fresh
            .iter()
            .map(|e| audit_record::Model::from_chain(uuid::Uuid::now_v7().to_string(), head.append(e)))
            .collect();
        let per_statement = MAX_BINDS / 16;
        for chunk in rows.chunks(per_statement) {
            audit_record::Entity::insert_many(chunk.iter().map(|m| m.clone().into_active_model()))
                .exec_without_returning(txn)
                .await?;
        }
        // Conditional on the head we locked: if anything moved it, this transaction must not commit.
        let moved = audit_head::Entity::update_many()
            .col_expr(audit_head::Column::Sequence, Expr::value(head.sequence))
            .col_expr(audit_head::Column::Hash, Expr::value(hex::encode(head.hash)))
            .filter(audit_head::Column::WorkspaceId.eq(workspace))
            .filter(audit_head::Column::Sequence.eq(before.sequence))
            .exec(txn)
            .await?;
        if moved.rows_affected != 1 {
            return Err(DbErr::Custom(format!(
                "the audit chain of workspace {workspace} moved during the append; retry"
            )));
        }
        appended += rows.len() as u64;
    }
    Ok(appended)
}

/// Creates the workspace's head if missing, then reads it locked for the rest of the transaction.
async fn lock_head<C: ConnectionTrait>(txn: &C, workspace: &str) -> Result<Head, DbErr> {
    let row = audit_head::ActiveModel {
        workspace_id: Set(workspace.to_string()),
        sequence: Set(0),
        hash: Set(hex::encode(chain::GENESIS)),
    };
    audit_head::Entity::insert(row)
        .on_conflict_do_nothing()
        .exec_without_returning(txn)
        .await?;
    let head = audit_head::Entity::find_by_id(workspace.to_string())
        // FOR UPDATE on PostgreSQL; sea-query leaves it out on SQLite, where the insert above has
        // already taken the write lock.
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("audit head of workspace {workspace}")))?;
    let hash = audit_record::parse_hash(&head.hash)
        .ok_or_else(|| DbErr::Custom(format!("the audit head of workspace {workspace} is malformed")))?;
    Ok(Head {
        sequence: head.sequence,
        hash,
    })
}

/// Which records to list or export. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub actor_kind: Option<ActorKind>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    /// Inclusive lower bound on the action's time, Unix ms.
    pub from_ms: Option<i64>,
    /// Exclusive upper bound on the action's time, Unix ms.
    pub to_ms: Option<i64>,
}

impl Filter {
    fn condition(&self, workspace: &WorkspaceId) -> Condition {
        let mut c = Condition::all().add(audit_record::Column::WorkspaceId.eq(workspace.as_str()));
        if let Some(kind) = self.actor_kind {
            c = c.add(audit_record::Column::ActorKind.eq(kind.as_str()));
        }
        if let Some(id) = &self.actor_id {
            c = c.add(audit_record::Column::ActorId.eq(id.as_str()));
        }
        if let Some(action) = &self.action {
            c = c.add(audit_record::Column::Action.eq(action.as_str()));
        }
        if let Some(from) = self.from_ms {
            c = c.add(audit_record::Column::AtMs.gte(from));
        }
        if let Some(to) = self.to_ms {
            c = c.add(audit_record::Column::AtMs.lt(to));
        }
        c
    }
}

/// Which page of a listing: records with a sequence below `before` (None for the newest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub before: Option<i64>,
    /// Clamped to 1..=[`MAX_PAGE`].
    pub limit: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Newest first.
    pub records: Vec<audit_record::Model>,
    /// `before` of the next page; None on the last page.
    pub next_before: Option<i64>,
}

/// A page of a workspace's records, newest first (by sequence, i.e. the order they were stored).
pub async fn list<C: ConnectionTrait>(
    db: &C,
    workspace: &WorkspaceId,
    filter: &Filter,
    page: PageRequest,
) -> Result<Page, DbErr> {
    let limit = page.limit.clamp(1, MAX_PAGE);
    let mut condition = filter.condition(workspace);
    if let Some(before) = page.before {
        condition = condition.add(audit_record::Column::Sequence.lt(before));
    }
    let mut records = audit_record::Entity::find()
        .filter(condition)
        .order_by_desc(audit_record::Column::Sequence)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = records.len() as u64 > limit;
    records.truncate(limit as usize);
    let next_before = if more {
        records.last().map(|r| r.sequence)
    } else {
        None
    };
    Ok(Page { records, next_before })
}

/// One exported record. The hashes are included so an export can be re-verified on its own.
#[derive(Debug, Serialize)]
struct ExportLine<'a> {
    workspace_id: &'a str,
    sequence: i64,
    event_id: &'a str,
    /// RFC 3339 with milliseconds, UTC.
    at: String,
    at_ms: i64,
    actor: Pair<'a>,
    action: &'a str,
    target: Pair<'a>,
    outcome: &'a str,
    detail: &'a str,
    trace_id: &'a str,
    service: &'a str,
    prev_hash: &'a str,
    hash: &'a str,
}

#[derive(Debug, Serialize)]
struct Pair<'a> {
    kind: &'a str,
    id: &'a str,
}

impl<'a> From<&'a audit_record::Model> for ExportLine<'a> {
    fn from(r: &'a audit_record::Model) -> Self {
        Self {
            workspace_id: &r.workspace_id,
            sequence: r.sequence,
            event_id: &r.event_id,
            at: chrono::DateTime::from_timestamp_millis(r.at_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
            at_ms: r.at_ms,
            actor: Pair {
                kind: &r.actor_kind,
                id: &r.actor_id,
            },
            action: &r.action,
            target: Pair {
                kind: &r.target_kind,
                id: &r.target_id,
            },
            outcome: &r.outcome,
            detail: &r.detail,
            trace_id: &r.trace_id,
            service: &r.service,
            prev_hash: &r.prev_hash,
            hash: &r.hash,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read the audit log: {0}")]
    Store(#[from] DbErr),
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
    #[error("cannot encode a record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Writes a workspace's matching records to `out` as JSON lines (one object per line), oldest
/// first, reading them in pages. Returns how many lines were written.
pub async fn export_jsonl<C, W>(
    db: &C,
    workspace: &WorkspaceId,
    filter: &Filter,
    out: &mut W,
) -> Result<u64, ExportError>
where
    C: ConnectionTrait,
    W: AsyncWrite + Unpin,
{
    let mut after = 0;
    let mut written = 0;
    loop {
        let records = audit_record::Entity::find()
            .filter(filter.condition(workspace))
            .filter(audit_record::Column::Sequence.gt(after))
            .order_by_asc(audit_record::Column::Sequence)
            .limit(SCAN_PAGE)
            .all(db)
            .await?;
        let mut buf = Vec::new();
        for r in &records {
            serde_json::to_writer(&mut buf, &ExportLine::from(r))?;
            buf.push(b'\n');
        }
        out.write_all(&buf).await?;
        written += records.len() as u64;
        match records.last() {
            Some(last) if records.len() as u64 == SCAN_PAGE => after = last.sequence,
            _ => break,
        }
    }
    out.flush().await?;
    Ok(written)
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Broken(#[from] ChainBroken),
    #[error("cannot read the audit log: {0}")]
    Store(#[from] DbErr),
}

/// Verifies a workspace's whole chain, reading its records in sequence order a page at a time,
/// and checks the stored head against them (which catches deleted newest records and a re-hashed
/// last record). Records appended while it runs are verified too.
pub async fn verify_workspace<C: ConnectionTrait>(
    db: &C,
    workspace: &WorkspaceId,
) -> Result<ChainReport, VerifyError> {
    // The head first: every record up to it was committed with it, so none can be missing later.
    let head = audit_head::Entity::find_by_id(workspace.to_string())
        .one(db)
        .await?;
    let mut verifier = Verifier::new();
    let mut hash_at_head = None;
    let mut after = 0;
    loop {
        let records = audit_record::Entity::find()
            .filter(audit_record::Column::WorkspaceId.eq(workspace.as_str()))
            .filter(audit_record::Column::Sequence.gt(after))
            .order_by_asc(audit_record::Column::Sequence)
            .limit(SCAN_PAGE)
            .all(db)
            .await?;
        for row in &records {
            let record = row.chain_record()?;
            verifier.push(&record)?;
            if head.as_ref().is_some_and(|h| h.sequence == record.sequence) {
                hash_at_head = Some(record.hash);
            }
        }
        match records.last() {
            Some(last) if records.len() as u64 == SCAN_PAGE => after = last.sequence,
            _ => break,
        }
    }
    let report = verifier.finish();
    let head_mismatch = |sequence| ChainBroken {
        sequence,
        reason: BreakReason::HeadMismatch,
    };
    match head {
        None if report.records > 0 => return Err(head_mismatch(report.head.sequence).into()),
        None => {}
        Some(h) if h.sequence > report.head.sequence => {
            return Err(head_mismatch(report.head.sequence + 1).into());
        }
        Some(h) if h.sequence == 0 => {}
        Some(h) => {
            let stored = audit_record::parse_hash(&h.hash);
            if stored.is_none() || stored != hash_at_head {
                return Err(head_mismatch(h.sequence).into());
            }
        }
    }
    Ok(report)
}
