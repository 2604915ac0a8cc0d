//! Meta's conversation-routing events (`messaging_handovers`: pass and take thread control), from
//! the META stream's `handover` subjects on a durable consumer of their own (`inbox-routing`):
//! the stored thread owner follows Meta, and with it the handler (control passed to our app:
//! automation; taken by or passed to another app: a human there). The consumer takes events in
//! stream order, one at a time, so the last one Meta sent is the one that stands.

use std::sync::Arc;

use scifer_audit::Actor;
use scifer_events::{Batch, Outcome};
use scifer_proto::events::v1::{ChannelKind, ChannelState, HandoverKind, MetaEvent, meta_event::Kind};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use super::{
    domain,
    handoff::{self, Handoff},
    state,
};
use crate::{
    consumer::Engine,
    domain::WorkspaceId,
    store::entity::{channel, contact, conversation},
    views,
};

#[derive(Clone)]
pub struct RoutingConsumer {
    db: DatabaseConnection,
    engine: Arc<Engine>,
    handoff: Arc<Handoff>,
}

impl RoutingConsumer {
    pub fn new(db: DatabaseConnection, engine: Arc<Engine>, handoff: Arc<Handoff>) -> Self {
        Self { db, engine, handoff }
    }

    pub async fn handle_batch(&self, msgs: Batch) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(msgs.len());
        for msg in msgs.iter() {
            let outcome = match scifer_events::decode::<MetaEvent>(msg) {
                Ok(event) => match self.apply(&event).await {
                    Ok(()) => Outcome::Ack,
                    Err(e) => {
                        tracing::warn!(error = %e, event_id = %event.event_id, "handover not applied; will retry");
                        Outcome::Retry(std::time::Duration::from_secs(2))
                    }
                },
                Err(e) => {
                    tracing::error!(subject = %msg.subject, error = %e, "undecodable handover event rejected");
                    Outcome::Reject
                }
            };
            outcomes.push(outcome);
        }
        outcomes
    }

    /// Applies one handover event to the conversation of its customer.
    pub async fn apply(&self, event: &MetaEvent) -> Result<(), DbErr> {
        let Some(Kind::Handover(h)) = &event.kind else {
            return Ok(());
        };
        let kind = HandoverKind::try_from(h.kind).unwrap_or(HandoverKind::Unspecified);
        if !matches!(kind, HandoverKind::Pass | HandoverKind::Take) {
            tracing::debug!(event_id = %event.event_id, ?kind, "handover event without an owner change");
            return Ok(());
        }
        let Some(conv) = self
            .conversation_of(event.channel_kind, &event.account_id, &h.contact_id)
            .await?
        else {
            // No conversation with this customer yet: its first message starts under automation,
            // and Meta's standby delivery (if another app owns it) keeps automation silent.
            tracing::info!(event_id = %event.event_id, "handover for a customer without a conversation; ignored");
            return Ok(());
        };
        let routing = &self.handoff.routing;
        let handler = domain::handler_after_handover(
            kind,
            &h.new_owner_app_id,
            routing.our_app_id.as_deref(),
            routing.human_app_id.as_deref(),
        );
        let (changed_handler, after) = {
            let _writer = self.engine.lock_writes().await;
            let mut row = state::load(&self.db, &conv).await?;
            let before = domain::handler_from_i32(row.handler);
            let after = handler.unwrap_or(before);
            row.handler = domain::handler_to_proto(after) as i32;
            row.thread_owner_app_id = h.new_owner_app_id.clone();
            row.updated_at_ms = chrono::Utc::now().timestamp_millis();
            state::save(&self.db, row).await?;
            (before != after, after)
        };
        let Ok(ws) = WorkspaceId::parse(&conv.workspace_id) else {
            return Ok(());
        };
        let mut view = views::conversation(&self.db, &ws, &conv).await?;
        state::fill(&self.db, std::slice::from_mut(&mut view)).await?;
        self.engine
            .announce(vec![views::conversation_updated(ws.as_str(), view)])
            .await;
        if changed_handler {
            let action = match after {
                scifer_automation::HandlerKind::Human => handoff::HANDED_OFF,
                scifer_automation::HandlerKind::Automation => handoff::HANDED_BACK,
            };
            let detail = format!("meta routing: {kind:?} to app {}", h.new_owner_app_id);
            self.handoff
                .record(&ws, Actor::service("meta"), action, &conv.id, &detail)
                .await;
        }
        Ok(())
    }

    async fn conversation_of(
        &self,
        kind: i32,
        account_id: &str,
        customer: &str,
    ) -> Result<Option<conversation::Model>, DbErr> {
        if !matches!(
            ChannelKind::try_from(kind),
            Ok(ChannelKind::Messenger | ChannelKind::Instagram)
        ) {
            return Ok(None);
        }
        let channels = channel::Entity::find()
            .filter(channel::Column::Kind.eq(kind))
            .filter(channel::Column::AccountId.eq(account_id))
            .filter(channel::Column::State.eq(ChannelState::Connected as i32))
            .all(&self.db)
            .await?;
        for ch in channels {
            let Some(c) = contact::Entity::find()
                .filter(contact::Column::ChannelId.eq(ch.id.as_str()))
                .filter(contact::Column::ExternalId.eq(customer))
                .one(&self.db)
                .await?
            else {
                continue;
            };
            if let Some(conv) = conversation::Entity::find()
                .filter(conversation::Column::ContactId.eq(c.id.as_str()))
                .one(&self.db)
                .await?
            {
                return Ok(Some(conv));
            }
        }
        Ok(None)
    }
}
