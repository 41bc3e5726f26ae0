//! An outbox entry: one delivery of one notification, and what became of
//! each attempt. Pure data and the one function that decides what an
//! attempt's outcome means; where entries live (a redb file, Redis) is the
//! backend's business, and who sends them is the gateway's.

use serde::{Deserialize, Serialize};

use super::schedule;
use super::{Channel, Notice, NoticeData};
use crate::types::Millis;

/// Most attempts kept in an entry's log (the schedule allows ten).
const MAX_LOGGED_ATTEMPTS: usize = 16;
/// Longest error text kept per attempt.
const MAX_ERROR_BYTES: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|d| d.name() == s)
    }

    /// A small number for index keys.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// One try and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: Millis,
    /// The receiver's HTTP status (webhooks, SMS), or an SMTP reply code.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered {
        status: Option<u16>,
    },
    /// Try again per the schedule (`retry_after` from the receiver).
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<std::time::Duration>,
    },
    /// Never again: 410 Gone, a target refused, a channel not configured.
    GiveUp {
        status: Option<u16>,
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// `ntf_<seq>.<n>`.
    pub id: String,
    /// The notification's id (`webhook-id` for webhooks: stable across retries).
    pub event_id: String,
    pub event_type: String,
    /// When the change happened.
    pub at: Millis,
    pub channel: Channel,
    pub target: String,
    pub endpoint: Option<String>,
    pub user: Option<String>,
    pub data: NoticeData,
    pub attempts: Vec<Attempt>,
    /// Attempts made in all (the log keeps the last few).
    pub tries: u32,
    /// When it is due (pending), or when it ended.
    pub next_at: Millis,
    pub status: DeliveryStatus,
    /// Taken by a dispatcher and not due again before this (its attempt's
    /// outcome clears it). Absent in entries written before claims.
    #[serde(default)]
    pub claimed_until: Option<Millis>,
}

impl DeliveryRecord {
    /// The outbox entries of a notification raised at `at`, due at once.
    pub fn from_notice(notice: &Notice, at: Millis) -> Vec<DeliveryRecord> {
        notice
            .deliveries
            .iter()
            .map(|d| DeliveryRecord {
                id: d.id.clone(),
                event_id: notice.id.clone(),
                event_type: notice.event_type.clone(),
                at,
                channel: d.channel,
                target: d.target.clone(),
                endpoint: d.endpoint.clone(),
                user: d.user.clone(),
                data: notice.data.clone(),
                attempts: Vec::new(),
                tries: 0,
                next_at: at,
                status: DeliveryStatus::Pending,
                claimed_until: None,
            })
            .collect()
    }

    /// When it is next looked at: its claim's end, or when it is due.
    pub fn due_at(&self) -> Millis {
        self.claimed_until.unwrap_or(self.next_at)
    }

    pub fn last(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// Records an attempt made at `now` that took `duration_ms`, and moves
    /// the entry on: delivered, due again per the schedule (`jitter` in
    /// [-1, 1]; `delays` the schedule to follow), or failed.
    pub fn record(
        &mut self,
        outcome: Outcome,
        now: Millis,
        duration_ms: u64,
        jitter: f64,
        delays: &[std::time::Duration],
    ) {
        self.tries += 1;
        self.claimed_until = None;
        let (status, error) = match &outcome {
            Outcome::Delivered { status } => (*status, None),
            Outcome::Retry { status, error, .. } | Outcome::GiveUp { status, error } => {
                (*status, Some(truncate(error)))
            }
        };
        self.attempts.push(Attempt {
            at: now,
            status,
            error,
            duration_ms,
        });
        if self.attempts.len() > MAX_LOGGED_ATTEMPTS {
            self.attempts.remove(0);
        }
        match outcome {
            Outcome::Delivered { .. } => {
                self.status = DeliveryStatus::Delivered;
                self.next_at = now;
            }
            Outcome::GiveUp { .. } => {
                self.status = DeliveryStatus::Failed;
                self.next_at = now;
            }
            Outcome::Retry { retry_after, .. } => {
                match schedule::next_delay_in(delays, self.tries, jitter, retry_after) {
                    Some(d) => self.next_at = Millis(now.0 + d.as_millis() as i64),
                    None => {
                        self.status = DeliveryStatus::Failed;
                        self.next_at = now;
                    }
                }
            }
        }
    }

    /// Ops asked for another try: due now, whatever it came to before.
    pub fn retry_now(&mut self, now: Millis) {
        self.status = DeliveryStatus::Pending;
        self.next_at = now;
        self.tries = 0;
        self.claimed_until = None;
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_ERROR_BYTES {
        return s.to_owned();
    }
    let mut end = MAX_ERROR_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Delivery;
    use std::time::Duration;

    fn record() -> DeliveryRecord {
        let e = crate::Engine::new(crate::EngineConfig::default()).unwrap();
        let job = e
            .create_job_receipt(
                crate::NewJob {
                    id: "j".into(),
                    resident_id: "r".into(),
                    lat: 0.0,
                    lng: 0.0,
                    skill: crate::Skill::new("x").unwrap(),
                    description: String::new(),
                },
                Millis(0),
            )
            .unwrap()
            .job;
        let notice = Notice {
            id: "ntf_2".into(),
            event_type: "job.created".into(),
            data: NoticeData::Job { job: Box::new(job) },
            deliveries: vec![Delivery {
                id: "ntf_2.0".into(),
                channel: Channel::Webhook,
                target: "https://example.com".into(),
                endpoint: Some("wh".into()),
                user: None,
            }],
        };
        DeliveryRecord::from_notice(&notice, Millis(1000)).remove(0)
    }

    fn retry() -> Outcome {
        Outcome::Retry {
            status: Some(500),
            error: "HTTP 500".into(),
            retry_after: None,
        }
    }

    #[test]
    fn retried_on_the_schedule_then_failed() {
        let mut r = record();
        assert_eq!(
            (r.status, r.next_at),
            (DeliveryStatus::Pending, Millis(1000))
        );
        let mut now = Millis(1000);
        for (i, d) in schedule::DELAYS.iter().enumerate() {
            r.record(retry(), now, 3, 0.0, &schedule::DELAYS);
            assert_eq!(r.status, DeliveryStatus::Pending, "after failure {}", i + 1);
            assert_eq!(r.next_at.0 - now.0, d.as_millis() as i64);
            now = r.next_at;
        }
        r.record(retry(), now, 3, 0.0, &schedule::DELAYS);
        assert_eq!(r.status, DeliveryStatus::Failed);
        assert_eq!(r.tries, schedule::MAX_ATTEMPTS);
        assert_eq!(r.last().unwrap().status, Some(500));
        r.retry_now(Millis(5));
        assert_eq!(
            (r.status, r.next_at, r.tries),
            (DeliveryStatus::Pending, Millis(5), 0)
        );
    }

    #[test]
    fn delivered_gone_and_retry_after() {
        let mut r = record();
        let ra = Outcome::Retry {
            status: Some(429),
            error: "HTTP 429".into(),
            retry_after: Some(Duration::from_secs(120)),
        };
        r.record(ra, Millis(1000), 1, 1.0, &schedule::DELAYS);
        assert_eq!(r.next_at, Millis(1000 + 120_000), "Retry-After beats 5 s");
        r.record(
            Outcome::Delivered { status: Some(204) },
            Millis(2000),
            1,
            0.0,
            &schedule::DELAYS,
        );
        assert_eq!(r.status, DeliveryStatus::Delivered);
        let mut g = record();
        let gone = Outcome::GiveUp {
            status: Some(410),
            error: "x".repeat(5000),
        };
        g.record(gone, Millis(1000), 1, 0.0, &schedule::DELAYS);
        assert_eq!(g.status, DeliveryStatus::Failed);
        assert_eq!(
            g.last().unwrap().error.as_ref().unwrap().len(),
            MAX_ERROR_BYTES
        );
    }
}
