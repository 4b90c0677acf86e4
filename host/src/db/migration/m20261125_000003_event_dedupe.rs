//! Events carry a key that makes them one of a kind for their job (`input.transferred`,
//! `output.completed:<output key>`, `job.completed`): a job run again after a crash
//! records, and so notifies, each event once.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    JobId,
    DedupeKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Events::Table).add_column(ColumnDef::new(Events::DedupeKey).string().null()).to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_once")
                    .table(Events::Table)
                    .col(Events::JobId)
                    .col(Events::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("events_once").table(Events::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Events::Table).drop_column(Events::DedupeKey).to_owned()).await
    }
}
