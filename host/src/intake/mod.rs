//! The steps of a job before its first frame is encoded, shared by a worker running it
//! and a dry run planning it: every input fetched (whole, or for a dry run only the part
//! a probe needs), probed in the engine's confined process, cut to its clips and joined
//! into the one input the outputs are made from, held to the limits; then each output
//! decided (its condition, its format plugin's plan). The dry run itself lives here too:
//! it is these steps and nothing after.

mod decide;
pub mod dry_run;
mod read;
mod sources;

pub use decide::{Decision, decide};
pub use read::{IntakeError, Probed, Reading, input_paths, read_inputs};
pub use sources::{FetchError, InputSources, local_files, transfer_client};
