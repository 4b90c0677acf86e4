//! Outputs keep a typed `state` (waiting, queued, working, packaging, done, failed,
//! skipped) instead of the status text: the API's words (`video.encoded`,
//! `image.created`) are made from the type and the state, never matched back by suffix.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outputs {
    Table,
    State,
    Status,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Outputs::Table).add_column(ColumnDef::new(Outputs::State).string().not_null().default("waiting")).to_owned(),
            )
            .await?;
        // The state each status of the earlier schema stood for.
        let db = manager.get_connection();
        for (state, words) in [
            ("queued", &["queued"][..]),
            ("working", &["encoding", "processing", "variants.encoding"][..]),
            ("packaging", &["packaging"][..]),
            ("done", &["encoded", "created", "packaged"][..]),
            ("failed", &["failed"][..]),
            ("skipped", &["skipped"][..]),
        ] {
            for word in words {
                let sql = format!("UPDATE outputs SET state = '{state}' WHERE status = output_type || '.{word}'");
                db.execute_unprepared(&sql).await?;
            }
        }
        manager.alter_table(Table::alter().table(Outputs::Table).drop_column(Outputs::Status).to_owned()).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("output states are not turned back into status text".into()))
    }
}
