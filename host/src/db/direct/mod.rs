//! The two hot paths of the API, the read of a job with its outputs (every
//! `GET /v2/jobs/{id}`, every event stream's look) and the insert of a new job (every
//! submit), each written for its backend instead of through sea-orm's general path.
//! Everything else goes through sea-orm. The unit tests check that both ways read and
//! write the same rows.

mod batched;
#[cfg(test)]
mod fixtures;
pub mod postgres;
pub mod postgres_inserts;
pub mod postgres_reads;
pub mod sqlite;
pub mod sqlite_log;

use crate::db::output;

/// `outputs` with the ids their insert returned. `RETURNING` gives rows in no promised
/// order, so each id comes with its output's position.
fn with_ids(outputs: Vec<output::Model>, ids: &[(i32, i64)]) -> Vec<output::Model> {
    outputs
        .into_iter()
        .map(|mut o| {
            o.id = ids.iter().find(|(position, _)| *position == o.position).map_or(0, |(_, id)| *id);
            o
        })
        .collect()
}
