//! Attachments: photos and invoices uploaded once, then listed by jobs
//! and logs (API.md "Intake"). The bytes live outside the engine, on disk
//! and content-addressed by SHA-256; what passes through the one write
//! path is their record (`AttachmentStored`), and a job or log that lists
//! them. Both grow with time, so the persistence keeps them in its history
//! tables, not the engine's memory: the engine checks their shape and
//! applies nothing.

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::event::EventKind;
use crate::types::{JobId, Millis};

/// Most attachments one job or log lists.
pub const MAX_PER_ITEM: usize = 20;

/// The types an attachment may have.
pub const CONTENT_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "application/pdf"];

/// One upload: who sent it, what it is, and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    /// The uploader's account id.
    pub owner_id: String,
    pub content_type: String,
    pub size: u64,
    /// Lowercase hex; the bytes' file name.
    pub sha256: String,
    pub created_at: Millis,
    /// What it adds to its owner's stored bytes: its size, or 0 when the
    /// owner stored the same bytes before (they are kept once).
    #[serde(default)]
    pub counted: u64,
}

impl Attachment {
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |field: &'static str, reason: &'static str| {
            Err(EngineError::InvalidInput { field, reason })
        };
        if !valid_id(&self.id) {
            return bad("id", "must be 1 to 128 visible ASCII characters");
        }
        if self.owner_id.is_empty() || self.owner_id.len() > 128 {
            return bad("owner_id", "must be 1 to 128 bytes");
        }
        if !CONTENT_TYPES.contains(&self.content_type.as_str()) {
            return bad(
                "content_type",
                "must be image/jpeg, image/png, image/webp or application/pdf",
            );
        }
        if self.sha256.len() != 64
            || !self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return bad("sha256", "must be 64 lowercase hex digits");
        }
        Ok(())
    }
}

/// An attachment id as jobs and logs may list it.
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The attachments a job or log lists: at most [`MAX_PER_ITEM`] ids.
pub fn check_list(ids: &[String]) -> Result<(), EngineError> {
    if ids.len() > MAX_PER_ITEM || !ids.iter().all(|i| valid_id(i)) {
        return Err(EngineError::InvalidInput {
            field: "attachments",
            reason: "at most 20 ids of 1 to 128 bytes",
        });
    }
    Ok(())
}

/// A job or log that lists an attachment: whoever may see it may fetch
/// the attachment. Written beside the attachment's record when the job or
/// log is, so access needs no scan of jobs or logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// `<attachment id> <job or log id>`.
    pub id: String,
    pub attachment_id: String,
    #[serde(default)]
    pub job_id: Option<JobId>,
    #[serde(default)]
    pub log_id: Option<String>,
    pub at: Millis,
}

impl AttachmentRef {
    /// The references an event writes (a job or log created with
    /// attachments), one per distinct id, in id order.
    pub fn from_event(kind: &EventKind, at: Millis) -> Vec<AttachmentRef> {
        let (ids, job_id, log_id) = match kind {
            EventKind::JobCreated {
                job_id,
                attachments,
                ..
            } => (attachments, Some(job_id.clone()), None),
            EventKind::MaintenanceLogged { log, .. } => {
                (&log.attachments, None, Some(log.id.clone()))
            }
            _ => return Vec::new(),
        };
        let holder = job_id
            .as_ref()
            .map(|j| j.as_str().to_owned())
            .or_else(|| log_id.clone())
            .unwrap_or_default();
        let mut ids: Vec<&String> = ids.iter().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .map(|a| AttachmentRef {
                id: format!("{a} {holder}"),
                attachment_id: a.clone(),
                job_id: job_id.clone(),
                log_id: log_id.clone(),
                at,
            })
            .collect()
    }
}

impl crate::Engine {
    /// Records an upload whose bytes are already durable; refused when it would take its owner's stored
    /// bytes past `quota` (API.md v1.2, `[attachments] quota_bytes_per_user`).
    pub fn add_attachment(
        &self,
        attachment: Attachment,
        quota: u64,
        now: Millis,
    ) -> Result<Vec<crate::Event>, EngineError> {
        attachment.validate()?;
        let mut t = self.jobs.lock();
        let used = t
            .attachment_usage
            .get(&attachment.owner_id)
            .copied()
            .unwrap_or(0);
        if attachment.counted > 0 && used.saturating_add(attachment.counted) > quota {
            return Err(EngineError::QuotaExceeded);
        }
        let mut out = Vec::new();
        self.emit(
            &mut t,
            &mut out,
            now,
            EventKind::AttachmentStored {
                attachment: Box::new(attachment),
            },
        )?;
        Ok(out)
    }
}

impl crate::Engine {
    /// The bytes of uploads `owner` keeps (each distinct file once).
    pub fn attachment_usage(&self, owner: &str) -> u64 {
        self.jobs
            .lock()
            .attachment_usage
            .get(owner)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att() -> Attachment {
        Attachment {
            id: "att_1".into(),
            owner_id: "res_1".into(),
            content_type: "image/png".into(),
            size: 10,
            sha256: "a".repeat(64),
            created_at: Millis(1),
            counted: 10,
        }
    }

    #[test]
    fn shape_is_checked() {
        assert!(att().validate().is_ok());
        let mut a = att();
        a.content_type = "text/html".into();
        assert!(a.validate().is_err());
        let mut a = att();
        a.sha256 = "A".repeat(64);
        assert!(a.validate().is_err());
        let mut a = att();
        a.id = "has space".into();
        assert!(a.validate().is_err());
        assert!(check_list(&vec!["a".to_owned(); 21]).is_err());
        assert!(check_list(&["ok".to_owned()]).is_ok());
        assert!(check_list(&[String::new()]).is_err());
    }

    #[test]
    fn a_job_listing_one_twice_refers_to_it_once() {
        let kind = EventKind::JobCreated {
            job_id: JobId::from("job_1"),
            resident_id: "res_1".into(),
            lat: 0.0,
            lng: 0.0,
            skill: crate::Skill::new("plumbing").unwrap(),
            description: String::new(),
            search_deadline: Millis(0),
            property_id: None,
            schedule_id: None,
            parts: Vec::new(),
            urgency: Default::default(),
            triage: None,
            estimate_cents: None,
            attachments: vec!["att_1".into(), "att_2".into(), "att_1".into()],
        };
        let refs = AttachmentRef::from_event(&kind, Millis(5));
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].id, "att_1 job_1");
        assert_eq!(refs[1].job_id, Some(JobId::from("job_1")));
        assert!(refs.iter().all(|r| r.log_id.is_none() && r.at == Millis(5)));
    }
}

#[cfg(test)]
mod quota_tests {
    use super::*;
    use crate::{Engine, EngineConfig};

    fn upload(owner: &str, n: u8, counted: u64) -> Attachment {
        Attachment {
            id: format!("att_{owner}_{n}"),
            owner_id: owner.into(),
            content_type: "image/png".into(),
            size: 100,
            sha256: format!("{:02x}", n).repeat(32),
            created_at: Millis(1),
            counted,
        }
    }

    #[test]
    fn the_quota_counts_each_owner_and_survives_a_snapshot() {
        let e = Engine::new(EngineConfig::default()).unwrap();
        e.add_attachment(upload("a", 1, 100), 250, Millis(1))
            .unwrap();
        e.add_attachment(upload("a", 2, 100), 250, Millis(1))
            .unwrap();
        // The same bytes again count nothing, and fit.
        e.add_attachment(upload("a", 1, 0), 250, Millis(1)).unwrap();
        assert_eq!(
            e.add_attachment(upload("a", 3, 100), 250, Millis(1)),
            Err(EngineError::QuotaExceeded)
        );
        e.add_attachment(upload("b", 3, 100), 250, Millis(1))
            .unwrap();
        assert_eq!(
            (e.attachment_usage("a"), e.attachment_usage("b")),
            (200, 100)
        );
        let back = Engine::restore(EngineConfig::default(), &e.snapshot()).unwrap();
        assert_eq!(back.attachment_usage("a"), 200);
    }
}
