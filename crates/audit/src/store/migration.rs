//! The audit schema, written with sea-query's builder so it runs on SQLite and PostgreSQL. The
//! gateway adds [`CreateAuditRecords`] to its own migrator; [`Migrator`] runs it alone (tests, tools).

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `audit_records` and `audit_heads`.
pub struct CreateAuditRecords;

impl MigrationName for CreateAuditRecords {
    // Spelled out rather than derived: the derive uses the file name, which would be "migration"
    // inside whichever migrator includes this one.
    fn name(&self) -> &str {
        "m20260101_000001_scifer_audit_create_audit_records"
    }
}

/// A migrator with only the audit schema.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateAuditRecords)]
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditRecords {
    Table,
    Id,
    WorkspaceId,
    Sequence,
    EventId,
    ActorKind,
    ActorId,
    Action,
    TargetKind,
    TargetId,
    AtMs,
    TraceId,
    Outcome,
    Detail,
    Service,
    PrevHash,
    Hash,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditHeads {
    Table,
    WorkspaceId,
    Sequence,
    Hash,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAuditRecords {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditRecords::Table)
                    .if_not_exists()
                    .col(string(AuditRecords::Id).primary_key())
                    .col(string(AuditRecords::WorkspaceId))
                    .col(big_integer(AuditRecords::Sequence))
                    .col(string(AuditRecords::EventId))
                    .col(string(AuditRecords::ActorKind))
                    .col(text(AuditRecords::ActorId))
                    .col(string(AuditRecords::Action))
                    .col(text(AuditRecords::TargetKind))
                    .col(text(AuditRecords::TargetId))
                    .col(big_integer(AuditRecords::AtMs))
                    .col(string(AuditRecords::TraceId))
                    .col(string(AuditRecords::Outcome))
                    .col(text(AuditRecords::Detail))
                    .col(text(AuditRecords::Service))
                    .col(string(AuditRecords::PrevHash))
                    .col(string(AuditRecords::Hash))
                    .to_owned(),
            )
            .await?;
        // Idempotent appends: one record per event.
        index(manager, "ux_audit_records_event", &[AuditRecords::EventId], true).await?;
        // One record per position of a chain, whatever an appender does; also the keyset of every
        // listing, export and verification (newest or oldest first by sequence).
        index(
            manager,
            "ux_audit_records_workspace_sequence",
            &[AuditRecords::WorkspaceId, AuditRecords::Sequence],
            true,
        )
        .await?;
        // Filters by action and by actor.
        index(
            manager,
            "ix_audit_records_workspace_action",
            &[
                AuditRecords::WorkspaceId,
                AuditRecords::Action,
                AuditRecords::Sequence,
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_audit_records_workspace_actor",
            &[
                AuditRecords::WorkspaceId,
                AuditRecords::ActorId,
                AuditRecords::Sequence,
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditHeads::Table)
                    .if_not_exists()
                    .col(string(AuditHeads::WorkspaceId).primary_key())
                    .col(big_integer(AuditHeads::Sequence))
                    .col(string(AuditHeads::Hash))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        scifer_db::drop_tables(
            manager,
            [AuditHeads::Table.into_iden(), AuditRecords::Table.into_iden()],
        )
        .await
    }
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    columns: &[AuditRecords],
    unique: bool,
) -> Result<(), DbErr> {
    let mut statement = Index::create();
    statement.name(name).table(AuditRecords::Table).if_not_exists();
    for column in columns {
        statement.col(*column);
    }
    if unique {
        statement.unique();
    }
    manager.create_index(statement.to_owned()).await
}
