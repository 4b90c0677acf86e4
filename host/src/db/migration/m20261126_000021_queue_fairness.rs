//! Fair claims: each job records when it was last claimed (`claimed_at`, Unix ms, kept
//! after the job ends), so the queue can give the next claim to the API key that was
//! served least recently. The column is read and written only by the queue's claim
//! statement (raw SQL in `crate::queue`), not through the job entity. The index makes a
//! key's latest claim one index lookup.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Owner,
    ClaimedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Jobs::Table).add_column(ColumnDef::new(Jobs::ClaimedAt).big_integer().null()).to_owned())
            .await?;
        manager
            .create_index(Index::create().name("jobs_owner_claimed").table(Jobs::Table).col(Jobs::Owner).col(Jobs::ClaimedAt).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("jobs_owner_claimed").table(Jobs::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Jobs::Table).drop_column(Jobs::ClaimedAt).to_owned()).await
    }
}
