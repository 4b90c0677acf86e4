//! The schema as the first releases created it (jobs, outputs, events). Written
//! `IF NOT EXISTS`, so a database made before migrations existed is adopted as it is.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Owner,
    Status,
    InputStatus,
    Progress,
    Spec,
    InputMetadata,
    Error,
    CreatedAt,
    CompletedAt,
    LeaseOwner,
    LeaseExpiresAt,
    Attempts,
}

#[derive(DeriveIden)]
enum Outputs {
    Table,
    Id,
    JobId,
    Position,
    Key,
    Format,
    OutputType,
    Status,
    Url,
    Urls,
    Metadata,
    Error,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    JobId,
    Event,
    Payload,
    CreatedAt,
    Pending,
    Attempts,
    NextAttemptAt,
    LastError,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Jobs::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Jobs::Owner).string().not_null())
                    .col(ColumnDef::new(Jobs::Status).string().not_null())
                    .col(ColumnDef::new(Jobs::InputStatus).string().not_null())
                    .col(ColumnDef::new(Jobs::Progress).integer().not_null())
                    .col(ColumnDef::new(Jobs::Spec).text().not_null())
                    .col(ColumnDef::new(Jobs::InputMetadata).text().null())
                    .col(ColumnDef::new(Jobs::Error).text().null())
                    .col(ColumnDef::new(Jobs::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Jobs::CompletedAt).big_integer().null())
                    .col(ColumnDef::new(Jobs::LeaseOwner).string().null())
                    .col(ColumnDef::new(Jobs::LeaseExpiresAt).big_integer().null())
                    .col(ColumnDef::new(Jobs::Attempts).integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outputs::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Outputs::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Outputs::JobId).string().not_null())
                    .col(ColumnDef::new(Outputs::Position).integer().not_null())
                    .col(ColumnDef::new(Outputs::Key).string().not_null())
                    .col(ColumnDef::new(Outputs::Format).string().not_null())
                    .col(ColumnDef::new(Outputs::OutputType).string().not_null())
                    .col(ColumnDef::new(Outputs::Status).string().not_null())
                    .col(ColumnDef::new(Outputs::Url).text().null())
                    .col(ColumnDef::new(Outputs::Urls).text().null())
                    .col(ColumnDef::new(Outputs::Metadata).text().null())
                    .col(ColumnDef::new(Outputs::Error).text().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Outputs::Table, Outputs::JobId)
                            .to(Jobs::Table, Jobs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Events::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Events::JobId).string().not_null())
                    .col(ColumnDef::new(Events::Event).string().not_null())
                    .col(ColumnDef::new(Events::Payload).text().not_null())
                    .col(ColumnDef::new(Events::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Events::Pending).boolean().not_null())
                    .col(ColumnDef::new(Events::Attempts).integer().not_null())
                    .col(ColumnDef::new(Events::NextAttemptAt).big_integer().not_null())
                    .col(ColumnDef::new(Events::LastError).text().null())
                    .to_owned(),
            )
            .await?;
        let index = |name: &str, table, columns: Vec<DynIden>| {
            let mut index = Index::create();
            index.name(name).table(table).if_not_exists();
            for column in columns {
                index.col(column);
            }
            index.to_owned()
        };
        manager
            .create_index(index("jobs_queue", Jobs::Table.into_iden(), vec![
                Jobs::Status.into_iden(),
                Jobs::LeaseExpiresAt.into_iden(),
                Jobs::CreatedAt.into_iden(),
            ]))
            .await?;
        manager
            .create_index(index("outputs_job", Outputs::Table.into_iden(), vec![Outputs::JobId.into_iden(), Outputs::Position.into_iden()]))
            .await?;
        manager
            .create_index(index("events_pending", Events::Table.into_iden(), vec![Events::Pending.into_iden(), Events::Id.into_iden()]))
            .await?;
        manager
            .create_index(index("events_job", Events::Table.into_iden(), vec![Events::JobId.into_iden(), Events::Id.into_iden()]))
            .await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the initial schema is not taken down".into()))
    }
}
