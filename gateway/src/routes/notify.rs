//! Notifications beyond the socket (API.md v1.1): a user's channels
//! (`/v1/me/notifications`), ops webhook endpoints (`/v1/ops/webhooks`) and
//! the delivery log (`/v1/ops/deliveries`). Targets are checked here — URL
//! syntax, and that they resolve only to public addresses unless
//! `[notify] allow_private_targets` — and again at every delivery.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use engine::notify::outbox::{DeliveryRecord, DeliveryStatus};
use engine::notify::{is_event_name, MAX_TARGET_BYTES};
use engine::{EventKind, NotifyPrefs, Op, Webhook};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{may, Allowed, User};
use crate::body::{Input, Params};
use crate::error::ApiError;
use crate::notify::sign::Secret;
use crate::notify::target;
use crate::wire::{known_id, rfc3339, PathIds};

/// `PUT /v1/me/notifications`, and what `GET` returns.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Prefs {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    sms: Option<String>,
    #[serde(default)]
    webhook: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
}

impl From<NotifyPrefs> for Prefs {
    fn from(p: NotifyPrefs) -> Prefs {
        Prefs {
            email: p.email,
            sms: p.sms,
            webhook: p.webhook,
            events: p.events,
        }
    }
}

/// E.164: `+`, a country code not starting with 0, at most 15 digits.
fn is_e164(s: &str) -> bool {
    let Some(d) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}

fn check_events(field: &str, events: &[String], star: bool) -> Result<Vec<String>, ApiError> {
    if events.len() > engine::notify::EVENT_NAMES.len() + 1 {
        return Err(ApiError::invalid(field, "too many event names"));
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if !(is_event_name(e) || (star && e == "*")) {
            return Err(ApiError::invalid(field, "unknown event name"));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

/// A webhook target: an http(s) URL resolving only to allowed addresses.
async fn check_url(app: &AppState, field: &str, url: &str) -> Result<String, ApiError> {
    let u = target::parse(url).map_err(|e| ApiError::invalid(field, &e.to_string()))?;
    target::resolve(&u, app.cfg.notify.allow_private_targets)
        .await
        .map_err(|e| ApiError::invalid(field, &e.to_string()))?;
    Ok(url.to_owned())
}

pub async fn get_prefs(State(app): State<AppState>, user: User) -> Result<Json<Prefs>, ApiError> {
    let core = app.core()?;
    core.settled(&app).await?;
    Ok(Json(core.engine.notify_prefs(&user.id).into()))
}

pub async fn put_prefs(
    State(app): State<AppState>,
    user: User,
    Input(req): Input<Prefs>,
) -> Result<Json<Prefs>, ApiError> {
    let core = app.core()?;
    let email = match req.email {
        Some(e) => {
            if e.len() > 254 || e.parse::<lettre::Address>().is_err() {
                return Err(ApiError::invalid("email", "must be an e-mail address"));
            }
            Some(e)
        }
        None => None,
    };
    if req.sms.as_deref().is_some_and(|s| !is_e164(s)) {
        return Err(ApiError::invalid(
            "sms",
            "must be a phone number in E.164 (+4917012345678)",
        ));
    }
    let webhook = match &req.webhook {
        Some(u) => Some(check_url(&app, "webhook", u).await?),
        None => None,
    };
    let events = match &req.events {
        Some(ev) => Some(check_events("events", ev, false)?),
        None => None,
    };
    let prefs = NotifyPrefs {
        email,
        sms: req.sms,
        webhook,
        events,
    };
    let op = Op::SetNotifyPrefs {
        user: user.id.to_string(),
        prefs,
    };
    let applied = core.exec(&app, op).await?;
    let set = applied.events.into_iter().find_map(|e| match e.kind {
        EventKind::NotifyPrefsSet { prefs, .. } => Some(prefs),
        _ => None,
    });
    set.map(|p| Json(p.into()))
        .ok_or_else(|| ApiError::Unavailable("preferences not applied".into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewWebhook {
    url: String,
    events: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookCreated {
    id: String,
    url: String,
    events: Vec<String>,
    secret: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookOut {
    id: String,
    url: String,
    events: Vec<String>,
    disabled: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    webhooks: Vec<WebhookOut>,
}

pub async fn create_webhook(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    Input(req): Input<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookCreated>), ApiError> {
    let core = app.core()?;
    if req.url.len() > MAX_TARGET_BYTES {
        return Err(ApiError::invalid("url", "too long"));
    }
    let url = check_url(&app, "url", &req.url).await?;
    if req.events.is_empty() {
        return Err(ApiError::invalid(
            "events",
            "must name at least one event, or \"*\"",
        ));
    }
    let events = check_events("events", &req.events, true)?;
    let webhook = Webhook {
        id: format!("wh_{}", uuid::Uuid::new_v4().simple()),
        url,
        events,
        secret: Secret::generate().encode(),
        disabled: false,
    };
    let applied = core.exec(&app, Op::AddWebhook(webhook)).await?;
    let added = applied.events.into_iter().find_map(|e| match e.kind {
        EventKind::WebhookAdded { webhook } => Some(webhook),
        _ => None,
    });
    let w = added.ok_or_else(|| ApiError::Unavailable("webhook not applied".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            id: w.id,
            url: w.url,
            events: w.events,
            secret: w.secret,
        }),
    ))
}

pub async fn list_webhooks(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    params: Params,
) -> Result<Json<WebhookList>, ApiError> {
    let core = app.core()?;
    let limit = params.limit()?;
    core.settled(&app).await?;
    let webhooks = core
        .engine
        .webhooks()
        .into_iter()
        .take(limit)
        .map(|w| WebhookOut {
            id: w.id,
            url: w.url,
            events: w.events,
            disabled: w.disabled,
        })
        .collect();
    Ok(Json(WebhookList { webhooks }))
}

pub async fn delete_webhook(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    PathIds(id): PathIds<String>,
) -> Result<StatusCode, ApiError> {
    let core = app.core()?;
    let id = known_id(&id, "webhook not found")?.to_owned();
    core.exec(&app, Op::RemoveWebhook { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryOut {
    id: String,
    event_id: String,
    /// Extension: the event name.
    #[serde(rename = "type")]
    event_type: String,
    #[schema(value_type = crate::openapi::Channel)]
    channel: &'static str,
    target: String,
    /// Extension: the ops endpoint, if any.
    endpoint: Option<String>,
    attempts: u32,
    last_status: Option<u16>,
    last_error: Option<String>,
    /// When it is tried next (pending only).
    next_at: Option<String>,
    #[schema(value_type = crate::openapi::DeliveryStatus)]
    status: &'static str,
}

impl From<&DeliveryRecord> for DeliveryOut {
    fn from(r: &DeliveryRecord) -> DeliveryOut {
        let last = r.last();
        DeliveryOut {
            id: r.id.clone(),
            event_id: r.event_id.clone(),
            event_type: r.event_type.clone(),
            channel: r.channel.name(),
            target: r.target.clone(),
            endpoint: r.endpoint.clone(),
            attempts: r.tries,
            last_status: last.and_then(|a| a.status),
            last_error: last.and_then(|a| a.error.clone()),
            next_at: (r.status == DeliveryStatus::Pending).then(|| rfc3339(r.next_at)),
            status: r.status.name(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    deliveries: Vec<DeliveryOut>,
}

pub async fn deliveries(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    params: Params,
) -> Result<Json<DeliveryList>, ApiError> {
    let core = app.core()?;
    let status =
        match params.0.get("status") {
            Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
                ApiError::invalid("status", "must be pending, delivered or failed")
            })?),
            None => None,
        };
    let endpoint = params.0.get("endpoint").filter(|e| !e.is_empty()).cloned();
    if endpoint.as_ref().is_some_and(|e| e.len() > 128) {
        return Err(ApiError::invalid("endpoint", "too long"));
    }
    let limit = params.limit_or(100)?;
    let list = core.backend.outbox_list(status, endpoint, limit).await?;
    Ok(Json(DeliveryList {
        deliveries: list.iter().map(DeliveryOut::from).collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    at: String,
    status: Option<u16>,
    error: Option<String>,
    duration_ms: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    delivery: DeliveryOut,
    /// Extension: every attempt kept (the last 16), oldest first.
    log: Vec<AttemptOut>,
}

/// `GET /v1/ops/deliveries/{id}` (extension): one delivery with its log.
pub async fn delivery(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    PathIds(id): PathIds<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let core = app.core()?;
    let id = known_id(&id, "delivery not found")?;
    let r = core
        .backend
        .outbox_get(id)
        .await?
        .ok_or(ApiError::NotFound("delivery not found"))?;
    Ok(Json(DeliveryDetail {
        delivery: DeliveryOut::from(&r),
        log: r
            .attempts
            .iter()
            .map(|a| AttemptOut {
                at: rfc3339(a.at),
                status: a.status,
                error: a.error.clone(),
                duration_ms: a.duration_ms,
            })
            .collect(),
    }))
}

pub async fn retry_delivery(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    PathIds(id): PathIds<String>,
) -> Result<Json<DeliveryOut>, ApiError> {
    let core = app.core()?;
    let id = known_id(&id, "delivery not found")?;
    let mut r = core
        .backend
        .outbox_get(id)
        .await?
        .ok_or(ApiError::NotFound("delivery not found"))?;
    r.retry_now(app.clock.now());
    core.backend.outbox_save(r.clone(), true).await?;
    Ok(Json(DeliveryOut::from(&r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        assert!(is_e164("+4917012345678"));
        assert!(is_e164("+12"));
        assert!(!is_e164("4917012345678"));
        assert!(!is_e164("+0123"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("+49 170"));
    }

    #[test]
    fn event_lists() {
        let ok = check_events(
            "events",
            &["job.created".into(), "job.created".into()],
            false,
        );
        assert_eq!(ok.unwrap(), vec!["job.created".to_string()]);
        assert!(check_events("events", &["*".into()], false).is_err());
        assert!(check_events("events", &["*".into()], true).is_ok());
        assert!(check_events("events", &["job.exploded".into()], true).is_err());
    }
}
