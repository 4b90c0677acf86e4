//! PostgreSQL's two hot paths, on sqlx's pool without sea-orm's query building: a submit
//! is one statement (one round trip), a read is one query. Under load, the submits and the
//! reads that arrive together share a statement ([`super::postgres_inserts`],
//! [`super::postgres_reads`]); this is one job's own statement and the rows' decoding.
//!
//! Through sea-orm a submit was `BEGIN`, the job's insert, the outputs' insert, `COMMIT`,
//! a read of the outputs back for their ids and the `NOTIFY` that wakes the workers: six
//! round trips, each a wake-up of a server process. Here the job, its outputs and the
//! notification are one statement (data-modifying `WITH` parts run in the statement's own
//! transaction, and the outputs' ids come back with `RETURNING`), prepared once per
//! connection and reused (sqlx keeps each connection's prepared statements).

use sea_orm::sqlx::postgres::{PgPool, PgRow};
use sea_orm::sqlx::{self, Row};
use sea_orm::{ActiveEnum, DbErr};

use crate::db::{job, output};

/// The job, its outputs (their columns as arrays, one element per output) and the
/// notification of the new job, delivered when the statement commits.
const INSERT: &str = "WITH new_job AS (\
        INSERT INTO jobs (id, owner, status, input_status, progress, spec, input_metadata, error, created_at, \
                          completed_at, lease_owner, lease_expires_at, attempts) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
        RETURNING pg_notify($14, id)\
    ), new_outputs AS (\
        INSERT INTO outputs (job_id, position, key, format, output_type, state, url, urls, metadata, error) \
        SELECT $1, o.* FROM unnest($15::int4[], $16::text[], $17::text[], $18::text[], $19::text[], \
                                   $20::text[], $21::text[], $22::text[], $23::text[]) AS o \
        RETURNING position, id\
    ) SELECT position, id FROM new_outputs";

fn db_err(err: sqlx::Error) -> DbErr {
    DbErr::Custom(format!("PostgreSQL: {err}"))
}

/// Store a new job and its outputs, and tell the workers listening on `channel`; returns
/// the outputs with their ids. One statement: all of it or none of it is stored. (The
/// server's submits go through [`super::postgres_inserts::insert`], which comes here for
/// a job alone.)
pub async fn insert(pool: &PgPool, job: &job::Model, outputs: Vec<output::Model>, channel: &str) -> Result<Vec<output::Model>, DbErr> {
    let query = sqlx::query_as(INSERT)
        .bind(&job.id)
        .bind(&job.owner)
        .bind(job.status.to_value())
        .bind(job.input_status.to_value())
        .bind(job.progress)
        .bind(&job.spec)
        .bind(&job.input_metadata)
        .bind(&job.error)
        .bind(job.created_at)
        .bind(job.completed_at)
        .bind(&job.lease_owner)
        .bind(job.lease_expires_at)
        .bind(job.attempts)
        .bind(channel);
    let ids = bind_output_columns(query, &outputs.iter().collect::<Vec<_>>()).fetch_all(pool).await.map_err(db_err)?;
    Ok(super::with_ids(outputs, &ids))
}

/// `query` with the outputs' columns after their job's, one array each, in the order
/// both inserts name them: position, key, format, type, state, url, urls, metadata,
/// error.
pub(super) fn bind_output_columns<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    outputs: &[&output::Model],
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    let column = |get: fn(&output::Model) -> Option<String>| outputs.iter().map(|o| get(o)).collect::<Vec<_>>();
    query
        .bind(outputs.iter().map(|o| o.position).collect::<Vec<_>>())
        .bind(column(|o| Some(o.key.clone())))
        .bind(column(|o| Some(o.format.clone())))
        .bind(column(|o| Some(o.output_type.to_value())))
        .bind(column(|o| Some(o.state.to_value())))
        .bind(column(|o| o.url.clone()))
        .bind(column(|o| o.urls.clone()))
        .bind(column(|o| o.metadata.clone()))
        .bind(column(|o| o.error.clone()))
}

/// A text column holding one of an enum's values.
fn enumerated<E: ActiveEnum<Value = String>>(row: &PgRow, index: usize) -> Result<E, sqlx::Error> {
    let text: String = row.try_get(index)?;
    E::try_from_value(&text).map_err(|err| sqlx::Error::ColumnDecode { index: index.to_string(), source: Box::new(err) })
}

pub(super) fn job_row(row: &PgRow) -> Result<job::Model, sqlx::Error> {
    Ok(job::Model {
        id: row.try_get(0)?,
        owner: row.try_get(1)?,
        status: enumerated(row, 2)?,
        input_status: enumerated(row, 3)?,
        progress: row.try_get(4)?,
        spec: row.try_get(5)?,
        input_metadata: row.try_get(6)?,
        error: row.try_get(7)?,
        created_at: row.try_get(8)?,
        completed_at: row.try_get(9)?,
        lease_owner: row.try_get(10)?,
        lease_expires_at: row.try_get(11)?,
        attempts: row.try_get(12)?,
    })
}

/// The output's side of a row; `None` for the one row of a job without outputs.
pub(super) fn output_row(row: &PgRow, job_id: &str) -> Result<Option<output::Model>, sqlx::Error> {
    let Some(id) = row.try_get::<Option<i64>, _>(13)? else { return Ok(None) };
    Ok(Some(output::Model {
        id,
        job_id: job_id.to_string(),
        position: row.try_get(14)?,
        key: row.try_get(15)?,
        format: row.try_get(16)?,
        output_type: enumerated(row, 17)?,
        state: enumerated(row, 18)?,
        url: row.try_get(19)?,
        urls: row.try_get(20)?,
        metadata: row.try_get(21)?,
        error: row.try_get(22)?,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use sea_orm::{ActiveModelTrait, ConnectionTrait, Database, DatabaseConnection, Set};

    use super::*;
    use crate::db::direct::postgres_reads::find;
    use crate::db::direct::fixtures::{every_column_set, new_job};
    use crate::db::status::OutputState;

    /// The local PostgreSQL the test rig runs (trust auth).
    const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

    /// A database of its own for one test, dropped when the guard goes.
    pub(crate) struct Scratch {
        name: String,
        pub(crate) db: DatabaseConnection,
    }

    impl Scratch {
        pub(crate) async fn new() -> Scratch {
            let admin = Database::connect(format!("{SERVER}/test")).await.expect("PostgreSQL at 127.0.0.1:5432 (database test)");
            let name = format!("copra_unit_{}", crate::random_id(10).to_lowercase());
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
            let db = crate::db::connect(&format!("{SERVER}/{name}")).await.unwrap();
            Scratch { name, db }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let name = self.name.clone();
            // A runtime of its own: the test's runtime is ending.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async {
                    if let Ok(admin) = Database::connect(format!("{SERVER}/test")).await {
                        let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                    }
                });
            })
            .join()
            .ok();
        }
    }

    #[tokio::test]
    async fn both_ways_read_and_write_the_same_rows() {
        let scratch = Scratch::new().await;
        let db = &scratch.db;
        let pool = db.get_postgres_connection_pool();

        // Written here, read by sea-orm.
        let (job, outputs) = new_job("j1", "owner-a", 3);
        let stored = insert(pool, &job, outputs, "copra_unit").await.unwrap();
        assert!(stored.iter().all(|o| o.id > 0) && stored.windows(2).all(|w| w[0].id != w[1].id));
        let via_orm = crate::db::jobs::find(db, "j1", Some("owner-a")).await.unwrap().unwrap();
        assert_eq!(via_orm, (job.clone(), stored.clone()));
        assert_eq!(find(pool, "j1", Some("owner-a")).await.unwrap().unwrap(), via_orm);

        // Changed by sea-orm so every column has a value, read here.
        let changed = every_column_set(job);
        changed.update(db).await.unwrap();
        let mut output: output::ActiveModel = stored[1].clone().into();
        output.state = Set(OutputState::Done);
        output.url = Set(Some("s3://b/o.jpg".into()));
        output.urls = Set(Some("[]".into()));
        output.metadata = Set(Some("{}".into()));
        output.error = Set(Some("x".into()));
        output.update(db).await.unwrap();
        let via_orm = crate::db::jobs::find(db, "j1", None).await.unwrap().unwrap();
        assert_eq!(find(pool, "j1", None).await.unwrap().unwrap(), via_orm);
        assert_eq!(via_orm.1[1].url.as_deref(), Some("s3://b/o.jpg"));

        // Another owner's job is not found; neither is a missing one.
        assert!(find(pool, "j1", Some("owner-b")).await.unwrap().is_none());
        assert!(find(pool, "nope", None).await.unwrap().is_none());

        // A job without outputs reads back without any.
        let (bare, _) = new_job("j2", "owner-a", 0);
        assert!(insert(pool, &bare, Vec::new(), "copra_unit").await.unwrap().is_empty());
        assert_eq!(find(pool, "j2", None).await.unwrap().unwrap(), (bare, Vec::new()));

        // A job that is there already is refused, and nothing of it is stored twice.
        let (again, again_outputs) = new_job("j1", "owner-a", 5);
        assert!(insert(pool, &again, again_outputs, "copra_unit").await.is_err());
        assert_eq!(find(pool, "j1", None).await.unwrap().unwrap().1.len(), 3);
    }

    #[tokio::test]
    async fn the_insert_notifies_the_workers_once_it_commits() {
        let scratch = Scratch::new().await;
        let pool = scratch.db.get_postgres_connection_pool();
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await.unwrap();
        listener.listen("copra_unit_jobs").await.unwrap();
        let (job, outputs) = new_job("jn", "o", 2);
        insert(pool, &job, outputs, "copra_unit_jobs").await.unwrap();
        let note = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv()).await.expect("no notification").unwrap();
        assert_eq!(note.payload(), "jn");
        // The job is there for the woken worker.
        assert_eq!(find(pool, "jn", None).await.unwrap().unwrap().1.len(), 2);
        // A refused insert sends nothing.
        let (again, again_outputs) = new_job("jn", "o", 1);
        assert!(insert(pool, &again, again_outputs, "copra_unit_jobs").await.is_err());
        let quiet = tokio::time::timeout(std::time::Duration::from_millis(300), listener.recv()).await;
        assert!(quiet.is_err(), "a refused insert notified: {quiet:?}");
    }
}
