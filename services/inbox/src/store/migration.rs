//! The inbox's schema. Written with sea-query's builder (not raw SQL) so one migration runs on both
//! SQLite and PostgreSQL.

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
enum Channels {
    Table,
    Id,
    WorkspaceId,
    Kind,
    AccountId,
    DisplayName,
    State,
    Version,
    UpdatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Contacts {
    Table,
    Id,
    WorkspaceId,
    ChannelId,
    ExternalId,
    DisplayName,
    DeliveredWatermarkMs,
    ReadWatermarkMs,
    CreatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Conversations {
    Table,
    Id,
    WorkspaceId,
    ChannelId,
    ContactId,
    Status,
    OpenKey,
    LastActivityAtMs,
    LastMessagePreview,
    MessageCount,
    CreatedAtMs,
    UpdatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    Id,
    WorkspaceId,
    ChannelId,
    ConversationId,
    ContactId,
    ExternalId,
    Direction,
    Text,
    AttachmentsJson,
    SentAtMs,
    Status,
    ErrorCode,
    ErrorMessage,
    IsEcho,
    ReactionsJson,
    Edited,
    EditSeq,
    EditedAtMs,
    ReplyToExternalId,
    Payload,
    CreatedAtMs,
    UpdatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum AppliedEvents {
    Table,
    EventId,
    AppliedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum PendingEvents {
    Table,
    EventId,
    ChannelKind,
    AccountId,
    AtMs,
    Payload,
    StoredAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum DeferredUpdates {
    Table,
    EventId,
    ChannelId,
    TargetExternalId,
    AtMs,
    Payload,
    StoredAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Channels::Table)
                    .if_not_exists()
                    .col(string(Channels::Id).primary_key())
                    .col(string(Channels::WorkspaceId))
                    .col(integer(Channels::Kind))
                    .col(string(Channels::AccountId))
                    .col(text(Channels::DisplayName))
                    .col(integer(Channels::State))
                    .col(big_integer(Channels::Version))
                    .col(big_integer(Channels::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        // Every Meta event is routed by (kind, account_id).
        index(
            manager,
            "ix_channels_account",
            Channels::Table,
            &[Channels::Kind, Channels::AccountId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Contacts::Table)
                    .if_not_exists()
                    .col(string(Contacts::Id).primary_key())
                    .col(string(Contacts::WorkspaceId))
                    .col(string(Contacts::ChannelId))
                    .col(string(Contacts::ExternalId))
                    .col(text(Contacts::DisplayName))
                    .col(big_integer(Contacts::DeliveredWatermarkMs))
                    .col(big_integer(Contacts::ReadWatermarkMs))
                    .col(big_integer(Contacts::CreatedAtMs))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_contacts_channel_external",
            Contacts::Table,
            &[Contacts::ChannelId, Contacts::ExternalId],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .if_not_exists()
                    .col(string(Conversations::Id).primary_key())
                    .col(string(Conversations::WorkspaceId))
                    .col(string(Conversations::ChannelId))
                    .col(string(Conversations::ContactId))
                    .col(integer(Conversations::Status))
                    .col(string_null(Conversations::OpenKey))
                    .col(big_integer(Conversations::LastActivityAtMs))
                    .col(text(Conversations::LastMessagePreview))
                    .col(big_integer(Conversations::MessageCount))
                    .col(big_integer(Conversations::CreatedAtMs))
                    .col(big_integer(Conversations::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_conversations_open_key",
            Conversations::Table,
            &[Conversations::OpenKey],
            true,
        )
        .await?;
        // The conversation list: newest activity first, keyset on (last_activity_at_ms, id).
        index(
            manager,
            "ix_conversations_workspace_activity",
            Conversations::Table,
            &[
                Conversations::WorkspaceId,
                Conversations::LastActivityAtMs,
                Conversations::Id,
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .if_not_exists()
                    .col(string(Messages::Id).primary_key())
                    .col(string(Messages::WorkspaceId))
                    .col(string(Messages::ChannelId))
                    .col(string(Messages::ConversationId))
                    .col(string(Messages::ContactId))
                    .col(string(Messages::ExternalId))
                    .col(integer(Messages::Direction))
                    .col(text(Messages::Text))
                    .col(text(Messages::AttachmentsJson))
                    .col(big_integer(Messages::SentAtMs))
                    .col(integer(Messages::Status))
                    .col(integer(Messages::ErrorCode))
                    .col(text(Messages::ErrorMessage))
                    .col(boolean(Messages::IsEcho))
                    .col(text(Messages::ReactionsJson))
                    .col(boolean(Messages::Edited))
                    .col(big_integer(Messages::EditSeq))
                    .col(big_integer(Messages::EditedAtMs))
                    .col(text(Messages::ReplyToExternalId))
                    .col(text(Messages::Payload))
                    .col(big_integer(Messages::CreatedAtMs))
                    .col(big_integer(Messages::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_messages_channel_external",
            Messages::Table,
            &[Messages::ChannelId, Messages::ExternalId],
            true,
        )
        .await?;
        index(
            manager,
            "ix_messages_conversation_sent",
            Messages::Table,
            &[Messages::ConversationId, Messages::SentAtMs, Messages::Id],
            false,
        )
        .await?;
        // Watermark receipts update a contact's outbound messages by time.
        index(
            manager,
            "ix_messages_contact_sent",
            Messages::Table,
            &[Messages::ContactId, Messages::SentAtMs],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AppliedEvents::Table)
                    .if_not_exists()
                    .col(string(AppliedEvents::EventId).primary_key())
                    .col(big_integer(AppliedEvents::AppliedAtMs))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PendingEvents::Table)
                    .if_not_exists()
                    .col(string(PendingEvents::EventId).primary_key())
                    .col(integer(PendingEvents::ChannelKind))
                    .col(string(PendingEvents::AccountId))
                    .col(big_integer(PendingEvents::AtMs))
                    .col(blob(PendingEvents::Payload))
                    .col(big_integer(PendingEvents::StoredAtMs))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_pending_events_account",
            PendingEvents::Table,
            &[
                PendingEvents::ChannelKind,
                PendingEvents::AccountId,
                PendingEvents::AtMs,
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeferredUpdates::Table)
                    .if_not_exists()
                    .col(string(DeferredUpdates::EventId).primary_key())
                    .col(string(DeferredUpdates::ChannelId))
                    .col(string(DeferredUpdates::TargetExternalId))
                    .col(big_integer(DeferredUpdates::AtMs))
                    .col(blob(DeferredUpdates::Payload))
                    .col(big_integer(DeferredUpdates::StoredAtMs))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_deferred_updates_target",
            DeferredUpdates::Table,
            &[DeferredUpdates::ChannelId, DeferredUpdates::TargetExternalId],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        scifer_db::drop_tables(
            manager,
            [
                DeferredUpdates::Table.into_iden(),
                PendingEvents::Table.into_iden(),
                AppliedEvents::Table.into_iden(),
                Messages::Table.into_iden(),
                Conversations::Table.into_iden(),
                Contacts::Table.into_iden(),
                Channels::Table.into_iden(),
            ],
        )
        .await
    }
}

async fn index<T, C>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: &[C],
    unique: bool,
) -> Result<(), DbErr>
where
    T: IntoIden + Clone + 'static,
    C: IntoIden + Clone + 'static,
{
    let mut statement = Index::create();
    statement.name(name).table(table.clone()).if_not_exists();
    for column in columns {
        statement.col(column.clone());
    }
    if unique {
        statement.unique();
    }
    manager.create_index(statement.to_owned()).await
}
