//! Attachment bytes shared by every node: besides the uploading node's
//! disk, each file is kept in Redis under its SHA-256 (written in 1 MiB
//! pieces to a temporary key, then renamed, so a reader never sees half a
//! file), before the upload is answered. A node asked for one it lacks
//! reads it back the same way, piece by piece, into its own directory.
//! Neither side ever holds a whole file in memory.

use std::path::Path;

use redis::AsyncCommands;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{redis_down, Cluster};
use crate::error::ApiError;

const PIECE: usize = 1 << 20;

fn blob_key(sha256: &str) -> String {
    format!("dispatchd:blob:{sha256}")
}

fn disk(e: std::io::Error) -> ApiError {
    ApiError::Unavailable(format!("attachment storage failed: {e}").into())
}

impl Cluster {
    /// Copies the file at `path` into Redis as `sha256`'s bytes (nothing
    /// to do when they are there already).
    pub async fn blob_put(&self, sha256: &str, path: &Path) -> Result<(), ApiError> {
        let mut con = self.con.clone();
        let key = blob_key(sha256);
        if con.exists::<_, bool>(&key).await.map_err(redis_down)? {
            return Ok(());
        }
        let tmp = format!("dispatchd:blobtmp:{}", uuid::Uuid::new_v4().simple());
        let mut file = tokio::fs::File::open(path).await.map_err(disk)?;
        let mut buf = vec![0u8; PIECE];
        let result: Result<(), ApiError> = async {
            loop {
                let n = read_full(&mut file, &mut buf).await.map_err(disk)?;
                if n == 0 {
                    break;
                }
                let _: () = redis::pipe()
                    .append(&tmp, &buf[..n])
                    .ignore()
                    .expire(&tmp, 3600)
                    .ignore()
                    .query_async(&mut con)
                    .await
                    .map_err(redis_down)?;
                if n < PIECE {
                    break;
                }
            }
            let _: () = con.rename(&tmp, &key).await.map_err(redis_down)?;
            let _: () = con.persist(&key).await.map_err(redis_down)?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _: Result<(), _> = con.del(&tmp).await;
        }
        result
    }

    /// Writes `sha256`'s bytes from Redis to `dest` (fsynced); false when
    /// Redis does not have them.
    pub async fn blob_fetch(&self, sha256: &str, dest: &Path) -> Result<bool, ApiError> {
        let mut con = self.con.clone();
        let key = blob_key(sha256);
        let len: usize = con.strlen(&key).await.map_err(redis_down)?;
        if len == 0 {
            return Ok(false);
        }
        let mut file = tokio::fs::File::create(dest).await.map_err(disk)?;
        let mut at = 0usize;
        while at < len {
            let end = (at + PIECE).min(len) - 1;
            let piece: Vec<u8> = con
                .getrange(&key, at as isize, end as isize)
                .await
                .map_err(redis_down)?;
            if piece.is_empty() {
                break;
            }
            file.write_all(&piece).await.map_err(disk)?;
            at += piece.len();
        }
        file.sync_all().await.map_err(disk)?;
        Ok(at == len)
    }
}

/// Fills `buf` as far as the file allows; the count read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let m = file.read(&mut buf[n..]).await?;
        if m == 0 {
            break;
        }
        n += m;
    }
    Ok(n)
}
