//! Reads of a job with its outputs on PostgreSQL: the reads that arrive while the
//! database is busy share one query ([`super::batched`]), up to [`MOST_IN_ONE`].
//!
//! The owner is checked here, per read, on the row the query returned: a read asking for
//! another owner's job gets nothing, as with the one-read query before.

use std::collections::HashMap;
use std::sync::OnceLock;

use sea_orm::DbErr;
use sea_orm::sqlx::postgres::PgPool;
use sea_orm::sqlx::{self, Row};
use tokio::sync::oneshot;

use super::batched;
use super::postgres::{job_row, output_row};
use crate::db::{job, output};

/// The jobs named in `$1` (no id twice) with their outputs; a job without outputs is one
/// row of `NULL`s on the outputs' side. Ordered by job, so a job's rows are next to each
/// other. Each id is looked up on its own (`LATERAL`, kept from being flattened into a
/// join by `OFFSET 0`): the plan of the one-read query, an index lookup per job, whatever
/// the statistics say. A join on `id = ANY($1)` was planned as a scan of every output when
/// the statistics lagged behind a growing table (as under a burst of submits).
const FIND_MANY: &str = "SELECT found.* FROM unnest($1::text[]) AS wanted(id) CROSS JOIN LATERAL (\
        SELECT j.id, j.owner, j.status, j.input_status, j.progress, j.spec, j.input_metadata, j.error, \
            j.created_at, j.completed_at, j.lease_owner, j.lease_expires_at, j.attempts, \
            o.id, o.position, o.key, o.format, o.output_type, o.state, o.url, o.urls, o.metadata, o.error \
        FROM jobs j LEFT JOIN outputs o ON o.job_id = j.id WHERE j.id = wanted.id OFFSET 0\
    ) AS found ORDER BY 1, 15";

/// The most reads one query answers.
const MOST_IN_ONE: usize = 64;

/// A job with its outputs, as a read returns it.
pub type Found = Option<(job::Model, Vec<output::Model>)>;

/// A job with its outputs, only if `owner` created it (owner `None`: any job).
pub async fn find(pool: &PgPool, id: &str, owner: Option<&str>) -> Result<Found, DbErr> {
    let (reply, answer) = oneshot::channel();
    let wanted = Wanted { id: id.to_string(), owner: owner.map(str::to_string), reply };
    let pool = pool.clone();
    batched::of_pool(&READS, &pool, MOST_IN_ONE).push(wanted, move |batch| answer_all(pool.clone(), batch));
    match answer.await {
        Ok(found) => found.map_err(|message| DbErr::Custom(format!("PostgreSQL: {message}"))),
        Err(_) => Err(DbErr::Custom("PostgreSQL: the read's query ended without an answer".into())),
    }
}

/// The reads' batchers, one per pool.
static READS: batched::Registry<Wanted> = OnceLock::new();

/// One read waiting for its answer.
struct Wanted {
    id: String,
    owner: Option<String>,
    reply: oneshot::Sender<Result<Found, String>>,
}

/// One query for `batch`; each read gets its job if its owner may see it.
async fn answer_all(pool: PgPool, batch: Vec<Wanted>) {
    let mut ids: Vec<&str> = batch.iter().map(|wanted| wanted.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    match read_many(&pool, &ids).await {
        Ok(found) => {
            for wanted in batch {
                let job = found.get(&wanted.id).filter(|(job, _)| wanted.owner.as_ref().is_none_or(|owner| *owner == job.owner));
                let _ = wanted.reply.send(Ok(job.cloned()));
            }
        }
        Err(err) => {
            let message = err.to_string();
            for wanted in batch {
                let _ = wanted.reply.send(Err(message.clone()));
            }
        }
    }
}

/// The jobs named by `ids`, with their outputs, by id.
async fn read_many(pool: &PgPool, ids: &[&str]) -> Result<HashMap<String, (job::Model, Vec<output::Model>)>, sqlx::Error> {
    let rows = sqlx::query(FIND_MANY).bind(ids).fetch_all(pool).await?;
    let mut found: HashMap<String, (job::Model, Vec<output::Model>)> = HashMap::with_capacity(ids.len());
    for row in &rows {
        let id: &str = row.try_get(0)?;
        if !found.contains_key(id) {
            let job = job_row(row)?;
            found.insert(job.id.clone(), (job, Vec::new()));
        }
        let (_, outputs) = found.get_mut(id).expect("inserted above");
        if let Some(output) = output_row(row, id)? {
            outputs.push(output);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::direct::fixtures::new_job;
    use crate::db::direct::postgres::insert;
    use crate::db::direct::postgres::tests::Scratch;

    /// Many reads at once, of different owners' jobs: each gets its own job (or nothing,
    /// for another owner's or a missing one), and they took fewer queries than reads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_at_once_share_queries_and_each_gets_only_what_it_may_see() {
        let scratch = Scratch::new().await;
        let pool = scratch.db.get_postgres_connection_pool().clone();
        for n in 0..20 {
            let (job, outputs) = new_job(&format!("b{n}"), &format!("owner-{}", n % 3), n % 4);
            insert(&pool, &job, outputs, "copra_unit").await.unwrap();
        }
        let batcher = batched::of_pool(&READS, &pool, MOST_IN_ONE);
        let before = batcher.statements();
        let reads = (0..400).map(|n| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let job = n % 25; // b20..b24 are not there
                let asker = format!("owner-{}", n % 3);
                let found = find(&pool, &format!("b{job}"), Some(&asker)).await.unwrap();
                (job, asker, found)
            })
        });
        let reads = futures::future::join_all(reads).await;
        for read in reads {
            let (job, asker, found) = read.unwrap();
            let theirs = job < 20 && format!("owner-{}", job % 3) == asker;
            match found {
                Some((found, outputs)) => {
                    assert!(theirs, "b{job} was read by {asker}");
                    assert_eq!((found.id.as_str(), found.owner.as_str()), (format!("b{job}").as_str(), asker.as_str()));
                    assert_eq!(outputs.len(), job % 4);
                    assert!(outputs.iter().all(|o| o.job_id == found.id) && outputs.windows(2).all(|w| w[0].position < w[1].position));
                }
                None => assert!(!theirs, "b{job} was not found for its owner {asker}"),
            }
        }
        let queries = batcher.statements() - before;
        assert!(queries < 400, "400 reads at once took {queries} queries");
        // Every runner counts itself out, and a lone read still answers.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while batcher.running() > 0 {
            assert!(std::time::Instant::now() < deadline, "a query runner never counted itself out");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(find(&pool, "b1", None).await.unwrap().is_some());
    }
}
