//! Events: the record of every change the engine made. One record, three
//! consumers: the gateway pushes it to sockets, persistence appends it to the
//! log (replaying the log rebuilds the state), metrics count it.

use serde::{Deserialize, Serialize};

use crate::job::Job;
use crate::maintenance::{AlertKind, CheckReport, Log, Roll, Schedule};
use crate::notify::{Notice, NotifyPrefs, Webhook};
use crate::property::Property;
use crate::stock::{Movement, Part, PartLine, ReorderTask, StockCheck};
use crate::triage::Example;
use crate::types::{JobId, Millis, ResidentId, Skill, WorkerId};

/// One change, stamped with its place in the engine's total order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Strictly increasing across the whole engine: the log must keep this order.
    pub seq: u64,
    pub at: Millis,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A worker appeared or its skills changed.
    WorkerRegistered {
        worker_id: WorkerId,
        skills: Vec<Skill>,
    },
    JobCreated {
        job_id: JobId,
        resident_id: ResidentId,
        lat: f64,
        lng: f64,
        skill: Skill,
        description: String,
        search_deadline: Millis,
        /// The property it is at (its position is the property's).
        #[serde(default)]
        property_id: Option<String>,
        /// The maintenance schedule it was created for.
        #[serde(default)]
        schedule_id: Option<String>,
        /// Parts the job needs (the worker's van must have them).
        #[serde(default)]
        parts: Vec<PartLine>,
        #[serde(default)]
        urgency: crate::triage::Urgency,
        #[serde(default)]
        triage: Option<Box<crate::triage::TriageResult>>,
        #[serde(default)]
        estimate_cents: Option<(i64, i64)>,
        /// Uploads it lists (its author's own).
        #[serde(default)]
        attachments: Vec<String>,
    },
    JobOffered {
        job_id: JobId,
        worker_id: WorkerId,
        expires_at: Millis,
        distance_m: f64,
    },
    OfferRevoked {
        job_id: JobId,
        worker_id: WorkerId,
        reason: RevokeReason,
    },
    JobAccepted {
        job_id: JobId,
        worker_id: WorkerId,
        /// Where the worker was, when its position was fresh: the resident's
        /// first `tracking` message, sent with the job's (no event of its own).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracked: Option<Tracked>,
    },
    WorkerArrived {
        job_id: JobId,
        worker_id: WorkerId,
    },
    /// The assigned worker of an accepted job reported this position, and
    /// its resident is due a `tracking` message (at most one per
    /// `tracking_every_s`). Changes no job field a client sees.
    WorkerTracked {
        job_id: JobId,
        worker_id: WorkerId,
        lat: f64,
        lng: f64,
        /// When the worker reported it, if before the event (sent on
        /// acceptance, or at the end of an interval, from the last report).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reported_at: Option<Millis>,
    },
    /// The name residents see for the worker (`Job.worker_name`).
    WorkerNamed {
        worker_id: WorkerId,
        name: String,
    },
    JobCompleted {
        job_id: JobId,
        worker_id: WorkerId,
        fare_cents: i64,
    },
    /// `worker_id` is the worker released by the cancel (accepted or arrived).
    JobCancelled {
        job_id: JobId,
        worker_id: Option<WorkerId>,
        reason: Option<String>,
    },
    /// Not accepted within the search timeout: a dead letter.
    JobUnmatched {
        job_id: JobId,
    },
    /// Ops sent a dead letter back to searching.
    JobRetried {
        job_id: JobId,
        search_deadline: Millis,
    },
    /// A job finished longer ago than the retention leaves memory (and
    /// every snapshot); the event carries it whole for the on-disk archive.
    JobArchived {
        job: Box<Job>,
    },
    /// An archived job came back (a dead letter that ops retry).
    JobRestored {
        job: Box<Job>,
    },
    /// A user's notification channels (all default: none kept).
    NotifyPrefsSet {
        user: String,
        prefs: NotifyPrefs,
    },
    WebhookAdded {
        webhook: Webhook,
    },
    WebhookRemoved {
        id: String,
    },
    /// The endpoint answered 410 Gone.
    WebhookDisabled {
        id: String,
    },
    /// The change just before raised a notification (its outbox entries
    /// are written from this event, in the same durable write).
    NotificationQueued {
        notice: Box<Notice>,
    },
    PropertyCreated {
        property: Property,
    },
    ScheduleCreated {
        schedule: Box<Schedule>,
    },
    /// The schedule as it now is (`PATCH`).
    ScheduleUpdated {
        schedule: Box<Schedule>,
    },
    ScheduleDeleted {
        id: String,
    },
    /// Work done on a schedule; `roll` moves it (absent when the job was
    /// not its open one, or the schedule is gone). The log itself goes to
    /// the backend's store, not memory.
    MaintenanceLogged {
        log: Box<Log>,
        roll: Option<Roll>,
    },
    /// A due/overdue alert for the occurrence due at `due_at`.
    MaintenanceAlerted {
        schedule_id: String,
        alert: AlertKind,
        due_at: Millis,
    },
    /// A due/overdue check ran (`daily`: the scheduled one).
    MaintenanceChecked {
        daily: bool,
        report: CheckReport,
    },
    PartCreated {
        part: Part,
    },
    /// The part as it now is.
    PartUpdated {
        part: Part,
    },
    PartDeleted {
        id: String,
    },
    /// A change of stock: the ledger's entry (it goes to the backend's
    /// store; the engine keeps the balances).
    StockMoved {
        movement: Box<Movement>,
    },
    StockRuleSet {
        part_id: String,
        location: String,
        reorder_point: i64,
        reorder_qty: i64,
    },
    ReorderTaskCreated {
        task: ReorderTask,
    },
    /// The task as it now is (ordered, received, cancelled).
    ReorderTaskUpdated {
        task: ReorderTask,
    },
    /// An accepted job's parts held in its worker's van.
    PartsReserved {
        job_id: JobId,
        location: String,
        lines: Vec<PartLine>,
    },
    /// …and let go (consumed at completion, or the job cancelled).
    PartsReleased {
        job_id: JobId,
    },
    /// A reorder check ran over every stocked location.
    StockChecked {
        report: StockCheck,
    },
    /// Ops taught triage an example (it counts from the next request).
    TriageExampleAdded {
        example: Example,
    },
    /// Its resident rated a completed job.
    JobRated {
        job_id: JobId,
        rating: crate::payment::Rating,
    },
    /// A payment for the job, new or updated by its `provider_ref`.
    PaymentRecorded {
        job_id: JobId,
        payment: crate::payment::Payment,
    },
    /// An upload's bytes are durable on disk; this is their record.
    AttachmentStored {
        attachment: Box<crate::attachment::Attachment>,
    },
}

/// A worker's reported position, as tracking sends it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    pub lat: f64,
    pub lng: f64,
    pub reported_at: Millis,
}

/// Why an offer ended without acceptance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    Declined,
    /// No answer within the offer timeout.
    Expired,
    Cancelled,
    /// The job ran out of search time while this offer was open.
    SearchTimeout,
    /// The process restarted while the offer was open.
    Restart,
}

impl RevokeReason {
    /// The reason as the API's `offer_revoked` message names it.
    pub fn api_name(self) -> &'static str {
        match self {
            RevokeReason::Declined => "declined",
            RevokeReason::Expired | RevokeReason::SearchTimeout | RevokeReason::Restart => {
                "expired"
            }
            RevokeReason::Cancelled => "cancelled",
        }
    }
}

impl EventKind {
    /// The job this event is about, if any.
    pub fn job_id(&self) -> Option<&JobId> {
        match self {
            EventKind::WorkerRegistered { .. }
            | EventKind::WorkerNamed { .. }
            | EventKind::NotifyPrefsSet { .. }
            | EventKind::WebhookAdded { .. }
            | EventKind::WebhookRemoved { .. }
            | EventKind::WebhookDisabled { .. }
            | EventKind::NotificationQueued { .. }
            | EventKind::PropertyCreated { .. }
            | EventKind::ScheduleCreated { .. }
            | EventKind::ScheduleUpdated { .. }
            | EventKind::ScheduleDeleted { .. }
            | EventKind::MaintenanceLogged { .. }
            | EventKind::MaintenanceAlerted { .. }
            | EventKind::MaintenanceChecked { .. }
            | EventKind::PartCreated { .. }
            | EventKind::PartUpdated { .. }
            | EventKind::PartDeleted { .. }
            | EventKind::StockMoved { .. }
            | EventKind::StockRuleSet { .. }
            | EventKind::ReorderTaskCreated { .. }
            | EventKind::ReorderTaskUpdated { .. }
            | EventKind::PartsReserved { .. }
            | EventKind::PartsReleased { .. }
            | EventKind::StockChecked { .. }
            | EventKind::TriageExampleAdded { .. }
            | EventKind::AttachmentStored { .. } => None,
            EventKind::JobCreated { job_id, .. }
            | EventKind::JobOffered { job_id, .. }
            | EventKind::OfferRevoked { job_id, .. }
            | EventKind::JobAccepted { job_id, .. }
            | EventKind::WorkerArrived { job_id, .. }
            | EventKind::WorkerTracked { job_id, .. }
            | EventKind::JobCompleted { job_id, .. }
            | EventKind::JobCancelled { job_id, .. }
            | EventKind::JobUnmatched { job_id }
            | EventKind::JobRetried { job_id, .. }
            | EventKind::JobRated { job_id, .. }
            | EventKind::PaymentRecorded { job_id, .. } => Some(job_id),
            EventKind::JobArchived { job } | EventKind::JobRestored { job } => Some(&job.id),
        }
    }

    /// Short snake_case name, for metrics labels and logs.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::WorkerRegistered { .. } => "worker_registered",
            EventKind::JobCreated { .. } => "job_created",
            EventKind::JobOffered { .. } => "job_offered",
            EventKind::OfferRevoked { .. } => "offer_revoked",
            EventKind::JobAccepted { .. } => "job_accepted",
            EventKind::WorkerArrived { .. } => "worker_arrived",
            EventKind::WorkerTracked { .. } => "worker_tracked",
            EventKind::WorkerNamed { .. } => "worker_named",
            EventKind::JobCompleted { .. } => "job_completed",
            EventKind::JobCancelled { .. } => "job_cancelled",
            EventKind::JobUnmatched { .. } => "job_unmatched",
            EventKind::JobRetried { .. } => "job_retried",
            EventKind::JobArchived { .. } => "job_archived",
            EventKind::JobRestored { .. } => "job_restored",
            EventKind::NotifyPrefsSet { .. } => "notify_prefs_set",
            EventKind::WebhookAdded { .. } => "webhook_added",
            EventKind::WebhookRemoved { .. } => "webhook_removed",
            EventKind::WebhookDisabled { .. } => "webhook_disabled",
            EventKind::NotificationQueued { .. } => "notification_queued",
            EventKind::PropertyCreated { .. } => "property_created",
            EventKind::ScheduleCreated { .. } => "schedule_created",
            EventKind::ScheduleUpdated { .. } => "schedule_updated",
            EventKind::ScheduleDeleted { .. } => "schedule_deleted",
            EventKind::MaintenanceLogged { .. } => "maintenance_logged",
            EventKind::MaintenanceAlerted { .. } => "maintenance_alerted",
            EventKind::MaintenanceChecked { .. } => "maintenance_checked",
            EventKind::PartCreated { .. } => "part_created",
            EventKind::PartUpdated { .. } => "part_updated",
            EventKind::PartDeleted { .. } => "part_deleted",
            EventKind::StockMoved { .. } => "stock_moved",
            EventKind::StockRuleSet { .. } => "stock_rule_set",
            EventKind::ReorderTaskCreated { .. } => "reorder_task_created",
            EventKind::ReorderTaskUpdated { .. } => "reorder_task_updated",
            EventKind::PartsReserved { .. } => "parts_reserved",
            EventKind::PartsReleased { .. } => "parts_released",
            EventKind::StockChecked { .. } => "stock_checked",
            EventKind::TriageExampleAdded { .. } => "triage_example_added",
            EventKind::JobRated { .. } => "job_rated",
            EventKind::PaymentRecorded { .. } => "payment_recorded",
            EventKind::AttachmentStored { .. } => "attachment_stored",
        }
    }

    /// Every [`EventKind::name`], for metrics that pre-register their labels.
    pub const NAMES: [&'static str; 40] = [
        "worker_registered",
        "job_created",
        "job_offered",
        "offer_revoked",
        "job_accepted",
        "worker_arrived",
        "worker_tracked",
        "worker_named",
        "job_completed",
        "job_cancelled",
        "job_unmatched",
        "job_retried",
        "job_archived",
        "job_restored",
        "notify_prefs_set",
        "webhook_added",
        "webhook_removed",
        "webhook_disabled",
        "notification_queued",
        "property_created",
        "schedule_created",
        "schedule_updated",
        "schedule_deleted",
        "maintenance_logged",
        "maintenance_alerted",
        "maintenance_checked",
        "part_created",
        "part_updated",
        "part_deleted",
        "stock_moved",
        "stock_rule_set",
        "reorder_task_created",
        "reorder_task_updated",
        "parts_reserved",
        "parts_released",
        "stock_checked",
        "triage_example_added",
        "job_rated",
        "payment_recorded",
        "attachment_stored",
    ];
}
