//! Inbox analytics (issue 5): an append-only activity log, written in the transaction of each
//! fact, and the report computed from it ([`report`], pure aggregation in
//! [`crate::domain::analytics`]).
//!
//! # Definitions
//!
//! - A conversation is **opened** on the day it is created (by a customer message, or by an
//!   echo of a message the business sent from elsewhere) or reopened: moved out of RESOLVED, by a
//!   customer message or by the team. Waking a snooze is not an opening (it was never resolved).
//! - It is **resolved** when it moves to RESOLVED. **Resolution time** = that moment minus the
//!   opening of the same period; a resolution whose opening predates the log counts without a
//!   time.
//! - **First-response time** = the first outbound message (human, automation, AI, or an echo of
//!   one sent from Meta's apps) Meta took after the customer message that opened (or reopened)
//!   the conversation, minus that customer message's time; measured once per opening, and only for
//!   openings by a customer.
//! - **Messages in**: customer messages and postbacks. **Messages out**: outbound messages Meta
//!   took, by author kind (`replies_by_*`: HUMAN, AUTOMATION, AI; echoes of messages sent outside
//!   Scifer count only in the total). A send that fails does not count out; each failed attempt
//!   counts in **failed by reason** (our failure reason, e.g. `window_closed`, `rate_limited`, or
//!   the reading of a WhatsApp `failed` status), also after Meta first took the message.
//! - **Handoffs**: recorded by [`record_handoff`] where the handoff happens.
//! - The **agent** of a fact is the conversation's assignee at the time of the fact, except
//!   outbound messages, first responses and failed sends written by a person: their author.
//! - Times are Meta's for customer messages and echoes, inbox's clock for the team's actions
//!   (sends, status changes); a **day** is a calendar day in the time zone of the request.
//!
//! # Exactness
//!
//! Each fact is written in the transaction that makes it true (the consumer's batch, the
//! status change, the send's result), under an id derived from the fact itself
//! (`in:<message id>`, `out:<message id>`, `opened:<conversation>:<time>`, ...) with
//! `ON CONFLICT DO NOTHING`: a redelivered event or a replayed batch never counts twice, and the
//! consumers' applied-event check stops most replays before they get here. A disconnect deletes
//! the channel's facts with the rest of its data.

use std::collections::{HashMap, HashSet};

use scifer_proto::inbox::v1::{
    AnalyticsGroupBy, AuthorKind, DurationStats, GetInboxAnalyticsRequest, GetInboxAnalyticsResponse,
    InboxAnalyticsRow,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, sea_query::OnConflict,
};

use crate::{
    domain::{
        WorkspaceId,
        analytics::{self as domain, Author, DayRange, Fact, FactKind, GroupBy, Stats},
    },
    error::InboxError,
    store::entity::{analytics_cycle, analytics_fact, conversation, message},
};

/// Facts and open periods collected in one transaction, written by [`Recorder::write`] before
/// its commit.
#[derive(Debug, Default)]
pub struct Recorder {
    facts: Vec<analytics_fact::Model>,
    ids: HashSet<String>,
    /// Open periods read or changed, by conversation id (`None`: none stored).
    cycles: HashMap<String, Option<analytics_cycle::Model>>,
    changed: HashSet<String>,
}

fn fact(
    kind: FactKind,
    id: String,
    c: &conversation::Model,
    agent_id: &str,
    at_ms: i64,
) -> analytics_fact::Model {
    analytics_fact::Model {
        id,
        workspace_id: c.workspace_id.clone(),
        channel_id: c.channel_id.clone(),
        conversation_id: c.id.clone(),
        agent_id: agent_id.to_string(),
        kind: kind.as_str().to_string(),
        author_kind: 0,
        at_ms,
        duration_ms: 0,
        reason: String::new(),
    }
}

/// Whom an outbound message's fact counts for: its author when a person wrote it, else the
/// conversation's assignee.
fn author_or_assignee<'a>(c: &'a conversation::Model, m: &'a message::Model) -> &'a str {
    if m.author_kind == AuthorKind::Human as i32 && !m.author_id.is_empty() {
        &m.author_id
    } else {
        &c.assignee_id
    }
}

impl Recorder {
    fn push(&mut self, f: analytics_fact::Model) {
        if self.ids.insert(f.id.clone()) {
            self.facts.push(f);
        }
    }

    async fn cycle<C: ConnectionTrait>(
        &mut self,
        db: &C,
        conversation_id: &str,
    ) -> Result<Option<analytics_cycle::Model>, DbErr> {
        if let Some(known) = self.cycles.get(conversation_id) {
            return Ok(known.clone());
        }
        let found = analytics_cycle::Entity::find_by_id(conversation_id.to_string())
            .one(db)
            .await?;
        self.cycles.insert(conversation_id.to_string(), found.clone());
        Ok(found)
    }

    fn set_cycle(&mut self, cycle: analytics_cycle::Model) {
        self.changed.insert(cycle.conversation_id.clone());
        self.cycles.insert(cycle.conversation_id.clone(), Some(cycle));
    }

    /// Conversation `c` (as it is after the opening: assignee included) was created or reopened
    /// at `at_ms`; `by_customer` when a customer message did it (first response is measured from
    /// it then).
    pub fn opened(&mut self, c: &conversation::Model, at_ms: i64, by_customer: bool) {
        self.push(fact(
            FactKind::Opened,
            format!("opened:{}:{at_ms}", c.id),
            c,
            &c.assignee_id,
            at_ms,
        ));
        self.set_cycle(analytics_cycle::Model {
            conversation_id: c.id.clone(),
            workspace_id: c.workspace_id.clone(),
            channel_id: c.channel_id.clone(),
            opened_at_ms: at_ms,
            awaiting_since_ms: if by_customer { at_ms } else { 0 },
            responded: false,
        });
    }

    /// A customer message (or postback) stored in `c`.
    pub fn message_in(&mut self, c: &conversation::Model, m: &message::Model) {
        self.push(fact(
            FactKind::MessageIn,
            format!("in:{}", m.id),
            c,
            &c.assignee_id,
            m.sent_at_ms,
        ));
    }

    /// Meta took outbound message `m` of `c` (its answer, or its echo): counted once, and the
    /// first response of the current period if none was counted yet.
    pub async fn message_out<C: ConnectionTrait>(
        &mut self,
        db: &C,
        c: &conversation::Model,
        m: &message::Model,
    ) -> Result<(), DbErr> {
        let id = format!("out:{}", m.id);
        if self.ids.contains(&id) {
            return Ok(());
        }
        let agent = author_or_assignee(c, m);
        let mut out = fact(FactKind::MessageOut, id, c, agent, m.sent_at_ms);
        out.author_kind = m.author_kind;
        self.push(out);
        if let Some(mut cycle) = self.cycle(db, &c.id).await?
            && !cycle.responded
            && cycle.awaiting_since_ms > 0
            && m.sent_at_ms >= cycle.awaiting_since_ms
        {
            let mut first = fact(
                FactKind::FirstResponse,
                format!("first_response:{}:{}", c.id, cycle.opened_at_ms),
                c,
                agent,
                m.sent_at_ms,
            );
            first.author_kind = m.author_kind;
            first.duration_ms = m.sent_at_ms - cycle.awaiting_since_ms;
            self.push(first);
            cycle.responded = true;
            self.set_cycle(cycle);
        }
        Ok(())
    }

    /// A send attempt of `m` failed; `attempt` tells attempts apart (`"status"` for a WhatsApp
    /// failed status after Meta took it).
    pub fn failed(
        &mut self,
        c: &conversation::Model,
        m: &message::Model,
        attempt: &str,
        reason: &str,
        at_ms: i64,
    ) {
        let mut f = fact(
            FactKind::Failed,
            format!("failed:{}:{attempt}", m.id),
            c,
            author_or_assignee(c, m),
            at_ms,
        );
        f.author_kind = m.author_kind;
        f.reason = if reason.is_empty() {
            "unknown".into()
        } else {
            reason.to_string()
        };
        self.push(f);
    }

    /// `c` moved to RESOLVED at `at_ms` (`c` as it is after the change).
    pub async fn resolved<C: ConnectionTrait>(
        &mut self,
        db: &C,
        c: &conversation::Model,
        at_ms: i64,
    ) -> Result<(), DbErr> {
        let cycle = self.cycle(db, &c.id).await?;
        let opened = cycle.as_ref().map(|cy| cy.opened_at_ms);
        let id = match opened {
            Some(opened) => format!("resolved:{}:{opened}", c.id),
            // No known opening: one resolution per moment.
            None => format!("resolved:{}:at:{at_ms}", c.id),
        };
        let mut f = fact(FactKind::Resolved, id, c, &c.assignee_id, at_ms);
        f.duration_ms = opened.map(|o| (at_ms - o).max(0)).unwrap_or(-1);
        self.push(f);
        Ok(())
    }

    /// Writes what was collected; call inside the transaction, before its commit.
    pub async fn write<C: ConnectionTrait>(&self, db: &C) -> Result<(), DbErr> {
        for chunk in self.facts.chunks(500) {
            analytics_fact::Entity::insert_many(chunk.iter().map(|f| f.clone().into_active_model()))
                .on_conflict(
                    OnConflict::column(analytics_fact::Column::Id)
                        .do_nothing()
                        .to_owned(),
                )
                .try_insert()
                .exec_without_returning(db)
                .await?;
        }
        let cycles: Vec<_> = self
            .changed
            .iter()
            .filter_map(|id| self.cycles.get(id).cloned().flatten())
            .map(IntoActiveModel::into_active_model)
            .collect();
        for chunk in cycles.chunks(500) {
            analytics_cycle::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::column(analytics_cycle::Column::ConversationId)
                        .update_columns([
                            analytics_cycle::Column::OpenedAtMs,
                            analytics_cycle::Column::AwaitingSinceMs,
                            analytics_cycle::Column::Responded,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(db)
                .await?;
        }
        Ok(())
    }
}

/// Records a handoff of conversation `conversation_id` (to `agent_id`, '' for none) at `at_ms`,
/// in the caller's transaction. Idempotent per conversation and moment.
pub async fn record_handoff<C: ConnectionTrait>(
    db: &C,
    workspace: &WorkspaceId,
    conversation_id: &str,
    channel_id: &str,
    agent_id: &str,
    at_ms: i64,
) -> Result<(), DbErr> {
    let row = analytics_fact::Model {
        id: format!("handoff:{conversation_id}:{at_ms}"),
        workspace_id: workspace.as_str().to_string(),
        channel_id: channel_id.to_string(),
        conversation_id: conversation_id.to_string(),
        agent_id: agent_id.to_string(),
        kind: FactKind::Handoff.as_str().to_string(),
        author_kind: 0,
        at_ms,
        duration_ms: 0,
        reason: String::new(),
    };
    analytics_fact::Entity::insert(row.into_active_model())
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Deletes a disconnected channel's facts and open periods (in the disconnect's transaction).
pub async fn erase_channel<C: ConnectionTrait>(db: &C, channel_id: &str) -> Result<(), DbErr> {
    analytics_fact::Entity::delete_many()
        .filter(analytics_fact::Column::ChannelId.eq(channel_id))
        .exec(db)
        .await?;
    analytics_cycle::Entity::delete_many()
        .filter(analytics_cycle::Column::ChannelId.eq(channel_id))
        .exec(db)
        .await?;
    Ok(())
}

fn author(kind: i32) -> Author {
    match AuthorKind::try_from(kind) {
        Ok(AuthorKind::Human) => Author::Human,
        Ok(AuthorKind::Automation) => Author::Automation,
        Ok(AuthorKind::Ai) => Author::Ai,
        _ => Author::Unknown,
    }
}

fn stats(s: Stats) -> DurationStats {
    DurationStats {
        count: s.count,
        median_ms: s.median_ms,
        p90_ms: s.p90_ms,
    }
}

/// `GetInboxAnalytics`: the workspace's facts in the range, aggregated per day and group.
pub async fn report<C: ConnectionTrait>(
    db: &C,
    ws: &WorkspaceId,
    req: &GetInboxAnalyticsRequest,
) -> Result<GetInboxAnalyticsResponse, InboxError> {
    let range = DayRange::parse(&req.from_day, &req.to_day, &req.time_zone)
        .map_err(|e| InboxError::Invalid(e.to_string()))?;
    let group_by = match AnalyticsGroupBy::try_from(req.group_by) {
        Ok(AnalyticsGroupBy::Unspecified | AnalyticsGroupBy::Workspace) => GroupBy::Workspace,
        Ok(AnalyticsGroupBy::Channel) => GroupBy::Channel,
        Ok(AnalyticsGroupBy::Agent) => GroupBy::Agent,
        Err(_) => return Err(InboxError::Invalid("group_by is not a known grouping".into())),
    };
    let (start, end) = range.bounds_ms();
    let rows = analytics_fact::Entity::find()
        .filter(analytics_fact::Column::WorkspaceId.eq(ws.as_str()))
        .filter(analytics_fact::Column::AtMs.gte(start))
        .filter(analytics_fact::Column::AtMs.lt(end))
        .all(db)
        .await?;
    let facts: Vec<Fact> = rows
        .into_iter()
        .filter_map(|r| {
            let kind = FactKind::parse(&r.kind)?;
            Some(Fact {
                kind,
                channel_id: r.channel_id,
                agent_id: r.agent_id,
                author: author(r.author_kind),
                at_ms: r.at_ms,
                // Resolutions store -1 for "opening unknown".
                duration_ms: (r.duration_ms >= 0
                    && matches!(kind, FactKind::Resolved | FactKind::FirstResponse))
                .then_some(r.duration_ms),
                reason: r.reason,
            })
        })
        .collect();
    let rows = domain::aggregate(&facts, &range, group_by)
        .into_iter()
        .map(|r| InboxAnalyticsRow {
            day: domain::day_string(r.day),
            group: r.group,
            conversations_opened: r.opened,
            conversations_resolved: r.resolved,
            messages_in: r.messages_in,
            messages_out: r.messages_out,
            replies_by_humans: r.replies_by_humans,
            replies_by_automation: r.replies_by_automation,
            replies_by_ai: r.replies_by_ai,
            first_response: Some(stats(r.first_response)),
            resolution: Some(stats(r.resolution)),
            messages_failed: r.failed.into_iter().collect(),
            handoffs: r.handoffs,
        })
        .collect();
    Ok(GetInboxAnalyticsResponse {
        rows,
        time_zone: range.tz.name().to_string(),
    })
}
