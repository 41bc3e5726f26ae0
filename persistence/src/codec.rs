//! How entries are framed on disk: `crc32(payload) | payload`, the payload
//! being MessagePack with named fields. A torn or flipped byte fails the
//! checksum and the entry is treated as the end of the log.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::account::Account;

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    /// A change of engine state, in the engine's order.
    Event(engine::Event),
    /// A new account (also materialised in the accounts tree).
    Account(Account),
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("entry shorter than its header")]
    Truncated,
    #[error("checksum mismatch")]
    Checksum,
    #[error("undecodable payload: {0}")]
    Payload(#[from] rmp_serde::decode::Error),
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    frame(rmp_serde::to_vec_named(value).expect("our types always encode"))
}

/// Structs as arrays rather than maps: smaller and faster to decode, for
/// snapshots (large, and read by the same code that wrote them). Not for
/// types with internally tagged enums, which need field names.
pub fn encode_compact<T: Serialize>(value: &T) -> Vec<u8> {
    frame(rmp_serde::to_vec(value).expect("our types always encode"))
}

fn frame(payload: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() < 4 {
        return Err(DecodeError::Truncated);
    }
    let (crc, payload) = bytes.split_at(4);
    if crc32fast::hash(payload).to_le_bytes() != crc {
        return Err(DecodeError::Checksum);
    }
    Ok(rmp_serde::from_slice(payload)?)
}

/// Big-endian keys sort like the numbers they hold.
pub fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub fn seq_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{EventKind, JobId, Millis, ResidentId, Skill};

    #[test]
    fn round_trip_and_corruption() {
        let e = Entry::Event(engine::Event {
            seq: 7,
            at: Millis(1),
            kind: EventKind::JobCreated {
                job_id: JobId::from("j"),
                resident_id: ResidentId::from("r"),
                lat: 52.123456789012,
                lng: -0.1,
                skill: Skill::new("plumbing").unwrap(),
                description: "tap".into(),
                property_id: None,
                schedule_id: None,
                parts: vec![],
                urgency: Default::default(),
                triage: None,
                estimate_cents: None,
                attachments: vec!["att_1".into()],
                search_deadline: Millis(2),
            },
        });
        let bytes = encode(&e);
        assert_eq!(decode::<Entry>(&bytes).unwrap(), e);
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            decode::<Entry>(&flipped),
            Err(DecodeError::Checksum)
        ));
        assert!(matches!(
            decode::<Entry>(&bytes[..3]),
            Err(DecodeError::Truncated)
        ));
        assert!(decode::<Entry>(&bytes[..bytes.len() - 2]).is_err());
    }
}
