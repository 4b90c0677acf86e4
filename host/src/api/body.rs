//! Request bodies, read whole up to `limits.max_body_bytes`. A larger body is refused
//! with 413 in the API's error shape before it is read further, so a client cannot make
//! the server buffer more than the limit.

use copra_codes::ErrorCode;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;

use super::{ApiError, AppState};

/// A whole request body within the limit.
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.config.limits.max_body_bytes;
        let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(ApiError::TooLarge { limit });
        }
        match axum::body::to_bytes(request.into_body(), limit).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(err) if is_length_limit(&err) => Err(ApiError::TooLarge { limit }),
            Err(err) => Err(ApiError::Invalid(crate::job::JobError::invalid(ErrorCode::RequestNotValid,
                format!("The request body could not be read: {err}."),
            ))),
        }
    }
}

/// Whether reading stopped because the body passed the limit.
fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}
