//! The bytes of attachments, on disk under `<data_dir>/attachments`,
//! content-addressed: `ab/abcdef…` named by their SHA-256, so the same
//! bytes uploaded twice are stored once. An upload streams to `tmp/`
//! while it is hashed, measured and its leading bytes checked against the
//! type it claims; only then is it fsynced and renamed into place (and the
//! directory fsynced), so a file under its hash is always whole. Nothing
//! of an upload is held in memory beyond one chunk and its first bytes.
//!
//! A cluster also keeps each file in Redis (see `backend::cluster::blobs`):
//! a node that lacks one fetches it into this directory the first time it
//! is asked for it.

use std::io;
use std::path::{Path, PathBuf};

use axum::body::Body;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;

/// How many leading bytes the type check looks at (what `infer` needs for
/// every type we take).
const HEAD: usize = 262;

/// After refusing an upload as too large, at most this much more of it is
/// read and thrown away (for at most [`DRAIN_FOR`]) so that a client still
/// sending gets the 413 instead of a reset connection; a larger rest is
/// never read.
pub const DRAIN_BYTES: u64 = 1 << 20;
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and discards what is left of a refused body, within the bounds
/// above (nothing is kept).
pub async fn drain<S, E>(stream: &mut S)
where
    S: futures_util::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
{
    let discard = async {
        let mut left = DRAIN_BYTES;
        while let Some(Ok(chunk)) = stream.next().await {
            let n = chunk.len() as u64;
            if n >= left {
                return;
            }
            left -= n;
        }
    };
    let _ = tokio::time::timeout(DRAIN_FOR, discard).await;
}

pub struct Blobs {
    dir: PathBuf,
}

/// A stored upload.
pub struct Stored {
    pub sha256: String,
    pub size: u64,
    pub path: PathBuf,
}

/// Removes a temporary file unless it was moved into place.
struct TmpFile(Option<PathBuf>);

impl TmpFile {
    fn path(&self) -> &Path {
        self.0
            .as_deref()
            .expect("a temporary file until it is placed")
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Blobs {
    /// The store under `data_dir` (nothing touched until [`Blobs::prepare`]).
    pub fn new(data_dir: &Path) -> Blobs {
        Blobs {
            dir: data_dir.join("attachments"),
        }
    }

    /// Creates the directory and removes what interrupted uploads left in
    /// `tmp/` (before the first upload is taken).
    pub fn prepare(&self) -> io::Result<()> {
        let tmp = self.dir.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)
    }

    /// Where the bytes of `sha256` live (whether or not they are here).
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2]).join(sha256)
    }

    /// A fresh temporary file's path in this directory (same file system
    /// as the final place, so the rename is atomic), removed unless placed.
    fn tmp(&self) -> TmpFile {
        TmpFile(Some(
            self.dir
                .join("tmp")
                .join(uuid::Uuid::new_v4().simple().to_string()),
        ))
    }

    /// Streams `body` to disk: 415 when its first bytes are not
    /// `content_type`, 413 when its declared length or its bytes pass
    /// `max_bytes` (then at most [`DRAIN_BYTES`] more are read off and
    /// dropped; the rest is never read).
    pub async fn receive(
        &self,
        body: Body,
        content_type: &str,
        declared: Option<u64>,
        max_bytes: u64,
    ) -> Result<Stored, ApiError> {
        let mut stream = body.into_data_stream();
        if let Some(n) = declared.filter(|n| *n > max_bytes) {
            // Refused before a byte is read; a little over is read off so
            // the client hears the 413.
            if n - max_bytes <= DRAIN_BYTES {
                drain(&mut stream).await;
            }
            return Err(ApiError::PayloadTooLarge(max_bytes as usize));
        }
        let tmp = self.tmp();
        let mut file = tokio::fs::File::create(tmp.path()).await.map_err(disk)?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut head: Vec<u8> = Vec::with_capacity(HEAD);
        let mut tail = Tail::default();
        let mut checked = false;
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|_| ApiError::invalid("body", "the upload was interrupted"))?;
            size += chunk.len() as u64;
            tail.push(&chunk);
            if size > max_bytes {
                drain(&mut stream).await;
                return Err(ApiError::PayloadTooLarge(max_bytes as usize));
            }
            hasher.update(&chunk);
            if checked {
                file.write_all(&chunk).await.map_err(disk)?;
                continue;
            }
            let take = (HEAD - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            if head.len() == HEAD {
                if let Err(e) = check_type(&head, content_type) {
                    drain(&mut stream).await;
                    return Err(e);
                }
                checked = true;
                file.write_all(&head).await.map_err(disk)?;
                file.write_all(&chunk[take..]).await.map_err(disk)?;
            }
        }
        if size == 0 {
            return Err(ApiError::invalid("body", "must not be empty"));
        }
        if !checked {
            check_type(&head, content_type)?;
            file.write_all(&head).await.map_err(disk)?;
        }
        file.sync_all().await.map_err(disk)?;
        drop(file);
        // The whole file is what the type says: its end, and an image's
        // header and dimensions read back from disk.
        let (path, ct) = (tmp.path().to_owned(), content_type.to_owned());
        let whole =
            tokio::task::spawn_blocking(move || check_whole(&path, &ct, &head, &tail.0, size))
                .await
                .map_err(|e| disk(io::Error::other(e)))?;
        whole?;
        let sha256 = crate::wire::hex(&hasher.finalize());
        let path = self.settle(tmp, &sha256).await?;
        Ok(Stored { sha256, size, path })
    }

    /// The path of `sha256`'s bytes on this node; when they are not here,
    /// `fetch` writes them (fsynced) to the temporary path it is given and
    /// says whether it found them (a cluster: from Redis), and they are
    /// moved into place. `None`: nowhere to be had.
    pub async fn local_or_fetch<F, Fut>(
        &self,
        sha256: &str,
        fetch: F,
    ) -> Result<Option<PathBuf>, ApiError>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: std::future::Future<Output = Result<bool, ApiError>>,
    {
        let path = self.path(sha256);
        if tokio::fs::try_exists(&path).await.map_err(disk)? {
            return Ok(Some(path));
        }
        let tmp = self.tmp();
        if !fetch(tmp.path().to_owned()).await? {
            return Ok(None);
        }
        self.settle(tmp, sha256).await.map(Some)
    }

    /// Moves a fully written (fsynced) temporary file into place as
    /// `sha256`'s bytes.
    async fn settle(&self, mut tmp: TmpFile, sha256: &str) -> Result<PathBuf, ApiError> {
        let from = tmp.path().to_owned();
        let dest = self.path(sha256);
        let to = dest.clone();
        tokio::task::spawn_blocking(move || place(&from, &to))
            .await
            .map_err(|e| disk(io::Error::other(e)))?
            .map_err(disk)?;
        // Renamed (or the same bytes were there): nothing left to remove.
        tmp.0 = None;
        Ok(dest)
    }
}

/// Renames `from` to `dest` (dropping `from` when `dest` is already
/// there: the same bytes) and makes the rename durable.
fn place(from: &Path, dest: &Path) -> io::Result<()> {
    let parent = dest.parent().expect("blob paths have a parent");
    std::fs::create_dir_all(parent)?;
    if dest.exists() {
        std::fs::remove_file(from)?;
        return Ok(());
    }
    std::fs::rename(from, dest)?;
    std::fs::File::open(parent)?.sync_all()
}

fn check_type(head: &[u8], content_type: &str) -> Result<(), ApiError> {
    match infer::get(head) {
        Some(t) if t.mime_type() == content_type => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(
            "the bytes are not what Content-Type says",
        )),
    }
}

/// The last bytes of an upload, as it streams.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    const KEEP: usize = 64;

    fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= Self::KEEP {
            self.0.clear();
            self.0.extend_from_slice(&chunk[chunk.len() - Self::KEEP..]);
        } else {
            self.0.extend_from_slice(chunk);
            let over = self.0.len().saturating_sub(Self::KEEP);
            self.0.drain(..over);
        }
    }
}

/// PNG's last chunk, whole: a zero length, `IEND` and its CRC.
const PNG_END: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];

/// Whether the whole upload (at `path`, `size` bytes, beginning with
/// `head` and ending with `tail`) is what `content_type` says (API.md
/// v1.2): an image's header and dimensions read back (`imagesize`) and it
/// ends where its format ends (PNG's `IEND`, JPEG's end-of-image marker,
/// WebP's RIFF length); a PDF begins with `%PDF-` and ends with `%%EOF`.
fn check_whole(
    path: &Path,
    content_type: &str,
    head: &[u8],
    tail: &[u8],
    size: u64,
) -> Result<(), ApiError> {
    const NOT: ApiError =
        ApiError::UnsupportedMediaType("the bytes are not what Content-Type says");
    if content_type == "application/pdf" {
        let end = tail.trim_ascii_end();
        return if head.starts_with(b"%PDF-") && end.ends_with(b"%%EOF") {
            Ok(())
        } else {
            Err(NOT)
        };
    }
    let want = match content_type {
        "image/png" => imagesize::ImageType::Png,
        "image/jpeg" => imagesize::ImageType::Jpeg,
        "image/webp" => imagesize::ImageType::Webp,
        _ => return Err(NOT),
    };
    if imagesize::image_type(head).ok() != Some(want) {
        return Err(NOT);
    }
    match imagesize::size(path) {
        Ok(d) if d.width > 0 && d.height > 0 => {}
        _ => return Err(NOT),
    }
    let ends = match want {
        imagesize::ImageType::Png => tail.ends_with(&PNG_END),
        imagesize::ImageType::Jpeg => tail.ends_with(&[0xFF, 0xD9]),
        // RIFF: the length after the first 8 bytes is the rest of the file.
        _ => head
            .get(4..8)
            .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .is_some_and(|n| n + 8 == size || n + 9 == size && n % 2 == 1),
    };
    if ends {
        Ok(())
    } else {
        Err(NOT)
    }
}

fn disk(e: io::Error) -> ApiError {
    tracing::error!(error = %e, "attachment storage failed");
    ApiError::Unavailable("attachment storage failed".into())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    const CHUNK: usize = 64 * 1024;

    /// A body of `chunks` × 64 KiB made as it is read, counting the chunks
    /// taken from it.
    fn endless_png(chunks: usize, pulled: Arc<AtomicUsize>) -> Body {
        let stream = futures_util::stream::iter(0..chunks).map(move |i| {
            pulled.fetch_add(1, Ordering::SeqCst);
            let mut c = vec![0u8; CHUNK];
            if i == 0 {
                c[..8].copy_from_slice(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]);
            }
            Ok::<_, std::io::Error>(axum::body::Bytes::from(c))
        });
        Body::from_stream(stream)
    }

    /// A PNG of `len` bytes whose structure reads back whole.
    fn whole_png(len: usize) -> Vec<u8> {
        let mut b = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        b.extend_from_slice(&[0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 1, 0, 0, 0, 1]);
        b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        let pad = len - b.len() - 24;
        b.extend_from_slice(&(pad as u32).to_be_bytes());
        b.extend_from_slice(b"tEXt");
        b.resize(b.len() + pad, b'x');
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&PNG_END);
        b
    }

    #[tokio::test]
    async fn a_png_is_taken_only_whole() {
        let (b, dir) = store();
        let png = whole_png(500);
        assert!(b
            .receive(Body::from(png.clone()), "image/png", None, 1 << 20)
            .await
            .is_ok());
        for bad in [
            png[..png.len() - 1].to_vec(),
            [png.clone(), b"<html>".to_vec()].concat(),
            [
                &png[..8],
                b"<html><script>alert(1)</script></html>".as_slice(),
            ]
            .concat(),
        ] {
            let err = b.receive(Body::from(bad), "image/png", None, 1 << 20).await;
            assert!(matches!(err, Err(ApiError::UnsupportedMediaType(_))));
        }
        assert_eq!(tmp_files(&dir), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn store() -> (Blobs, PathBuf) {
        let dir = std::env::temp_dir().join(format!("blobs-{}", uuid::Uuid::new_v4().simple()));
        let b = Blobs::new(&dir);
        b.prepare().unwrap();
        (b, dir)
    }

    fn tmp_files(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("attachments/tmp"))
            .unwrap()
            .count()
    }

    #[tokio::test]
    async fn an_oversized_upload_is_refused_unread_and_leaves_nothing() {
        let (b, dir) = store();
        let pulled = Arc::new(AtomicUsize::new(0));
        // 16 GiB offered, 1 MiB allowed: refused after 17 chunks, and at
        // most DRAIN_BYTES more read off and dropped.
        let body = endless_png(256 * 1024, pulled.clone());
        let err = b
            .receive(body, "image/png", None, 1 << 20)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, ApiError::PayloadTooLarge(_)), "{err:?}");
        let limit = (1 << 20) / CHUNK + 1;
        let drained = DRAIN_BYTES as usize / CHUNK;
        assert_eq!(pulled.load(Ordering::SeqCst), limit + drained);
        assert_eq!(tmp_files(&dir), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_wrong_type_is_refused_after_its_first_chunk_and_a_bounded_drain() {
        let (b, dir) = store();
        let pulled = Arc::new(AtomicUsize::new(0));
        let body = endless_png(1000, pulled.clone());
        let err = b
            .receive(body, "image/jpeg", None, 1 << 30)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, ApiError::UnsupportedMediaType(_)), "{err:?}");
        assert_eq!(
            pulled.load(Ordering::SeqCst),
            1 + DRAIN_BYTES as usize / CHUNK
        );
        assert_eq!(tmp_files(&dir), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn the_same_bytes_are_stored_once_under_their_hash() {
        let (b, dir) = store();
        let mut hashes = Vec::new();
        for _ in 0..2 {
            let body = Body::from(whole_png(3 * CHUNK));
            let s = b.receive(body, "image/png", None, 1 << 20).await.unwrap();
            assert_eq!(s.size, 3 * CHUNK as u64);
            assert_eq!(std::fs::metadata(&s.path).unwrap().len(), s.size);
            hashes.push(s.sha256);
        }
        assert_eq!(hashes[0], hashes[1]);
        let all = whole_png(3 * CHUNK);
        assert_eq!(hashes[0], crate::wire::hex(&Sha256::digest(&all)));
        let shard = dir.join("attachments").join(&hashes[0][..2]);
        assert_eq!(std::fs::read_dir(shard).unwrap().count(), 1);
        assert_eq!(tmp_files(&dir), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
