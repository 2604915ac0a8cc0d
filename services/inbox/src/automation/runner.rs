//! Running the rules: after a customer message is committed (its `MessageCreated` on the INBOX
//! stream, durable consumer `inbox-automation`), and for idle conversations (a periodic job). Never
//! inside the Meta consumer's batch transaction: Meta, the AI and webhooks take seconds.
//!
//! Per inbound message: a standby message (another app owns the thread) and a message read back
//! from Meta by backfill or reconciliation (the past) are left alone; a customer
//! asking for a person hands off first; the first message of a conversation also fires
//! `ConversationCreated`; then the plan of `scifer_automation::evaluate` runs. Replies go through
//! the same send path and gate as a person's, as AUTOMATION (or AI), never with HUMAN_AGENT, under
//! an idempotency key derived from their cause, so a redelivered event sends nothing twice. Labels,
//! assignment and status go through the workflow RPCs' code, so they are announced the same way.
//! An agent's reply sent through Scifer (author HUMAN) is the agent taking over.
//!
//! Loop protection: only inbound customer messages trigger rules, so our own sends and their
//! echoes never do; the engine's rate limit counts this conversation's AUTOMATION and AI messages.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use scifer_audit::{Actor, Outcome as AuditOutcome};
use scifer_automation::{
    Action, ChannelKind as RuleChannel, ConversationStatus as RuleStatus, EventContext, HandoffEvent, Origin,
    Placeholders, Rule, TriggerEvent, accept_ai_reply, asks_for_human, evaluate, idle_thresholds, render,
};
use scifer_events::{Batch, Outcome};
use scifer_plumbing::CancellationToken;
use scifer_proto::{
    events::v1::{ChannelKind, InboxEvent, inbox_event},
    inbox::v1::{
        self as pb, AuthorKind, ConversationStatus, MessageDirection, SendMessageRequest,
        SuggestReplyRequest, UpdateConversationRequest, UpdateLabelsRequest, send_message_response,
    },
};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::{
    domain,
    handoff::{Changer, Handoff, ThreadCall},
    rules, state,
    webhook::Webhooks,
};
use crate::{
    consumer::Engine,
    convert,
    domain::{WorkspaceId, attributes},
    error::InboxError,
    send::Sender,
    store::{
        self,
        automation_entity::{automation_idle, automation_rule, conversation_automation},
        entity::{channel, contact, conversation, message},
    },
    suggest::Suggester,
    workflow::Workflow,
};

/// Audit actions of automation's own doings.
pub use scifer_audit::action::AUTOMATION_WEBHOOK_FAILED as WEBHOOK_FAILED;

/// An idle stretch older than this (beyond its threshold) no longer fires: a rule created today
/// does not write to every conversation that went quiet last year.
const IDLE_LOOKBACK_MS: i64 = 24 * 3600 * 1000;
/// Idle conversations handled per threshold and run.
const IDLE_BATCH: u64 = 500;

/// Automation's author id of the away message (it belongs to no rule).
pub const AWAY_AUTHOR: &str = "away_message";

pub struct Runner {
    db: DatabaseConnection,
    sender: Arc<Sender>,
    workflow: Workflow,
    suggester: Suggester,
    handoff: Arc<Handoff>,
    webhooks: Webhooks,
}

/// What one evaluation reads of a conversation.
struct Facts {
    channel: RuleChannel,
    business_name: String,
    contact_name: String,
    labels: Vec<String>,
    attributes: std::collections::BTreeMap<String, String>,
    state: crate::store::automation_entity::conversation_automation::Model,
    settings: rules::Settings,
    rules: Vec<Rule>,
    recent_replies: Vec<DateTime<Utc>>,
}

fn rule_channel(kind: i32) -> RuleChannel {
    match ChannelKind::try_from(kind) {
        Ok(ChannelKind::Instagram) => RuleChannel::Instagram,
        Ok(ChannelKind::Whatsapp) => RuleChannel::WhatsApp,
        _ => RuleChannel::Messenger,
    }
}

fn origin_key(origin: &Origin) -> &str {
    origin.rule_id().unwrap_or(AWAY_AUTHOR)
}

impl Runner {
    pub fn new(
        db: DatabaseConnection,
        engine: Arc<Engine>,
        sender: Arc<Sender>,
        suggester: Suggester,
        handoff: Arc<Handoff>,
        webhooks: Webhooks,
    ) -> Self {
        Self {
            workflow: Workflow::new(db.clone(), engine),
            db,
            sender,
            suggester,
            handoff,
            webhooks,
        }
    }

    /// Reacts to one INBOX event. Only a store failure is an error (the event is redelivered);
    /// an action that fails is logged and the others still run.
    pub async fn on_event(&self, event: &InboxEvent) -> Result<(), DbErr> {
        let Some(inbox_event::Kind::MessageCreated(created)) = &event.kind else {
            return Ok(());
        };
        let Some(m) = &created.message else {
            return Ok(());
        };
        let Ok(ws) = WorkspaceId::parse(&event.workspace_id) else {
            return Ok(());
        };
        match MessageDirection::try_from(m.direction) {
            Ok(MessageDirection::Inbound) => self.on_customer_message(&ws, &m.id).await,
            Ok(MessageDirection::Outbound) => {
                let human = m
                    .author
                    .as_ref()
                    .filter(|a| a.kind == AuthorKind::Human as i32 && !a.id.is_empty());
                if let Some(agent) = human {
                    self.take_over(&ws, &m.conversation_id, &agent.id).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// An agent replied through Scifer: a person is in charge now. Scifer's agents answer with our
    /// app, so the thread stays with it.
    async fn take_over(&self, ws: &WorkspaceId, conversation_id: &str, agent: &str) -> Result<(), DbErr> {
        // Most replies go to conversations a person already handles: one indexed read settles
        // them without the engine's write lock, which the ingest consumers need.
        let handled_by_a_person = conversation_automation::Entity::find_by_id(conversation_id.to_string())
            .filter(conversation_automation::Column::WorkspaceId.eq(ws.as_str()))
            .one(&self.db)
            .await?
            .is_some_and(|row| row.handler == pb::HandlerKind::Human as i32);
        if handled_by_a_person {
            return Ok(());
        }
        match self
            .handoff
            .change(
                ws,
                conversation_id,
                HandoffEvent::AgentTookOver,
                &Changer::user(agent),
                "agent replied",
                ThreadCall::None,
            )
            .await
        {
            Ok(_) | Err(InboxError::ConversationNotFound) => Ok(()),
            Err(InboxError::Internal(e)) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "agent takeover not recorded");
                Ok(())
            }
        }
    }

    async fn on_customer_message(&self, ws: &WorkspaceId, message_id: &str) -> Result<(), DbErr> {
        let Some(m) = message::Entity::find_by_id(message_id.to_string())
            .filter(message::Column::WorkspaceId.eq(ws.as_str()))
            .one(&self.db)
            .await?
        else {
            return Ok(());
        };
        if m.reconciled {
            // Read back from Meta by backfill or reconciliation: the past. Answering it now would
            // greet customers about messages of days ago, after a person may already have.
            tracing::debug!(message_id, "reconciled message: automation stays silent");
            return Ok(());
        }
        if state::is_standby(&self.db, &m.channel_id, &m.external_id).await? {
            tracing::debug!(
                message_id,
                "standby message: another app owns the thread; automation stays silent"
            );
            return Ok(());
        }
        let Some(conv) = store::find_conversation(&self.db, ws, &m.conversation_id).await? else {
            return Ok(());
        };
        if asks_for_human(&m.text) {
            self.hand_off(
                ws,
                &conv.id,
                HandoffEvent::CustomerAskedForHuman,
                &Changer::system("customer_asked_for_human"),
                "the customer asked for a person",
            )
            .await?;
        }
        // A workspace without rules or business hours has nothing to evaluate: two reads, not the
        // whole context, for every message of a workspace that does not automate.
        if rules::rows(&self.db, ws.as_str()).await?.is_empty()
            && rules::settings(&self.db, ws.as_str()).await?.hours.is_none()
        {
            return Ok(());
        }
        let earlier = message::Entity::find()
            .filter(message::Column::ConversationId.eq(conv.id.as_str()))
            .filter(message::Column::Direction.eq(MessageDirection::Inbound as i32))
            .filter(
                Condition::any()
                    .add(message::Column::SentAtMs.lt(m.sent_at_ms))
                    .add(
                        Condition::all()
                            .add(message::Column::SentAtMs.eq(m.sent_at_ms))
                            .add(message::Column::Id.lt(m.id.as_str())),
                    ),
            )
            .limit(1)
            .all(&self.db)
            .await?;
        if earlier.is_empty() {
            self.run(
                ws,
                &conv,
                TriggerEvent::ConversationCreated,
                Some(&m),
                &format!("created:{}", m.id),
            )
            .await?;
        }
        self.run(
            ws,
            &conv,
            TriggerEvent::MessageReceived,
            Some(&m),
            &format!("message:{}", m.id),
        )
        .await
    }

    /// A handoff automation decides: the handler changes even when Meta refuses the thread pass
    /// (automation must stop answering whatever Meta says), which is logged.
    async fn hand_off(
        &self,
        ws: &WorkspaceId,
        conversation_id: &str,
        event: HandoffEvent,
        by: &Changer,
        reason: &str,
    ) -> Result<(), DbErr> {
        let first = self
            .handoff
            .change(ws, conversation_id, event, by, reason, ThreadCall::Pass)
            .await;
        let result = match first {
            Err(InboxError::ThreadControl(_) | InboxError::SendingNotConfigured) => {
                tracing::warn!(
                    conversation_id,
                    "thread not passed to the human inbox; handed off in Scifer only"
                );
                self.handoff
                    .change(ws, conversation_id, event, by, reason, ThreadCall::None)
                    .await
            }
            other => other,
        };
        match result {
            Ok(_) | Err(InboxError::ConversationNotFound) => Ok(()),
            Err(InboxError::Internal(e)) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, conversation_id, "handoff not recorded");
                Ok(())
            }
        }
    }

    async fn facts(&self, ws: &WorkspaceId, conv: &conversation::Model) -> Result<Facts, DbErr> {
        let ch = channel::Entity::find_by_id(conv.channel_id.clone())
            .one(&self.db)
            .await?;
        let customer = contact::Entity::find_by_id(conv.contact_id.clone())
            .one(&self.db)
            .await?;
        let settings = rules::settings(&self.db, ws.as_str()).await?;
        let since = Utc::now() - settings.limits.per;
        let recent_replies = message::Entity::find()
            .select_only()
            .column(message::Column::SentAtMs)
            .filter(message::Column::ConversationId.eq(conv.id.as_str()))
            .filter(message::Column::Direction.eq(MessageDirection::Outbound as i32))
            .filter(message::Column::AuthorKind.is_in([AuthorKind::Automation as i32, AuthorKind::Ai as i32]))
            .filter(message::Column::SentAtMs.gt(since.timestamp_millis()))
            .into_tuple::<i64>()
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(DateTime::from_timestamp_millis)
            .collect();
        Ok(Facts {
            channel: rule_channel(ch.as_ref().map_or(0, |c| c.kind)),
            business_name: ch.map(|c| c.display_name).unwrap_or_default(),
            contact_name: customer
                .as_ref()
                .map(|c| c.display_name.clone())
                .unwrap_or_default(),
            attributes: customer
                .map(|c| attributes::from_json(&c.custom_attributes_json))
                .unwrap_or_default(),
            labels: store::labels_of(&self.db, std::slice::from_ref(&conv.id))
                .await?
                .remove(&conv.id)
                .unwrap_or_default(),
            state: state::load(&self.db, conv).await?,
            settings,
            rules: rules::load(&self.db, ws.as_str()).await?,
            recent_replies,
        })
    }

    /// Evaluates the workspace's rules for one event and executes the plan. `cause` names the
    /// event (stable across redeliveries) for the idempotency keys of the sends.
    async fn run(
        &self,
        ws: &WorkspaceId,
        conv: &conversation::Model,
        trigger: TriggerEvent,
        message: Option<&message::Model>,
        cause: &str,
    ) -> Result<(), DbErr> {
        let facts = self.facts(ws, conv).await?;
        if facts.rules.is_empty() && facts.settings.hours.is_none() {
            return Ok(());
        }
        let now = Utc::now();
        let ctx = EventContext {
            trigger,
            channel: facts.channel,
            text: message.map(|m| m.text.as_str()).filter(|t| !t.is_empty()),
            labels: &facts.labels,
            contact_attributes: &facts.attributes,
            handler: domain::handler_from_i32(facts.state.handler),
            now,
            business_hours: facts.settings.hours.as_ref(),
            // Only customer messages get here: never one of ours.
            authored_by_automation: false,
            recent_automation_replies: &facts.recent_replies,
            last_away_message_at: (facts.state.last_away_at_ms > 0)
                .then(|| DateTime::from_timestamp_millis(facts.state.last_away_at_ms))
                .flatten(),
        };
        let plan = evaluate(&facts.rules, &ctx, &facts.settings.limits);
        for skip in &plan.skipped {
            tracing::debug!(conversation_id = %conv.id, ?skip, "automation skipped");
        }
        let placeholders = Placeholders {
            contact_name: Some(facts.contact_name.clone()),
            business_name: Some(facts.business_name.clone()),
            agent_name: None,
        };
        for (index, planned) in plan.actions.iter().enumerate() {
            let key_of = || domain::send_key(&[cause, origin_key(&planned.origin), &index.to_string()]);
            let by = origin_key(&planned.origin).to_string();
            match &planned.action {
                Action::Reply { text } => {
                    let text = render(text, &placeholders);
                    let sent = self
                        .send(ws, &conv.id, AuthorKind::Automation, &by, &text, key_of())
                        .await;
                    if sent && planned.origin == Origin::AwayMessage {
                        self.away_sent(conv).await?;
                    }
                }
                Action::ApplyLabel(label) => {
                    let request = UpdateLabelsRequest {
                        conversation_id: conv.id.clone(),
                        add: vec![label.clone()],
                        remove: Vec::new(),
                    };
                    if let Err(e) = self.workflow.update_labels(ws, request).await {
                        tracing::warn!(error = %e, rule_id = %by, "label not applied");
                    }
                }
                Action::Assign { agent_id, team_id } => {
                    let request = UpdateConversationRequest {
                        conversation_id: conv.id.clone(),
                        assignee_id: Some(agent_id.clone().unwrap_or_default()),
                        team_id: Some(team_id.clone().unwrap_or_default()),
                        ..Default::default()
                    };
                    if let Err(e) = self.workflow.update_conversation(ws, request).await {
                        tracing::warn!(error = %e, rule_id = %by, "assignment not made");
                    }
                }
                Action::SetStatus(status) => {
                    let (status, until) = match status {
                        RuleStatus::Open => (ConversationStatus::Open, None),
                        RuleStatus::Pending => (ConversationStatus::Pending, None),
                        RuleStatus::Resolved => (ConversationStatus::Resolved, None),
                        RuleStatus::Snoozed { until } => (
                            ConversationStatus::Snoozed,
                            Some(convert::timestamp(until.timestamp_millis())),
                        ),
                    };
                    let request = UpdateConversationRequest {
                        conversation_id: conv.id.clone(),
                        status: status as i32,
                        snoozed_until: until,
                        ..Default::default()
                    };
                    if let Err(e) = self.workflow.update_conversation(ws, request).await {
                        tracing::warn!(error = %e, rule_id = %by, "status not set");
                    }
                }
                Action::HandOffToHuman { reason } => {
                    self.hand_off(
                        ws,
                        &conv.id,
                        HandoffEvent::RuleHandOff,
                        &Changer::rule(&by),
                        reason,
                    )
                    .await?;
                }
                Action::CallWebhook { url } => {
                    let body = serde_json::json!({
                        "event": trigger,
                        "delivery_id": key_of(),
                        "workspace_id": ws.as_str(),
                        "conversation_id": conv.id,
                        "rule_id": by,
                        "channel": facts.channel,
                        "message": message.map(|m| serde_json::json!({
                            "id": m.id,
                            "text": m.text,
                            "sent_at_ms": m.sent_at_ms,
                        })),
                        "at": now.to_rfc3339(),
                    });
                    if let Err(e) = self
                        .webhooks
                        .call(url, &facts.settings.webhook_secret, &body)
                        .await
                    {
                        tracing::warn!(error = %e, rule_id = %by, conversation_id = %conv.id, "automation webhook failed");
                        self.handoff
                            .record_outcome(
                                ws,
                                Actor::automation_rule(&by),
                                WEBHOOK_FAILED,
                                AuditOutcome::Failure,
                                &conv.id,
                                &e.to_string(),
                            )
                            .await;
                    }
                }
                Action::SuggestWithAi { min_confidence } => {
                    self.ai_reply(ws, conv, &by, *min_confidence, key_of()).await?;
                }
            }
        }
        Ok(())
    }

    /// Sends one automation message through the gate; whether it went out (or is on its way).
    async fn send(
        &self,
        ws: &WorkspaceId,
        conversation_id: &str,
        kind: AuthorKind,
        author: &str,
        text: &str,
        key: String,
    ) -> bool {
        let request = SendMessageRequest {
            conversation_id: conversation_id.to_string(),
            idempotency_key: key,
            author: Some(pb::Author {
                kind: kind as i32,
                id: author.to_string(),
            }),
            text: text.to_string(),
            ..Default::default()
        };
        match self.sender.send(ws, request).await {
            Ok(response) => match response.result {
                Some(send_message_response::Result::Message(m)) => {
                    m.status != pb::DeliveryStatus::Failed as i32
                }
                Some(send_message_response::Result::Refusal(r)) => {
                    tracing::info!(conversation_id, reason = %r.reason, "the send gate refused an automation message");
                    false
                }
                None => false,
            },
            Err(e) => {
                tracing::warn!(error = %e, conversation_id, "automation message not sent");
                false
            }
        }
    }

    /// An AI answer, sent as AI when its confidence reaches the rule's threshold (and the model
    /// neither cut it nor read a wish for a person); otherwise a person takes over.
    async fn ai_reply(
        &self,
        ws: &WorkspaceId,
        conv: &conversation::Model,
        rule_id: &str,
        min_confidence: f32,
        key: String,
    ) -> Result<(), DbErr> {
        let request = SuggestReplyRequest {
            conversation_id: conv.id.clone(),
        };
        let (sendable, detail) = match self.suggester.suggest(ws, request).await {
            Ok(s) => {
                let accepted = accept_ai_reply(min_confidence, s.confidence)
                    && !s.truncated
                    && !s.wants_human
                    && !s.text.trim().is_empty();
                let detail = format!(
                    "rule {rule_id}: model {}, confidence {:.2} (threshold {min_confidence:.2}), {}",
                    s.model,
                    s.confidence,
                    if accepted { "sent" } else { "handed off" }
                );
                (accepted.then_some(s), detail)
            }
            Err(e) => {
                tracing::warn!(error = %e, conversation_id = %conv.id, "no AI answer; handing off");
                (None, format!("rule {rule_id}: no AI answer ({e}), handed off"))
            }
        };
        match sendable {
            Some(s) => {
                self.handoff
                    .record_outcome(
                        ws,
                        Actor::ai(&s.model),
                        scifer_audit::action::AI_SUGGESTED,
                        AuditOutcome::Success,
                        &conv.id,
                        &detail,
                    )
                    .await;
                self.send(ws, &conv.id, AuthorKind::Ai, &s.model, &s.text, key)
                    .await;
                Ok(())
            }
            None => {
                self.handoff
                    .record_outcome(
                        ws,
                        Actor::automation_rule(rule_id),
                        scifer_audit::action::AI_SUGGESTED,
                        AuditOutcome::Success,
                        &conv.id,
                        &detail,
                    )
                    .await;
                self.hand_off(
                    ws,
                    &conv.id,
                    HandoffEvent::LowAiConfidence,
                    &Changer::rule(rule_id),
                    "low AI confidence",
                )
                .await
            }
        }
    }

    async fn away_sent(&self, conv: &conversation::Model) -> Result<(), DbErr> {
        let _writer = self.handoff.engine().lock_writes().await;
        let mut row = state::load(&self.db, conv).await?;
        row.last_away_at_ms = Utc::now().timestamp_millis();
        row.updated_at_ms = row.last_away_at_ms;
        state::save(&self.db, row).await
    }

    /// Fires the idle rules of every workspace for conversations idle (no message but
    /// automation's) for each rule's minutes, once per idle stretch; returns how many fired.
    pub async fn fire_idle(&self, now_ms: i64) -> Result<usize, DbErr> {
        let mut by_workspace: HashMap<String, Vec<Rule>> = HashMap::new();
        for row in automation_rule::Entity::find().all(&self.db).await? {
            if let Some(rule) = domain::stored_rule(&row.rule_json, &row.id) {
                by_workspace.entry(row.workspace_id).or_default().push(rule);
            }
        }
        let mut fired = 0;
        for (ws, rules) in by_workspace {
            let Ok(ws) = WorkspaceId::parse(&ws) else {
                continue;
            };
            for minutes in idle_thresholds(&rules) {
                let cutoff = now_ms.saturating_sub(i64::from(minutes) * 60_000);
                let candidates = conversation::Entity::find()
                    .filter(conversation::Column::WorkspaceId.eq(ws.as_str()))
                    .filter(conversation::Column::Status.eq(ConversationStatus::Open as i32))
                    .filter(conversation::Column::MessageCount.gt(0))
                    .filter(conversation::Column::LastActivityAtMs.lte(cutoff))
                    .filter(
                        conversation::Column::LastActivityAtMs.gt(cutoff.saturating_sub(IDLE_LOOKBACK_MS)),
                    )
                    .order_by_asc(conversation::Column::LastActivityAtMs)
                    .limit(IDLE_BATCH)
                    .all(&self.db)
                    .await?;
                for conv in candidates {
                    if self.fire_idle_one(&ws, &conv, minutes, cutoff).await? {
                        fired += 1;
                    }
                }
            }
        }
        Ok(fired)
    }

    async fn fire_idle_one(
        &self,
        ws: &WorkspaceId,
        conv: &conversation::Model,
        minutes: u32,
        cutoff: i64,
    ) -> Result<bool, DbErr> {
        // The stretch starts at the last message that was not automation's, so an idle rule's own
        // reply does not start a new one.
        let stretch: Option<i64> = message::Entity::find()
            .select_only()
            .column_as(message::Column::SentAtMs.max(), "stretch")
            .filter(message::Column::ConversationId.eq(conv.id.as_str()))
            .filter(
                Condition::any()
                    .add(message::Column::Direction.eq(MessageDirection::Inbound as i32))
                    .add(
                        Condition::all()
                            .add(message::Column::Direction.eq(MessageDirection::Outbound as i32))
                            .add(
                                message::Column::AuthorKind
                                    .is_not_in([AuthorKind::Automation as i32, AuthorKind::Ai as i32]),
                            ),
                    ),
            )
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
            .flatten();
        let Some(stretch) = stretch.filter(|s| *s <= cutoff) else {
            return Ok(false);
        };
        let minutes_i32 = i32::try_from(minutes).unwrap_or(i32::MAX);
        let done = automation_idle::Entity::find_by_id((conv.id.clone(), minutes_i32))
            .one(&self.db)
            .await?
            .is_some_and(|row| row.stretch_at_ms == stretch);
        if done {
            return Ok(false);
        }
        // Recorded before running: at most once per stretch, even if a send hangs.
        let row = automation_idle::Model {
            conversation_id: conv.id.clone(),
            minutes: minutes_i32,
            channel_id: conv.channel_id.clone(),
            stretch_at_ms: stretch,
        };
        automation_idle::Entity::insert(sea_orm::IntoActiveModel::into_active_model(row))
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    automation_idle::Column::ConversationId,
                    automation_idle::Column::Minutes,
                ])
                .update_column(automation_idle::Column::StretchAtMs)
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        let cause = format!("idle:{}:{minutes}:{stretch}", conv.id);
        self.run(ws, conv, TriggerEvent::ConversationIdle { minutes }, None, &cause)
            .await?;
        Ok(true)
    }

    /// Runs [`Runner::fire_idle`] every `every` until `shutdown`.
    pub async fn run_idle(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.fire_idle(Utc::now().timestamp_millis()).await {
                Ok(0) => {}
                Ok(fired) => tracing::info!(fired, "idle rules fired"),
                Err(e) => tracing::warn!(error = %e, "idle rules not run; will try again"),
            }
        }
    }
}

/// The INBOX stream's consumer (`inbox-automation`): one event at a time, in order.
#[derive(Clone)]
pub struct AutomationConsumer {
    runner: Arc<Runner>,
}

impl AutomationConsumer {
    pub fn new(runner: Arc<Runner>) -> Self {
        Self { runner }
    }

    pub async fn handle_batch(&self, msgs: Batch) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(msgs.len());
        for msg in msgs.iter() {
            let outcome = match scifer_events::decode::<InboxEvent>(msg) {
                Ok(event) => match self.runner.on_event(&event).await {
                    Ok(()) => Outcome::Ack,
                    Err(e) => {
                        tracing::warn!(error = %e, event_id = %event.event_id, "automation failed on the store; will retry");
                        Outcome::Retry(Duration::from_secs(2))
                    }
                },
                Err(e) => {
                    tracing::error!(subject = %msg.subject, error = %e, "undecodable inbox event rejected");
                    Outcome::Reject
                }
            };
            outcomes.push(outcome);
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_map_to_the_rule_model() {
        assert_eq!(
            rule_channel(ChannelKind::Instagram as i32),
            RuleChannel::Instagram
        );
        assert_eq!(rule_channel(ChannelKind::Whatsapp as i32), RuleChannel::WhatsApp);
        assert_eq!(
            rule_channel(ChannelKind::Messenger as i32),
            RuleChannel::Messenger
        );
        assert_eq!(origin_key(&Origin::AwayMessage), AWAY_AUTHOR);
        assert_eq!(origin_key(&Origin::Rule { id: "r".into() }), "r");
    }
}
