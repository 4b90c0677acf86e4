//! The shapes of the API's answers and requests, one definition each, for the
//! handlers that return them and the OpenAPI document (`openapi`) that describes them:
//! the Coconut v2 API's (`coconut`), the operator's and Octet's (`operator`), and the
//! answers `job::view` builds.

mod coconut;
mod operator;

pub use super::error::{ErrorBody as Error, ErrorStatus};
pub use coconut::*;
pub use crate::db::status::{InputStatus as InputStatusName, JobStatus, OutputType};
pub use crate::job::view::{InputView as InputStatus, JobList, JobView as Job, OutputUrl, OutputView as OutputStatus};
pub use operator::*;
