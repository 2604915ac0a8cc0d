//! Canned responses: CRUD per workspace, and rendering one for a conversation. Rendering happens
//! here, not in the client: the values (the contact's name and attributes, the channel's name)
//! are inbox's, and one renderer means every client fills a text the same way. The gateway adds
//! the calling agent's name. Nothing is sent: the rendered text goes to the composer.

use scifer_proto::inbox::v1::{
    CannedResponse, CreateCannedResponseRequest, ListCannedResponsesRequest, RenderCannedResponseRequest,
    RenderCannedResponseResponse, UpdateCannedResponseRequest,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};

use crate::{
    convert,
    domain::{
        WorkspaceId, attributes,
        canned::{self, ShortCode, Values},
        search,
    },
    error::InboxError,
    store::{
        self,
        entity::{canned_response, channel, contact},
    },
};

/// Canned responses one workspace may keep (the AI's context takes the first 50).
pub const MAX_PER_WORKSPACE: u64 = 500;
/// Longest agent name taken from the gateway.
const MAX_AGENT_NAME_CHARS: usize = 200;

pub struct Canned {
    db: DatabaseConnection,
}

fn view(c: &canned_response::Model) -> CannedResponse {
    CannedResponse {
        id: c.id.clone(),
        short_code: c.short_code.clone(),
        content: c.content.clone(),
        updated_at: Some(convert::timestamp(c.updated_at_ms)),
    }
}

fn invalid(e: canned::InvalidCanned) -> InboxError {
    InboxError::Invalid(e.0)
}

fn duplicate(e: DbErr) -> InboxError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            InboxError::AlreadyExists("a canned response with this short code exists")
        }
        _ => e.into(),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Canned {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The workspace's canned responses by short code; those matching `query` when it is set.
    pub async fn list(
        &self,
        ws: &WorkspaceId,
        req: ListCannedResponsesRequest,
    ) -> Result<Vec<CannedResponse>, InboxError> {
        Ok(self
            .models(ws, req.query.trim())
            .await?
            .iter()
            .map(view)
            .collect())
    }

    /// The stored rows (at most [`MAX_PER_WORKSPACE`]); also the AI's context.
    pub async fn models(&self, ws: &WorkspaceId, query: &str) -> Result<Vec<canned_response::Model>, DbErr> {
        let mut find =
            canned_response::Entity::find().filter(canned_response::Column::WorkspaceId.eq(ws.as_str()));
        if !query.is_empty() {
            let needle = query.trim_start_matches('/').to_lowercase();
            find = find.filter(
                Condition::any()
                    .add(
                        canned_response::Column::ShortCode
                            .like(LikeExpr::new(search::starts_with(&needle)).escape('\\')),
                    )
                    .add(
                        Expr::expr(Func::lower(Expr::col(canned_response::Column::Content)))
                            .like(LikeExpr::new(search::contains(&needle)).escape('\\')),
                    ),
            );
        }
        find.order_by_asc(canned_response::Column::ShortCode)
            .limit(MAX_PER_WORKSPACE)
            .all(&self.db)
            .await
    }

    pub async fn create(
        &self,
        ws: &WorkspaceId,
        req: CreateCannedResponseRequest,
    ) -> Result<CannedResponse, InboxError> {
        let short_code = ShortCode::parse(&req.short_code).map_err(invalid)?;
        let content = canned::parse_content(&req.content).map_err(invalid)?;
        let count = canned_response::Entity::find()
            .filter(canned_response::Column::WorkspaceId.eq(ws.as_str()))
            .count(&self.db)
            .await?;
        if count >= MAX_PER_WORKSPACE {
            return Err(InboxError::Precondition(
                "this workspace has the most canned responses it may keep; delete one first",
            ));
        }
        let now = now_ms();
        let row = canned_response::Model {
            id: uuid::Uuid::now_v7().to_string(),
            workspace_id: ws.as_str().to_string(),
            short_code: short_code.as_str().to_string(),
            content,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let stored = row
            .into_active_model()
            .insert(&self.db)
            .await
            .map_err(duplicate)?;
        Ok(view(&stored))
    }

    pub async fn update(
        &self,
        ws: &WorkspaceId,
        req: UpdateCannedResponseRequest,
    ) -> Result<CannedResponse, InboxError> {
        let short_code = ShortCode::parse(&req.short_code).map_err(invalid)?;
        let content = canned::parse_content(&req.content).map_err(invalid)?;
        let current = self.find(ws, &req.id).await?;
        let mut row = current.into_active_model();
        row.short_code = sea_orm::Set(short_code.as_str().to_string());
        row.content = sea_orm::Set(content);
        row.updated_at_ms = sea_orm::Set(now_ms());
        let stored = row.update(&self.db).await.map_err(duplicate)?;
        Ok(view(&stored))
    }

    pub async fn delete(&self, ws: &WorkspaceId, id: &str) -> Result<(), InboxError> {
        let deleted = canned_response::Entity::delete_many()
            .filter(canned_response::Column::Id.eq(id))
            .filter(canned_response::Column::WorkspaceId.eq(ws.as_str()))
            .exec(&self.db)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(InboxError::CannedResponseNotFound);
        }
        Ok(())
    }

    pub async fn render(
        &self,
        ws: &WorkspaceId,
        req: RenderCannedResponseRequest,
    ) -> Result<RenderCannedResponseResponse, InboxError> {
        let canned = self.find(ws, &req.canned_response_id).await?;
        let conv = store::find_conversation(&self.db, ws, &req.conversation_id)
            .await?
            .ok_or(InboxError::ConversationNotFound)?;
        let contact = contact::Entity::find_by_id(conv.contact_id.clone())
            .filter(contact::Column::WorkspaceId.eq(ws.as_str()))
            .one(&self.db)
            .await?;
        let channel = channel::Entity::find_by_id(conv.channel_id.clone())
            .filter(channel::Column::WorkspaceId.eq(ws.as_str()))
            .one(&self.db)
            .await?;
        let values = Values {
            contact_name: contact
                .as_ref()
                .map(|c| c.display_name.clone())
                .unwrap_or_default(),
            agent_name: req.agent_name.trim().chars().take(MAX_AGENT_NAME_CHARS).collect(),
            business_name: channel.map(|c| c.display_name).unwrap_or_default(),
            custom: contact
                .as_ref()
                .map(|c| attributes::from_json(&c.custom_attributes_json))
                .unwrap_or_default(),
        };
        let rendered = canned::render(&canned.content, &values);
        Ok(RenderCannedResponseResponse {
            text: rendered.text,
            missing: rendered.missing,
        })
    }

    async fn find(&self, ws: &WorkspaceId, id: &str) -> Result<canned_response::Model, InboxError> {
        canned_response::Entity::find_by_id(id.to_string())
            .filter(canned_response::Column::WorkspaceId.eq(ws.as_str()))
            .one(&self.db)
            .await?
            .ok_or(InboxError::CannedResponseNotFound)
    }
}
