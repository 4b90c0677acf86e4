//! `/v2/uploads`: direct uploads over tus 1.0 (<https://tus.io/protocols/resumable-upload>),
//! with the creation, creation-with-upload, termination, expiration and checksum
//! extensions. Any tus client works: the API key goes in `Authorization` as on every
//! `/v2` route. This file only translates HTTP; the uploads themselves are `upload::`.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{options, post};
use serde::Serialize;

use super::auth::ApiKey;
use super::{ApiError, AppState};
use crate::upload::{Checksum, Upload, UploadError, store::CHECKSUM_ALGORITHMS};

const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration,checksum";
/// The body type of a chunk.
pub const OFFSET_STREAM: &str = "application/offset+octet-stream";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/uploads", post(create).options(capabilities))
        .route("/uploads/{id}", options(capabilities).head(head_upload).patch(append).delete(terminate).get(show))
        .layer(axum::middleware::from_fn(tus_headers))
}

/// The header every tus request carries, as the OpenAPI document describes it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct TusResumable {
    /// The tus version the client speaks: `1.0.0`.
    #[param(rename = "Tus-Resumable", example = "1.0.0", pattern = "^1\\.0\\.0$")]
    tus_resumable: String,
}

/// Every answer says `Tus-Resumable`, and a 412 says which version this server speaks.
async fn tus_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.status() == StatusCode::PRECONDITION_FAILED {
        response.headers_mut().insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    }
    response.headers_mut().insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    response
}

/// A tus request (`POST`, `HEAD`, `PATCH`, `DELETE`) says `Tus-Resumable: 1.0.0`, or it
/// is a 412.
fn speaks_tus(headers: &HeaderMap) -> Result<(), UploadError> {
    let version = headers.get("tus-resumable").and_then(|v| v.to_str().ok()).map(str::trim);
    if version == Some(TUS_VERSION) { Ok(()) } else { Err(UploadError::Version { sent: version.unwrap_or_default().to_string() }) }
}

/// What the server supports (no auth: it holds nothing of anyone's).
#[utoipa::path(
    options, path = "/v2/uploads", operation_id = "uploadCapabilities", tag = "Uploads", summary = "The tus versions, extensions and limits",
    responses((status = 204, description = "`Tus-Version`, `Tus-Extension`, `Tus-Max-Size`, `Tus-Checksum-Algorithm`.")),
    security(())
)]
async fn capabilities(State(state): State<AppState>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    headers.insert("tus-extension", HeaderValue::from_static(EXTENSIONS));
    headers.insert("tus-max-size", HeaderValue::from(state.config.limits.max_upload_bytes));
    headers.insert("tus-checksum-algorithm", HeaderValue::from_static(CHECKSUM_ALGORITHMS));
    (StatusCode::NO_CONTENT, headers).into_response()
}

/// Create an upload (and, with a body, take its first bytes).
#[utoipa::path(
    post, path = "/v2/uploads", operation_id = "createUpload", tag = "Uploads", summary = "Create an upload (tus creation)",
    description = "`Upload-Length` (at most `limits.max_upload_bytes`) and an optional `Upload-Metadata` \
        (`filename`, `filetype`). With `Content-Type: application/offset+octet-stream`, the body is the upload's first bytes.",
    params(
        ("Upload-Length" = u64, Header, description = "The upload's size in bytes."),
        ("Upload-Metadata" = Option<String>, Header, description = "Comma-separated `key base64value` pairs."),
        TusResumable,
    ),
    responses(
        (status = 201, description = "Created: `Location` is the upload's URL; `Upload-Expires`, and `Upload-Offset` when a body was sent."),
        (status = 400, description = "A header is missing or malformed.", body = super::schema::Error),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
        (status = 412, description = "`Tus-Resumable` is not 1.0.0.", body = super::schema::Error),
        (status = 413, description = "Larger than `limits.max_upload_bytes`.", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn create(State(state): State<AppState>, key: ApiKey, request: Request) -> Result<Response, ApiError> {
    let headers = request.headers();
    speaks_tus(headers)?;
    if headers.contains_key("upload-defer-length") {
        return Err(UploadError::Invalid("Upload-Defer-Length is not supported: send Upload-Length.".into()).into());
    }
    let length = number(headers, "upload-length")?.ok_or_else(|| UploadError::Invalid("Upload-Length is required.".into()))?;
    let metadata = text(headers, "upload-metadata")?.unwrap_or_default();
    let with_body = is_offset_stream(headers) && has_body(headers);
    let checksum = checksum(headers)?;
    let upload = state.uploads.create(&key.tenant, length, &metadata).await?;
    let mut answer = HeaderMap::new();
    answer.insert(header::LOCATION, value(&url_of(&state, &upload.id))?);
    if with_body {
        let offset = state.uploads.append(&key.tenant, &upload.id, 0, request.into_body().into_data_stream(), checksum).await?;
        answer.insert("upload-offset", HeaderValue::from(offset));
    }
    answer.insert("upload-expires", expires(&upload)?);
    tracing::info!(upload = %upload.id, length, "upload created");
    Ok((StatusCode::CREATED, answer).into_response())
}

/// An upload's offset.
#[utoipa::path(
    head, path = "/v2/uploads/{id}", operation_id = "headUpload", tag = "Uploads", summary = "An upload's offset (tus)",
    params(("id" = String, Path, description = "The upload's id."), TusResumable),
    responses(
        (status = 200, description = "`Upload-Offset`, `Upload-Length`, `Upload-Metadata`, `Upload-Expires`."),
        (status = 401, description = "Authentication failed."),
        (status = 404, description = "No such upload of this key (or it expired)."),
        (status = 412, description = "`Tus-Resumable` is not 1.0.0."),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn head_upload(State(state): State<AppState>, key: ApiKey, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    speaks_tus(&headers)?;
    let upload = state.uploads.get(&key.tenant, &id).await?;
    let mut answer = HeaderMap::new();
    answer.insert("upload-offset", HeaderValue::from(upload.offset));
    answer.insert("upload-length", HeaderValue::from(upload.length));
    if !upload.metadata.is_empty() {
        answer.insert("upload-metadata", value(&upload.metadata)?);
    }
    answer.insert("upload-expires", expires(&upload)?);
    answer.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((StatusCode::OK, answer).into_response())
}

/// Append a chunk at the upload's offset.
#[utoipa::path(
    patch, path = "/v2/uploads/{id}", operation_id = "appendUpload", tag = "Uploads", summary = "Append bytes (tus)",
    description = "`Content-Type: application/offset+octet-stream`, `Upload-Offset` equal to the upload's, and an optional \
        `Upload-Checksum` (`sha1`, `sha256` or `sha512`, base64) of the chunk. The bytes are on disk when the answer comes.",
    params(
        ("id" = String, Path, description = "The upload's id."),
        ("Upload-Offset" = u64, Header, description = "Where the chunk starts."),
        ("Upload-Checksum" = Option<String>, Header, description = "`<algorithm> <base64 digest>` of the chunk."),
        TusResumable,
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Taken: `Upload-Offset` is the new offset."),
        (status = 404, description = "No such upload of this key (or it expired).", body = super::schema::Error),
        (status = 400, description = "A header is missing or malformed.", body = super::schema::Error),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
        (status = 409, description = "`Upload-Offset` is not the upload's offset.", body = super::schema::Error),
        (status = 412, description = "`Tus-Resumable` is not 1.0.0.", body = super::schema::Error),
        (status = 413, description = "The chunk passes the upload's length.", body = super::schema::Error),
        (status = 415, description = "Not `application/offset+octet-stream`.", body = super::schema::Error),
        (status = 423, description = "Another request is writing to this upload.", body = super::schema::Error),
        (status = 460, description = "The checksum does not match: the chunk was discarded.", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn append(State(state): State<AppState>, key: ApiKey, Path(id): Path<String>, request: Request) -> Result<Response, ApiError> {
    let headers = request.headers();
    speaks_tus(headers)?;
    if !is_offset_stream(headers) {
        return Err(UploadError::ContentType.into());
    }
    let offset = number(headers, "upload-offset")?.ok_or_else(|| UploadError::Invalid("Upload-Offset is required.".into()))?;
    let checksum = checksum(headers)?;
    let body: Body = request.into_body();
    let offset = state.uploads.append(&key.tenant, &id, offset, body.into_data_stream(), checksum).await?;
    let upload = state.uploads.get(&key.tenant, &id).await?;
    let mut answer = HeaderMap::new();
    answer.insert("upload-offset", HeaderValue::from(offset));
    answer.insert("upload-expires", expires(&upload)?);
    if upload.finished() {
        tracing::info!(upload = %id, length = upload.length, "upload finished");
    }
    Ok((StatusCode::NO_CONTENT, answer).into_response())
}

/// Delete an upload (tus termination).
#[utoipa::path(
    delete, path = "/v2/uploads/{id}", operation_id = "deleteUpload", tag = "Uploads", summary = "Delete an upload (tus termination)",
    params(("id" = String, Path, description = "The upload's id."), TusResumable),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
        (status = 404, description = "No such upload of this key.", body = super::schema::Error),
        (status = 412, description = "`Tus-Resumable` is not 1.0.0.", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn terminate(State(state): State<AppState>, key: ApiKey, Path(id): Path<String>, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    speaks_tus(&headers)?;
    state.uploads.delete(&key.tenant, &id).await?;
    tracing::info!(upload = %id, "upload deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// An upload as JSON, for people and scripts (not part of tus).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadView {
    pub id: String,
    /// The upload's URL: a tus client resumes here, and a job takes it as `input.url`.
    pub url: String,
    pub offset: u64,
    pub length: u64,
    pub finished: bool,
    pub filename: Option<String>,
    pub filetype: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub expires_at: String,
}

#[utoipa::path(
    get, path = "/v2/uploads/{id}", operation_id = "retrieveUpload", tag = "Uploads", summary = "An upload's state as JSON",
    params(("id" = String, Path, description = "The upload's id.")),
    responses(
        (status = 200, description = "The upload.", body = UploadView),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
        (status = 404, description = "No such upload of this key (or it expired).", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn show(State(state): State<AppState>, key: ApiKey, Path(id): Path<String>) -> Result<axum::Json<UploadView>, ApiError> {
    let upload = state.uploads.get(&key.tenant, &id).await?;
    let rfc3339 = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(axum::Json(UploadView {
        url: url_of(&state, &upload.id),
        offset: upload.offset,
        length: upload.length,
        finished: upload.finished(),
        filename: upload.metadata_value("filename"),
        filetype: upload.metadata_value("filetype"),
        created_at: rfc3339(upload.created_ms),
        expires_at: rfc3339(upload.expires_ms),
        id: upload.id,
    }))
}

/// The URL of an upload, as `Location` gives it and as a job may name it.
pub fn url_of(state: &AppState, id: &str) -> String {
    format!("{}/v2/uploads/{id}", state.config.public_url.trim_end_matches('/'))
}

fn expires(upload: &Upload) -> Result<HeaderValue, ApiError> {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(upload.expires_ms.max(0) as u64);
    value(&httpdate::fmt_http_date(at))
}

fn value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text).map_err(ApiError::internal)
}

fn text(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, UploadError> {
    headers
        .get(HeaderName::from_static(name))
        .map(|v| v.to_str().map(str::to_string).map_err(|_| UploadError::Invalid(format!("The {name} header is not text."))))
        .transpose()
}

fn number(headers: &HeaderMap, name: &'static str) -> Result<Option<u64>, UploadError> {
    text(headers, name)?
        .map(|v| v.trim().parse::<u64>().map_err(|_| UploadError::Invalid(format!("The {name} header must be a whole number of bytes."))))
        .transpose()
}

fn checksum(headers: &HeaderMap) -> Result<Option<Checksum>, UploadError> {
    text(headers, "upload-checksum")?.map(|v| Checksum::parse(&v)).transpose()
}

fn is_offset_stream(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(OFFSET_STREAM))
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|n| n > 0)
}
