//! Automation and handoff (issue 5): its tables, one migration of their own.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Automation;

impl MigrationName for Automation {
    fn name(&self) -> &str {
        "m20261215_000008_inbox_automation"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum AutomationRules {
    Table,
    Id,
    WorkspaceId,
    Position,
    RuleJson,
    CreatedAtMs,
    UpdatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum AutomationSettings {
    Table,
    WorkspaceId,
    BusinessHoursJson,
    MaxRepliesPerConversation,
    RateLimitWindowSecs,
    WebhookSecret,
    UpdatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum ConversationAutomation {
    Table,
    ConversationId,
    WorkspaceId,
    ChannelId,
    Handler,
    ThreadOwnerAppId,
    LastAwayAtMs,
    UpdatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum AutomationIdle {
    Table,
    ConversationId,
    Minutes,
    ChannelId,
    StretchAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum StandbyMessages {
    Table,
    ChannelId,
    ExternalId,
    AtMs,
}

async fn index<T: IntoIden + Clone + 'static, C: IntoIden + Clone + 'static>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: &[C],
) -> Result<(), DbErr> {
    let mut statement = Index::create();
    statement.name(name).table(table).if_not_exists();
    for column in columns {
        statement.col(column.clone());
    }
    manager.create_index(statement.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Automation {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AutomationRules::Table)
                    .if_not_exists()
                    .col(string(AutomationRules::Id).primary_key())
                    .col(string(AutomationRules::WorkspaceId))
                    .col(integer(AutomationRules::Position))
                    .col(text(AutomationRules::RuleJson))
                    .col(big_integer(AutomationRules::CreatedAtMs))
                    .col(big_integer(AutomationRules::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_automation_rules_workspace",
            AutomationRules::Table,
            &[AutomationRules::WorkspaceId, AutomationRules::Position],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(AutomationSettings::Table)
                    .if_not_exists()
                    .col(string(AutomationSettings::WorkspaceId).primary_key())
                    .col(text(AutomationSettings::BusinessHoursJson).default(""))
                    .col(integer(AutomationSettings::MaxRepliesPerConversation))
                    .col(integer(AutomationSettings::RateLimitWindowSecs))
                    .col(string(AutomationSettings::WebhookSecret).default(""))
                    .col(big_integer(AutomationSettings::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConversationAutomation::Table)
                    .if_not_exists()
                    .col(string(ConversationAutomation::ConversationId).primary_key())
                    .col(string(ConversationAutomation::WorkspaceId))
                    .col(string(ConversationAutomation::ChannelId))
                    .col(integer(ConversationAutomation::Handler))
                    .col(string(ConversationAutomation::ThreadOwnerAppId).default(""))
                    .col(big_integer(ConversationAutomation::LastAwayAtMs).default(0))
                    .col(big_integer(ConversationAutomation::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        // A disconnect deletes these by channel.
        index(
            manager,
            "ix_conversation_automation_channel",
            ConversationAutomation::Table,
            &[ConversationAutomation::ChannelId],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(AutomationIdle::Table)
                    .if_not_exists()
                    .col(string(AutomationIdle::ConversationId))
                    .col(integer(AutomationIdle::Minutes))
                    .col(string(AutomationIdle::ChannelId))
                    .col(big_integer(AutomationIdle::StretchAtMs))
                    .primary_key(
                        Index::create()
                            .col(AutomationIdle::ConversationId)
                            .col(AutomationIdle::Minutes),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_automation_idle_channel",
            AutomationIdle::Table,
            &[AutomationIdle::ChannelId],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(StandbyMessages::Table)
                    .if_not_exists()
                    .col(string(StandbyMessages::ChannelId))
                    .col(string(StandbyMessages::ExternalId))
                    .col(big_integer(StandbyMessages::AtMs))
                    .primary_key(
                        Index::create()
                            .col(StandbyMessages::ChannelId)
                            .col(StandbyMessages::ExternalId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        scifer_db::drop_tables(
            manager,
            [
                StandbyMessages::Table.into_iden(),
                AutomationIdle::Table.into_iden(),
                ConversationAutomation::Table.into_iden(),
                AutomationSettings::Table.into_iden(),
                AutomationRules::Table.into_iden(),
            ],
        )
        .await
    }
}
