//! Issue 5's tables (WhatsApp templates, inbox analytics), kept apart from the earlier
//! migrations; listed in [`super::migration::Migrator`] after them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone, Copy)]
enum TemplateWabas {
    Table,
    ChannelId,
    WorkspaceId,
    WabaId,
    SyncedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum WhatsappTemplates {
    Table,
    WabaId,
    Name,
    Language,
    TemplateId,
    Status,
    Category,
    ComponentsJson,
    Reason,
    StatusAtMs,
    UpdatedAtMs,
}

/// WhatsApp template sync: the WABA of each WhatsApp channel and the WABA's templates.
pub struct WhatsAppTemplates;

impl MigrationName for WhatsAppTemplates {
    fn name(&self) -> &str {
        "m20261215_000008_inbox_whatsapp_templates"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for WhatsAppTemplates {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TemplateWabas::Table)
                    .if_not_exists()
                    .col(string(TemplateWabas::ChannelId).primary_key())
                    .col(string(TemplateWabas::WorkspaceId))
                    .col(string(TemplateWabas::WabaId))
                    .col(big_integer(TemplateWabas::SyncedAtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_template_wabas_waba")
                    .table(TemplateWabas::Table)
                    .col(TemplateWabas::WabaId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WhatsappTemplates::Table)
                    .if_not_exists()
                    .col(string(WhatsappTemplates::WabaId))
                    .col(string(WhatsappTemplates::Name))
                    .col(string(WhatsappTemplates::Language))
                    .col(string(WhatsappTemplates::TemplateId))
                    .col(string(WhatsappTemplates::Status))
                    .col(string(WhatsappTemplates::Category))
                    .col(text(WhatsappTemplates::ComponentsJson))
                    .col(string(WhatsappTemplates::Reason))
                    .col(big_integer(WhatsappTemplates::StatusAtMs))
                    .col(big_integer(WhatsappTemplates::UpdatedAtMs))
                    .primary_key(
                        Index::create()
                            .col(WhatsappTemplates::WabaId)
                            .col(WhatsappTemplates::Name)
                            .col(WhatsappTemplates::Language),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        scifer_db::drop_tables(
            manager,
            [
                WhatsappTemplates::Table.into_iden(),
                TemplateWabas::Table.into_iden(),
            ],
        )
        .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum AnalyticsFacts {
    Table,
    Id,
    WorkspaceId,
    ChannelId,
    ConversationId,
    AgentId,
    Kind,
    AuthorKind,
    AtMs,
    DurationMs,
    Reason,
}

#[derive(DeriveIden, Clone, Copy)]
enum AnalyticsCycles {
    Table,
    ConversationId,
    WorkspaceId,
    ChannelId,
    OpenedAtMs,
    AwaitingSinceMs,
    Responded,
}

/// Inbox analytics: the activity log and each conversation's current open period.
pub struct InboxAnalytics;

impl MigrationName for InboxAnalytics {
    fn name(&self) -> &str {
        "m20261215_000009_inbox_analytics"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for InboxAnalytics {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AnalyticsFacts::Table)
                    .if_not_exists()
                    .col(string(AnalyticsFacts::Id).primary_key())
                    .col(string(AnalyticsFacts::WorkspaceId))
                    .col(string(AnalyticsFacts::ChannelId))
                    .col(string(AnalyticsFacts::ConversationId))
                    .col(string(AnalyticsFacts::AgentId))
                    .col(string(AnalyticsFacts::Kind))
                    .col(integer(AnalyticsFacts::AuthorKind))
                    .col(big_integer(AnalyticsFacts::AtMs))
                    .col(big_integer(AnalyticsFacts::DurationMs))
                    .col(string(AnalyticsFacts::Reason))
                    .to_owned(),
            )
            .await?;
        // Reports read one workspace's facts over a time range; a disconnect deletes a channel's.
        for (name, columns) in [
            (
                "ix_analytics_facts_workspace_at",
                vec![AnalyticsFacts::WorkspaceId, AnalyticsFacts::AtMs],
            ),
            ("ix_analytics_facts_channel", vec![AnalyticsFacts::ChannelId]),
        ] {
            let mut index = Index::create();
            index.name(name).table(AnalyticsFacts::Table).if_not_exists();
            for c in columns {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AnalyticsCycles::Table)
                    .if_not_exists()
                    .col(string(AnalyticsCycles::ConversationId).primary_key())
                    .col(string(AnalyticsCycles::WorkspaceId))
                    .col(string(AnalyticsCycles::ChannelId))
                    .col(big_integer(AnalyticsCycles::OpenedAtMs))
                    .col(big_integer(AnalyticsCycles::AwaitingSinceMs))
                    .col(boolean(AnalyticsCycles::Responded))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_analytics_cycles_channel")
                    .table(AnalyticsCycles::Table)
                    .col(AnalyticsCycles::ChannelId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        scifer_db::drop_tables(
            manager,
            [
                AnalyticsCycles::Table.into_iden(),
                AnalyticsFacts::Table.into_iden(),
            ],
        )
        .await
    }
}
