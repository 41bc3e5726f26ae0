//! Notifications beyond the socket: who wants to hear about what (each
//! user's channels, ops' webhook endpoints), and the notifications the
//! engine raises for its own events.
//!
//! A notification is an event of the engine like any other
//! ([`EventKind::NotificationQueued`]), emitted right after the change that
//! raised it, under the same lock and in the same batch: it is durable
//! exactly when that change is, on every backend, and every node of a
//! cluster derives the same one. Delivery (attempts, retries, the log of
//! outcomes) happens outside the engine, in the backend's outbox: it is
//! not replicated state and would only grow memory here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::event::EventKind;
use crate::job::Job;
use crate::maintenance::{AlertKind, Schedule};
use crate::property::Property;
use crate::stock::{Part, ReorderTask};
use crate::types::Millis;

mod commands;
pub mod outbox;
pub mod schedule;

/// Most webhook endpoints ops may register.
pub const MAX_WEBHOOKS: usize = 100;
/// Longest URL, e-mail address or phone number kept.
pub const MAX_TARGET_BYTES: usize = 2048;

/// Every event name a notification can carry (API.md).
pub const EVENT_NAMES: [&str; 11] = [
    "job.created",
    "job.offered",
    "job.accepted",
    "job.arrived",
    "job.completed",
    "job.cancelled",
    "job.unmatched",
    "maintenance.due",
    "maintenance.overdue",
    "reorder.created",
    "payment.updated",
];

/// Whether `name` is an event name (or `*`, where a list allows it).
pub fn is_event_name(name: &str) -> bool {
    EVENT_NAMES.contains(&name)
}

/// A user's channels: `PUT /v1/me/notifications`. `events: None` means
/// every event that concerns them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyPrefs {
    pub email: Option<String>,
    pub sms: Option<String>,
    pub webhook: Option<String>,
    pub events: Option<Vec<String>>,
}

impl NotifyPrefs {
    fn wants(&self, name: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|e| e.iter().any(|n| n == name))
    }
}

/// An ops webhook endpoint: `POST /v1/ops/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Event names, or `["*"]` for all.
    pub events: Vec<String>,
    /// `whsec_…`: what deliveries are signed with.
    pub secret: String,
    /// Set when the endpoint answered 410 Gone; nothing more is sent.
    pub disabled: bool,
}

impl Webhook {
    fn wants(&self, name: &str) -> bool {
        !self.disabled && self.events.iter().any(|n| n == "*" || n == name)
    }
}

/// How a delivery reaches its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Webhook,
    Email,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Webhook, Channel::Email, Channel::Sms];

    pub fn name(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// One target of a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `<notification id>.<n>`: stable, the same on every node.
    pub id: String,
    pub channel: Channel,
    /// URL, e-mail address or phone number.
    pub target: String,
    /// The ops webhook endpoint it goes to (signed with its secret), if any.
    pub endpoint: Option<String>,
    /// The user it is for, if any.
    pub user: Option<String>,
}

/// What a notification is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoticeData {
    /// The job as it stood right after the change.
    Job { job: Box<Job> },
    /// A maintenance schedule due or overdue (`maintenance.due` /
    /// `maintenance.overdue`), as it stood when the check raised it.
    Maintenance {
        schedule: Box<Schedule>,
        property: Box<Property>,
        alert: AlertKind,
        due_at: Millis,
    },
    /// A reorder task was created (`reorder.created`).
    Reorder {
        task: Box<ReorderTask>,
        part: Box<Part>,
    },
}

impl NoticeData {
    /// What the notification is about: a job id or a schedule id (its
    /// deliveries to one target go out in order per subject).
    pub fn subject(&self) -> &str {
        match self {
            NoticeData::Job { job } => job.id.as_str(),
            NoticeData::Maintenance { schedule, .. } => &schedule.id,
            NoticeData::Reorder { task, .. } => &task.id,
        }
    }
}

/// A notification: its event name, what it is about, and where it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// `ntf_<seq>`: the same on every node and across retries.
    pub id: String,
    /// One of [`EVENT_NAMES`].
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: NoticeData,
    pub deliveries: Vec<Delivery>,
}

/// The replicated part: preferences and endpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NotifyState {
    pub prefs: BTreeMap<String, NotifyPrefs>,
    pub webhooks: BTreeMap<String, Webhook>,
}

impl NotifyState {
    /// Whether anyone listens at all (the common case of none costs nothing).
    pub(crate) fn is_empty(&self) -> bool {
        self.prefs.is_empty() && self.webhooks.is_empty()
    }

    /// Checks an event of this domain before it is applied.
    pub(crate) fn check(&self, kind: &EventKind) -> Result<(), EngineError> {
        match kind {
            EventKind::WebhookAdded { webhook } => {
                if self.webhooks.contains_key(&webhook.id) {
                    return Err(EngineError::Conflict("webhook id taken"));
                }
                if self.webhooks.len() >= MAX_WEBHOOKS {
                    return Err(EngineError::Conflict("too many webhooks"));
                }
                Ok(())
            }
            EventKind::WebhookRemoved { id } | EventKind::WebhookDisabled { id } => {
                if self.webhooks.contains_key(id) {
                    Ok(())
                } else {
                    Err(EngineError::NotFound("webhook not found"))
                }
            }
            _ => Ok(()),
        }
    }

    /// Applies an event of this domain (checked already).
    pub(crate) fn apply(&mut self, kind: &EventKind) {
        match kind {
            EventKind::NotifyPrefsSet { user, prefs } => {
                if *prefs == NotifyPrefs::default() {
                    self.prefs.remove(user);
                } else {
                    self.prefs.insert(user.clone(), prefs.clone());
                }
            }
            EventKind::WebhookAdded { webhook } => {
                self.webhooks.insert(webhook.id.clone(), webhook.clone());
            }
            EventKind::WebhookRemoved { id } => {
                self.webhooks.remove(id);
            }
            EventKind::WebhookDisabled { id } => {
                if let Some(w) = self.webhooks.get_mut(id) {
                    w.disabled = true;
                }
            }
            _ => {}
        }
    }

    /// The notification a due/overdue alert raises: to endpoints that want
    /// it, the assigned worker and the property's owner by their
    /// preferences.
    pub(crate) fn maintenance_notice(
        &self,
        s: &Schedule,
        p: &Property,
        alert: AlertKind,
        due_at: Millis,
        seq: u64,
    ) -> Option<Notice> {
        let name = alert.event_name();
        let mut users = vec![p.owner_id.as_str()];
        if let Some(w) = &s.assigned_to {
            users.push(w.as_str());
        }
        let data = NoticeData::Maintenance {
            schedule: Box::new(s.clone()),
            property: Box::new(p.clone()),
            alert,
            due_at,
        };
        self.notice(name, &users, data, seq)
    }

    /// The notification a new reorder task raises: to the ops endpoints
    /// that want `reorder.created`.
    pub(crate) fn reorder_notice(
        &self,
        task: &ReorderTask,
        part: &Part,
        seq: u64,
    ) -> Option<Notice> {
        let data = NoticeData::Reorder {
            task: Box::new(task.clone()),
            part: Box::new(part.clone()),
        };
        self.notice("reorder.created", &[], data, seq)
    }

    /// A notice of `name` to the endpoints that want it and to `users` by
    /// their preferences; none when nobody does.
    fn notice(&self, name: &str, users: &[&str], data: NoticeData, seq: u64) -> Option<Notice> {
        let id = format!("ntf_{seq}");
        let mut deliveries = Vec::new();
        let mut add =
            |channel: Channel, target: &str, endpoint: Option<&str>, user: Option<&str>| {
                deliveries.push(Delivery {
                    id: format!("{id}.{}", deliveries.len()),
                    channel,
                    target: target.to_owned(),
                    endpoint: endpoint.map(str::to_owned),
                    user: user.map(str::to_owned),
                });
            };
        for w in self.webhooks.values().filter(|w| w.wants(name)) {
            add(Channel::Webhook, &w.url, Some(&w.id), None);
        }
        for &user in users {
            let Some(p) = self.prefs.get(user).filter(|p| p.wants(name)) else {
                continue;
            };
            if let Some(url) = &p.webhook {
                add(Channel::Webhook, url, None, Some(user));
            }
            if let Some(email) = &p.email {
                add(Channel::Email, email, None, Some(user));
            }
            if let Some(sms) = &p.sms {
                add(Channel::Sms, sms, None, Some(user));
            }
        }
        (!deliveries.is_empty()).then(|| Notice {
            id,
            event_type: name.to_owned(),
            data,
            deliveries,
        })
    }

    /// The notification an engine event raises, if anyone listens. `seq`
    /// is the sequence number the notification event itself will take.
    pub(crate) fn notice_for(
        &self,
        kind: &EventKind,
        job: Option<&Job>,
        seq: u64,
    ) -> Option<Notice> {
        let name = job_event_name(kind)?;
        let job = job?;
        // The users it concerns: its resident and its worker (offered,
        // assigned, or released by a cancel).
        let mut users = vec![job.resident_id.as_str()];
        let worker = match kind {
            EventKind::JobCancelled { worker_id, .. } => worker_id.as_ref(),
            _ => job.worker_id.as_ref(),
        };
        if let Some(w) = worker.filter(|_| !matches!(kind, EventKind::JobCreated { .. })) {
            users.push(w.as_str());
        }
        let data = NoticeData::Job {
            job: Box::new(job.clone()),
        };
        self.notice(name, &users, data, seq)
    }
}

/// The notification name of a job event, if it has one.
pub fn job_event_name(kind: &EventKind) -> Option<&'static str> {
    Some(match kind {
        EventKind::JobCreated { .. } => "job.created",
        EventKind::JobOffered { .. } => "job.offered",
        EventKind::JobAccepted { .. } => "job.accepted",
        EventKind::WorkerArrived { .. } => "job.arrived",
        EventKind::JobCompleted { .. } => "job.completed",
        EventKind::JobCancelled { .. } => "job.cancelled",
        EventKind::JobUnmatched { .. } => "job.unmatched",
        EventKind::PaymentRecorded { .. } => "payment.updated",
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
