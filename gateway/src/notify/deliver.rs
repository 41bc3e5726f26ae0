//! One delivery attempt per channel: a signed webhook `POST`, an e-mail over
//! SMTP (`lettre`), an SMS through the configured HTTP provider. Each
//! returns what the attempt came to ([`Outcome`]); what that means for the
//! entry (retry when, give up) is the engine's rule
//! (`DeliveryRecord::record`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use engine::notify::outbox::{DeliveryRecord, Outcome};
use engine::{Channel, Job, NoticeData};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;

use super::sign::Secret;
use super::target::{self, is_public, TargetError};
use crate::config::NotifyConfig;
use crate::routes::maintenance::ScheduleView;
use crate::routes::properties::PropertyView;
use crate::routes::stock::{PartView, TaskView};
use crate::wire::{rfc3339, JobView};

/// What sends: one HTTP client whose resolver refuses internal addresses
/// (so the addresses a webhook connects to are the ones checked — a
/// rebinding DNS answer changes nothing), the SMTP transport and the SMS
/// provider, as configured.
pub struct Sender {
    webhooks: reqwest::Client,
    /// For the operator's own SMS provider (may be on a private network).
    provider: reqwest::Client,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    sms_url: Option<String>,
    allow_private: bool,
}

/// Resolves host names and refuses any answer with a non-public address.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(Box::new(TargetError::Unresolved(host)) as _);
            }
            if !allow {
                if let Some(a) = addrs.iter().find(|a| !is_public(a.ip())) {
                    return Err(Box::new(TargetError::Private(a.ip())) as _);
                }
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The JSON body of a webhook: `{id, type, at, data}`.
pub fn body(r: &DeliveryRecord) -> Vec<u8> {
    let data = match &r.data {
        NoticeData::Job { job } => serde_json::to_value(JobView::from(&**job)),
        NoticeData::Maintenance {
            schedule,
            property,
            alert,
            due_at,
        } => serde_json::to_value(json!({
            "schedule": ScheduleView::at(schedule, *alert),
            "property": PropertyView::from(&**property),
            "due_at": rfc3339(*due_at),
        })),
        NoticeData::Reorder { task, part } => serde_json::to_value(json!({
            "task": TaskView::from(&**task),
            "part": PartView::from(&**part),
        })),
    }
    .unwrap_or(serde_json::Value::Null);
    let v = json!({
        "id": r.event_id,
        "type": r.event_type,
        "at": rfc3339(r.at),
        "data": data,
    });
    serde_json::to_vec(&v).expect("JSON values serialise")
}

/// A subject line and a plain-text body that say what happened and what to do.
pub fn text(r: &DeliveryRecord) -> (String, String) {
    let job = match &r.data {
        NoticeData::Job { job } => job,
        NoticeData::Maintenance {
            schedule,
            property,
            alert,
            due_at,
        } => return maintenance_text(schedule, property, *alert, *due_at),
        NoticeData::Reorder { task, part } => {
            return (
                format!("Reorder {} × {} for {}", task.qty, part.sku, task.location),
                format!(
                    "{} ({}) is at or below its reorder point at {}.\n\nOrder {} from {} and mark task {} ordered, then received.\n",
                    part.name, part.sku, task.location, task.qty,
                    if part.supplier.is_empty() { "the supplier" } else { &part.supplier },
                    task.id
                ),
            )
        }
    };
    let for_worker =
        r.user.is_some() && r.user.as_deref() == job.worker_id.as_ref().map(|w| w.as_str());
    job_text(&r.event_type, job, for_worker)
}

fn job_text(event: &str, job: &Job, for_worker: bool) -> (String, String) {
    let id = job.id.as_str();
    let skill = job.skill.as_str();
    let place = format!("{:.5}, {:.5}", job.lat, job.lng);
    let (subject, what, todo) = match (event, for_worker) {
        ("job.created", _) => (
            format!("Request {id} received"),
            format!("Your {skill} request was received; the nearest available {skill} worker is being found."),
            "Nothing to do: you will hear when a worker accepts.".to_owned(),
        ),
        ("job.offered", true) => (
            format!("New job offer {id}"),
            format!("You are offered a {skill} job at {place}."),
            match job.offer_expires_at {
                Some(t) => format!("Open the app and accept it before {}.", rfc3339(t)),
                None => "Open the app to accept it.".to_owned(),
            },
        ),
        ("job.offered", false) => (
            format!("Request {id}: a worker was found"),
            format!("Your {skill} request was offered to a nearby worker."),
            "Nothing to do: you will hear when they accept.".to_owned(),
        ),
        ("job.accepted", true) => (
            format!("Job {id} is yours"),
            format!("You accepted the {skill} job at {place}."),
            "Go to the address and mark your arrival in the app.".to_owned(),
        ),
        ("job.accepted", false) => (
            format!("Request {id} accepted"),
            format!("A {skill} worker accepted your request and is on the way."),
            "Make sure someone can let them in.".to_owned(),
        ),
        ("job.arrived", _) => (
            format!("Request {id}: worker arrived"),
            format!("The {skill} worker has arrived at {place}."),
            "Nothing to do.".to_owned(),
        ),
        ("job.completed", _) => (
            format!("Request {id} completed"),
            match job.fare_cents {
                Some(c) => format!("The {skill} job was completed. Fare: {}.{:02}.", c / 100, c % 100),
                None => format!("The {skill} job was completed."),
            },
            "If something is not right, reply to your operator.".to_owned(),
        ),
        ("job.cancelled", _) => (
            format!("Request {id} cancelled"),
            match &job.cancel_reason {
                Some(r) => format!("The {skill} job was cancelled: {r}."),
                None => format!("The {skill} job was cancelled."),
            },
            "Nothing to do.".to_owned(),
        ),
        ("job.unmatched", _) => (
            format!("Request {id}: no worker available"),
            format!("No {skill} worker accepted your request within the search time."),
            "Operations have been told and will retry it or contact you.".to_owned(),
        ),
        (other, _) => (
            format!("{other}: {id}"),
            format!("{other} for job {id}."),
            "Nothing to do.".to_owned(),
        ),
    };
    (subject, format!("{what}\n\n{todo}\n\nJob: {id}\n"))
}

fn maintenance_text(
    s: &engine::Schedule,
    p: &engine::Property,
    alert: engine::maintenance::AlertKind,
    due_at: engine::Millis,
) -> (String, String) {
    let (subject, what) = match alert {
        engine::maintenance::AlertKind::Due => (
            format!("Maintenance due: {} at {}", s.title, p.name),
            format!(
                "\"{}\" at {} is due on {}.",
                s.title,
                p.name,
                rfc3339(due_at)
            ),
        ),
        engine::maintenance::AlertKind::Overdue => (
            format!("Maintenance overdue: {} at {}", s.title, p.name),
            format!(
                "\"{}\" at {} was due on {} and has not been done.",
                s.title,
                p.name,
                rfc3339(due_at)
            ),
        ),
    };
    let todo = match &s.open_job_id {
        Some(j) => format!("Its job {j} is open; nothing else to do."),
        None => "Schedule the visit, or record the work done (POST /v1/logs).".to_owned(),
    };
    (subject, format!("{what}\n\n{todo}\n\nSchedule: {}\n", s.id))
}

fn http_outcome(resp: &reqwest::Response) -> Outcome {
    let status = resp.status();
    let code = Some(status.as_u16());
    if status.is_success() {
        return Outcome::Delivered { status: code };
    }
    if status == reqwest::StatusCode::GONE {
        return Outcome::GiveUp {
            status: code,
            error: "410 Gone: endpoint disabled".into(),
        };
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(engine::notify::schedule::parse_retry_after);
    Outcome::Retry {
        status: code,
        error: format!("HTTP {}", status.as_u16()),
        retry_after,
    }
}

fn transport_error(e: &reqwest::Error) -> Outcome {
    // A refused address surfaces as a connect error carrying our resolver's error.
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if let Some(t) = s.downcast_ref::<TargetError>() {
            return Outcome::GiveUp {
                status: None,
                error: format!("target refused: {t}"),
            };
        }
        src = s.source();
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else {
        "transport error"
    };
    Outcome::Retry {
        status: None,
        error: format!("{kind}: {e}"),
        retry_after: None,
    }
}

impl Sender {
    pub fn new(cfg: &NotifyConfig) -> Result<Sender, String> {
        let timeout = Duration::from_secs(cfg.timeout_s);
        let webhooks = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: cfg.allow_private_targets,
            }))
            .user_agent("dispatchd-webhooks")
            .build()
            .map_err(|e| e.to_string())?;
        let provider = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let smtp = if cfg.smtp_url.is_empty() {
            None
        } else {
            Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(&cfg.smtp_url)
                    .map_err(|e| format!("notify.smtp_url: {e}"))?
                    .timeout(Some(timeout))
                    .build(),
            )
        };
        Ok(Sender {
            webhooks,
            provider,
            smtp,
            from: cfg
                .email_from
                .parse()
                .map_err(|e| format!("notify.email_from: {e}"))?,
            sms_url: (!cfg.sms_url.is_empty()).then(|| cfg.sms_url.clone()),
            allow_private: cfg.allow_private_targets,
        })
    }

    /// Whether `channel` is configured (else its deliveries are skipped).
    pub fn configured(&self, channel: Channel) -> bool {
        match channel {
            Channel::Webhook => true,
            Channel::Email => self.smtp.is_some(),
            Channel::Sms => self.sms_url.is_some(),
        }
    }

    /// One attempt. `secret`: the ops endpoint's (personal webhooks have
    /// none and go unsigned).
    pub async fn send(&self, r: &DeliveryRecord, secret: Option<&Secret>) -> Outcome {
        match r.channel {
            Channel::Webhook => self.webhook(r, secret).await,
            Channel::Email => self.email(r).await,
            Channel::Sms => self.sms(r).await,
        }
    }

    async fn webhook(&self, r: &DeliveryRecord, secret: Option<&Secret>) -> Outcome {
        // Syntax, and IP literals (the resolver sees only host names).
        let url = match target::parse(&r.target) {
            Ok(u) => u,
            Err(e) => {
                return Outcome::GiveUp {
                    status: None,
                    error: format!("target refused: {e}"),
                }
            }
        };
        let bare = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
            if !self.allow_private && !is_public(ip) {
                return Outcome::GiveUp {
                    status: None,
                    error: format!("target refused: {}", TargetError::Private(ip)),
                };
            }
        }
        let body = body(r);
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut req = self
            .webhooks
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &r.event_id)
            .header("webhook-timestamp", ts.to_string());
        if let Some(s) = secret {
            req = req.header("webhook-signature", s.sign(&r.event_id, ts, &body));
        }
        match req.body(body).send().await {
            Ok(resp) => http_outcome(&resp),
            Err(e) => transport_error(&e),
        }
    }

    async fn email(&self, r: &DeliveryRecord) -> Outcome {
        let Some(smtp) = &self.smtp else {
            return Outcome::GiveUp {
                status: None,
                error: "email not configured ([notify] smtp_url)".into(),
            };
        };
        let to: Mailbox = match r.target.parse() {
            Ok(m) => m,
            Err(e) => {
                return Outcome::GiveUp {
                    status: None,
                    error: format!("bad address: {e}"),
                }
            }
        };
        let (subject, text) = text(r);
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(text);
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                return Outcome::GiveUp {
                    status: None,
                    error: format!("message: {e}"),
                }
            }
        };
        match smtp.send(msg).await {
            Ok(resp) => Outcome::Delivered {
                status: Some(u16::from(resp.code())),
            },
            Err(e) => {
                let status = e.status().map(u16::from);
                if e.is_permanent() {
                    Outcome::GiveUp {
                        status,
                        error: format!("smtp: {e}"),
                    }
                } else {
                    Outcome::Retry {
                        status,
                        error: format!("smtp: {e}"),
                        retry_after: None,
                    }
                }
            }
        }
    }

    async fn sms(&self, r: &DeliveryRecord) -> Outcome {
        let Some(url) = &self.sms_url else {
            return Outcome::GiveUp {
                status: None,
                error: "sms not configured ([notify] sms_url)".into(),
            };
        };
        let (subject, _) = text(r);
        let payload = json!({"to": r.target, "body": subject});
        match self.provider.post(url).json(&payload).send().await {
            Ok(resp) => http_outcome(&resp),
            Err(e) => transport_error(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Delivery, Engine, EngineConfig, Millis, NewJob, Notice, Skill};

    fn record(target: &str) -> DeliveryRecord {
        let e = Engine::new(EngineConfig::default()).unwrap();
        let new = NewJob {
            id: "j".into(),
            resident_id: "r".into(),
            lat: 1.0,
            lng: 1.0,
            skill: Skill::new("x").unwrap(),
            description: String::new(),
        };
        let job = e.create_job_receipt(new, Millis(0)).unwrap().job;
        let notice = Notice {
            id: "ntf_2".into(),
            event_type: "job.created".into(),
            data: NoticeData::Job { job: Box::new(job) },
            deliveries: vec![Delivery {
                id: "ntf_2.0".into(),
                channel: Channel::Webhook,
                target: target.into(),
                endpoint: None,
                user: None,
            }],
        };
        DeliveryRecord::from_notice(&notice, Millis(0)).remove(0)
    }

    /// Checked again at delivery, whatever registration saw: a host name
    /// that resolves to an internal address (the resolver refuses it, so
    /// no connection is made) and an internal IP literal.
    #[tokio::test]
    async fn internal_targets_are_refused_at_delivery() {
        let sender = Sender::new(&NotifyConfig::default()).unwrap();
        for target in [
            "http://localhost:9/hook",
            "http://127.0.0.1:9/hook",
            "http://[::1]:9/x",
        ] {
            match sender.send(&record(target), None).await {
                Outcome::GiveUp { error, .. } => {
                    assert!(error.starts_with("target refused"), "{target}: {error}")
                }
                other => panic!("{target}: {other:?}"),
            }
        }
        // Allowed, the same target is tried (and here refused by the OS).
        let open = NotifyConfig {
            allow_private_targets: true,
            ..NotifyConfig::default()
        };
        let sender = Sender::new(&open).unwrap();
        let o = sender.send(&record("http://localhost:9/hook"), None).await;
        assert!(matches!(o, Outcome::Retry { .. }), "{o:?}");
    }

    #[test]
    fn bodies_and_texts() {
        let r = record("https://example.com/h");
        let v: serde_json::Value = serde_json::from_slice(&body(&r)).unwrap();
        assert_eq!(
            (v["id"].as_str(), v["type"].as_str()),
            (Some("ntf_2"), Some("job.created"))
        );
        assert_eq!(v["data"]["id"], "j");
        let (subject, text) = text(&r);
        assert!(
            subject.contains("received") && text.contains("Job: j"),
            "{subject} {text}"
        );
    }
}
