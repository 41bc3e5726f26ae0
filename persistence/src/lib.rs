//! # dispatchd persistence
//!
//! Makes the engine's state and the accounts durable on the embedded
//! default, sled 0.34: every engine event and account creation goes into a
//! checksummed log, group-committed by one writer thread, and is
//! acknowledged only once flushed; snapshots of the whole engine are written
//! beside it and compact the log; on start the newest good snapshot plus the
//! log after it rebuild the engine, dropping a torn tail.
//!
//! ## Layout
//! * [`store`] — [`SledStore`]: the writer, appends, accounts, snapshots,
//!   recovery. The rest of dispatchd uses only this type's methods, so the
//!   store behind it can change without touching the engine or the gateway.
//! * `snapshot` — snapshot files: atomic write, newest-good load, pruning.
//! * [`codec`] — on-disk framing (`crc32 | MessagePack`) and [`Entry`].
//! * [`account`] — [`Account`], [`Role`].
//!
//! Worker positions are soft state: they are not logged (apps resend them
//! every few seconds), but snapshots carry the latest ones.

pub mod account;
pub mod codec;
mod snapshot;
pub mod store;

pub use account::{Account, Role};
pub use codec::Entry;
pub use store::{AccountDone, Done, RecoveryReport, SledStore, StoreOptions};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("storage I/O: {0}")]
    Io(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("email already registered")]
    EmailTaken,
    #[error("account id already exists")]
    Conflict,
    #[error("the store is closed")]
    Closed,
    #[error("event {0} never reached the log")]
    Gap(u64),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}
