//! New jobs on PostgreSQL: the submits that arrive while the database is busy share one
//! statement ([`super::batched`]), up to [`MOST_IN_ONE`], and so one commit.
//!
//! A statement stores all of its jobs or none. If a shared one fails (a job whose id is
//! there already, say), each of its jobs is stored again on its own
//! ([`super::postgres::insert`]), so one job's failure is that job's alone, as when every
//! submit had a statement of its own.

use std::collections::HashMap;
use std::sync::OnceLock;

use sea_orm::sqlx::postgres::PgPool;
use sea_orm::sqlx::{self};
use sea_orm::{ActiveEnum, DbErr};
use tokio::sync::oneshot;

use super::batched;
use crate::db::{job, output};

/// The jobs, their outputs (every column an array: one element per job, or per output)
/// and a notification of each new job, delivered when the statement commits. The outputs'
/// ids come back with their job and position.
const INSERT_MANY: &str = "WITH new_jobs AS (\
        INSERT INTO jobs (id, owner, status, input_status, progress, spec, input_metadata, error, created_at, \
                          completed_at, lease_owner, lease_expires_at, attempts) \
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[], \
                             $8::text[], $9::int8[], $10::int8[], $11::text[], $12::int8[], $13::int4[]) \
        RETURNING pg_notify($14, id)\
    ), new_outputs AS (\
        INSERT INTO outputs (job_id, position, key, format, output_type, state, url, urls, metadata, error) \
        SELECT * FROM unnest($15::text[], $16::int4[], $17::text[], $18::text[], $19::text[], $20::text[], \
                             $21::text[], $22::text[], $23::text[], $24::text[]) \
        RETURNING job_id, position, id\
    ) SELECT job_id, position, id FROM new_outputs";

/// The most jobs one statement stores.
const MOST_IN_ONE: usize = 32;

/// Store a new job and its outputs, and tell the workers listening on `channel`; returns
/// the outputs with their ids. All of the job or none of it is stored.
pub async fn insert(pool: &PgPool, job: job::Model, outputs: Vec<output::Model>, channel: &str) -> Result<Vec<output::Model>, DbErr> {
    let (reply, answer) = oneshot::channel();
    let new = NewJob { job, outputs, channel: channel.to_string(), reply };
    let pool = pool.clone();
    batched::of_pool(&INSERTS, &pool, MOST_IN_ONE).push(new, move |batch| store_all(pool.clone(), batch));
    match answer.await {
        Ok(stored) => stored,
        Err(_) => Err(DbErr::Custom("PostgreSQL: the job's insert ended without an answer".into())),
    }
}

/// The inserts' batchers, one per pool.
static INSERTS: batched::Registry<NewJob> = OnceLock::new();

/// One job waiting to be stored.
struct NewJob {
    job: job::Model,
    outputs: Vec<output::Model>,
    channel: String,
    reply: oneshot::Sender<Result<Vec<output::Model>, DbErr>>,
}

/// Store `batch`: one statement per channel (a process has one), or each job on its own
/// if that fails.
async fn store_all(pool: PgPool, mut batch: Vec<NewJob>) {
    while let Some(channel) = batch.first().map(|new| new.channel.clone()) {
        let (same, rest): (Vec<NewJob>, Vec<NewJob>) = batch.into_iter().partition(|new| new.channel == channel);
        batch = rest;
        if same.len() > 1 {
            if let Ok(mut ids) = insert_many(&pool, &same, &channel).await {
                for new in same {
                    let ids = ids.remove(&new.job.id).unwrap_or_default();
                    let _ = new.reply.send(Ok(super::with_ids(new.outputs, &ids)));
                }
                continue;
            }
        }
        for new in same {
            let stored = super::postgres::insert(&pool, &new.job, new.outputs, &new.channel).await;
            let _ = new.reply.send(stored);
        }
    }
}

/// One statement for `jobs`; returns each job's outputs' (position, id).
async fn insert_many(pool: &PgPool, jobs: &[NewJob], channel: &str) -> Result<HashMap<String, Vec<(i32, i64)>>, sqlx::Error> {
    let each = |get: fn(&job::Model) -> Option<String>| jobs.iter().map(|new| get(&new.job)).collect::<Vec<_>>();
    let outputs: Vec<&output::Model> = jobs.iter().flat_map(|new| &new.outputs).collect();
    let query = sqlx::query_as(INSERT_MANY)
        .bind(each(|j| Some(j.id.clone())))
        .bind(each(|j| Some(j.owner.clone())))
        .bind(each(|j| Some(j.status.to_value())))
        .bind(each(|j| Some(j.input_status.to_value())))
        .bind(jobs.iter().map(|new| new.job.progress).collect::<Vec<_>>())
        .bind(each(|j| Some(j.spec.clone())))
        .bind(each(|j| j.input_metadata.clone()))
        .bind(each(|j| j.error.clone()))
        .bind(jobs.iter().map(|new| new.job.created_at).collect::<Vec<_>>())
        .bind(jobs.iter().map(|new| new.job.completed_at).collect::<Vec<_>>())
        .bind(each(|j| j.lease_owner.clone()))
        .bind(jobs.iter().map(|new| new.job.lease_expires_at).collect::<Vec<_>>())
        .bind(jobs.iter().map(|new| new.job.attempts).collect::<Vec<_>>())
        .bind(channel)
        .bind(outputs.iter().map(|o| o.job_id.as_str()).collect::<Vec<_>>());
    let rows: Vec<(String, i32, i64)> = super::postgres::bind_output_columns(query, &outputs).fetch_all(pool).await?;
    let mut ids: HashMap<String, Vec<(i32, i64)>> = HashMap::with_capacity(jobs.len());
    for (job_id, position, id) in rows {
        ids.entry(job_id).or_default().push((position, id));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::direct::fixtures::new_job;
    use crate::db::direct::postgres::tests::Scratch;
    use crate::db::direct::postgres_reads::find;

    /// Many submits at once: each job is stored with its own outputs and their ids, a job
    /// whose id is taken fails alone, every stored job is announced once, and the
    /// submits took fewer statements than jobs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn submits_at_once_share_statements_and_one_failure_is_its_own() {
        let scratch = Scratch::new().await;
        let pool = scratch.db.get_postgres_connection_pool().clone();
        let (taken, taken_outputs) = new_job("taken", "owner-x", 1);
        insert(&pool, taken, taken_outputs, "copra_unit_many").await.unwrap();
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.unwrap();
        listener.listen("copra_unit_many").await.unwrap();
        let batcher = batched::of_pool(&INSERTS, &pool, MOST_IN_ONE);
        let before = batcher.statements();

        let submits = (0..300).map(|n| {
            let pool = pool.clone();
            tokio::spawn(async move {
                // Every 100th job asks for the id that is taken.
                let id = if n % 100 == 50 { "taken".to_string() } else { format!("m{n}") };
                let (job, outputs) = new_job(&id, &format!("owner-{}", n % 3), n % 4);
                let stored = insert(&pool, job, outputs, "copra_unit_many").await;
                (n, id, stored)
            })
        });
        let mut announced_expected = 0;
        for submit in futures::future::join_all(submits).await {
            let (n, id, stored) = submit.unwrap();
            if id == "taken" {
                assert!(stored.is_err(), "job {n} reused a taken id and was stored");
                continue;
            }
            let stored = stored.unwrap_or_else(|err| panic!("job {n} was not stored: {err}"));
            assert_eq!(stored.len(), n % 4);
            assert!(stored.iter().all(|o| o.id > 0 && o.job_id == id));
            let (job, read) = find(&pool, &id, None).await.unwrap().expect("a stored job reads back");
            assert_eq!((job.owner, read), (format!("owner-{}", n % 3), stored));
            announced_expected += 1;
        }
        // The taken id still has its one output, not another job's.
        assert_eq!(find(&pool, "taken", None).await.unwrap().unwrap().1.len(), 1);
        let statements = batcher.statements() - before;
        assert!(statements < 300, "300 submits at once took {statements} statements");

        let mut announced = std::collections::HashSet::new();
        while announced.len() < announced_expected {
            let note = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv()).await.expect("a job was not announced").unwrap();
            assert!(announced.insert(note.payload().to_string()), "{} was announced twice", note.payload());
        }
        assert!(!announced.contains("taken"));
    }
}
