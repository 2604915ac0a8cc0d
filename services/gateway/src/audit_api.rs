//! `scifer.gateway.v1.AuditApi`: list, export and verify a workspace's audit log. The auth layer
//! has checked that the caller is an admin or owner of the request's workspace; every RPC reads
//! only that workspace's chain.

use futures::{StreamExt, stream::BoxStream};
use scifer_audit::{
    ActorKind, Outcome,
    store::{self, Filter, PageRequest, VerifyError, entity::audit_record},
};
use scifer_ids::WorkspaceId;
use scifer_proto::{
    events::v1 as events,
    gateway::v1::{
        AuditExportChunk, AuditFilter, AuditRecord, ExportAuditLogRequest, ListAuditRecordsRequest,
        ListAuditRecordsResponse, VerifyAuditChainRequest, VerifyAuditChainResponse, audit_api_server,
    },
};
use sea_orm::DatabaseConnection;
use tokio::{
    io::{AsyncReadExt, DuplexStream},
    task::JoinHandle,
};
use tonic::{Request, Response, Status};

use crate::{auth::Actor, domain::Invalid, error::GatewayError};

/// A page when the request names no size.
const DEFAULT_PAGE_SIZE: u64 = 50;
/// Export chunks hold whole lines, up to about this many bytes (a record is well under it).
const CHUNK_BYTES: usize = 64 * 1024;

pub struct AuditApi {
    db: DatabaseConnection,
}

impl AuditApi {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

fn workspace_of<T>(request: &Request<T>) -> Result<WorkspaceId, GatewayError> {
    Ok(Actor::of(request)?.membership()?.workspace.clone())
}

fn filter(filter: Option<AuditFilter>) -> Result<Filter, GatewayError> {
    let f = filter.unwrap_or_default();
    let actor_kind = match events::ActorKind::try_from(f.actor_kind) {
        Ok(events::ActorKind::Unspecified) => None,
        Ok(events::ActorKind::User) => Some(ActorKind::User),
        Ok(events::ActorKind::AutomationRule) => Some(ActorKind::AutomationRule),
        Ok(events::ActorKind::Ai) => Some(ActorKind::Ai),
        Ok(events::ActorKind::System) => Some(ActorKind::System),
        Ok(events::ActorKind::Service) => Some(ActorKind::Service),
        Err(_) => return Err(Invalid("filter.actor_kind is unknown").into()),
    };
    if f.from_ms < 0 || f.to_ms < 0 {
        return Err(Invalid("filter times are Unix milliseconds, not negative").into());
    }
    let some = |s: String| (!s.is_empty()).then_some(s);
    let bound = |ms: i64| (ms != 0).then_some(ms);
    Ok(Filter {
        actor_kind,
        actor_id: some(f.actor_id),
        action: some(f.action),
        from_ms: bound(f.from_ms),
        to_ms: bound(f.to_ms),
    })
}

fn page(size: u32, token: &str) -> Result<PageRequest, GatewayError> {
    let before = if token.is_empty() {
        None
    } else {
        // The token is the sequence the next page starts below; anything else was not ours.
        let before = token
            .parse::<i64>()
            .ok()
            .filter(|s| *s > 0)
            .ok_or(Invalid("page_token is not valid"))?;
        Some(before)
    };
    let limit = if size == 0 {
        DEFAULT_PAGE_SIZE
    } else {
        u64::from(size)
    };
    Ok(PageRequest { before, limit })
}

fn record(r: audit_record::Model) -> AuditRecord {
    let kind = match ActorKind::parse(&r.actor_kind) {
        Some(ActorKind::User) => events::ActorKind::User,
        Some(ActorKind::AutomationRule) => events::ActorKind::AutomationRule,
        Some(ActorKind::Ai) => events::ActorKind::Ai,
        Some(ActorKind::System) => events::ActorKind::System,
        Some(ActorKind::Service) => events::ActorKind::Service,
        None => events::ActorKind::Unspecified,
    };
    let outcome = match Outcome::parse(&r.outcome) {
        Some(Outcome::Success) => events::audit_event::Outcome::Success,
        Some(Outcome::Failure) => events::audit_event::Outcome::Failure,
        Some(Outcome::Denied) => events::audit_event::Outcome::Denied,
        None => events::audit_event::Outcome::Unspecified,
    };
    AuditRecord {
        sequence: r.sequence,
        event_id: r.event_id,
        actor: Some(events::Actor {
            kind: kind as i32,
            id: r.actor_id,
        }),
        action: r.action,
        target: Some(events::Target {
            kind: r.target_kind,
            id: r.target_id,
        }),
        at_ms: r.at_ms,
        trace_id: r.trace_id,
        outcome: outcome as i32,
        detail: r.detail,
        service: r.service,
        prev_hash: r.prev_hash,
        hash: r.hash,
    }
}

#[tonic::async_trait]
impl audit_api_server::AuditApi for AuditApi {
    async fn list_audit_records(
        &self,
        request: Request<ListAuditRecordsRequest>,
    ) -> Result<Response<ListAuditRecordsResponse>, Status> {
        let workspace = workspace_of(&request)?;
        let request = request.into_inner();
        let filter = filter(request.filter)?;
        let page = page(request.page_size, &request.page_token)?;
        let found = store::list(&self.db, &workspace, &filter, page)
            .await
            .map_err(GatewayError::from)?;
        Ok(Response::new(ListAuditRecordsResponse {
            records: found.records.into_iter().map(record).collect(),
            next_page_token: found.next_before.map(|s| s.to_string()).unwrap_or_default(),
        }))
    }

    type ExportAuditLogStream = BoxStream<'static, Result<AuditExportChunk, Status>>;

    async fn export_audit_log(
        &self,
        request: Request<ExportAuditLogRequest>,
    ) -> Result<Response<Self::ExportAuditLogStream>, Status> {
        let workspace = workspace_of(&request)?;
        let filter = filter(request.into_inner().filter)?;
        // The store writes pages of lines into one end; the stream reads the other end and cuts
        // it into chunks at line ends. A client that goes away closes the reader, which ends the
        // writer with a broken pipe.
        let (mut writer, reader) = tokio::io::duplex(CHUNK_BYTES);
        let db = self.db.clone();
        let export = tokio::spawn(async move {
            store::export_jsonl(&db, &workspace, &filter, &mut writer)
                .await
                .map_err(|e| GatewayError::Internal(format!("audit export: {e}")))
        });
        let state = Export {
            reader,
            pending: Vec::new(),
            export: Some(export),
            failed: false,
        };
        Ok(Response::new(futures::stream::unfold(state, next_chunk).boxed()))
    }

    async fn verify_audit_chain(
        &self,
        request: Request<VerifyAuditChainRequest>,
    ) -> Result<Response<VerifyAuditChainResponse>, Status> {
        let workspace = workspace_of(&request)?;
        let response = match store::verify_workspace(&self.db, &workspace).await {
            Ok(report) => VerifyAuditChainResponse {
                ok: true,
                record_count: report.records,
                head_hash: report.head_hash_hex(),
                ..Default::default()
            },
            Err(VerifyError::Broken(broken)) => {
                tracing::warn!(%workspace, %broken, "the audit chain does not verify");
                VerifyAuditChainResponse {
                    ok: false,
                    broken_sequence: broken.sequence,
                    reason: broken.reason.to_string(),
                    ..Default::default()
                }
            }
            Err(VerifyError::Store(e)) => return Err(GatewayError::from(e).into()),
        };
        Ok(Response::new(response))
    }
}

struct Export {
    reader: DuplexStream,
    /// Bytes read but not sent yet: at most a partial line once a chunk has gone out.
    pending: Vec<u8>,
    /// The writing task, until its result has been looked at.
    export: Option<JoinHandle<Result<u64, GatewayError>>>,
    /// An error has been sent: nothing follows it.
    failed: bool,
}

/// The next chunk of whole lines; at the end, the export's error if it failed.
async fn next_chunk(mut state: Export) -> Option<(Result<AuditExportChunk, Status>, Export)> {
    if state.failed {
        return None;
    }
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        if state.pending.len() >= CHUNK_BYTES {
            // Up to the last line end; a single line longer than a chunk goes out whole.
            let cut = state
                .pending
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(state.pending.len(), |i| i + 1);
            let rest = state.pending.split_off(cut);
            let chunk = std::mem::replace(&mut state.pending, rest);
            return Some((Ok(AuditExportChunk { jsonl: chunk }), state));
        }
        let read = match state.reader.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let error = GatewayError::Internal(format!("reading the audit export: {e}"));
                state.failed = true;
                return Some((Err(error.into()), state));
            }
        };
        if read > 0 {
            state.pending.extend_from_slice(&buf[..read]);
            continue;
        }
        // End of the export: what is left, then how the export ended.
        if !state.pending.is_empty() {
            let chunk = std::mem::take(&mut state.pending);
            return Some((Ok(AuditExportChunk { jsonl: chunk }), state));
        }
        let export = state.export.take()?;
        let error = match export.await {
            Ok(Ok(lines)) => {
                tracing::debug!(lines, "audit log exported");
                return None;
            }
            Ok(Err(e)) => e,
            Err(e) => GatewayError::Internal(format!("audit export task: {e}")),
        };
        state.failed = true;
        return Some((Err(error.into()), state));
    }
}
