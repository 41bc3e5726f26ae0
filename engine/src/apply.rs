//! The event applier: the only code that changes job state, used by live
//! commands (through `emit`) and by replay alike, so the two cannot drift.

use std::sync::atomic::Ordering;

use crate::engine::{Engine, JobTable, Waiting};
use crate::error::EngineError;
use crate::event::{Event, EventKind, RevokeReason};
use crate::geo::LatLng;
use crate::job::{next, Job, JobStatus, Pass, Step};
use crate::types::{Millis, WorkerId};
use crate::worker::RESERVED;

impl Engine {
    pub(crate) fn emit(
        &self,
        t: &mut JobTable,
        out: &mut Vec<Event>,
        at: Millis,
        kind: EventKind,
    ) -> Result<(), EngineError> {
        let ev = Event {
            seq: t.last_event + 1,
            at,
            kind,
        };
        self.apply(t, &ev)?;
        if let Some(sink) = self.sink.get() {
            sink.push(&ev);
        }
        // A job event someone listens to raises a notification, emitted
        // right after it under the same lock (so durable with it).
        let notice = if t.notify.is_empty() {
            None
        } else if let EventKind::ReorderTaskCreated { task } = &ev.kind {
            t.stock
                .parts
                .get(&task.part_id)
                .and_then(|p| t.notify.reorder_notice(task, p, t.last_event + 1))
        } else if let EventKind::MaintenanceAlerted {
            schedule_id,
            alert,
            due_at,
        } = &ev.kind
        {
            let s = t.maintenance.schedules.get(schedule_id);
            let p = s.and_then(|s| t.properties.by_id.get(&s.property_id));
            match (s, p) {
                (Some(s), Some(p)) => {
                    t.notify
                        .maintenance_notice(s, p, *alert, *due_at, t.last_event + 1)
                }
                _ => None,
            }
        } else {
            let job = ev
                .kind
                .job_id()
                .and_then(|id| t.ids.get(id))
                .and_then(|s| t.jobs.get(s));
            t.notify.notice_for(&ev.kind, job, t.last_event + 1)
        };
        out.push(ev);
        if let Some(notice) = notice {
            let kind = EventKind::NotificationQueued {
                notice: Box::new(notice),
            };
            self.emit(t, out, at, kind)?;
        }
        Ok(())
    }

    /// Applies one event: the only code that changes job state. Checks
    /// everything before changing anything, so a refused event leaves no trace.
    pub(crate) fn apply(&self, t: &mut JobTable, ev: &Event) -> Result<(), EngineError> {
        if ev.seq != t.last_event + 1 {
            return Err(EngineError::Corrupt(format!(
                "event {} follows {}",
                ev.seq, t.last_event
            )));
        }
        let at = ev.at;
        if self.apply_domain(t, &ev.kind, at)? {
            t.last_event = ev.seq;
            return Ok(());
        }
        let job_id = match &ev.kind {
            EventKind::WorkerRegistered { worker_id, skills } => {
                self.register_locked(worker_id, skills);
                t.last_event = ev.seq;
                return Ok(());
            }
            EventKind::WorkerNamed { worker_id, name } => {
                let w = self
                    .workers
                    .get(worker_id)
                    .ok_or(EngineError::UnknownWorker)?;
                *w.name.write() = Some(name.as_str().into());
                drop(w);
                // The job it holds shows the new name.
                if let Some(job) = t.holding.get(worker_id).and_then(|s| t.jobs.get_mut(s)) {
                    job.worker_name = Some(name.clone());
                    job.version += 1;
                }
                t.last_event = ev.seq;
                return Ok(());
            }
            EventKind::WorkerTracked {
                job_id, worker_id, ..
            } => {
                let seq = *t.ids.get(job_id).ok_or(EngineError::JobNotFound)?;
                let job = t.jobs.get_mut(&seq).expect("indexed job");
                if job.status != JobStatus::Accepted || job.worker_id.as_ref() != Some(worker_id) {
                    return Err(EngineError::Corrupt(format!(
                        "{worker_id} tracked on job {job_id} it is not on the way to"
                    )));
                }
                job.tracked_at = Some(at);
                if let Some(w) = self.workers.get(worker_id) {
                    w.set_track_due(at.0.saturating_add(self.tracking_every_ms()));
                }
                t.last_event = ev.seq;
                return Ok(());
            }
            EventKind::JobArchived { job } => {
                let seq = *t.ids.get(&job.id).ok_or(EngineError::JobNotFound)?;
                if t.jobs[&seq].finished_at().is_none() {
                    return Err(EngineError::Corrupt(format!(
                        "job {} archived while live",
                        job.id
                    )));
                }
                crate::job_index::remove_job(t, seq);
                t.last_event = ev.seq;
                return Ok(());
            }
            EventKind::JobRestored { job } => {
                if job.finished_at().is_none() {
                    return Err(EngineError::Corrupt(format!(
                        "job {} restored while live",
                        job.id
                    )));
                }
                self.insert_restored(t, (**job).clone())?;
                t.last_event = ev.seq;
                return Ok(());
            }
            EventKind::JobCreated {
                job_id,
                resident_id,
                lat,
                lng,
                skill,
                description,
                search_deadline,
                property_id,
                schedule_id,
                parts,
                urgency,
                triage,
                estimate_cents,
                attachments,
            } => {
                if t.ids.contains_key(job_id) {
                    return Err(EngineError::DuplicateJob);
                }
                let ll = LatLng::new(*lat, *lng)?;
                if let Some(s) = schedule_id {
                    t.maintenance.check_job(s)?;
                    t.maintenance.job_opened(s, job_id);
                }
                let seq = t.last_job + 1;
                let job = Job {
                    id: job_id.clone(),
                    resident_id: resident_id.clone(),
                    lat: *lat,
                    lng: *lng,
                    skill: skill.clone(),
                    description: description.clone(),
                    status: JobStatus::Searching,
                    worker_id: None,
                    attempts: 0,
                    created_at: at,
                    offered_at: None,
                    accepted_at: None,
                    arrived_at: None,
                    completed_at: None,
                    cancelled_at: None,
                    fare_cents: None,
                    offer_expires_at: None,
                    offer_distance_m: None,
                    search_deadline: Some(*search_deadline),
                    unmatched_at: None,
                    cancel_reason: None,
                    passed: Vec::new(),
                    seq,
                    version: 1,
                    property_id: property_id.clone(),
                    schedule_id: schedule_id.clone(),
                    parts: parts.clone(),
                    urgency: *urgency,
                    triage: triage.clone(),
                    estimate_cents: *estimate_cents,
                    rating: None,
                    payments: Vec::new(),
                    attachments: attachments.clone(),
                    worker_name: None,
                    tracked_at: None,
                };
                t.last_job = seq;
                t.ids.insert(job_id.clone(), seq);
                t.by_resident
                    .entry(resident_id.clone())
                    .or_default()
                    .insert(seq);
                t.by_status
                    .entry(JobStatus::Searching)
                    .or_default()
                    .insert(seq);
                t.search_deadlines.insert((*search_deadline, seq));
                t.waiting.insert(
                    seq,
                    Waiting {
                        unit: ll.to_unit(),
                        last_search: Millis(i64::MIN),
                        rank: urgency.rank(),
                    },
                );
                t.jobs.insert(seq, job);
                t.last_event = ev.seq;
                self.waiting.store(t.waiting.len(), Ordering::Release);
                return Ok(());
            }
            other => other.job_id().expect("job event"),
        };
        let seq = *t.ids.get(job_id).ok_or(EngineError::JobNotFound)?;
        let job = t.jobs.get(&seq).expect("indexed job");
        let from = job.status;
        let is_current = |w: &WorkerId| {
            if job.worker_id.as_ref() == Some(w) {
                Ok(())
            } else {
                Err(EngineError::Corrupt(format!(
                    "{w} does not hold job {job_id}"
                )))
            }
        };
        // Validate.
        let step = match &ev.kind {
            EventKind::JobOffered { worker_id, .. } => {
                if t.holding.contains_key(worker_id) {
                    return Err(EngineError::Corrupt(format!(
                        "{worker_id} already holds a job"
                    )));
                }
                if !self.workers.contains_key(worker_id) {
                    return Err(EngineError::UnknownWorker);
                }
                Step::Offer
            }
            EventKind::OfferRevoked { worker_id, .. } => {
                is_current(worker_id)?;
                Step::Revoke
            }
            EventKind::JobAccepted { worker_id, .. } => {
                is_current(worker_id)?;
                Step::Accept
            }
            EventKind::WorkerArrived { worker_id, .. } => {
                is_current(worker_id)?;
                Step::Arrive
            }
            EventKind::JobCompleted { worker_id, .. } => {
                is_current(worker_id)?;
                Step::Complete
            }
            EventKind::JobCancelled { .. } => Step::Cancel,
            EventKind::JobUnmatched { .. } => Step::Unmatch,
            EventKind::JobRetried { .. } => Step::Retry,
            _ => unreachable!("only job events get here"),
        };
        let to = next(from, step)?;
        // Change.
        let job = t.jobs.get_mut(&seq).expect("indexed job");
        let old_offer = job.offer_expires_at.map(|d| (d, seq));
        let old_search = job.search_deadline.map(|d| (d, seq));
        let old_done = job.finished_at().map(|d| (d, seq));
        let mut release = None;
        let mut hold = None;
        match &ev.kind {
            EventKind::JobOffered {
                worker_id,
                expires_at,
                distance_m,
                ..
            } => {
                job.worker_id = Some(worker_id.clone());
                job.attempts += 1;
                job.offered_at = Some(at);
                job.offer_expires_at = Some(*expires_at);
                job.offer_distance_m = Some(*distance_m);
                job.worker_name = self
                    .workers
                    .get(worker_id)
                    .and_then(|w| w.name())
                    .map(|n| n.to_string());
                hold = Some(worker_id.clone());
            }
            EventKind::OfferRevoked {
                worker_id, reason, ..
            } => {
                job.worker_id = None;
                job.worker_name = None;
                job.offer_expires_at = None;
                match reason {
                    RevokeReason::Declined => job.passed.push((worker_id.clone(), Pass::Declined)),
                    RevokeReason::Expired => job.passed.push((worker_id.clone(), Pass::Expired)),
                    RevokeReason::Cancelled
                    | RevokeReason::SearchTimeout
                    | RevokeReason::Restart => {}
                }
                release = Some(worker_id.clone());
            }
            EventKind::JobAccepted { tracked, .. } => {
                job.accepted_at = Some(at);
                // Its resident was told where the worker is: the interval runs.
                job.tracked_at = tracked.map(|_| at);
                job.offer_expires_at = None;
                job.search_deadline = None;
            }
            EventKind::WorkerArrived { .. } => job.arrived_at = Some(at),
            EventKind::JobCompleted {
                worker_id,
                fare_cents,
                ..
            } => {
                job.completed_at = Some(at);
                job.fare_cents = Some(*fare_cents);
                release = Some(worker_id.clone());
            }
            EventKind::JobCancelled { reason, .. } => {
                job.cancelled_at = Some(at);
                job.cancel_reason = reason.clone();
                job.offer_expires_at = None;
                job.search_deadline = None;
                if from.holds_worker() {
                    release = job.worker_id.clone();
                }
            }
            EventKind::JobUnmatched { .. } => {
                job.unmatched_at = Some(at);
                job.search_deadline = None;
            }
            EventKind::JobRetried {
                search_deadline, ..
            } => {
                job.unmatched_at = None;
                job.passed.clear();
                job.search_deadline = Some(*search_deadline);
            }
            _ => unreachable!("only job events get here"),
        }
        job.status = to;
        job.version += 1;
        // Tracking runs while the job is accepted: from the first report
        // after acceptance, until it is not.
        let track = match (from == JobStatus::Accepted, to == JobStatus::Accepted) {
            (false, true) => {
                let due = match job.tracked_at {
                    Some(t) => t.0.saturating_add(self.tracking_every_ms()),
                    None => at.0,
                };
                job.worker_id.clone().map(|w| (w, due))
            }
            (true, false) => job
                .worker_id
                .clone()
                .map(|w| (w, crate::worker::NOT_TRACKED)),
            _ => None,
        };
        let fare_of = job
            .fare_cents
            .filter(|_| to == JobStatus::Completed && from != JobStatus::Completed)
            .map(|f| (job.skill.as_str().to_owned(), f));
        let cancelled_for = job
            .schedule_id
            .clone()
            .filter(|_| to == JobStatus::Cancelled)
            .map(|s| (s, job.id.clone()));
        let (new_offer, new_search) = (
            job.offer_expires_at.map(|d| (d, seq)),
            job.search_deadline.map(|d| (d, seq)),
        );
        let new_done = job.finished_at().map(|d| (d, seq));
        let unit = LatLng {
            lat: job.lat,
            lng: job.lng,
        }
        .to_unit();
        let rank = job.urgency.rank();

        // Indexes follow the job.
        if from != to {
            if let Some(s) = t.by_status.get_mut(&from) {
                s.remove(&seq);
            }
            t.by_status.entry(to).or_default().insert(seq);
        }
        if from == JobStatus::Searching && to != JobStatus::Searching {
            t.waiting.remove(&seq);
        }
        if to == JobStatus::Searching && from != JobStatus::Searching {
            t.waiting.insert(
                seq,
                Waiting {
                    unit,
                    last_search: Millis(i64::MIN),
                    rank,
                },
            );
        }
        if old_offer != new_offer {
            if let Some(d) = old_offer {
                t.offer_deadlines.remove(&d);
            }
            if let Some(d) = new_offer {
                t.offer_deadlines.insert(d);
            }
        }
        if old_search != new_search {
            if let Some(d) = old_search {
                t.search_deadlines.remove(&d);
            }
            if let Some(d) = new_search {
                t.search_deadlines.insert(d);
            }
        }
        if old_done != new_done {
            if let Some(d) = old_done {
                t.finished.remove(&d);
            }
            if let Some(d) = new_done {
                t.finished.insert(d);
            }
        }
        if let Some(w) = release {
            t.holding.remove(&w);
            if let Some(e) = self.workers.get(&w) {
                e.set_flag(RESERVED, false);
            }
        }
        if let Some(w) = hold {
            t.by_worker.entry(w.clone()).or_default().insert(seq);
            if let Some(e) = self.workers.get(&w) {
                e.set_flag(RESERVED, true);
            }
            t.holding.insert(w, seq);
        }
        if let Some((w, due)) = track {
            if let Some(e) = self.workers.get(&w) {
                e.set_track_due(due);
                e.track_owed.store(false, Ordering::Release);
            }
        }
        if let Some((s, job)) = cancelled_for {
            t.maintenance.job_cancelled(&s, &job);
        }
        if let Some((skill, fare)) = fare_of {
            t.triage.record_fare(&skill, fare);
            self.publish_estimates(&t.triage, Some(&skill));
        }
        t.last_event = ev.seq;
        self.waiting.store(t.waiting.len(), Ordering::Release);
        Ok(())
    }

    /// Applies an event of a domain beside the jobs (notifications,
    /// maintenance, stock, ratings and payments, triage, properties):
    /// `false` when `kind` is not one.
    fn apply_domain(
        &self,
        t: &mut JobTable,
        kind: &EventKind,
        at: Millis,
    ) -> Result<bool, EngineError> {
        match kind {
            k @ (EventKind::NotifyPrefsSet { .. }
            | EventKind::WebhookAdded { .. }
            | EventKind::WebhookRemoved { .. }
            | EventKind::WebhookDisabled { .. }
            | EventKind::NotificationQueued { .. }) => {
                t.notify.check(k)?;
                t.notify.apply(k);
                Ok(true)
            }
            k @ (EventKind::ScheduleCreated { .. }
            | EventKind::ScheduleUpdated { .. }
            | EventKind::ScheduleDeleted { .. }
            | EventKind::MaintenanceLogged { .. }
            | EventKind::MaintenanceAlerted { .. }
            | EventKind::MaintenanceChecked { .. }) => {
                t.maintenance.check(k, &t.properties)?;
                t.maintenance.apply(k, at);
                Ok(true)
            }
            k @ (EventKind::PartCreated { .. }
            | EventKind::PartUpdated { .. }
            | EventKind::PartDeleted { .. }
            | EventKind::StockMoved { .. }
            | EventKind::StockRuleSet { .. }
            | EventKind::ReorderTaskCreated { .. }
            | EventKind::ReorderTaskUpdated { .. }
            | EventKind::PartsReserved { .. }
            | EventKind::PartsReleased { .. }
            | EventKind::StockChecked { .. }) => {
                t.stock.check(k)?;
                t.stock.apply(k, at);
                Ok(true)
            }
            k @ (EventKind::JobRated { .. } | EventKind::PaymentRecorded { .. }) => {
                crate::payment::apply(t, k)?;
                Ok(true)
            }
            k @ EventKind::TriageExampleAdded { .. } => {
                t.triage.check(k)?;
                t.triage.apply(k);
                self.publish_classifier(&mut t.triage);
                Ok(true)
            }
            EventKind::AttachmentStored { attachment } => {
                // Its record lives in the persistence's history tables;
                // its owner's usage here (one number per user).
                attachment.validate()?;
                if attachment.counted > 0 {
                    *t.attachment_usage
                        .entry(attachment.owner_id.clone())
                        .or_default() += attachment.counted;
                }
                Ok(true)
            }
            k @ EventKind::PropertyCreated { .. } => {
                t.properties.check(k)?;
                t.properties.apply(k);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
