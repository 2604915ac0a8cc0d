//! The inbox's schema. Written with sea-query's builder (not raw SQL) so one migration runs on both
//! SQLite and PostgreSQL.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateTables),
            Box::new(ChannelDisconnect),
            Box::new(OutboundSends),
            Box::new(Assignment),
            Box::new(LabelsAndCanned),
            Box::new(Unread),
            Box::new(ContactProfiles),
            // Automation and handoff (issue 5).
            Box::new(super::automation_migration::Automation),
            // History, gaps and media.
            Box::new(HistoryAndMedia),
            // Issue 5: WhatsApp template sync, inbox analytics.
            Box::new(super::templates_analytics_migration::WhatsAppTemplates),
            Box::new(super::templates_analytics_migration::InboxAnalytics),
        ]
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
    DisconnectedAtMs,
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
    ChannelId,
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

/// What deleting a disconnected channel's data needs: the disconnect time on the channel row, the
/// channel on each applied-event row, and indexes to delete by channel without a table scan.
struct ChannelDisconnect;

// Named by hand: the derive names a migration after its module, which the first one already uses.
impl MigrationName for ChannelDisconnect {
    fn name(&self) -> &str {
        "m20261129_000002_inbox_channel_disconnect"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ChannelDisconnect {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE takes one change at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Channels::Table)
                    .add_column(big_integer(Channels::DisconnectedAtMs).default(0))
                    .to_owned(),
            )
            .await?;
        // Rows written before this migration keep '' (they cannot be attributed any more). The
        // index costs the Meta consumer's drain rate nothing measurable (`examples/drain.rs`:
        // within noise on SQLite, about 2% on PostgreSQL) and spares a disconnect a table scan.
        manager
            .alter_table(
                Table::alter()
                    .table(AppliedEvents::Table)
                    .add_column(string(AppliedEvents::ChannelId).default(""))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_applied_events_channel",
            AppliedEvents::Table,
            &[AppliedEvents::ChannelId],
            false,
        )
        .await?;
        index(
            manager,
            "ix_conversations_channel",
            Conversations::Table,
            &[Conversations::ChannelId],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("ix_conversations_channel", Conversations::Table.into_iden()),
            ("ix_applied_events_channel", AppliedEvents::Table.into_iden()),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).if_exists().to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(AppliedEvents::Table)
                    .drop_column(AppliedEvents::ChannelId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Channels::Table)
                    .drop_column(Channels::DisconnectedAtMs)
                    .to_owned(),
            )
            .await
    }
}

struct OutboundSends;

impl MigrationName for OutboundSends {
    fn name(&self) -> &str {
        "m20261130_000003_inbox_outbound_sends"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Outbound {
    AuthorKind,
    AuthorId,
    IdempotencyKey,
    FailureReason,
    Retryable,
    Attempt,
}

#[async_trait::async_trait]
impl MigrationTrait for OutboundSends {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Who wrote a message sent through Scifer, the client's idempotency key (unique per
        // workspace; NULL for everything else, and NULLs never collide), and the send gate's
        // reading of a failure.
        for column in [
            integer(Outbound::AuthorKind).default(0).to_owned(),
            string(Outbound::AuthorId).default("").to_owned(),
            string_null(Outbound::IdempotencyKey).to_owned(),
            string(Outbound::FailureReason).default("").to_owned(),
            boolean(Outbound::Retryable).default(false).to_owned(),
            integer(Outbound::Attempt).default(0).to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ux_messages_idempotency")
                    .table(Messages::Table)
                    .col(Messages::WorkspaceId)
                    .col(Outbound::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ux_messages_idempotency")
                    .table(Messages::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        for column in [
            Outbound::Attempt,
            Outbound::Retryable,
            Outbound::FailureReason,
            Outbound::IdempotencyKey,
            Outbound::AuthorId,
            Outbound::AuthorKind,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Status and assignment: the assignee, team and snooze of a conversation, the workspace's
/// auto-assignment settings and the agents' availability.
struct Assignment;

impl MigrationName for Assignment {
    fn name(&self) -> &str {
        "m20261201_000004_inbox_assignment"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ConversationAssignment {
    AssigneeId,
    TeamId,
    SnoozedUntilMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum AssignmentSettings {
    Table,
    WorkspaceId,
    AutoAssign,
    MaxOpenPerAgent,
    CursorAgentId,
    UpdatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Agents {
    Table,
    WorkspaceId,
    AgentId,
    Available,
    UpdatedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Assignment {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            string(ConversationAssignment::AssigneeId).default("").to_owned(),
            string(ConversationAssignment::TeamId).default("").to_owned(),
            big_integer(ConversationAssignment::SnoozedUntilMs)
                .default(0)
                .to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Conversations::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // Auto-assignment counts each agent's OPEN conversations; lists filter by assignee.
        index(
            manager,
            "ix_conversations_assignee",
            Conversations::Table,
            &[
                Conversations::WorkspaceId.into_iden(),
                ConversationAssignment::AssigneeId.into_iden(),
                Conversations::Status.into_iden(),
            ],
            false,
        )
        .await?;
        // The snooze wake-up finds due conversations without a scan.
        index(
            manager,
            "ix_conversations_snoozed",
            Conversations::Table,
            &[
                Conversations::Status.into_iden(),
                ConversationAssignment::SnoozedUntilMs.into_iden(),
            ],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(AssignmentSettings::Table)
                    .if_not_exists()
                    .col(string(AssignmentSettings::WorkspaceId).primary_key())
                    .col(boolean(AssignmentSettings::AutoAssign))
                    .col(integer(AssignmentSettings::MaxOpenPerAgent))
                    .col(string(AssignmentSettings::CursorAgentId))
                    .col(big_integer(AssignmentSettings::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Agents::Table)
                    .if_not_exists()
                    .col(string(Agents::WorkspaceId))
                    .col(string(Agents::AgentId))
                    .col(boolean(Agents::Available))
                    .col(big_integer(Agents::UpdatedAtMs))
                    .primary_key(Index::create().col(Agents::WorkspaceId).col(Agents::AgentId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        scifer_db::drop_tables(
            manager,
            [Agents::Table.into_iden(), AssignmentSettings::Table.into_iden()],
        )
        .await?;
        for name in ["ix_conversations_snoozed", "ix_conversations_assignee"] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(Conversations::Table)
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            ConversationAssignment::SnoozedUntilMs,
            ConversationAssignment::TeamId,
            ConversationAssignment::AssigneeId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Conversations::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Conversation labels and canned responses. (Internal notes are messages with direction NOTE.)
struct LabelsAndCanned;

impl MigrationName for LabelsAndCanned {
    fn name(&self) -> &str {
        "m20261201_000005_inbox_labels_canned"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ConversationLabels {
    Table,
    ConversationId,
    Label,
    WorkspaceId,
    ChannelId,
    CreatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum CannedResponses {
    Table,
    Id,
    WorkspaceId,
    ShortCode,
    Content,
    CreatedAtMs,
    UpdatedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for LabelsAndCanned {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConversationLabels::Table)
                    .if_not_exists()
                    .col(string(ConversationLabels::ConversationId))
                    .col(string(ConversationLabels::Label))
                    .col(string(ConversationLabels::WorkspaceId))
                    .col(string(ConversationLabels::ChannelId))
                    .col(big_integer(ConversationLabels::CreatedAtMs))
                    .primary_key(
                        Index::create()
                            .col(ConversationLabels::ConversationId)
                            .col(ConversationLabels::Label),
                    )
                    .to_owned(),
            )
            .await?;
        // The list's label filter; and a disconnect deletes a channel's labels by channel.
        index(
            manager,
            "ix_conversation_labels_workspace",
            ConversationLabels::Table,
            &[
                ConversationLabels::WorkspaceId,
                ConversationLabels::Label,
                ConversationLabels::ConversationId,
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_conversation_labels_channel",
            ConversationLabels::Table,
            &[ConversationLabels::ChannelId],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(CannedResponses::Table)
                    .if_not_exists()
                    .col(string(CannedResponses::Id).primary_key())
                    .col(string(CannedResponses::WorkspaceId))
                    .col(string(CannedResponses::ShortCode))
                    .col(text(CannedResponses::Content))
                    .col(big_integer(CannedResponses::CreatedAtMs))
                    .col(big_integer(CannedResponses::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_canned_responses_short_code",
            CannedResponses::Table,
            &[CannedResponses::WorkspaceId, CannedResponses::ShortCode],
            true,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        scifer_db::drop_tables(
            manager,
            [
                CannedResponses::Table.into_iden(),
                ConversationLabels::Table.into_iden(),
            ],
        )
        .await
    }
}

/// Each user's read marker per conversation, for unread counts.
struct Unread;

impl MigrationName for Unread {
    fn name(&self) -> &str {
        "m20261201_000006_inbox_read_markers"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ReadMarkers {
    Table,
    AgentId,
    ConversationId,
    WorkspaceId,
    ChannelId,
    ReadSentAtMs,
    ReadMessageId,
    UpdatedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Unread {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ReadMarkers::Table)
                    .if_not_exists()
                    .col(string(ReadMarkers::AgentId))
                    .col(string(ReadMarkers::ConversationId))
                    .col(string(ReadMarkers::WorkspaceId))
                    .col(string(ReadMarkers::ChannelId))
                    .col(big_integer(ReadMarkers::ReadSentAtMs))
                    .col(string(ReadMarkers::ReadMessageId))
                    .col(big_integer(ReadMarkers::UpdatedAtMs))
                    .primary_key(
                        Index::create()
                            .col(ReadMarkers::AgentId)
                            .col(ReadMarkers::ConversationId),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_read_markers_channel",
            ReadMarkers::Table,
            &[ReadMarkers::ChannelId],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        scifer_db::drop_tables(manager, [ReadMarkers::Table.into_iden()]).await
    }
}

/// Contact profiles: custom attributes, a name the team set, and the person a contact is.
struct ContactProfiles;

impl MigrationName for ContactProfiles {
    fn name(&self) -> &str {
        "m20261201_000007_inbox_contact_profiles"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ContactProfile {
    PersonId,
    CustomAttributesJson,
    NameLocked,
}

#[async_trait::async_trait]
impl MigrationTrait for ContactProfiles {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            string(ContactProfile::PersonId).default("").to_owned(),
            text(ContactProfile::CustomAttributesJson)
                .default("{}")
                .to_owned(),
            boolean(ContactProfile::NameLocked).default(false).to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Contacts::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // A person's contacts.
        index(
            manager,
            "ix_contacts_person",
            Contacts::Table,
            &[
                Contacts::WorkspaceId.into_iden(),
                ContactProfile::PersonId.into_iden(),
            ],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_contacts_person")
                    .table(Contacts::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        for column in [
            ContactProfile::NameLocked,
            ContactProfile::CustomAttributesJson,
            ContactProfile::PersonId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Contacts::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// History, gaps and media: the reconciled mark on messages, each channel's history sync, and
/// the copies of attachments (with the purges a disconnect leaves for the media worker).
struct HistoryAndMedia;

impl MigrationName for HistoryAndMedia {
    fn name(&self) -> &str {
        "m20261201_000100_inbox_history_and_media"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum HistoryMessage {
    Reconciled,
}

#[derive(DeriveIden, Clone, Copy)]
enum ChannelSync {
    Table,
    ChannelId,
    WorkspaceId,
    BackfillPending,
    BackfillRequestedAtMs,
    BackfilledAtMs,
    LastRunAtMs,
    LastRunKind,
    LastSuccessAtMs,
    HighWaterMs,
    ConversationsSeen,
    MessagesSeen,
    MessagesPublished,
    LastError,
    NotBeforeMs,
    Runs,
}

#[derive(DeriveIden, Clone, Copy)]
enum MediaFiles {
    Table,
    Id,
    WorkspaceId,
    ChannelId,
    MessageId,
    AttachmentIndex,
    SourceKind,
    Source,
    State,
    Attempts,
    NextAttemptAtMs,
    Failure,
    StorageKey,
    Sha256,
    SizeBytes,
    ContentType,
    CreatedAtMs,
    UpdatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum MediaPurges {
    Table,
    Prefix,
    CreatedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for HistoryAndMedia {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(boolean(HistoryMessage::Reconciled).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ChannelSync::Table)
                    .if_not_exists()
                    .col(string(ChannelSync::ChannelId).primary_key())
                    .col(string(ChannelSync::WorkspaceId))
                    .col(boolean(ChannelSync::BackfillPending))
                    .col(big_integer(ChannelSync::BackfillRequestedAtMs))
                    .col(big_integer(ChannelSync::BackfilledAtMs))
                    .col(big_integer(ChannelSync::LastRunAtMs))
                    .col(string(ChannelSync::LastRunKind))
                    .col(big_integer(ChannelSync::LastSuccessAtMs))
                    .col(big_integer(ChannelSync::HighWaterMs))
                    .col(integer(ChannelSync::ConversationsSeen))
                    .col(integer(ChannelSync::MessagesSeen))
                    .col(integer(ChannelSync::MessagesPublished))
                    .col(text(ChannelSync::LastError))
                    .col(big_integer(ChannelSync::NotBeforeMs))
                    .col(integer(ChannelSync::Runs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MediaFiles::Table)
                    .if_not_exists()
                    .col(string(MediaFiles::Id).primary_key())
                    .col(string(MediaFiles::WorkspaceId))
                    .col(string(MediaFiles::ChannelId))
                    .col(string(MediaFiles::MessageId))
                    .col(integer(MediaFiles::AttachmentIndex))
                    .col(string(MediaFiles::SourceKind))
                    .col(text(MediaFiles::Source))
                    .col(integer(MediaFiles::State))
                    .col(integer(MediaFiles::Attempts))
                    .col(big_integer(MediaFiles::NextAttemptAtMs))
                    .col(string(MediaFiles::Failure))
                    .col(string(MediaFiles::StorageKey))
                    .col(string(MediaFiles::Sha256))
                    .col(big_integer(MediaFiles::SizeBytes))
                    .col(string(MediaFiles::ContentType))
                    .col(big_integer(MediaFiles::CreatedAtMs))
                    .col(big_integer(MediaFiles::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        // One copy per attachment; the worker's queue; a disconnect's delete.
        index(
            manager,
            "ux_media_files_attachment",
            MediaFiles::Table,
            &[MediaFiles::MessageId, MediaFiles::AttachmentIndex],
            true,
        )
        .await?;
        index(
            manager,
            "ix_media_files_due",
            MediaFiles::Table,
            &[MediaFiles::State, MediaFiles::NextAttemptAtMs],
            false,
        )
        .await?;
        index(
            manager,
            "ix_media_files_channel",
            MediaFiles::Table,
            &[MediaFiles::ChannelId],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(MediaPurges::Table)
                    .if_not_exists()
                    .col(string(MediaPurges::Prefix).primary_key())
                    .col(big_integer(MediaPurges::CreatedAtMs))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        scifer_db::drop_tables(
            manager,
            [
                MediaPurges::Table.into_iden(),
                MediaFiles::Table.into_iden(),
                ChannelSync::Table.into_iden(),
            ],
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(HistoryMessage::Reconciled)
                    .to_owned(),
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
