//! Managing a workspace's rules and automation settings (the gateway lets admins only). Rules are
//! rows of their own that only these RPCs write; the runner reads them per event.

use scifer_automation::{BusinessHours, Limits, Rule};
use scifer_proto::inbox::v1 as pb;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set, sea_query::OnConflict,
};

use super::domain::{self, Invalid};
use crate::{
    convert,
    domain::WorkspaceId,
    error::InboxError,
    store::automation_entity::{automation_rule, automation_settings},
};

/// Defaults of a workspace without settings: at most 5 automation messages per conversation in
/// 10 minutes (the engine's own default).
pub const DEFAULT_MAX_REPLIES: i32 = 5;
pub const DEFAULT_WINDOW_SECS: i32 = 600;

fn invalid(e: Invalid) -> InboxError {
    InboxError::Invalid(e.0)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn view(row: &automation_rule::Model) -> pb::AutomationRule {
    pb::AutomationRule {
        id: row.id.clone(),
        rule_json: row.rule_json.clone(),
        position: row.position,
        updated_at: Some(convert::timestamp(row.updated_at_ms)),
    }
}

/// The workspace's rules as stored, in evaluation order.
pub async fn rows(
    db: &impl ConnectionTrait,
    ws: &str,
) -> Result<Vec<automation_rule::Model>, sea_orm::DbErr> {
    automation_rule::Entity::find()
        .filter(automation_rule::Column::WorkspaceId.eq(ws))
        .order_by_asc(automation_rule::Column::Position)
        .order_by_asc(automation_rule::Column::CreatedAtMs)
        .order_by_asc(automation_rule::Column::Id)
        .all(db)
        .await
}

/// The workspace's rules, parsed, in evaluation order.
pub async fn load(db: &impl ConnectionTrait, ws: &str) -> Result<Vec<Rule>, sea_orm::DbErr> {
    Ok(rows(db, ws)
        .await?
        .iter()
        .filter_map(|r| domain::stored_rule(&r.rule_json, &r.id))
        .collect())
}

/// What evaluation needs of the settings, and the webhook secret ('' for none).
pub struct Settings {
    pub hours: Option<BusinessHours>,
    pub limits: Limits,
    pub webhook_secret: String,
}

pub async fn settings(db: &impl ConnectionTrait, ws: &str) -> Result<Settings, sea_orm::DbErr> {
    let row = automation_settings::Entity::find_by_id(ws.to_string())
        .one(db)
        .await?;
    Ok(match row {
        Some(r) => Settings {
            hours: domain::stored_hours(&r.business_hours_json),
            limits: domain::limits(r.max_replies_per_conversation, r.rate_limit_window_secs),
            webhook_secret: r.webhook_secret,
        },
        None => Settings {
            hours: None,
            limits: domain::limits(DEFAULT_MAX_REPLIES, DEFAULT_WINDOW_SECS),
            webhook_secret: String::new(),
        },
    })
}

pub struct Rules {
    db: DatabaseConnection,
}

impl Rules {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub async fn list(&self, ws: &WorkspaceId) -> Result<pb::ListRulesResponse, InboxError> {
        Ok(pb::ListRulesResponse {
            rules: rows(&self.db, ws.as_str()).await?.iter().map(view).collect(),
        })
    }

    pub async fn create(
        &self,
        ws: &WorkspaceId,
        req: pb::CreateRuleRequest,
    ) -> Result<pb::AutomationRule, InboxError> {
        let id = uuid::Uuid::now_v7().to_string();
        let rule = domain::parse_rule(&req.rule_json, &id).map_err(invalid)?;
        let existing = automation_rule::Entity::find()
            .filter(automation_rule::Column::WorkspaceId.eq(ws.as_str()))
            .count(&self.db)
            .await?;
        if existing >= domain::MAX_RULES {
            return Err(InboxError::Precondition("a workspace has at most 200 rules"));
        }
        let position = match req.position {
            Some(p) => p,
            None => rows(&self.db, ws.as_str())
                .await?
                .last()
                .map_or(0, |r| r.position.saturating_add(1)),
        };
        let now = now_ms();
        let row = automation_rule::ActiveModel {
            id: Set(id),
            workspace_id: Set(ws.as_str().to_string()),
            position: Set(position),
            rule_json: Set(rule_json(&rule)?),
            created_at_ms: Set(now),
            updated_at_ms: Set(now),
        }
        .insert(&self.db)
        .await?;
        Ok(view(&row))
    }

    pub async fn update(
        &self,
        ws: &WorkspaceId,
        req: pb::UpdateRuleRequest,
    ) -> Result<pb::AutomationRule, InboxError> {
        let current = self.find(ws, &req.id).await?;
        let rule = domain::parse_rule(&req.rule_json, &current.id).map_err(invalid)?;
        let mut row: automation_rule::ActiveModel = current.into();
        row.rule_json = Set(rule_json(&rule)?);
        if let Some(p) = req.position {
            row.position = Set(p);
        }
        row.updated_at_ms = Set(now_ms());
        Ok(view(&row.update(&self.db).await?))
    }

    pub async fn delete(&self, ws: &WorkspaceId, id: &str) -> Result<(), InboxError> {
        let deleted = automation_rule::Entity::delete_many()
            .filter(automation_rule::Column::Id.eq(id))
            .filter(automation_rule::Column::WorkspaceId.eq(ws.as_str()))
            .exec(&self.db)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(InboxError::RuleNotFound);
        }
        Ok(())
    }

    async fn find(&self, ws: &WorkspaceId, id: &str) -> Result<automation_rule::Model, InboxError> {
        automation_rule::Entity::find_by_id(id.to_string())
            .filter(automation_rule::Column::WorkspaceId.eq(ws.as_str()))
            .one(&self.db)
            .await?
            .ok_or(InboxError::RuleNotFound)
    }

    pub async fn get_settings(&self, ws: &WorkspaceId) -> Result<pb::AutomationSettings, InboxError> {
        let row = automation_settings::Entity::find_by_id(ws.as_str().to_string())
            .one(&self.db)
            .await?;
        Ok(settings_view(row.as_ref(), String::new()))
    }

    pub async fn update_settings(
        &self,
        ws: &WorkspaceId,
        req: pb::UpdateAutomationSettingsRequest,
    ) -> Result<pb::AutomationSettings, InboxError> {
        let input = domain::parse_settings(&req).map_err(invalid)?;
        let new_secret = if req.rotate_webhook_secret {
            Some(domain::new_secret().map_err(|_| {
                InboxError::Internal(sea_orm::DbErr::Custom(
                    "no randomness for the webhook secret".into(),
                ))
            })?)
        } else {
            None
        };
        let mut update = vec![
            automation_settings::Column::BusinessHoursJson,
            automation_settings::Column::MaxRepliesPerConversation,
            automation_settings::Column::RateLimitWindowSecs,
            automation_settings::Column::UpdatedAtMs,
        ];
        if new_secret.is_some() {
            update.push(automation_settings::Column::WebhookSecret);
        }
        let row = automation_settings::Model {
            workspace_id: ws.as_str().to_string(),
            business_hours_json: input.business_hours_json,
            max_replies_per_conversation: input.max_replies,
            rate_limit_window_secs: input.window_secs,
            webhook_secret: new_secret.clone().unwrap_or_default(),
            updated_at_ms: now_ms(),
        };
        automation_settings::Entity::insert(sea_orm::IntoActiveModel::into_active_model(row))
            .on_conflict(
                OnConflict::column(automation_settings::Column::WorkspaceId)
                    .update_columns(update)
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        let row = automation_settings::Entity::find_by_id(ws.as_str().to_string())
            .one(&self.db)
            .await?;
        Ok(settings_view(row.as_ref(), new_secret.unwrap_or_default()))
    }
}

fn rule_json(rule: &Rule) -> Result<String, InboxError> {
    serde_json::to_string(rule).map_err(|e| InboxError::Invalid(format!("rule cannot be stored: {e}")))
}

/// `secret`: the one just rotated, shown this once; '' otherwise.
fn settings_view(row: Option<&automation_settings::Model>, secret: String) -> pb::AutomationSettings {
    match row {
        Some(r) => pb::AutomationSettings {
            business_hours_json: r.business_hours_json.clone(),
            max_replies_per_conversation: r.max_replies_per_conversation,
            rate_limit_window_seconds: r.rate_limit_window_secs,
            webhook_secret_set: !r.webhook_secret.is_empty(),
            webhook_secret: secret,
        },
        None => pb::AutomationSettings {
            business_hours_json: String::new(),
            max_replies_per_conversation: DEFAULT_MAX_REPLIES,
            rate_limit_window_seconds: DEFAULT_WINDOW_SECS,
            webhook_secret_set: false,
            webhook_secret: String::new(),
        },
    }
}
