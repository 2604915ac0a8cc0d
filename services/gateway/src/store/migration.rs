//! The gateway's schema, with sea-query's builder so one migration runs on SQLite and PostgreSQL.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateIdentityTables),
            // The audit log lives in the gateway's database: its consumer stores every service's
            // audit events, and AuditApi reads them.
            Box::new(scifer_audit::store::CreateAuditRecords),
            Box::new(CreateInvitations),
            Box::new(CreateChannelAlerts),
        ]
    }
}

#[derive(DeriveMigrationName)]
struct CreateIdentityTables;

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    CreatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    Id,
    UserId,
    TokenHash,
    CreatedAtMs,
    ExpiresAtMs,
    RevokedAtMs,
    LastSeenAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Workspaces {
    Table,
    Id,
    Name,
    CreatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Memberships {
    Table,
    WorkspaceId,
    UserId,
    Role,
    CanApprovePosts,
    CreatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum LoginFailures {
    Table,
    Key,
    WindowStartMs,
    Count,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateIdentityTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(string(Users::Id).primary_key())
                    .col(string(Users::Email).unique_key())
                    .col(text(Users::Name))
                    .col(text(Users::PasswordHash))
                    .col(big_integer(Users::CreatedAtMs))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(string(Sessions::Id).primary_key())
                    .col(string(Sessions::UserId))
                    .col(string(Sessions::TokenHash).unique_key())
                    .col(big_integer(Sessions::CreatedAtMs))
                    .col(big_integer(Sessions::ExpiresAtMs))
                    .col(big_integer_null(Sessions::RevokedAtMs))
                    .col(big_integer(Sessions::LastSeenAtMs))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Password change revokes a user's other sessions.
        index(manager, "ix_sessions_user", Sessions::Table, &[Sessions::UserId]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Workspaces::Table)
                    .if_not_exists()
                    .col(string(Workspaces::Id).primary_key())
                    .col(text(Workspaces::Name))
                    .col(big_integer(Workspaces::CreatedAtMs))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .if_not_exists()
                    .col(string(Memberships::WorkspaceId))
                    .col(string(Memberships::UserId))
                    .col(string(Memberships::Role))
                    .col(boolean(Memberships::CanApprovePosts))
                    .col(big_integer(Memberships::CreatedAtMs))
                    // The key is the UNIQUE(workspace_id, user_id) every permission check reads.
                    .primary_key(
                        Index::create()
                            .col(Memberships::WorkspaceId)
                            .col(Memberships::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Memberships::Table, Memberships::WorkspaceId)
                            .to(Workspaces::Table, Workspaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Memberships::Table, Memberships::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // ListWorkspaces reads a user's memberships.
        index(
            manager,
            "ix_memberships_user",
            Memberships::Table,
            &[Memberships::UserId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(LoginFailures::Table)
                    .if_not_exists()
                    .col(string(LoginFailures::Key).primary_key())
                    .col(big_integer(LoginFailures::WindowStartMs))
                    .col(integer(LoginFailures::Count))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        scifer_db::drop_tables(
            manager,
            [
                LoginFailures::Table.into_iden(),
                Memberships::Table.into_iden(),
                Workspaces::Table.into_iden(),
                Sessions::Table.into_iden(),
                Users::Table.into_iden(),
            ],
        )
        .await
    }
}

struct CreateInvitations;

// Named by hand: the derive names a migration after its module, which the first one already uses.
impl MigrationName for CreateInvitations {
    fn name(&self) -> &str {
        "m20261129_000001_gateway_create_invitations"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Invitations {
    Table,
    Id,
    WorkspaceId,
    Email,
    Role,
    CanApprovePosts,
    TokenHash,
    InvitedBy,
    CreatedAtMs,
    ExpiresAtMs,
    AcceptedAtMs,
    AcceptedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateInvitations {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .if_not_exists()
                    .col(string(Invitations::Id).primary_key())
                    .col(string(Invitations::WorkspaceId))
                    .col(string(Invitations::Email))
                    .col(string(Invitations::Role))
                    .col(boolean(Invitations::CanApprovePosts))
                    .col(string(Invitations::TokenHash).unique_key())
                    .col(string(Invitations::InvitedBy))
                    .col(big_integer(Invitations::CreatedAtMs))
                    .col(big_integer(Invitations::ExpiresAtMs))
                    .col(big_integer_null(Invitations::AcceptedAtMs))
                    .col(string_null(Invitations::AcceptedBy))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invitations::Table, Invitations::WorkspaceId)
                            .to(Workspaces::Table, Workspaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Invitations::Table).if_exists().to_owned())
            .await
    }
}

struct CreateChannelAlerts;

impl MigrationName for CreateChannelAlerts {
    fn name(&self) -> &str {
        "m20261201_000001_gateway_create_channel_alerts"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ChannelAlerts {
    Table,
    WorkspaceId,
    EventId,
    UserId,
    ChannelId,
    Outcome,
    AtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateChannelAlerts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChannelAlerts::Table)
                    .if_not_exists()
                    .col(string(ChannelAlerts::WorkspaceId))
                    .col(string(ChannelAlerts::EventId))
                    .col(string(ChannelAlerts::UserId))
                    .col(string(ChannelAlerts::ChannelId))
                    .col(string(ChannelAlerts::Outcome))
                    .col(big_integer(ChannelAlerts::AtMs))
                    // The consumer reads an event's rows by (workspace, event) before mailing.
                    .primary_key(
                        Index::create()
                            .col(ChannelAlerts::WorkspaceId)
                            .col(ChannelAlerts::EventId)
                            .col(ChannelAlerts::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ChannelAlerts::Table, ChannelAlerts::WorkspaceId)
                            .to(Workspaces::Table, Workspaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ChannelAlerts::Table, ChannelAlerts::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ChannelAlerts::Table).if_exists().to_owned())
            .await
    }
}

async fn index<T, C>(manager: &SchemaManager<'_>, name: &str, table: T, columns: &[C]) -> Result<(), DbErr>
where
    T: IntoIden + Clone + 'static,
    C: IntoIden + Clone + 'static,
{
    let mut statement = Index::create();
    statement.name(name).table(table.clone()).if_not_exists();
    for column in columns {
        statement.col(column.clone());
    }
    manager.create_index(statement.to_owned()).await
}
