//! Ultrafast jobs: the chunk tasks of a job's encode, claimed by any worker with the
//! same lease, heartbeat and attempt rules as jobs.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Chunks {
    Table,
    Id,
    JobId,
    Idx,
    StartPts,
    EndPts,
    Status,
    LeaseOwner,
    LeaseExpiresAt,
    Attempts,
    Progress,
    Error,
    Payload,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Chunks::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Chunks::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Chunks::JobId).string().not_null())
                    .col(ColumnDef::new(Chunks::Idx).integer().not_null())
                    .col(ColumnDef::new(Chunks::StartPts).big_integer().null())
                    .col(ColumnDef::new(Chunks::EndPts).big_integer().null())
                    .col(ColumnDef::new(Chunks::Status).string().not_null())
                    .col(ColumnDef::new(Chunks::LeaseOwner).string().null())
                    .col(ColumnDef::new(Chunks::LeaseExpiresAt).big_integer().null())
                    .col(ColumnDef::new(Chunks::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(Chunks::Progress).integer().not_null().default(0))
                    .col(ColumnDef::new(Chunks::Error).string().null())
                    .col(ColumnDef::new(Chunks::Payload).text().not_null())
                    .col(ColumnDef::new(Chunks::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("chunks_job_idx").table(Chunks::Table).col(Chunks::JobId).col(Chunks::Idx).unique().to_owned())
            .await?;
        manager.create_index(Index::create().name("chunks_status").table(Chunks::Table).col(Chunks::Status).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Chunks::Table).to_owned()).await
    }
}
