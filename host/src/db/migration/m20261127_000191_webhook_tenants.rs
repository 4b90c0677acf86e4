//! Webhooks per tenant: each API key's signing-secret generation (`webhook_secrets`,
//! one row per tenant namespace once it has rotated), and the tenant of each event
//! (`events.owner`), so the notifier shares delivery slots between tenants with one
//! cheap claim per tenant (index `events_due_owner`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookSecrets {
    Table,
    Namespace,
    Generation,
    RotatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Owner,
    Pending,
    NextAttemptAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookSecrets::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(WebhookSecrets::Namespace).string().not_null().primary_key())
                    .col(ColumnDef::new(WebhookSecrets::Generation).big_integer().not_null().default(0))
                    .col(ColumnDef::new(WebhookSecrets::RotatedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(Events::Table).add_column(ColumnDef::new(Events::Owner).string().not_null().default("")).to_owned(),
            )
            .await?;
        // Events recorded before: their job's owner ('' if the job is gone).
        manager
            .get_connection()
            .execute_unprepared("UPDATE events SET owner = COALESCE((SELECT jobs.owner FROM jobs WHERE jobs.id = events.job_id), '')")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_due_owner")
                    .table(Events::Table)
                    .col(Events::Pending)
                    .col(Events::Owner)
                    .col(Events::NextAttemptAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("events_due_owner").table(Events::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Events::Table).drop_column(Events::Owner).to_owned()).await?;
        manager.drop_table(Table::drop().table(WebhookSecrets::Table).to_owned()).await
    }
}
