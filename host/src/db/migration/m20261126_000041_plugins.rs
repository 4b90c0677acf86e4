//! Plugins in a cluster: components added through the admin API are stored in the
//! database (content hash as identity, the bytes, when added, superseded, removed) so
//! that every node loads the same set.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Plugins {
    Table,
    Sha256,
    Name,
    Kind,
    Version,
    Wasm,
    AddedAt,
    SupersededAt,
    RemovedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Plugins::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Plugins::Sha256).string().not_null().primary_key())
                    .col(ColumnDef::new(Plugins::Name).string().not_null())
                    .col(ColumnDef::new(Plugins::Kind).string().not_null())
                    .col(ColumnDef::new(Plugins::Version).string().not_null())
                    .col(ColumnDef::new(Plugins::Wasm).blob().not_null())
                    .col(ColumnDef::new(Plugins::AddedAt).big_integer().not_null())
                    .col(ColumnDef::new(Plugins::SupersededAt).big_integer().null())
                    .col(ColumnDef::new(Plugins::RemovedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager.create_index(Index::create().name("plugins_name").table(Plugins::Table).col(Plugins::Name).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Plugins::Table).to_owned()).await
    }
}
