//! The dispatcher: one task per node that, while this node delivers (a
//! single node always; in a cluster the timer-lease holder), takes due
//! deliveries from the outbox with a claim, sends them with bounded
//! concurrency — a slow or dead endpoint holds one of `max_in_flight`
//! slots, never dispatch itself — records each outcome, disables an
//! endpoint that answered 410, and prunes ended entries after the retention.
//!
//! Deliveries about one job to one target go one at a time, in the job's
//! event order (a lane per job and target): a receiver sees `job.accepted`
//! before `job.completed`. A delivery waiting for a retry does not hold its
//! lane (no head-of-line blocking: its retry may arrive after later ones).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::notify::outbox::{DeliveryRecord, DeliveryStatus, Outcome};
use engine::{Channel, Millis, Op};
use tokio::sync::{watch, Semaphore};

use super::deliver::Sender;
use super::sign::Secret;
use crate::app::AppState;

/// How often the outbox is looked at when nothing wakes the dispatcher.
const POLL: Duration = Duration::from_millis(250);
/// Deliveries taken at once.
const BATCH: usize = 64;
/// How long a taken delivery stays claimed past its attempt's time limit
/// (twice that, plus this): a node that dies with deliveries in flight
/// leaves them to the next one after the claim.
const CLAIM_SLACK_MS: i64 = 5_000;
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How often the backlog gauge is read.
const GAUGE_EVERY: Duration = Duration::from_secs(5);

pub async fn run(app: AppState, mut stop: watch::Receiver<bool>) {
    let sender = match Sender::new(&app.cfg.notify) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "notifications disabled: cannot build the senders");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(app.cfg.notify.max_in_flight));
    let delays = Arc::new(app.cfg.notify.delays());
    let lanes = Arc::new(Lanes::default());
    let mut last_prune = Instant::now();
    let mut last_gauge = Instant::now() - GAUGE_EVERY;
    let claim_ms = app.cfg.notify.timeout_s as i64 * 2000 + CLAIM_SLACK_MS;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let Some(core) = app.core_any() else { continue };
        if !core.backend.delivers_notifications() {
            continue;
        }
        if last_gauge.elapsed() >= GAUGE_EVERY {
            last_gauge = Instant::now();
            if let Ok(n) = core.backend.outbox_pending().await {
                app.metrics.outbox_pending(n);
            }
        }
        // Take until the due ones are all in flight — but never more than
        // a few per slot at once (a backlog stays on disk, not in memory).
        let most = app.cfg.notify.max_in_flight * 4;
        loop {
            if *stop.borrow() || lanes.taken() >= most {
                break;
            }
            let now = app.clock.now();
            let until = Millis(now.0 + claim_ms);
            let room = BATCH.min(most - lanes.taken());
            let mut batch = match core.backend.outbox_take_due(now, until, room).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox unavailable");
                    break;
                }
            };
            let full = batch.len() == room;
            batch.sort_by_key(|r| order(&r.id));
            for r in batch {
                let Some(first) = lanes.enqueue(r) else {
                    continue;
                };
                let ctx = Lane {
                    app: app.clone(),
                    sender: sender.clone(),
                    delays: delays.clone(),
                    slots: slots.clone(),
                    lanes: lanes.clone(),
                };
                tokio::spawn(ctx.run(first));
            }
            if !full {
                break;
            }
        }
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = Instant::now();
            let keep = app.cfg.notify.keep_delivered_s as i64 * 1000;
            let before = Millis(app.clock.now().0 - keep);
            match core.backend.outbox_prune(before).await {
                Ok(n) if n > 0 => tracing::debug!(pruned = n, "outbox entries pruned"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox prune failed"),
            }
        }
    }
}

/// A delivery's place in its notification order: (event seq, n).
fn order(id: &str) -> (u64, u64) {
    let rest = id.strip_prefix("ntf_").unwrap_or(id);
    let (seq, n) = rest.split_once('.').unwrap_or((rest, "0"));
    (seq.parse().unwrap_or(0), n.parse().unwrap_or(0))
}

/// The lane of a delivery: its target and the job it is about.
fn lane_key(r: &DeliveryRecord) -> String {
    format!(
        "{}\u{0}{}\u{0}{}",
        r.channel.name(),
        r.target,
        r.data.subject()
    )
}

/// Deliveries waiting behind one in flight, per lane; and every id taken
/// (so one still queued when its claim lapses is not taken twice).
#[derive(Default)]
struct Lanes {
    inner: Mutex<LaneState>,
}

/// Waiting deliveries per lane, and the ids taken.
type LaneState = (HashMap<String, VecDeque<DeliveryRecord>>, HashSet<String>);

impl Lanes {
    /// Queues `r`; returns it back when its lane was idle (the caller runs
    /// the lane), `None` when it waits behind another or is taken already.
    fn enqueue(&self, r: DeliveryRecord) -> Option<DeliveryRecord> {
        let mut g = self.inner.lock().expect("lanes");
        let (lanes, taken) = &mut *g;
        if !taken.insert(r.id.clone()) {
            return None;
        }
        match lanes.get_mut(&lane_key(&r)) {
            Some(q) => {
                q.push_back(r);
                None
            }
            None => {
                lanes.insert(lane_key(&r), VecDeque::new());
                Some(r)
            }
        }
    }

    /// Deliveries taken and not yet handled.
    fn taken(&self) -> usize {
        self.inner.lock().expect("lanes").1.len()
    }

    /// `done` was handled: the next of its lane, or the lane closes.
    fn next(&self, done: &DeliveryRecord) -> Option<DeliveryRecord> {
        let mut g = self.inner.lock().expect("lanes");
        let (lanes, taken) = &mut *g;
        taken.remove(&done.id);
        let key = lane_key(done);
        let next = lanes.get_mut(&key).and_then(|q| q.pop_front());
        if next.is_none() {
            lanes.remove(&key);
        }
        next
    }
}

struct Lane {
    app: AppState,
    sender: Arc<Sender>,
    delays: Arc<Vec<Duration>>,
    slots: Arc<Semaphore>,
    lanes: Arc<Lanes>,
}

impl Lane {
    async fn run(self, first: DeliveryRecord) {
        let mut current = first;
        loop {
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                return;
            };
            attempt(&self.app, &self.sender, &self.delays, current.clone()).await;
            drop(permit);
            match self.lanes.next(&current) {
                Some(n) => current = n,
                None => return,
            }
        }
    }
}

/// One delivery: send, record, store; a 410 disables its endpoint.
async fn attempt(app: &AppState, sender: &Sender, delays: &[Duration], mut r: DeliveryRecord) {
    let Some(core) = app.core_any() else { return };
    let channel = r.channel.name();
    let started = Instant::now();
    // An ops endpoint's secret; one removed or disabled since gets nothing.
    let mut secret = None;
    let outcome = match &r.endpoint {
        Some(ep) => match core.engine.webhook(ep) {
            Some(w) if !w.disabled => {
                secret = Secret::parse(&w.secret);
                None
            }
            Some(_) => Some(Outcome::GiveUp {
                status: None,
                error: "endpoint disabled".into(),
            }),
            None => Some(Outcome::GiveUp {
                status: None,
                error: "endpoint removed".into(),
            }),
        },
        None => None,
    };
    let skipped = outcome.is_none() && !sender.configured(r.channel);
    let outcome = match outcome {
        Some(o) => o,
        None => sender.send(&r, secret.as_ref()).await,
    };
    let took = started.elapsed();
    let gone = matches!(
        outcome,
        Outcome::GiveUp {
            status: Some(410),
            ..
        }
    ) && r.channel == Channel::Webhook;
    let jitter = rand::random::<f64>() * 2.0 - 1.0;
    r.record(
        outcome,
        app.clock.now(),
        took.as_millis() as u64,
        jitter,
        delays,
    );
    let label = match r.status {
        _ if skipped => "skipped",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Pending => "retried",
        DeliveryStatus::Failed => "failed",
    };
    app.metrics.notification(channel, label, took);
    if let Err(e) = core.backend.outbox_save(r.clone(), false).await {
        tracing::warn!(error = %e, id = %r.id, "delivery outcome not stored; it will be sent again");
    }
    if gone {
        if let Some(ep) = r.endpoint.clone() {
            tracing::info!(endpoint = %ep, "webhook answered 410 Gone; disabled");
            if let Err(e) = core.exec(app, Op::DisableWebhook { id: ep }).await {
                tracing::warn!(error = ?e, "could not disable the endpoint");
            }
        }
    }
}
