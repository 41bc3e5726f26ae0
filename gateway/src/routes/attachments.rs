//! Attachments (API.md "Intake"): `POST /v1/attachments` streams the raw
//! body to disk (`crate::blobs`) and records it through the write path;
//! `GET /v1/attachments/{id}` serves the bytes to the uploader, ops, and
//! whoever may see a job or log that lists it — anyone else 404.
//! Jobs and logs may list only their author's own uploads
//! ([`own_uploads`]).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::attachment::{Attachment, AttachmentRef, CONTENT_TYPES};
use engine::{Log, Op};
use persistence::Role;
use serde::Serialize;

use crate::app::{viewer, AppState, Core};
use crate::auth::{may, Allowed, User};
use crate::error::ApiError;
use crate::wire::PathIds;

/// The contract's answer to an upload.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttachmentView {
    id: String,
    content_type: String,
    size: u64,
    sha256: String,
}

impl From<&Attachment> for AttachmentView {
    fn from(a: &Attachment) -> AttachmentView {
        AttachmentView {
            id: a.id.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            sha256: a.sha256.clone(),
        }
    }
}

pub async fn upload(
    State(app): State<AppState>,
    user: User,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<AttachmentView>), ApiError> {
    let core = app.core()?;
    let quota = app.cfg.attachments.quota_bytes_per_user;
    if core.engine.attachment_usage(&user.id) >= quota {
        crate::blobs::drain(&mut body.into_data_stream()).await;
        return Err(ApiError::QuotaExceeded);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| CONTENT_TYPES.contains(&t.as_str()))
        .ok_or(ApiError::UnsupportedMediaType(
            "Content-Type must be image/jpeg, image/png, image/webp or application/pdf",
        ))?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stored = app
        .blobs
        .receive(body, &content_type, declared, app.cfg.attachments.max_bytes)
        .await?;
    core.backend.put_blob(&stored.sha256, &stored.path).await?;
    // The same bytes from the same owner are kept once: counted once.
    let key = [persistence::history::owner_digest_key(
        &user.id,
        &stored.sha256,
    )];
    let before: Vec<Attachment> = core
        .backend
        .history(Some(&key), None, None, 1, |_| true)
        .await?;
    let attachment = Attachment {
        id: format!("att_{}", uuid::Uuid::new_v4().simple()),
        owner_id: user.id.to_string(),
        content_type,
        size: stored.size,
        sha256: stored.sha256,
        created_at: app.clock.now(),
        counted: if before.is_empty() { stored.size } else { 0 },
    };
    let view = AttachmentView::from(&attachment);
    let op = Op::AddAttachment {
        attachment: Box::new(attachment),
        quota,
    };
    core.exec(&app, op).await?;
    app.metrics.attachment_stored(view.size);
    Ok((StatusCode::CREATED, Json(view)))
}

/// A user's uploads as the quota counts them (each distinct file once).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Usage {
    user_id: String,
    attachment_bytes: u64,
    quota_bytes: u64,
}

/// `GET /v1/ops/users/{id}/usage` (ops).
pub async fn usage(
    State(app): State<AppState>,
    Allowed(_ops): Allowed<{ may::OPS }>,
    PathIds(id): PathIds<String>,
) -> Result<Json<Usage>, ApiError> {
    let core = app.core()?;
    let id = crate::wire::known_id(&id, "user not found")?;
    core.settled(&app).await?;
    Ok(Json(Usage {
        attachment_bytes: core.engine.attachment_usage(id),
        user_id: id.to_owned(),
        quota_bytes: app.cfg.attachments.quota_bytes_per_user,
    }))
}

pub async fn download(
    State(app): State<AppState>,
    user: User,
    headers: HeaderMap,
    PathIds(id): PathIds<String>,
) -> Result<Response, ApiError> {
    let core = app.core()?;
    const GONE: ApiError = ApiError::NotFound("attachment not found");
    if !engine::attachment::valid_id(&id) {
        return Err(GONE);
    }
    let a: Attachment = core.backend.record(&id).await?.ok_or(GONE)?;
    if !may_fetch(&app, core, &user, &a).await? {
        return Err(GONE);
    }
    let etag = HeaderValue::from_str(&format!("\"{}\"", a.sha256)).map_err(|_| GONE)?;
    let cache = HeaderValue::from_static("private, max-age=86400");
    if crate::routes::not_modified(&headers, &etag) {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    // A node of a cluster that has not served it yet fetches it.
    let sha256 = a.sha256.as_str();
    let Some(path) = app
        .blobs
        .local_or_fetch(sha256, |tmp| async move {
            core.backend.fetch_blob(sha256, &tmp).await
        })
        .await?
    else {
        tracing::error!(id = %a.id, sha256 = %a.sha256, "attachment bytes missing");
        return Err(ApiError::Unavailable("attachment bytes missing".into()));
    };
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::Unavailable(format!("attachment storage failed: {e}").into()))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&a.content_type).map_err(|_| GONE)?,
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(a.size)),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response())
}

/// The uploader, ops, or someone who may see a job or log listing it.
async fn may_fetch(
    app: &AppState,
    core: &Core,
    user: &User,
    a: &Attachment,
) -> Result<bool, ApiError> {
    if user.role == Role::Ops || a.owner_id == *user.id {
        return Ok(true);
    }
    let key = [format!("a:{}", a.id)];
    let refs: Vec<AttachmentRef> = core
        .backend
        .history(Some(&key), None, None, 500, |_| true)
        .await?;
    for r in refs {
        if let Some(job) = &r.job_id {
            if core.job_for(app, job, &viewer(user)).await?.is_some() {
                return Ok(true);
            }
        }
        if let Some(log) = &r.log_id {
            let Some(log): Option<Log> = core.backend.record(log).await? else {
                continue;
            };
            if crate::routes::maintenance::may_read_log(core, user, &log) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A job or log being created lists `ids`: each must be an upload of
/// `author`'s (else 400 naming `attachments`).
pub async fn own_uploads(core: &Core, author: &str, ids: &[String]) -> Result<(), ApiError> {
    engine::attachment::check_list(ids)?;
    for id in ids {
        let a: Option<Attachment> = core.backend.record(id).await?;
        if a.is_none_or(|a| a.owner_id != author) {
            return Err(ApiError::invalid(
                "attachments",
                "must be ids of the caller's own uploads",
            ));
        }
    }
    Ok(())
}
