//! The API's one error type. Every failure a client can see is
//! `{"message", "error_code", "status": "error"}` with a fitting HTTP status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use copra_codes::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::job::JobError;

/// Every failure: `{"message", "error_code", "status": "error"}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    pub message: String,
    /// Why, as a code a program can test.
    #[serde(serialize_with = "code_str")]
    pub error_code: ErrorCode,
    pub status: ErrorStatus,
}

/// Always `error`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorStatus {
    Error,
}

fn code_str<S: serde::Serializer>(code: &ErrorCode, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(code.as_str())
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Authentication failed: use your API key as the Basic auth username.")]
    Unauthorized,
    #[error("{what} not found.")]
    NotFound { code: ErrorCode, what: String },
    /// The body is larger than the server reads (`limits.max_body_bytes`).
    #[error("The request body is larger than the {limit} bytes this server accepts (limits.max_body_bytes).")]
    TooLarge { limit: usize },
    /// The request can never succeed as sent (Coconut answers these with 400).
    #[error(transparent)]
    Invalid(#[from] JobError),
    /// Too many requests of one kind (redeliveries, dry runs at once): 429 with
    /// `Retry-After`, the whole seconds after which one may succeed.
    #[error("{message} Try again in {} s.", retry_after.as_millis().div_ceil(1000).max(1))]
    TooManyRequests { code: ErrorCode, message: String, retry_after: std::time::Duration },
    /// A request that changes something sent a body of a type a browser form can send
    /// (415): the API reads JSON.
    #[error("The request body must be JSON (Content-Type: application/json), not '{content_type}'.")]
    UnsupportedMediaType { content_type: String },
    /// A browser page of another origin sent a request that changes something (403).
    #[error("Requests that change something are accepted from this server's own pages only, not from '{origin}' (allowed_origins, COPRA_ALLOWED_ORIGINS).")]
    ForeignOrigin { origin: String },
    /// A direct upload's request could not be carried out (tus's own statuses).
    #[error(transparent)]
    Upload(crate::upload::UploadError),
    /// Our fault; details go to the log, not to the client.
    #[error("Internal server error.")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    /// The HTTP status this error answers with, whichever API's body shape carries it.
    pub(super) fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, ErrorCode::AuthenticationFailed),
            ApiError::NotFound { code, .. } => (StatusCode::NOT_FOUND, *code),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::RequestTooLarge),
            ApiError::Invalid(err) => (StatusCode::BAD_REQUEST, err.code()),
            ApiError::TooManyRequests { code, .. } => (StatusCode::TOO_MANY_REQUESTS, *code),
            ApiError::UnsupportedMediaType { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType),
            ApiError::ForeignOrigin { .. } => (StatusCode::FORBIDDEN, ErrorCode::OriginNotAllowed),
            ApiError::Upload(err) => upload_status(err),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError),
        }
    }
}

impl From<crate::job::submit::SubmitError> for ApiError {
    fn from(err: crate::job::submit::SubmitError) -> Self {
        match err {
            crate::job::submit::SubmitError::Invalid(invalid) => ApiError::Invalid(invalid),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::upload::UploadError> for ApiError {
    fn from(err: crate::upload::UploadError) -> Self {
        match err {
            crate::upload::UploadError::Io(io) => ApiError::internal(io),
            other => ApiError::Upload(other),
        }
    }
}

/// tus's statuses: 409 for a wrong offset, 412 for another version, 423 while another
/// request writes, 460 for a checksum that does not match.
fn upload_status(err: &crate::upload::UploadError) -> (StatusCode, ErrorCode) {
    use crate::upload::UploadError as E;
    let status = |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    match err {
        E::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::UploadNotFound),
        E::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::UploadTooLarge),
        E::OffsetMismatch { .. } => (StatusCode::CONFLICT, ErrorCode::UploadOffsetMismatch),
        E::PastLength { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::UploadPastLength),
        E::ChecksumMismatch { .. } => (status(460), ErrorCode::UploadChecksumMismatch),
        E::Busy => (status(423), ErrorCode::UploadBusy),
        E::QuotaExceeded { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::UploadQuotaExceeded),
        E::TooMany { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyUploads),
        E::Invalid(_) => (StatusCode::BAD_REQUEST, ErrorCode::UploadNotValid),
        E::Version { .. } => (StatusCode::PRECONDITION_FAILED, ErrorCode::TusVersionNotSupported),
        E::ContentType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType),
        E::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError),
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        ApiError::internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(err = format!("{err:#}"), "request failed");
        }
        let (status, code) = self.status_and_code();
        let body = Json(ErrorBody { message: self.to_string(), error_code: code, status: ErrorStatus::Error });
        let mut response = (status, body).into_response();
        if let ApiError::TooManyRequests { retry_after, .. } = &self {
            // Whole seconds, rounded up: a client that waits this long gets a token.
            let secs = retry_after.as_millis().div_ceil(1000).max(1);
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs as u64));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"copra\""),
            );
        }
        response
    }
}
