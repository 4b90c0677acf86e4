//! The two hot paths of the API, the read of a job with its outputs (every
//! `GET /v2/jobs/{id}`, every event stream's look) and the insert of a new job (every
//! submit), each written for its backend instead of through sea-orm's general path.
//! Everything else goes through sea-orm. The unit tests check that both ways read and
//! write the same rows.

#[cfg(test)]
mod fixtures;
pub mod postgres;
pub mod sqlite;
