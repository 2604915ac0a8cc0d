//! The team's writes to conversations: status and assignment (`UpdateConversation`), labels and
//! internal notes; the workspace's auto-assignment settings and the agents' availability.
//! (Auto-assignment itself runs in the consumer, where conversations are created:
//! [`crate::apply`].)
//!
//! A conversation row is also written back by the consumers' batches, so a change here holds the
//! engine's write lock for its transaction ([`Engine::lock_writes`]); the consumers re-read the
//! row in their next batch. Labels and notes are rows of their own that the consumers never write,
//! but they hold the lock too, so that one cannot attach to a conversation a disconnect is deleting
//! in the same moment. Every change is announced (`ConversationUpdated`, `MessageCreated`) after
//! its commit.

use std::{collections::HashMap, sync::Arc};

use scifer_proto::inbox::v1::{
    self as pb, AddNoteRequest, AgentAvailability, AssignmentSettings, AuthorKind, ConversationStatus,
    MessageDirection, UpdateAssignmentSettingsRequest, UpdateConversationRequest, UpdateLabelsRequest,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, OnConflict},
};

use crate::{
    consumer::Engine,
    convert,
    domain::{
        AgentId, WorkspaceId,
        assignment::{StatusChange, optional_id},
        label::{Label, MAX_LABELS_PER_CONVERSATION},
    },
    error::InboxError,
    store::{
        self,
        entity::{agent, assignment_settings, conversation, conversation_label, message},
    },
    views,
};

/// Longest internal note.
const MAX_NOTE_CHARS: usize = 10_000;
/// The external id of a note (unique per channel like Meta's ids, and never one of them).
pub const NOTE_PREFIX: &str = "note:";

/// The highest cap an admin may set: beyond it, "no cap" (0) says the same.
const MAX_CAP: i32 = 10_000;

pub struct Workflow {
    db: DatabaseConnection,
    engine: Arc<Engine>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos / 1_000_000))
}

impl Workflow {
    pub fn new(db: DatabaseConnection, engine: Arc<Engine>) -> Self {
        Self { db, engine }
    }

    pub async fn update_conversation(
        &self,
        ws: &WorkspaceId,
        req: UpdateConversationRequest,
    ) -> Result<pb::Conversation, InboxError> {
        // Issue 5: the engine's clock, so analytics can be scripted with exact times.
        let now = self.engine.clock().now_ms();
        let change = StatusChange::parse(req.status, req.snoozed_until.as_ref().map(ms), now)
            .map_err(|e| InboxError::Invalid(e.to_string()))?;
        let invalid = |e: crate::domain::assignment::InvalidId| InboxError::Invalid(e.to_string());
        let assignee = req
            .assignee_id
            .as_deref()
            .map(|a| optional_id(a, "assignee_id"))
            .transpose()
            .map_err(invalid)?;
        let team = req
            .team_id
            .as_deref()
            .map(|t| optional_id(t, "team_id"))
            .transpose()
            .map_err(invalid)?;
        let guard = optional_id(&req.assignee_guard, "assignee_guard").map_err(invalid)?;

        let (before, after) = {
            let _writer = self.engine.lock_writes().await;
            let txn = scifer_db::begin_write(&self.db).await?;
            let current = store::find_conversation(&txn, ws, &req.conversation_id)
                .await?
                .ok_or(InboxError::ConversationNotFound)?;
            let mut next = current.clone();
            match change {
                StatusChange::Unchanged => {}
                StatusChange::To(status) => {
                    next.status = status as i32;
                    next.snoozed_until_ms = 0;
                }
                StatusChange::Snooze { until_ms } => {
                    next.status = ConversationStatus::Snoozed as i32;
                    next.snoozed_until_ms = until_ms;
                }
            }
            if let Some(assignee) = assignee {
                if let Some(guard) = &guard {
                    let free_or_theirs = current.assignee_id.is_empty() || current.assignee_id == *guard;
                    let to_them_or_nobody = assignee.as_ref().is_none_or(|a| a == guard);
                    if !(free_or_theirs && to_them_or_nobody) {
                        return Err(InboxError::Forbidden(
                            "you may take an unassigned conversation or release your own; reassigning is for admins",
                        ));
                    }
                }
                next.assignee_id = assignee.unwrap_or_default();
            }
            if let Some(team) = team {
                next.team_id = team.unwrap_or_default();
            }
            if next != current {
                next.updated_at_ms = now;
                write_conversation(&txn, &next).await?;
                // Issue 5: resolving and reopening are analytics facts, in this transaction.
                let resolved = ConversationStatus::Resolved as i32;
                let mut facts = crate::analytics::Recorder::default();
                if next.status == resolved && current.status != resolved {
                    facts.resolved(&txn, &next, now).await?;
                } else if current.status == resolved && next.status != resolved {
                    facts.opened(&next, now, false);
                }
                facts.write(&txn).await?;
                txn.commit().await?;
            }
            (current, next)
        };
        let view = views::conversation(&self.db, ws, &after).await?;
        if before != after {
            self.engine
                .announce(vec![views::conversation_updated(ws.as_str(), view.clone())])
                .await;
        }
        Ok(view)
    }

    pub async fn update_labels(
        &self,
        ws: &WorkspaceId,
        req: UpdateLabelsRequest,
    ) -> Result<pb::Conversation, InboxError> {
        let parse = |raw: &Vec<String>| {
            raw.iter()
                .map(|l| Label::parse(l))
                .collect::<Result<std::collections::BTreeSet<Label>, _>>()
                .map_err(|e| InboxError::Invalid(e.to_string()))
        };
        let (add, remove) = (parse(&req.add)?, parse(&req.remove)?);
        let (conv, changed) = {
            let _writer = self.engine.lock_writes().await;
            let txn = scifer_db::begin_write(&self.db).await?;
            let conv = store::find_conversation(&txn, ws, &req.conversation_id)
                .await?
                .ok_or(InboxError::ConversationNotFound)?;
            let current: std::collections::BTreeSet<String> =
                store::labels_of(&txn, std::slice::from_ref(&conv.id))
                    .await?
                    .remove(&conv.id)
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
            let removed: Vec<String> = remove
                .iter()
                .map(|l| l.as_str().to_string())
                .filter(|l| current.contains(l))
                .collect();
            // Asked to add and remove one label at once: it is added.
            let added: Vec<String> = add
                .into_iter()
                .map(Label::into_string)
                .filter(|l| !current.contains(l))
                .collect();
            let removed: Vec<String> = removed.into_iter().filter(|l| !added.contains(l)).collect();
            if current.len() - removed.len() + added.len() > MAX_LABELS_PER_CONVERSATION {
                return Err(InboxError::Invalid(format!(
                    "a conversation carries at most {MAX_LABELS_PER_CONVERSATION} labels"
                )));
            }
            if !removed.is_empty() {
                conversation_label::Entity::delete_many()
                    .filter(conversation_label::Column::ConversationId.eq(conv.id.as_str()))
                    .filter(conversation_label::Column::Label.is_in(removed.iter().cloned()))
                    .exec(&txn)
                    .await?;
            }
            if !added.is_empty() {
                let now = now_ms();
                let rows = added.iter().map(|label| {
                    sea_orm::IntoActiveModel::into_active_model(conversation_label::Model {
                        conversation_id: conv.id.clone(),
                        label: label.clone(),
                        workspace_id: conv.workspace_id.clone(),
                        channel_id: conv.channel_id.clone(),
                        created_at_ms: now,
                    })
                });
                conversation_label::Entity::insert_many(rows)
                    .on_conflict(
                        OnConflict::columns([
                            conversation_label::Column::ConversationId,
                            conversation_label::Column::Label,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .try_insert()
                    .exec_without_returning(&txn)
                    .await?;
            }
            txn.commit().await?;
            (conv, !(added.is_empty() && removed.is_empty()))
        };
        let view = views::conversation(&self.db, ws, &conv).await?;
        if changed {
            self.engine
                .announce(vec![views::conversation_updated(ws.as_str(), view.clone())])
                .await;
        }
        Ok(view)
    }

    /// Stores a note by `author` in the conversation's thread. Notes are messages that count
    /// nowhere: not in the conversation's message count, preview or activity, not as unread, not
    /// in the AI's context, never sent.
    pub async fn add_note(
        &self,
        ws: &WorkspaceId,
        author: &AgentId,
        req: AddNoteRequest,
    ) -> Result<pb::Message, InboxError> {
        let text = req.text.trim();
        if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
            return Err(InboxError::Invalid(format!(
                "a note is 1-{MAX_NOTE_CHARS} characters"
            )));
        }
        let note = {
            let _writer = self.engine.lock_writes().await;
            let txn = scifer_db::begin_write(&self.db).await?;
            let conv = store::find_conversation(&txn, ws, &req.conversation_id)
                .await?
                .ok_or(InboxError::ConversationNotFound)?;
            let now = now_ms();
            let id = uuid::Uuid::now_v7().to_string();
            let row = message::Model {
                id: id.clone(),
                workspace_id: conv.workspace_id.clone(),
                channel_id: conv.channel_id.clone(),
                conversation_id: conv.id.clone(),
                contact_id: conv.contact_id.clone(),
                external_id: format!("{NOTE_PREFIX}{id}"),
                direction: MessageDirection::Note as i32,
                text: text.to_string(),
                attachments_json: "[]".into(),
                sent_at_ms: now,
                status: 0,
                error_code: 0,
                error_message: String::new(),
                is_echo: false,
                reactions_json: "[]".into(),
                edited: false,
                edit_seq: 0,
                edited_at_ms: 0,
                reply_to_external_id: String::new(),
                payload: String::new(),
                created_at_ms: now,
                updated_at_ms: now,
                author_kind: AuthorKind::Human as i32,
                author_id: author.as_str().to_string(),
                idempotency_key: None,
                failure_reason: String::new(),
                retryable: false,
                attempt: 0,
                reconciled: false,
            };
            let note = sea_orm::IntoActiveModel::into_active_model(row)
                .insert(&txn)
                .await?;
            txn.commit().await?;
            note
        };
        self.engine.announce(vec![views::message_created(&note)]).await;
        Ok(convert::message(&note))
    }

    pub async fn settings(&self, ws: &WorkspaceId) -> Result<AssignmentSettings, InboxError> {
        let settings = assignment_settings::Entity::find_by_id(ws.as_str().to_string())
            .one(&self.db)
            .await?;
        let agents = agent::Entity::find()
            .filter(agent::Column::WorkspaceId.eq(ws.as_str()))
            .order_by_asc(agent::Column::AgentId)
            .all(&self.db)
            .await?;
        let open = open_counts(&self.db, ws, agents.iter().map(|a| a.agent_id.clone()).collect()).await?;
        Ok(AssignmentSettings {
            auto_assign: settings.as_ref().is_some_and(|s| s.auto_assign),
            max_open_per_agent: settings.as_ref().map_or(0, |s| s.max_open_per_agent),
            agents: agents
                .into_iter()
                .map(|a| AgentAvailability {
                    open_assigned: open.get(&a.agent_id).copied().unwrap_or(0),
                    agent_id: a.agent_id,
                    available: a.available,
                })
                .collect(),
        })
    }

    /// The consumer writes only the round robin's cursor of this row, and this only the rest, each
    /// with a statement naming its columns: neither needs the other's lock.
    pub async fn update_settings(
        &self,
        ws: &WorkspaceId,
        req: UpdateAssignmentSettingsRequest,
    ) -> Result<AssignmentSettings, InboxError> {
        if !(0..=MAX_CAP).contains(&req.max_open_per_agent) {
            return Err(InboxError::Invalid(format!(
                "max_open_per_agent must be 0 (no cap) to {MAX_CAP}"
            )));
        }
        let row = assignment_settings::Model {
            workspace_id: ws.as_str().to_string(),
            auto_assign: req.auto_assign,
            max_open_per_agent: req.max_open_per_agent,
            cursor_agent_id: String::new(),
            updated_at_ms: now_ms(),
        };
        assignment_settings::Entity::insert(sea_orm::IntoActiveModel::into_active_model(row))
            .on_conflict(
                OnConflict::column(assignment_settings::Column::WorkspaceId)
                    .update_columns([
                        assignment_settings::Column::AutoAssign,
                        assignment_settings::Column::MaxOpenPerAgent,
                        assignment_settings::Column::UpdatedAtMs,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        self.settings(ws).await
    }

    /// The consumer only reads agent rows.
    pub async fn set_availability(
        &self,
        ws: &WorkspaceId,
        agent_id: &AgentId,
        available: bool,
    ) -> Result<AgentAvailability, InboxError> {
        let row = agent::Model {
            workspace_id: ws.as_str().to_string(),
            agent_id: agent_id.as_str().to_string(),
            available,
            updated_at_ms: now_ms(),
        };
        agent::Entity::insert(sea_orm::IntoActiveModel::into_active_model(row))
            .on_conflict(
                OnConflict::columns([agent::Column::WorkspaceId, agent::Column::AgentId])
                    .update_columns([agent::Column::Available, agent::Column::UpdatedAtMs])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        let open = open_counts(&self.db, ws, vec![agent_id.as_str().to_string()]).await?;
        Ok(AgentAvailability {
            agent_id: agent_id.as_str().to_string(),
            available,
            open_assigned: open.get(agent_id.as_str()).copied().unwrap_or(0),
        })
    }
}

/// Writes what an RPC may change of a conversation (status, snooze, assignee, team).
async fn write_conversation(
    db: &impl ConnectionTrait,
    c: &conversation::Model,
) -> Result<(), sea_orm::DbErr> {
    conversation::Entity::update_many()
        .col_expr(conversation::Column::Status, Expr::value(c.status))
        .col_expr(
            conversation::Column::SnoozedUntilMs,
            Expr::value(c.snoozed_until_ms),
        )
        .col_expr(
            conversation::Column::AssigneeId,
            Expr::value(c.assignee_id.clone()),
        )
        .col_expr(conversation::Column::TeamId, Expr::value(c.team_id.clone()))
        .col_expr(conversation::Column::UpdatedAtMs, Expr::value(c.updated_at_ms))
        .filter(conversation::Column::Id.eq(c.id.as_str()))
        .filter(conversation::Column::WorkspaceId.eq(c.workspace_id.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// OPEN conversations assigned to each of `agents`.
async fn open_counts(
    db: &impl ConnectionTrait,
    ws: &WorkspaceId,
    agents: Vec<String>,
) -> Result<HashMap<String, i64>, sea_orm::DbErr> {
    if agents.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64)> = conversation::Entity::find()
        .select_only()
        .column(conversation::Column::AssigneeId)
        .column_as(conversation::Column::Id.count(), "open")
        .filter(conversation::Column::WorkspaceId.eq(ws.as_str()))
        .filter(conversation::Column::Status.eq(ConversationStatus::Open as i32))
        .filter(conversation::Column::AssigneeId.is_in(agents))
        .group_by(conversation::Column::AssigneeId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}
