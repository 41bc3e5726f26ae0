//! Password hashing, bounded in time and memory.
//!
//! Argon2id is deliberately expensive: 19 MiB and tens of milliseconds per
//! hash at the default cost. Register and login are open to anyone, so
//! hashing runs on a fixed set of `max_concurrent_hashes` threads, each of
//! which owns one memory block that every hash it computes reuses. A request
//! waits for a permit at most [`ADMISSION_WAIT`] and then gets 503 with
//! `Retry-After`; a permit is held until the hash is done even if the
//! request that asked for it has gone. So at most `max_concurrent_hashes`
//! hashes ever run, and hashing memory is `max_concurrent_hashes × memory
//! cost` for the life of the process — the allocator never sees a 19 MiB
//! allocation after a thread's first hash (allocating one per hash on a
//! blocking pool made every pool thread keep an arena of its own).

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Longest a request waits for a hashing thread before it is answered 503.
pub const ADMISSION_WAIT: Duration = Duration::from_secs(5);
/// Largest memory cost (KiB) a stored hash may ask a verification for,
/// unless the configured cost is larger: a damaged or foreign hash must not
/// make a thread allocate without bound.
const MAX_STORED_MEMORY_KIB: u32 = 256 * 1024;

enum Work {
    Hash {
        password: String,
        reply: oneshot::Sender<String>,
    },
    Verify {
        password: String,
        phc: String,
        reply: oneshot::Sender<bool>,
    },
}

struct Task {
    work: Work,
    /// Released when the thread has finished, not when the caller gave up.
    permit: OwnedSemaphorePermit,
}

/// The hashing threads and the permits that admit work to them.
pub struct Hasher {
    permits: Arc<Semaphore>,
    tasks: std_mpsc::Sender<Task>,
    params: Params,
    threads: usize,
}

impl Hasher {
    /// Starts `threads` hashing threads (at least one) for new hashes of
    /// cost `params`.
    pub fn start(params: Params, threads: usize) -> Hasher {
        let threads = threads.max(1);
        let (tx, rx) = std_mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let params = params.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(rx, params))
                .expect("spawn a hashing thread");
        }
        Hasher {
            permits: Arc::new(Semaphore::new(threads)),
            tasks: tx,
            params,
            threads,
        }
    }

    /// How many hashes may run at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Bytes of memory one hash at the configured cost takes.
    pub fn memory_bytes(&self) -> usize {
        self.params.block_count() * std::mem::size_of::<Block>()
    }

    async fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout(ADMISSION_WAIT, self.permits.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => {
                metrics::counter!("dispatchd_hash_rejected_total").increment(1);
                Err(ApiError::Busy(
                    "password hashing is at capacity; retry shortly",
                ))
            }
        }
    }

    /// A PHC string for `password` with a fresh random salt.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let permit = self.admit().await?;
        let (reply, rx) = oneshot::channel();
        self.send(Task {
            work: Work::Hash { password, reply },
            permit,
        })?;
        rx.await
            .map_err(|_| ApiError::Unavailable("password hashing failed".into()))
    }

    /// Whether `password` matches the stored PHC string `phc`.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, ApiError> {
        let permit = self.admit().await?;
        let (reply, rx) = oneshot::channel();
        self.send(Task {
            work: Work::Verify {
                password,
                phc,
                reply,
            },
            permit,
        })?;
        rx.await
            .map_err(|_| ApiError::Unavailable("password hashing failed".into()))
    }

    fn send(&self, task: Task) -> Result<(), ApiError> {
        self.tasks
            .send(task)
            .map_err(|_| ApiError::Unavailable("password hashing stopped".into()))
    }
}

/// One hashing thread: takes tasks until the sender is gone, reusing one
/// memory block for all of them.
fn worker(rx: Arc<Mutex<std_mpsc::Receiver<Task>>>, params: Params) {
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        let task = {
            let Ok(rx) = rx.lock() else { return };
            match rx.recv() {
                Ok(t) => t,
                Err(_) => return,
            }
        };
        // The permit goes back before the answer, so a caller that has its
        // answer never sees the pool still busy with its work.
        match task.work {
            Work::Hash { password, reply } => {
                let phc = hash_with(&params, &password, &mut blocks);
                drop(task.permit);
                let _ = reply.send(phc);
            }
            Work::Verify {
                password,
                phc,
                reply,
            } => {
                let cap = params.m_cost().max(MAX_STORED_MEMORY_KIB);
                let ok = verify_with(&password, &phc, cap, &mut blocks);
                drop(task.permit);
                let _ = reply.send(ok);
            }
        }
    }
}

fn grow(blocks: &mut Vec<Block>, needed: usize) -> &mut [Block] {
    if blocks.len() < needed {
        blocks.resize(needed, Block::default());
    }
    &mut blocks[..needed]
}

/// Hashes into a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), the
/// same text `PasswordHasher::hash_password` writes.
pub fn hash_with(params: &Params, password: &str, blocks: &mut Vec<Block>) -> String {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).expect("16-byte salt");
    let mut salt_raw = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_raw).expect("own salt decodes");
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let mem = grow(blocks, params.block_count());
    let output = Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, &mut *mem)
            .map_err(argon2::password_hash::Error::from)
    })
    .expect("argon2 hashing with validated params");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).expect("params encode"),
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string()
}

/// Checks `password` against a PHC string with that string's own
/// parameters; anything unparsable, or asking for more than `max_kib` of
/// memory, does not verify. The comparison is constant-time (`Output`'s `==`).
pub fn verify_with(password: &str, phc: &str, max_kib: u32, blocks: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let Ok(alg) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    if params.m_cost() > max_kib {
        return false;
    }
    let mut salt_raw = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_raw) else {
        return false;
    };
    let argon = Argon2::new(alg, version, params.clone());
    let mem = grow(blocks, params.block_count());
    let computed = Output::init_with(expected.len(), |out| {
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, &mut *mem)
            .map_err(argon2::password_hash::Error::from)
    });
    matches!(computed, Ok(c) if c == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    fn small() -> Params {
        Params::new(64, 1, 1, None).unwrap()
    }

    #[test]
    fn our_hashes_verify_with_the_library_and_back() {
        let params = small();
        let mut blocks = Vec::new();
        let ours = hash_with(&params, "Secret123", &mut blocks);
        let lib = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(lib.verify_password(b"Secret123", &parsed).is_ok());
        assert!(lib.verify_password(b"Secret124", &parsed).is_err());

        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = lib.hash_password(b"Other456x", &salt).unwrap().to_string();
        assert!(verify_with("Other456x", &theirs, 1024, &mut blocks));
        assert!(!verify_with("Other456y", &theirs, 1024, &mut blocks));
    }

    #[test]
    fn bad_or_greedy_hashes_never_verify() {
        let mut blocks = Vec::new();
        for phc in [
            "",
            "$argon2id$",
            "plain",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
        ] {
            assert!(!verify_with("x", phc, 1024, &mut blocks), "{phc}");
        }
        let big = Params::new(4096, 1, 1, None).unwrap();
        let h = hash_with(&big, "Secret123", &mut blocks);
        assert!(verify_with("Secret123", &h, 4096, &mut blocks));
        assert!(!verify_with("Secret123", &h, 1024, &mut blocks));
    }

    #[test]
    fn one_block_serves_hashes_of_every_size() {
        let mut blocks = Vec::new();
        let a = hash_with(&small(), "Secret123", &mut blocks);
        let big = Params::new(2048, 1, 1, None).unwrap();
        let b = hash_with(&big, "Secret123", &mut blocks);
        assert_eq!(blocks.len(), big.block_count());
        assert!(verify_with("Secret123", &a, 4096, &mut blocks));
        assert!(verify_with("Secret123", &b, 4096, &mut blocks));
        assert_eq!(blocks.len(), big.block_count());
    }

    #[tokio::test]
    async fn at_most_the_pool_runs_and_the_rest_wait() {
        let h = Arc::new(Hasher::start(small(), 2));
        let mut all = Vec::new();
        for i in 0..16 {
            let h = h.clone();
            all.push(tokio::spawn(async move {
                let phc = h.hash(format!("Secret12{i}")).await.unwrap();
                h.verify(format!("Secret12{i}"), phc).await.unwrap()
            }));
        }
        for t in all {
            assert!(t.await.unwrap());
        }
        assert_eq!(h.permits.available_permits(), 2);
    }
}
