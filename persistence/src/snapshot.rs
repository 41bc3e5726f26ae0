//! Snapshot files: the whole engine state as of one event, written beside
//! the sled database so that a large state never sits in the log.
//!
//! A file is written to a temporary name, fsynced, renamed into place and
//! the directory fsynced: a crash leaves either the old set of snapshots or
//! the new one, never a half file under a real name. Loading tries the newest
//! first and falls back to older ones if a checksum fails.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::codec;
use crate::StoreError;

const MAGIC: &[u8; 8] = b"DSPSNAP1";

fn path_for(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.snap"))
}

/// Snapshot files present, newest first, as (covered seq, path).
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(seq) = name
            .strip_suffix(".snap")
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((seq, path));
        }
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(out)
}

pub fn write(dir: &Path, snap: &engine::Snapshot) -> Result<PathBuf, StoreError> {
    let final_path = path_for(dir, snap.last_seq);
    let tmp = final_path.with_extension("snap.tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(MAGIC)?;
    f.write_all(&codec::encode_compact(snap))?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, &final_path)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(final_path)
}

/// The newest snapshot that reads back whole; corrupt ones are skipped with a warning.
pub fn load_latest(dir: &Path) -> Result<Option<engine::Snapshot>, StoreError> {
    for (seq, path) in list(dir)? {
        let bytes = fs::read(&path)?;
        let body = bytes.strip_prefix(MAGIC.as_slice());
        match body.map(codec::decode::<engine::Snapshot>) {
            Some(Ok(s)) if s.last_seq == seq => return Ok(Some(s)),
            other => {
                let why = match other {
                    None => "bad magic".to_string(),
                    Some(Err(e)) => e.to_string(),
                    Some(Ok(_)) => "sequence does not match its name".to_string(),
                };
                tracing::warn!(path = %path.display(), %why, "skipping unreadable snapshot");
            }
        }
    }
    Ok(None)
}

/// Deletes all but the newest `keep` snapshots, and stray temporary files.
pub fn prune(dir: &Path, keep: usize) -> Result<(), StoreError> {
    for (_, path) in list(dir)?.into_iter().skip(keep.max(1)) {
        fs::remove_file(path)?;
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            let _ = fs::remove_file(path);
        }
    }
    Ok(())
}
