//! Job commands: create, a worker's step, cancel, retry, and moving
//! finished jobs to the archive (and back). Each locks the job table once,
//! emits its events, and returns its receipt — the job as it stood right
//! after, read under the same lock.

use crate::engine::{Engine, JobReceipt, JobTable, NewJob};
use serde::{Deserialize, Serialize};

/// What a new job may carry besides [`NewJob`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobOptions {
    /// At a property: the job takes its position (its owner's only).
    #[serde(default)]
    pub property_id: Option<String>,
    /// Parts it needs (matched to a worker whose van has them).
    #[serde(default)]
    pub parts: Vec<crate::stock::PartLine>,
    /// Set by the resident; else triage's; else normal.
    #[serde(default)]
    pub urgency: Option<crate::triage::Urgency>,
    #[serde(default)]
    pub triage: Option<Box<crate::triage::TriageResult>>,
    /// Uploads it lists (the gateway checks they are its author's).
    #[serde(default)]
    pub attachments: Vec<String>,
}
use crate::error::EngineError;
use crate::event::{Event, EventKind, RevokeReason};
use crate::job::{next, Job, JobStatus, Pass, Step};
use crate::types::{JobId, Millis, WorkerId};

impl Engine {
    /// Creates a job and offers it to the nearest matchable worker, if any.
    pub fn create_job(&self, job: NewJob, now: Millis) -> Result<Vec<Event>, EngineError> {
        self.create_job_receipt(job, now).map(|r| r.events)
    }

    /// [`Engine::create_job`], with the job as created (and perhaps offered).
    pub fn create_job_receipt(&self, job: NewJob, now: Millis) -> Result<JobReceipt, EngineError> {
        self.create_job_with(job, JobOptions::default(), now)
    }

    /// A job with its options: at a property (`property.rs` checks the
    /// property), needing parts, its urgency and triage.
    pub(crate) fn create_job_with(
        &self,
        job: NewJob,
        opts: JobOptions,
        now: Millis,
    ) -> Result<JobReceipt, EngineError> {
        let JobOptions {
            property_id,
            parts,
            urgency,
            triage,
            attachments,
        } = opts;
        job.validate()?;
        crate::attachment::check_list(&attachments)?;
        let mut t = self.jobs.lock();
        if t.ids.contains_key(&job.id) {
            return Err(EngineError::DuplicateJob);
        }
        let parts = crate::stock::check_lines_in(&t, &parts)?;
        let urgency = urgency
            .or(triage.as_ref().map(|r| r.urgency))
            .unwrap_or_default();
        let estimate_cents = triage
            .as_ref()
            .map(|r| r.estimate_cents)
            .or_else(|| t.triage.estimate_for(job.skill.as_str()));
        let mut out = Vec::new();
        let kind = EventKind::JobCreated {
            job_id: job.id.clone(),
            resident_id: job.resident_id,
            lat: job.lat,
            lng: job.lng,
            skill: job.skill,
            description: job.description,
            search_deadline: now.plus_secs(self.cfg.search_timeout_s),
            property_id,
            schedule_id: None,
            parts,
            urgency,
            triage,
            estimate_cents,
            attachments,
        };
        self.emit(&mut t, &mut out, now, kind)?;
        let seq = t.last_job;
        self.dispatch(&mut t, &mut out, seq, now);
        Ok(receipt(&t, seq, out))
    }

    pub fn accept(
        &self,
        job: &JobId,
        worker: &WorkerId,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        self.worker_step(job, worker, Step::Accept, now)
    }

    pub fn decline(
        &self,
        job: &JobId,
        worker: &WorkerId,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        self.worker_step(job, worker, Step::Revoke, now)
    }

    pub fn arrive(
        &self,
        job: &JobId,
        worker: &WorkerId,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        self.worker_step(job, worker, Step::Arrive, now)
    }

    pub fn complete(
        &self,
        job: &JobId,
        worker: &WorkerId,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        self.worker_step(job, worker, Step::Complete, now)
    }

    fn worker_step(
        &self,
        job_id: &JobId,
        worker: &WorkerId,
        step: Step,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        self.worker_step_receipt(job_id, worker, step, now)
            .map(|r| r.events)
    }

    /// A worker's step (`Accept`, `Revoke` = decline, `Arrive`, `Complete`)
    /// with the job as it stood right after.
    pub fn worker_step_receipt(
        &self,
        job_id: &JobId,
        worker: &WorkerId,
        step: Step,
        now: Millis,
    ) -> Result<JobReceipt, EngineError> {
        if !matches!(
            step,
            Step::Accept | Step::Revoke | Step::Arrive | Step::Complete
        ) {
            return Err(EngineError::InvalidInput {
                field: "step",
                reason: "not a worker step",
            });
        }
        let mut t = self.jobs.lock();
        let seq = *t.ids.get(job_id).ok_or(EngineError::JobNotFound)?;
        let job = &t.jobs[&seq];
        if !job.involves(worker) {
            return Err(EngineError::JobNotFound);
        }
        let current = job.worker_id.as_ref() == Some(worker);
        let status = job.status;
        if !current {
            // Involved but not the current worker: it declined or let the offer lapse.
            if step == Step::Accept && job.pass_of(worker) == Some(Pass::Expired) {
                return Err(EngineError::OfferExpired);
            }
            return Err(EngineError::InvalidTransition { from: status, step });
        }
        next(status, step)?;
        if step == Step::Accept && !t.stock.van_has(worker, &job.parts) {
            // Its van no longer has them (used since the offer): decline.
            return Err(EngineError::InsufficientStock);
        }
        let kind = match step {
            Step::Accept => EventKind::JobAccepted {
                job_id: job_id.clone(),
                worker_id: worker.clone(),
                tracked: self.fresh_position(worker, now),
            },
            Step::Revoke => EventKind::OfferRevoked {
                job_id: job_id.clone(),
                worker_id: worker.clone(),
                reason: RevokeReason::Declined,
            },
            Step::Arrive => EventKind::WorkerArrived {
                job_id: job_id.clone(),
                worker_id: worker.clone(),
            },
            Step::Complete => {
                let arrived = job.arrived_at.unwrap_or(now);
                EventKind::JobCompleted {
                    job_id: job_id.clone(),
                    worker_id: worker.clone(),
                    fare_cents: self.cfg.billing.fare_cents(arrived, now),
                }
            }
            Step::Offer | Step::Cancel | Step::Unmatch | Step::Retry => {
                unreachable!("not a worker step")
            }
        };
        let mut out = Vec::new();
        self.emit(&mut t, &mut out, now, kind)?;
        if step == Step::Accept {
            self.reserve_parts(&mut t, &mut out, seq, worker, now)?;
        }
        if step == Step::Complete {
            self.consume_parts(&mut t, &mut out, job_id, worker, now)?;
            // A schedule's job writes its log and rolls the schedule in
            // the same write.
            if let Some(log) = self.completion_log(&t, seq, now) {
                self.emit(&mut t, &mut out, now, log)?;
            }
        }
        if step == Step::Revoke {
            self.dispatch(&mut t, &mut out, seq, now);
        }
        if matches!(step, Step::Revoke | Step::Complete) {
            self.wake_locked(&mut t, &mut out, worker, now);
        }
        Ok(receipt(&t, seq, out))
    }

    /// Cancels a job from any non-final status, releasing its worker.
    pub fn cancel(
        &self,
        job_id: &JobId,
        reason: Option<String>,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        self.cancel_receipt(job_id, reason, now).map(|r| r.events)
    }

    /// [`Engine::cancel`], with the cancelled job.
    pub fn cancel_receipt(
        &self,
        job_id: &JobId,
        reason: Option<String>,
        now: Millis,
    ) -> Result<JobReceipt, EngineError> {
        let mut t = self.jobs.lock();
        let seq = *t.ids.get(job_id).ok_or(EngineError::JobNotFound)?;
        let job = &t.jobs[&seq];
        let from = job.status;
        next(from, Step::Cancel)?;
        let worker = job.worker_id.clone().filter(|_| from.holds_worker());
        let mut out = Vec::new();
        if from == JobStatus::Offered {
            let w = worker.clone().expect("offered job has a worker");
            let kind = EventKind::OfferRevoked {
                job_id: job_id.clone(),
                worker_id: w,
                reason: RevokeReason::Cancelled,
            };
            self.emit(&mut t, &mut out, now, kind)?;
        }
        let kind = EventKind::JobCancelled {
            job_id: job_id.clone(),
            worker_id: worker.clone().filter(|_| from != JobStatus::Offered),
            reason,
        };
        self.emit(&mut t, &mut out, now, kind)?;
        self.release_parts(&mut t, &mut out, job_id, now)?;
        if let Some(w) = worker {
            self.wake_locked(&mut t, &mut out, &w, now);
        }
        Ok(receipt(&t, seq, out))
    }

    /// Sends a dead letter back to searching with a fresh timeout. Workers
    /// who passed on it before may be offered it again.
    pub fn retry(&self, job_id: &JobId, now: Millis) -> Result<Vec<Event>, EngineError> {
        self.retry_receipt(job_id, now).map(|r| r.events)
    }

    /// [`Engine::retry`], with the job back in the search.
    pub fn retry_receipt(&self, job_id: &JobId, now: Millis) -> Result<JobReceipt, EngineError> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        let seq = self.retry_in(&mut t, job_id, now, &mut out)?;
        Ok(receipt(&t, seq, out))
    }

    fn retry_in(
        &self,
        t: &mut JobTable,
        job_id: &JobId,
        now: Millis,
        out: &mut Vec<Event>,
    ) -> Result<u64, EngineError> {
        let seq = *t.ids.get(job_id).ok_or(EngineError::JobNotFound)?;
        next(t.jobs[&seq].status, Step::Retry)?;
        let kind = EventKind::JobRetried {
            job_id: job_id.clone(),
            search_deadline: now.plus_secs(self.cfg.search_timeout_s),
        };
        self.emit(t, out, now, kind)?;
        self.dispatch(t, out, seq, now);
        Ok(seq)
    }

    /// Jobs that finished at or before `cutoff`, oldest first, at most `limit`.
    pub fn archivable(&self, cutoff: Millis, limit: usize) -> Vec<JobId> {
        let t = self.jobs.lock();
        t.finished
            .iter()
            .take_while(|(at, _)| *at <= cutoff)
            .take(limit)
            .map(|(_, seq)| t.jobs[seq].id.clone())
            .collect()
    }

    /// Moves finished jobs out of memory: one `JobArchived` (carrying the
    /// job) for each of `ids` still here and finished; others are skipped.
    pub fn archive(&self, ids: &[JobId], now: Millis) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        for id in ids {
            let Some(seq) = t.ids.get(id).copied() else {
                continue;
            };
            let job = &t.jobs[&seq];
            if job.finished_at().is_none() {
                continue;
            }
            let kind = EventKind::JobArchived {
                job: Box::new(job.clone()),
            };
            self.emit(&mut t, &mut out, now, kind)?;
        }
        Ok(out)
    }

    /// Retries a dead letter that had been archived: it comes back
    /// (`JobRestored`) and is retried, in one command under one lock (no
    /// archive pass can take it again in between).
    pub fn retry_archived_receipt(&self, job: Job, now: Millis) -> Result<JobReceipt, EngineError> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        let id = job.id.clone();
        if !t.ids.contains_key(&id) {
            next(job.status, Step::Retry)?;
            let kind = EventKind::JobRestored { job: Box::new(job) };
            self.emit(&mut t, &mut out, now, kind)?;
        }
        let seq = self.retry_in(&mut t, &id, now, &mut out)?;
        Ok(receipt(&t, seq, out))
    }
}

/// The receipt of a job command: its events and the job after them.
fn receipt(t: &JobTable, seq: u64, events: Vec<Event>) -> JobReceipt {
    JobReceipt {
        events,
        job: t.jobs[&seq].clone(),
    }
}
