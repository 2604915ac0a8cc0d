//! `SearchMessages`: a workspace's message texts and contact names containing what was typed.
//! Plain `LOWER(column) LIKE '%…%'` with the wildcards escaped: no index helps a leading
//! wildcard, so each search reads the workspace's rows, and the result is bounded instead (a
//! trigram or full-text index is the next step when workspaces grow large). SQLite's LOWER folds
//! ASCII letters only.

use std::collections::HashMap;

use scifer_proto::inbox::v1::{SearchHit, SearchMessagesRequest, SearchMessagesResponse};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};

use crate::{
    convert,
    domain::{AgentId, WorkspaceId, search},
    error::InboxError,
    store::entity::{contact, conversation, message},
    unread, views,
};

const MIN_QUERY_CHARS: usize = 2;
const MAX_QUERY_CHARS: usize = 100;
const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 50;

pub async fn search(
    db: &DatabaseConnection,
    ws: &WorkspaceId,
    viewer: Option<&AgentId>,
    req: SearchMessagesRequest,
) -> Result<SearchMessagesResponse, InboxError> {
    let query = req.query.trim();
    let chars = query.chars().count();
    if !(MIN_QUERY_CHARS..=MAX_QUERY_CHARS).contains(&chars) {
        return Err(InboxError::Invalid(format!(
            "query must be {MIN_QUERY_CHARS}-{MAX_QUERY_CHARS} characters"
        )));
    }
    let limit = match req.limit {
        0 => DEFAULT_LIMIT,
        n if n < 0 || n as u64 > MAX_LIMIT => {
            return Err(InboxError::Invalid(format!("limit must be 1-{MAX_LIMIT}")));
        }
        n => n as u64,
    };
    let pattern = || LikeExpr::new(search::contains(&query.to_lowercase())).escape('\\');

    // Contacts by name: each with its current conversation.
    let contacts = contact::Entity::find()
        .filter(contact::Column::WorkspaceId.eq(ws.as_str()))
        .filter(Expr::expr(Func::lower(Expr::col(contact::Column::DisplayName))).like(pattern()))
        .order_by_desc(contact::Column::CreatedAtMs)
        .limit(limit)
        .all(db)
        .await?;
    let mut by_contact: Vec<conversation::Model> = Vec::new();
    if !contacts.is_empty() {
        let found = conversation::Entity::find()
            .filter(conversation::Column::WorkspaceId.eq(ws.as_str()))
            .filter(conversation::Column::ContactId.is_in(contacts.iter().map(|c| c.id.clone())))
            .filter(conversation::Column::MessageCount.gt(0))
            .order_by_desc(conversation::Column::LastActivityAtMs)
            .all(db)
            .await?;
        // The latest conversation of each contact, latest first.
        let mut seen = std::collections::HashSet::new();
        by_contact = found
            .into_iter()
            .filter(|c| seen.insert(c.contact_id.clone()))
            .collect();
    }
    let messages = message::Entity::find()
        .filter(message::Column::WorkspaceId.eq(ws.as_str()))
        .filter(Expr::expr(Func::lower(Expr::col(message::Column::Text))).like(pattern()))
        .order_by_desc(message::Column::SentAtMs)
        .order_by_desc(message::Column::Id)
        .limit(limit.saturating_sub(by_contact.len() as u64))
        .all(db)
        .await?;

    // Every conversation the hits need, read once.
    let mut rows: Vec<conversation::Model> = by_contact.clone();
    let mut wanted: Vec<String> = messages
        .iter()
        .map(|m| m.conversation_id.clone())
        .filter(|id| !rows.iter().any(|c| &c.id == id))
        .collect();
    wanted.sort();
    wanted.dedup();
    if !wanted.is_empty() {
        rows.extend(
            conversation::Entity::find()
                .filter(conversation::Column::WorkspaceId.eq(ws.as_str()))
                .filter(conversation::Column::Id.is_in(wanted))
                .all(db)
                .await?,
        );
    }
    let mut views = views::conversations(db, ws, &rows).await?;
    if let Some(agent) = viewer {
        unread::fill(db, agent, &mut views).await?;
    }
    let views: HashMap<String, _> = views.into_iter().map(|v| (v.id.clone(), v)).collect();
    let mut hits: Vec<SearchHit> = by_contact
        .iter()
        .filter_map(|c| views.get(&c.id))
        .map(|v| SearchHit {
            conversation: Some(v.clone()),
            message: None,
        })
        .collect();
    hits.extend(messages.iter().filter_map(|m| {
        views.get(&m.conversation_id).map(|v| SearchHit {
            conversation: Some(v.clone()),
            message: Some(convert::message(m)),
        })
    }));
    hits.truncate(limit as usize);
    Ok(SearchMessagesResponse { hits })
}
