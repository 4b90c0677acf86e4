//! What every node of a cluster must agree on (`cluster`: one row per setting, written
//! once by the first node): a value sealed with the cluster's secret key, a fingerprint
//! of its webhook root, its public URL. See `crate::cluster`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Cluster {
    Table,
    Name,
    Value,
    SetAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Cluster::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Cluster::Name).string().not_null().primary_key())
                    .col(ColumnDef::new(Cluster::Value).text().not_null())
                    .col(ColumnDef::new(Cluster::SetAt).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Cluster::Table).to_owned()).await
    }
}
