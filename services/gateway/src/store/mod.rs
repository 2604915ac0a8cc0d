//! The gateway's own store: accounts, sessions, workspaces, memberships, login failures and the
//! channel alerts sent, one query per function. Workspace data is always read through a
//! membership of the caller, or scoped to the workspace an event names.

pub mod entity;
pub mod migration;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set, SqlErr, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};

pub use migration::Migrator;

use crate::domain::{Role, TokenHash};
use entity::{channel_alert, invitation, login_failure, membership, session, user, workspace};

/// Opens the database at `url` and brings its schema up to date.
pub async fn open(url: &str) -> Result<DatabaseConnection, scifer_db::DbError> {
    scifer_db::open::<Migrator>(url).await
}

/// An insert that may collide with a unique key.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("a row with this key exists")]
    Duplicate,
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn insert_error(error: DbErr) -> InsertError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => InsertError::Duplicate,
        _ => InsertError::Db(error),
    }
}

// ---- users

pub async fn insert_user(db: &impl ConnectionTrait, row: user::Model) -> Result<(), InsertError> {
    user::Entity::insert(user::ActiveModel::from(row))
        .exec_without_returning(db)
        .await
        .map(|_| ())
        .map_err(insert_error)
}

pub async fn find_user_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await
}

pub async fn find_user(db: &impl ConnectionTrait, id: &str) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id.to_string()).one(db).await
}

pub async fn set_password_hash(db: &impl ConnectionTrait, user_id: &str, hash: String) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn set_name(db: &impl ConnectionTrait, user_id: &str, name: &str) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::Name, Expr::value(name))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Changes the login email; [`InsertError::Duplicate`] when another account has it.
pub async fn set_email(db: &impl ConnectionTrait, user_id: &str, email: &str) -> Result<(), InsertError> {
    user::Entity::update_many()
        .col_expr(user::Column::Email, Expr::value(email))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await
        .map(|_| ())
        .map_err(insert_error)
}

// ---- sessions

pub async fn insert_session(db: &impl ConnectionTrait, row: session::Model) -> Result<(), DbErr> {
    session::Entity::insert(session::ActiveModel::from(row))
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// The session behind `hash` if it is neither revoked nor expired at `now_ms`.
pub async fn find_live_session(
    db: &impl ConnectionTrait,
    hash: &TokenHash,
    now_ms: i64,
) -> Result<Option<session::Model>, DbErr> {
    session::Entity::find()
        .filter(session::Column::TokenHash.eq(hash.as_str()))
        .filter(session::Column::RevokedAtMs.is_null())
        .filter(session::Column::ExpiresAtMs.gt(now_ms))
        .one(db)
        .await
}

/// Whether the session with id `id` is neither revoked nor expired at `now_ms`.
pub async fn session_is_live(db: &impl ConnectionTrait, id: &str, now_ms: i64) -> Result<bool, DbErr> {
    session::Entity::find()
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::RevokedAtMs.is_null())
        .filter(session::Column::ExpiresAtMs.gt(now_ms))
        .one(db)
        .await
        .map(|found| found.is_some())
}

pub async fn touch_session(db: &impl ConnectionTrait, id: &str, now_ms: i64) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::LastSeenAtMs, Expr::value(now_ms))
        .filter(session::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn revoke_session(db: &impl ConnectionTrait, id: &str, now_ms: i64) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAtMs, Expr::value(now_ms))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::RevokedAtMs.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

/// Revokes every live session of `user_id` but `keep`; returns how many.
pub async fn revoke_other_sessions(
    db: &impl ConnectionTrait,
    user_id: &str,
    keep: &str,
    now_ms: i64,
) -> Result<u64, DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAtMs, Expr::value(now_ms))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::Id.ne(keep))
        .filter(session::Column::RevokedAtMs.is_null())
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}

// ---- workspaces and memberships

/// Creates the workspace with `owner` as its first member, in one transaction.
pub async fn create_workspace(
    db: &DatabaseConnection,
    row: workspace::Model,
    owner: membership::Model,
) -> Result<(), DbErr> {
    let tx = db.begin().await?;
    workspace::Entity::insert(workspace::ActiveModel::from(row))
        .exec_without_returning(&tx)
        .await?;
    membership::Entity::insert(membership::ActiveModel::from(owner))
        .exec_without_returning(&tx)
        .await?;
    tx.commit().await
}

pub async fn workspace_exists(db: &impl ConnectionTrait, id: &str) -> Result<bool, DbErr> {
    workspace::Entity::find_by_id(id.to_string())
        .count(db)
        .await
        .map(|n| n > 0)
}

pub async fn find_membership(
    db: &impl ConnectionTrait,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<membership::Model>, DbErr> {
    membership::Entity::find_by_id((workspace_id.to_string(), user_id.to_string()))
        .one(db)
        .await
}

/// The workspaces `user_id` belongs to, oldest first, with the membership.
pub async fn workspaces_of(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Vec<(membership::Model, workspace::Model)>, DbErr> {
    let memberships = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    let ids: Vec<String> = memberships.iter().map(|m| m.workspace_id.clone()).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let workspaces = workspace::Entity::find()
        .filter(workspace::Column::Id.is_in(ids))
        .order_by_asc(workspace::Column::CreatedAtMs)
        .order_by_asc(workspace::Column::Id)
        .all(db)
        .await?;
    Ok(workspaces
        .into_iter()
        .filter_map(|w| {
            let m = memberships.iter().find(|m| m.workspace_id == w.id)?.clone();
            Some((m, w))
        })
        .collect())
}

/// The members of `workspace_id` with their accounts, oldest membership first.
pub async fn members_of(
    db: &impl ConnectionTrait,
    workspace_id: &str,
) -> Result<Vec<(membership::Model, user::Model)>, DbErr> {
    let memberships = membership::Entity::find()
        .filter(membership::Column::WorkspaceId.eq(workspace_id))
        .order_by_asc(membership::Column::CreatedAtMs)
        .order_by_asc(membership::Column::UserId)
        .all(db)
        .await?;
    let ids: Vec<String> = memberships.iter().map(|m| m.user_id.clone()).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .all(db)
        .await?;
    Ok(memberships
        .into_iter()
        .filter_map(|m| {
            let u = users.iter().find(|u| u.id == m.user_id)?.clone();
            Some((m, u))
        })
        .collect())
}

/// The admins and owners of `workspace_id` with their accounts: who is told about its channels.
pub async fn admins_of(db: &impl ConnectionTrait, workspace_id: &str) -> Result<Vec<user::Model>, DbErr> {
    let memberships = membership::Entity::find()
        .filter(membership::Column::WorkspaceId.eq(workspace_id))
        .filter(membership::Column::Role.is_in([Role::Admin.as_str(), Role::Owner.as_str()]))
        .all(db)
        .await?;
    let ids: Vec<String> = memberships.into_iter().map(|m| m.user_id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .order_by_asc(user::Column::Id)
        .all(db)
        .await
}

pub async fn insert_membership(db: &impl ConnectionTrait, row: membership::Model) -> Result<(), InsertError> {
    membership::Entity::insert(membership::ActiveModel::from(row))
        .exec_without_returning(db)
        .await
        .map(|_| ())
        .map_err(insert_error)
}

pub async fn set_role(
    db: &impl ConnectionTrait,
    workspace_id: &str,
    user_id: &str,
    role: Role,
) -> Result<(), DbErr> {
    membership::Entity::update_many()
        .col_expr(membership::Column::Role, Expr::value(role.as_str()))
        .filter(membership::Column::WorkspaceId.eq(workspace_id))
        .filter(membership::Column::UserId.eq(user_id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn delete_membership(
    db: &impl ConnectionTrait,
    workspace_id: &str,
    user_id: &str,
) -> Result<(), DbErr> {
    membership::Entity::delete_many()
        .filter(membership::Column::WorkspaceId.eq(workspace_id))
        .filter(membership::Column::UserId.eq(user_id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn count_owners(db: &impl ConnectionTrait, workspace_id: &str) -> Result<u64, DbErr> {
    membership::Entity::find()
        .filter(membership::Column::WorkspaceId.eq(workspace_id))
        .filter(membership::Column::Role.eq(Role::Owner.as_str()))
        .count(db)
        .await
}

// ---- invitations

pub async fn insert_invitation(db: &impl ConnectionTrait, row: invitation::Model) -> Result<(), DbErr> {
    invitation::Entity::insert(invitation::ActiveModel::from(row))
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

pub async fn delete_invitation(db: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    invitation::Entity::delete_by_id(id.to_string())
        .exec(db)
        .await
        .map(|_| ())
}

/// The invitation behind `hash` if it is neither spent nor expired at `now_ms`.
pub async fn find_open_invitation(
    db: &impl ConnectionTrait,
    hash: &TokenHash,
    now_ms: i64,
) -> Result<Option<invitation::Model>, DbErr> {
    invitation::Entity::find()
        .filter(invitation::Column::TokenHash.eq(hash.as_str()))
        .filter(invitation::Column::AcceptedAtMs.is_null())
        .filter(invitation::Column::ExpiresAtMs.gt(now_ms))
        .one(db)
        .await
}

/// Why an invitation could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// Spent (by a concurrent call) or expired since it was read.
    #[error("the invitation is no longer open")]
    NotOpen,
    #[error("already a member")]
    AlreadyMember,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Spends `invitation` and adds `member` in one transaction: exactly one caller wins the
/// invitation, and a failed insert leaves it unspent.
pub async fn accept_invitation(
    db: &DatabaseConnection,
    invitation: &invitation::Model,
    member: membership::Model,
    now_ms: i64,
) -> Result<(), AcceptError> {
    let tx = db.begin().await?;
    let spent = invitation::Entity::update_many()
        .col_expr(invitation::Column::AcceptedAtMs, Expr::value(now_ms))
        .col_expr(
            invitation::Column::AcceptedBy,
            Expr::value(member.user_id.clone()),
        )
        .filter(invitation::Column::Id.eq(invitation.id.as_str()))
        .filter(invitation::Column::AcceptedAtMs.is_null())
        .filter(invitation::Column::ExpiresAtMs.gt(now_ms))
        .exec(&tx)
        .await?;
    if spent.rows_affected != 1 {
        return Err(AcceptError::NotOpen);
    }
    match insert_membership(&tx, member).await {
        Ok(()) => {}
        Err(InsertError::Duplicate) => return Err(AcceptError::AlreadyMember),
        Err(InsertError::Db(e)) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(())
}

pub async fn find_workspace(db: &impl ConnectionTrait, id: &str) -> Result<Option<workspace::Model>, DbErr> {
    workspace::Entity::find_by_id(id.to_string()).one(db).await
}

// ---- channel alerts

/// The members `event_id` of `workspace_id` was already handled for (mailed, or given up on).
pub async fn alerted_users(
    db: &impl ConnectionTrait,
    workspace_id: &str,
    event_id: &str,
) -> Result<Vec<String>, DbErr> {
    channel_alert::Entity::find()
        .filter(channel_alert::Column::WorkspaceId.eq(workspace_id))
        .filter(channel_alert::Column::EventId.eq(event_id))
        .all(db)
        .await
        .map(|rows| rows.into_iter().map(|r| r.user_id).collect())
}

/// Records one alert; a row already there (a concurrent delivery of the same event) is kept.
pub async fn record_alert(db: &impl ConnectionTrait, row: channel_alert::Model) -> Result<(), DbErr> {
    let inserted = channel_alert::Entity::insert(channel_alert::ActiveModel::from(row))
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                channel_alert::Column::WorkspaceId,
                channel_alert::Column::EventId,
                channel_alert::Column::UserId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await;
    match inserted {
        Ok(_) | Err(DbErr::RecordNotInserted) => Ok(()),
        Err(e) => Err(e),
    }
}

// ---- login failures

/// The failures counted under `key` in the window that is current at `now_ms`.
pub async fn current_failures(
    db: &impl ConnectionTrait,
    key: &str,
    window_ms: i64,
    now_ms: i64,
) -> Result<Option<login_failure::Model>, DbErr> {
    login_failure::Entity::find_by_id(key.to_string())
        .filter(login_failure::Column::WindowStartMs.gt(now_ms.saturating_sub(window_ms)))
        .one(db)
        .await
}

/// Counts one failure under `key`: one more in the current window, or the first of a new one.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    key: &str,
    window_ms: i64,
    now_ms: i64,
) -> Result<(), DbErr> {
    // An atomic increment, so concurrent failures are all counted.
    let counted = login_failure::Entity::update_many()
        .col_expr(
            login_failure::Column::Count,
            Expr::col(login_failure::Column::Count).add(1),
        )
        .filter(login_failure::Column::Key.eq(key))
        .filter(login_failure::Column::WindowStartMs.gt(now_ms.saturating_sub(window_ms)))
        .exec(db)
        .await?;
    if counted.rows_affected > 0 {
        return Ok(());
    }
    let fresh = login_failure::ActiveModel {
        key: Set(key.to_string()),
        window_start_ms: Set(now_ms),
        count: Set(1),
    };
    login_failure::Entity::insert(fresh)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(login_failure::Column::Key)
                .update_columns([login_failure::Column::WindowStartMs, login_failure::Column::Count])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

pub async fn clear_failures(db: &impl ConnectionTrait, key: &str) -> Result<(), DbErr> {
    login_failure::Entity::delete_by_id(key.to_string())
        .exec(db)
        .await
        .map(|_| ())
}
