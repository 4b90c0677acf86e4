//! `GET /v2/jobs` lists a key's jobs newest first: the index makes that list one index
//! range read, however many jobs other keys have.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Owner,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create().name("jobs_owner_created").table(Jobs::Table).col(Jobs::Owner).col(Jobs::CreatedAt).if_not_exists().to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("jobs_owner_created").table(Jobs::Table).to_owned()).await
    }
}
