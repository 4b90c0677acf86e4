//! Reads of a job with its outputs on PostgreSQL, batched: the reads that arrive while
//! the database is busy with earlier ones share one query.
//!
//! Every `GET /v2/jobs/{id}` is a read. One query per read made each of them a round trip
//! to a server process: under load the API node, the database's backends and the load
//! itself took turns on the cores, and a third of the API node's time went to the
//! kernel's context switches. Here a read joins a queue. While fewer queries than the
//! machine has cores are running, it starts one at once (so a lone read waits for
//! nothing); otherwise it waits, and the query that finishes next takes everything that
//! queued meanwhile, up to [`MOST_IN_ONE`] reads, in one query.
//!
//! The owner is checked here, per read, on the row the query returned: a read asking for
//! another owner's job gets nothing, as with the one-read query before. Queries run in a
//! task of their own, so a read whose request is dropped never strands the reads that
//! queued behind it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use sea_orm::DbErr;
use sea_orm::sqlx::postgres::PgPool;
use sea_orm::sqlx::{self, Row};
use tokio::sync::oneshot;

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
    let queue = queue_of(pool);
    let (reply, answer) = oneshot::channel();
    let wanted = Wanted { id: id.to_string(), owner: owner.map(str::to_string), reply };
    let lead = {
        let mut waiting = queue.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        waiting.reads.push(wanted);
        (waiting.running < queue.most_running).then(|| {
            waiting.running += 1;
            waiting.take()
        })
    };
    if let Some(batch) = lead {
        tokio::spawn(run_queries(queue, pool.clone(), batch));
    }
    match answer.await {
        Ok(found) => found.map_err(|message| DbErr::Custom(format!("PostgreSQL: {message}"))),
        Err(_) => Err(DbErr::Custom("PostgreSQL: the read's query ended without an answer".into())),
    }
}

/// One read waiting for its answer.
struct Wanted {
    id: String,
    owner: Option<String>,
    reply: oneshot::Sender<Result<Found, String>>,
}

/// The reads waiting and the queries running, for one pool.
struct Queue {
    waiting: Mutex<Waiting>,
    /// How many queries may run at once: the machine's cores (at least 2).
    most_running: usize,
    /// Queries run so far (for the tests).
    queries: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Waiting {
    reads: Vec<Wanted>,
    running: usize,
}

impl Waiting {
    /// The next query's reads: the oldest, up to [`MOST_IN_ONE`].
    fn take(&mut self) -> Vec<Wanted> {
        let count = self.reads.len().min(MOST_IN_ONE);
        self.reads.drain(..count).collect()
    }
}

/// The queue of `pool`'s reads. A process has one pool per database (the tests have
/// several), so queues are kept by the pool's identity: its options, shared by its
/// clones, live as long as the pool. A batch only ever holds reads of one pool.
fn queue_of(pool: &PgPool) -> Arc<Queue> {
    static QUEUES: OnceLock<Mutex<HashMap<usize, Arc<Queue>>>> = OnceLock::new();
    let key = Arc::as_ptr(&pool.connect_options()) as usize;
    let mut queues = QUEUES.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    queues
        .entry(key)
        .or_insert_with(|| {
            let cores = std::thread::available_parallelism().map_or(2, usize::from);
            Arc::new(Queue { waiting: Mutex::default(), most_running: cores.max(2), queries: Default::default() })
        })
        .clone()
}

/// Answer `batch`, then whatever queued meanwhile, until nothing waits.
async fn run_queries(queue: Arc<Queue>, pool: PgPool, mut batch: Vec<Wanted>) {
    // Counts this runner out even if a query panics, so later reads start their own.
    struct Running {
        queue: Arc<Queue>,
        counted_out: bool,
    }
    impl Drop for Running {
        fn drop(&mut self) {
            if !self.counted_out {
                self.queue.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).running -= 1;
            }
        }
    }
    let mut running = Running { queue, counted_out: false };
    loop {
        running.queue.queries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        answer(&pool, batch).await;
        let mut waiting = running.queue.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if waiting.reads.is_empty() {
            // Counted out under the same lock a new read looks at: none is left behind.
            waiting.running -= 1;
            running.counted_out = true;
            return;
        }
        batch = waiting.take();
    }
}

/// One query for `batch`; each read gets its job if its owner may see it.
async fn answer(pool: &PgPool, batch: Vec<Wanted>) {
    let mut ids: Vec<&str> = batch.iter().map(|wanted| wanted.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    match read_many(pool, &ids).await {
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
    use std::sync::atomic::Ordering;

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
        let before = queue_of(&pool).queries.load(Ordering::Relaxed);
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
        let queries = queue_of(&pool).queries.load(Ordering::Relaxed) - before;
        assert!(queries < 400, "400 reads at once took {queries} queries");
        // Every runner counts itself out, and a lone read still answers.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while queue_of(&pool).waiting.lock().unwrap().running > 0 {
            assert!(std::time::Instant::now() < deadline, "a query runner never counted itself out");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(find(&pool, "b1", None).await.unwrap().is_some());
    }
}
