//! The vault's schema, written with sea-query's builder so one migration runs on SQLite and
//! PostgreSQL. Token material is only ever stored sealed (`tokens.sealed`,
//! `connect_sessions.user_token_sealed`); data keys only wrapped under a KEK (`data_keys.wrapped`).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateTables)]
    }
}

#[derive(DeriveMigrationName)]
struct CreateTables;

#[derive(DeriveIden, Clone, Copy)]
enum DataKeys {
    Table,
    WorkspaceId,
    Version,
    KekVersion,
    Wrapped,
    CreatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Channels {
    Table,
    Id,
    WorkspaceId,
    Kind,
    AccountId,
    ParentAccountId,
    DisplayName,
    State,
    StateReason,
    Version,
    Scopes,
    TokenExpiresAtMs,
    LastCheckedAtMs,
    ConnectedAtMs,
    ConnectedBy,
    UpdatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tokens {
    Table,
    Id,
    WorkspaceId,
    ChannelId,
    Kind,
    Sealed,
    DataKeyVersion,
    CreatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum ConnectSessions {
    Table,
    Id,
    StateHash,
    WorkspaceId,
    UserId,
    RedirectUri,
    ExpiresAtMs,
    StateUsed,
    UserTokenSealed,
    DataKeyVersion,
    CreatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Outbox {
    Table,
    Id,
    Subject,
    MsgId,
    EventType,
    Payload,
    CreatedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DataKeys::Table)
                    .if_not_exists()
                    .col(string(DataKeys::WorkspaceId))
                    .col(integer(DataKeys::Version))
                    .col(integer(DataKeys::KekVersion))
                    .col(blob(DataKeys::Wrapped))
                    .col(big_integer(DataKeys::CreatedAtMs))
                    .primary_key(Index::create().col(DataKeys::WorkspaceId).col(DataKeys::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Channels::Table)
                    .if_not_exists()
                    .col(string(Channels::Id).primary_key())
                    .col(string(Channels::WorkspaceId))
                    .col(integer(Channels::Kind))
                    .col(string(Channels::AccountId))
                    .col(string(Channels::ParentAccountId))
                    .col(string(Channels::DisplayName))
                    .col(integer(Channels::State))
                    .col(string(Channels::StateReason))
                    .col(big_integer(Channels::Version))
                    .col(string(Channels::Scopes))
                    .col(big_integer_null(Channels::TokenExpiresAtMs))
                    .col(big_integer_null(Channels::LastCheckedAtMs))
                    .col(big_integer(Channels::ConnectedAtMs))
                    .col(string(Channels::ConnectedBy))
                    .col(big_integer(Channels::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        // One workspace per Meta account: webhooks are routed by account id, so a Page connected
        // to two workspaces would have its conversations land in only one of them.
        manager
            .create_index(
                Index::create()
                    .name("channels_kind_account")
                    .table(Channels::Table)
                    .col(Channels::Kind)
                    .col(Channels::AccountId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("channels_workspace")
                    .table(Channels::Table)
                    .col(Channels::WorkspaceId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tokens::Table)
                    .if_not_exists()
                    .col(string(Tokens::Id).primary_key())
                    .col(string(Tokens::WorkspaceId))
                    .col(string(Tokens::ChannelId))
                    .col(string(Tokens::Kind))
                    .col(blob(Tokens::Sealed))
                    .col(integer(Tokens::DataKeyVersion))
                    .col(big_integer(Tokens::CreatedAtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tokens_channel")
                    .table(Tokens::Table)
                    .col(Tokens::ChannelId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConnectSessions::Table)
                    .if_not_exists()
                    .col(string(ConnectSessions::Id).primary_key())
                    .col(string_uniq(ConnectSessions::StateHash))
                    .col(string(ConnectSessions::WorkspaceId))
                    .col(string(ConnectSessions::UserId))
                    .col(string(ConnectSessions::RedirectUri))
                    .col(big_integer(ConnectSessions::ExpiresAtMs))
                    .col(boolean(ConnectSessions::StateUsed))
                    .col(blob_null(ConnectSessions::UserTokenSealed))
                    .col(integer_null(ConnectSessions::DataKeyVersion))
                    .col(big_integer(ConnectSessions::CreatedAtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .if_not_exists()
                    .col(big_integer(Outbox::Id).primary_key().auto_increment())
                    .col(string(Outbox::Subject))
                    .col(string(Outbox::MsgId))
                    .col(string(Outbox::EventType))
                    .col(blob(Outbox::Payload))
                    .col(big_integer(Outbox::CreatedAtMs))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        scifer_db::drop_tables(
            manager,
            [
                Outbox::Table.into_iden(),
                ConnectSessions::Table.into_iden(),
                Tokens::Table.into_iden(),
                Channels::Table.into_iden(),
                DataKeys::Table.into_iden(),
            ],
        )
        .await
    }
}
