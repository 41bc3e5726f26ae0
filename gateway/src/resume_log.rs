//! The resume backlogs on disk (API.md v1.2, "Settled questions": the
//! replay window survives `kill -9`). Every message a user's backlog
//! records is appended to `<data_dir>/resume.log` — encoded in memory as it
//! is recorded, written with one `write` per published batch, followed by
//! the seq the batch reached. A killed process loses nothing written (the
//! kernel has it); a machine crash may lose the last batches, which the
//! next start detects (the log ends before the recovered state) and
//! answers as a gap, as before.
//!
//! At start the file is read back: messages still inside the window go
//! into the backlogs in order, then the file is rewritten with just those
//! (so it never holds more than about a window of messages, plus what the
//! running process adds until [`ResumeLog::compact`] rewrites it again).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::wire::ServerMsg;

/// Rewritten from the backlogs once it grows past this many bytes.
const COMPACT_AT: u64 = 64 << 20;

/// One entry: read back owned (`Entry<String, ServerMsg>`), written from
/// borrows (`Entry<&str, &ServerMsg>`: no copy of a message to log it).
#[derive(Serialize, Deserialize)]
enum Entry<U, M> {
    /// Messages at or before this seq were never written here (the gap
    /// floor of the process that started the file).
    Start {
        after: u64,
    },
    Msg {
        user: U,
        seq: u64,
        at: i64,
        msg: M,
    },
    /// Every event up to this seq was published (time ms).
    Published {
        through: u64,
        at: i64,
    },
}

/// What a start reads back.
#[derive(Default)]
pub struct Loaded {
    /// The floor the file began with; `None` for no (usable) file.
    pub start_after: Option<u64>,
    /// The last seq published before the process ended.
    pub published_through: u64,
    /// (user, seq, at ms, message) inside the window, in seq order.
    pub messages: Vec<Message>,
    /// (at ms, seq) of each published batch inside the window.
    pub batches: Vec<(i64, u64)>,
}

pub struct ResumeLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    file: Option<File>,
    /// Encoded entries not yet written.
    buf: Vec<u8>,
    written: u64,
}

/// A written entry.
type Out<'a> = Entry<&'a str, &'a ServerMsg>;

fn encode(buf: &mut Vec<u8>, e: &Out<'_>) {
    // A length prefix, patched once the entry is written in place.
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    rmp_serde::encode::write_named(buf, e).expect("resume entries serialise");
    let n = (buf.len() - at - 4) as u32;
    buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
}

/// Reads entries until the end or the first torn or unreadable one.
fn read_all(path: &Path) -> Vec<Entry<String, ServerMsg>> {
    let Ok(f) = File::open(path) else {
        return Vec::new();
    };
    let mut r = BufReader::new(f);
    let mut out = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if r.read_exact(&mut len).is_err() {
            break;
        }
        let n = u32::from_le_bytes(len) as usize;
        if n > 16 << 20 {
            break;
        }
        let mut body = vec![0u8; n];
        if r.read_exact(&mut body).is_err() {
            break;
        }
        match rmp_serde::from_slice::<Entry<String, ServerMsg>>(&body) {
            Ok(e) => out.push(e),
            Err(_) => break,
        }
    }
    out
}

impl ResumeLog {
    /// Reads what an earlier process left (messages at or after
    /// `since_ms`), then starts the file afresh with them and `start_after`
    /// decided by the caller through [`ResumeLog::begin`].
    pub fn open(data_dir: &Path, since_ms: i64) -> (ResumeLog, Loaded) {
        let path = data_dir.join("resume.log");
        let mut loaded = Loaded::default();
        for e in read_all(&path) {
            match e {
                Entry::Start { after } => {
                    loaded.start_after.get_or_insert(after);
                }
                Entry::Msg { user, seq, at, msg } if at >= since_ms => {
                    loaded.messages.push((user, seq, at, msg));
                }
                Entry::Msg { .. } => {}
                Entry::Published { through, at } => {
                    loaded.published_through = loaded.published_through.max(through);
                    if at >= since_ms {
                        loaded.batches.push((at, through));
                    }
                }
            }
        }
        loaded.messages.sort_by_key(|m| m.1);
        let log = ResumeLog {
            path,
            inner: Mutex::new(Inner {
                file: None,
                buf: Vec::new(),
                written: 0,
            }),
        };
        (log, loaded)
    }

    /// Starts the file: its floor, `messages` (what was loaded), and the
    /// seq published through at start.
    pub fn begin(&self, start_after: u64, messages: &[Message], published: (u64, i64)) {
        let buf = whole_file(start_after, messages, &[], published);
        let mut g = self.inner.lock().expect("resume log");
        g.file = self.rewrite(&buf);
        g.written = buf.len() as u64;
        g.buf.clear();
    }

    /// Writes `bytes` as the whole file (a temporary file renamed into
    /// place) and opens it for appending; `None` (logged) when the disk
    /// refuses: resumes then fall back to gaps after a restart.
    fn rewrite(&self, bytes: &[u8]) -> Option<File> {
        let tmp = self.path.with_extension("log.new");
        let done = (|| -> std::io::Result<File> {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            drop(f);
            std::fs::rename(&tmp, &self.path)?;
            OpenOptions::new().append(true).open(&self.path)
        })();
        match done {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(error = %e, path = %self.path.display(), "resume log unusable; resumes after a restart will be gaps");
                None
            }
        }
    }

    /// Queues a message a backlog recorded (encoded before the lock).
    pub fn record(&self, user: &str, seq: u64, at: i64, msg: &ServerMsg) {
        let mut one = Vec::with_capacity(256);
        encode(&mut one, &Entry::Msg { user, seq, at, msg });
        let mut g = self.inner.lock().expect("resume log");
        if g.file.is_some() {
            g.buf.extend_from_slice(&one);
        }
    }

    /// A batch up to `through` was published: everything queued is written.
    pub fn published(&self, through: u64, at: i64) {
        let mut g = self.inner.lock().expect("resume log");
        if g.file.is_none() {
            return;
        }
        encode(&mut g.buf, &Entry::Published { through, at });
        let buf = std::mem::take(&mut g.buf);
        let ok = g.file.as_mut().map(|f| f.write_all(&buf));
        match ok {
            Some(Ok(())) => g.written += buf.len() as u64,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "resume log write failed; resumes after a restart will be gaps");
                g.file = None;
            }
            None => {}
        }
        g.buf = buf;
        g.buf.clear();
    }

    /// Whether the file has grown enough to be rewritten.
    pub fn wants_compaction(&self) -> bool {
        let g = self.inner.lock().expect("resume log");
        g.file.is_some() && g.written > COMPACT_AT
    }

    /// Rewrites the file with `messages` (the backlogs' content), keeping
    /// its floor, what is queued, and the last published seq.
    pub fn compact(&self, start_after: u64, published: (u64, i64), messages: &[Message]) {
        let mut g = self.inner.lock().expect("resume log");
        if g.file.is_none() {
            return;
        }
        let pending = std::mem::take(&mut g.buf);
        let buf = whole_file(start_after, messages, &pending, published);
        g.file = self.rewrite(&buf);
        g.written = buf.len() as u64;
    }
}

/// A message as the log holds it: (user, seq, at ms, message).
pub type Message = (String, u64, i64, ServerMsg);

/// A file's whole content: its floor, `messages`, entries already encoded
/// (`queued`), then the seq published through.
fn whole_file(
    start_after: u64,
    messages: &[Message],
    queued: &[u8],
    (through, at): (u64, i64),
) -> Vec<u8> {
    let mut buf = Vec::new();
    encode(&mut buf, &Entry::Start { after: start_after });
    for (user, seq, at, msg) in messages {
        let (seq, at) = (*seq, *at);
        encode(&mut buf, &Entry::Msg { user, seq, at, msg });
    }
    buf.extend_from_slice(queued);
    encode(&mut buf, &Entry::Published { through, at });
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revoke(seq: u64) -> ServerMsg {
        ServerMsg::OfferRevoked {
            job_id: "j".into(),
            reason: "expired".into(),
            seq,
        }
    }

    #[test]
    fn what_was_published_comes_back_and_a_torn_tail_is_dropped() {
        let dir = std::env::temp_dir().join(format!("resume-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let (log, l) = ResumeLog::open(&dir, 0);
        assert!(l.start_after.is_none());
        log.begin(10, &[], (10, 0));
        log.record("w1", 11, 1_000, &revoke(11));
        log.record("r1", 12, 1_000, &revoke(12));
        log.published(12, 1_000);
        log.record("w1", 13, 5_000, &revoke(13));
        log.published(14, 5_000);
        // Queued but never published: not there.
        log.record("w1", 15, 6_000, &revoke(15));
        drop(log);
        // A torn tail (a crash mid-write) is ignored.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join("resume.log"))
            .unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        let (log, l) = ResumeLog::open(&dir, 2_000);
        assert_eq!(l.start_after, Some(10));
        assert_eq!(l.published_through, 14);
        let seqs: Vec<u64> = l.messages.iter().map(|m| m.1).collect();
        assert_eq!(seqs, [13], "older than the window: dropped");
        assert_eq!(l.batches, [(5_000, 14)]);
        log.begin(10, &l.messages, (14, 7_000));
        drop(log);
        let (_, l) = ResumeLog::open(&dir, 0);
        assert_eq!(l.messages.len(), 1);
        assert_eq!(l.published_through, 14);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
