//! Webhooks that are never lost: each event gets a stable `webhook_id` (the
//! `webhook-id` header, the same on every retry), the receiver it goes to, a claim
//! (`claimed_by` until `claimed_until`) so that one process delivers it while others
//! skip it, and its end (`delivered_at` or `failed_at`). Every delivery attempt is a row
//! of `webhook_attempts`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    WebhookId,
    Receiver,
    ClaimedBy,
    ClaimedUntil,
    DeliveredAt,
    FailedAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    EventId,
    JobId,
    AttemptedAt,
    DurationMs,
    StatusCode,
    Error,
    Succeeded,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        for column in [
            ColumnDef::new(Events::WebhookId).string().null().to_owned(),
            ColumnDef::new(Events::Receiver).string().null().to_owned(),
            ColumnDef::new(Events::ClaimedBy).string().null().to_owned(),
            ColumnDef::new(Events::ClaimedUntil).big_integer().null().to_owned(),
            ColumnDef::new(Events::DeliveredAt).big_integer().null().to_owned(),
            ColumnDef::new(Events::FailedAt).big_integer().null().to_owned(),
        ] {
            manager.alter_table(Table::alter().table(Events::Table).add_column(column).to_owned()).await?;
        }
        let db = manager.get_connection();
        // Events of the earlier schema: an id as stable as theirs, and how they ended
        // (no longer owed with an error: given up; without one, after a try: sent).
        db.execute_unprepared("UPDATE events SET webhook_id = 'msg_' || job_id || '_' || CAST(id AS TEXT) WHERE webhook_id IS NULL").await?;
        db.execute_unprepared("UPDATE events SET failed_at = created_at WHERE NOT pending AND last_error IS NOT NULL").await?;
        db.execute_unprepared("UPDATE events SET delivered_at = created_at WHERE NOT pending AND attempts > 0 AND last_error IS NULL").await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(WebhookAttempts::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(WebhookAttempts::EventId).big_integer().not_null())
                    .col(ColumnDef::new(WebhookAttempts::JobId).string().not_null())
                    .col(ColumnDef::new(WebhookAttempts::AttemptedAt).big_integer().not_null())
                    .col(ColumnDef::new(WebhookAttempts::DurationMs).big_integer().not_null())
                    .col(ColumnDef::new(WebhookAttempts::StatusCode).integer().null())
                    .col(ColumnDef::new(WebhookAttempts::Error).text().null())
                    .col(ColumnDef::new(WebhookAttempts::Succeeded).boolean().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_attempts_job")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::JobId)
                    .col(WebhookAttempts::EventId)
                    .col(WebhookAttempts::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WebhookAttempts::Table).to_owned()).await?;
        for column in [Events::WebhookId, Events::Receiver, Events::ClaimedBy, Events::ClaimedUntil, Events::DeliveredAt, Events::FailedAt] {
            manager.alter_table(Table::alter().table(Events::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
