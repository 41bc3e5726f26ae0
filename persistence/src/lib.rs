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
//! * [`store`] — [`SledStore`]: appends and durability waits, accounts,
//!   snapshots (`store/writer.rs`: the log writer thread; `store/recovery.rs`:
//!   snapshot + replay); [`Snapshotter`] runs the snapshot policy and the final
//!   snapshot at shutdown. The rest of dispatchd uses only these methods
//!   (append, create account, look up accounts, snapshot, open, close), so
//!   the store behind them can change without touching the engine or the
//!   gateway; sled types never appear in them.
//! * `snapshot` — snapshot files: atomic write, newest-good load, pruning.
//! * [`codec`] — on-disk framing (`crc32 | MessagePack`) and [`Entry`].
//! * [`account`] — [`Account`], [`Role`].
//! * [`archive`] — finished jobs that left the engine, indexed for queries
//!   (a redb file: its memory does not grow with history).
//! * [`outbox`] — notification deliveries waiting or done (a redb file,
//!   written with the log, read by the gateway's dispatcher).
//!
//! Worker positions are soft state: they are not logged (apps resend them
//! every few seconds), but snapshots carry the latest ones.

pub mod account;
pub mod archive;
pub mod codec;
pub mod history;
pub mod outbox;
mod snapshot;
pub mod store;

pub use account::{Account, Role};
pub use archive::Archive;
pub use codec::Entry;
pub use outbox::Outbox;
pub use store::{
    AccountDone, Done, DurableSink, RecoveryReport, SledStore, Snapshotter, StoreOptions,
};

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
