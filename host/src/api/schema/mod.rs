//! The shapes of the API's answers and requests, one definition each, named by the
//! handlers' `#[utoipa::path]` attributes and gathered by the OpenAPI document
//! (`openapi`): the Coconut v2 API's (`coconut`) and the operator's and Octet's
//! (`operator`), which only describe (the contract test checks the server against
//! them), and the answers `job::view` builds, which the handlers return.

mod coconut;
mod operator;

pub use super::error::{ErrorBody as Error, ErrorStatus};
pub use coconut::*;
pub use crate::db::status::{InputStatus as InputStatusName, JobStatus, OutputType};
pub use crate::job::view::{InputView as InputStatus, JobList, JobView as Job, OutputUrl, OutputView as OutputStatus};
pub use operator::*;
