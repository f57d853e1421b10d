//! Objects in an S3-compatible bucket (feature `s3`), through the `object_store` crate.
//!
//! Keys are `<prefix><sha256 hex>` (flat: S3 has no directories to fan out). The client
//! runs on a private tokio runtime of one worker thread; a call from any thread (a plain
//! one, or a task of another runtime such as a server's) hands the request to that runtime
//! and waits on a channel, never `Runtime::block_on`, which panics inside a runtime.
//! Requests time out and retry briefly, so an unreachable store fails a commit in seconds
//! rather than minutes.

use super::{S3Config, is_key, key_of};
use crate::error::{CorruptionKind, Error, Result};
#[cfg(feature = "parquet")]
use object_store::MultipartUpload;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as StorePath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A client of one S3-compatible bucket: whole objects put, read, listed and deleted by
/// path, and large ones streamed up in parts ([`Upload`]). The content-addressed objects
/// of large diffs ([`S3Objects`]) and the partitioned exports (`crate::dataset`) both
/// talk to their bucket through it.
pub(crate) struct Bucket {
    store: Arc<AmazonS3>,
    /// `Some` until dropped (see `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
    name: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        // Dropping a runtime inside another runtime's task panics; letting it go in the
        // background never does.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn store_error(bucket: &str, key: &str, e: impl std::fmt::Display) -> Error {
    Error::ObjectStore {
        location: format!("s3://{bucket}/{key}"),
        reason: e.to_string(),
    }
}

/// An object of a listing: its path in the bucket and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The object's path (its key).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Bucket {
    /// A client for the bucket of `config` (its prefix is not used here); nothing is sent
    /// until the first request.
    pub(crate) fn connect(config: &S3Config) -> Result<Bucket> {
        // rustls needs one process-wide crypto provider; a second install is refused
        // harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(config.region.clone().unwrap_or_else(|| "us-east-1".to_string()))
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(true)
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_timeout(Duration::from_secs(60)),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_millis(500),
                    base: 2.0,
                },
                max_retries: 2,
                retry_timeout: Duration::from_secs(5),
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder.with_access_key_id(id).with_secret_access_key(secret);
        }
        let store = builder
            .build()
            .map_err(|e| store_error(&config.bucket, &config.prefix, format!("the S3 configuration is not usable: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("annals-s3")
            .enable_all()
            .build()
            .map_err(|e| store_error(&config.bucket, &config.prefix, format!("starting the S3 client's runtime: {e}")))?;
        Ok(Bucket {
            store: Arc::new(store),
            runtime: Some(runtime),
            name: config.bucket.clone(),
        })
    }

    /// Runs `request` on the private runtime and waits for it.
    fn call<T: Send + 'static>(&self, request: impl Future<Output = T> + Send + 'static) -> Result<T> {
        let Some(runtime) = &self.runtime else {
            return Err(Error::Closed);
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(request.await);
        });
        rx.recv().map_err(|_| Error::Invariant("the S3 client's runtime stopped".into()))
    }

    fn error(&self, path: &str, e: impl std::fmt::Display) -> Error {
        store_error(&self.name, path, e)
    }

    /// Stores `bytes` at `path` in one request: the object appears whole or not at all.
    pub(crate) fn put(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        let (store, location) = (self.store.clone(), StorePath::from(path));
        self.call(async move { store.put(&location, bytes.into()).await })?
            .map(|_| ())
            .map_err(|e| self.error(path, e))
    }

    /// The bytes at `path`; `None` when the bucket has no such object.
    pub(crate) fn get(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let (store, location) = (self.store.clone(), StorePath::from(path));
        let fetched = self.call(async move {
            match store.get(&location).await {
                Ok(result) => result.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        Ok(fetched.map_err(|e| self.error(path, e))?.map(|bytes| bytes.to_vec()))
    }

    /// Every object under `prefix` (a folder path without its trailing slash; empty for
    /// the whole bucket), at any depth, sorted by path.
    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let store = self.store.clone();
        let location = (!prefix.is_empty()).then(|| StorePath::from(prefix));
        let listed = self
            .call(async move {
                use futures_util::TryStreamExt;
                store.list(location.as_ref()).try_collect::<Vec<_>>().await
            })?
            .map_err(|e| self.error(prefix, e))?;
        let mut out: Vec<Listed> = listed
            .into_iter()
            .map(|meta| Listed {
                path: meta.location.to_string(),
                size: meta.size,
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Deletes the object at `path`; a missing one is not an error.
    pub(crate) fn delete(&self, path: &str) -> Result<()> {
        let (store, location) = (self.store.clone(), StorePath::from(path));
        match self.call(async move { store.delete(&location).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(path, e)),
        }
    }

    /// A writer of the object at `path`, which appears only when [`Upload::finish`]
    /// succeeds (a multipart upload is invisible until completed).
    #[cfg(feature = "parquet")]
    pub(crate) fn upload(&self, path: &str) -> Upload<'_> {
        Upload {
            bucket: self,
            path: path.to_string(),
            buffer: Vec::new(),
            multipart: None,
            written: 0,
        }
    }
}

/// Bytes held before a part is sent: S3 wants parts of at least 5 MiB but the last.
#[cfg(feature = "parquet")]
const PART_BYTES: usize = 8 << 20;

/// An object being written ([`Bucket::upload`]): bytes are held until a part is full,
/// then sent; a small object is one `PUT`. Dropped unfinished, a started multipart upload
/// is aborted so the bucket keeps no parts.
#[cfg(feature = "parquet")]
pub(crate) struct Upload<'a> {
    bucket: &'a Bucket,
    path: String,
    buffer: Vec<u8>,
    multipart: Option<Box<dyn MultipartUpload>>,
    written: u64,
}

#[cfg(feature = "parquet")]
impl Upload<'_> {
    /// Sends the held bytes as one part, starting the multipart upload first if needed.
    fn send_part(&mut self) -> Result<()> {
        let mut upload = match self.multipart.take() {
            Some(upload) => upload,
            None => {
                let (store, location) = (self.bucket.store.clone(), StorePath::from(self.path.as_str()));
                self.bucket
                    .call(async move { store.put_multipart(&location).await })?
                    .map_err(|e| self.bucket.error(&self.path, e))?
            }
        };
        let part = std::mem::take(&mut self.buffer);
        let (upload, sent) = self.bucket.call(async move {
            let sent = upload.put_part(part.into()).await;
            (upload, sent)
        })?;
        self.multipart = Some(upload);
        sent.map_err(|e| self.bucket.error(&self.path, e))
    }

    /// Sends what remains and makes the object visible; the bytes written in all.
    pub(crate) fn finish(mut self) -> Result<u64> {
        match self.multipart.take() {
            None => {
                let bytes = std::mem::take(&mut self.buffer);
                self.bucket.put(&self.path, bytes)?;
            }
            Some(upload) => {
                self.multipart = Some(upload);
                if !self.buffer.is_empty() {
                    self.send_part()?;
                }
                let Some(mut upload) = self.multipart.take() else {
                    return Err(Error::Invariant("the multipart upload went missing".into()));
                };
                self.bucket
                    .call(async move { upload.complete().await })?
                    .map_err(|e| self.bucket.error(&self.path, e))?;
            }
        }
        Ok(self.written)
    }
}

#[cfg(feature = "parquet")]
impl std::io::Write for Upload<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
        if self.buffer.len() >= PART_BYTES {
            self.send_part().map_err(std::io::Error::other)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "parquet")]
impl Drop for Upload<'_> {
    fn drop(&mut self) {
        if let Some(mut upload) = self.multipart.take() {
            // Best effort: a failed abort leaves parts that S3's lifecycle rules remove.
            let _ = self.bucket.call(async move { upload.abort().await });
        }
    }
}

/// A bucket of objects.
pub(crate) struct S3Objects {
    bucket: Bucket,
    prefix: String,
}

impl std::fmt::Debug for S3Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Objects")
            .field("bucket", &self.bucket.name)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl S3Objects {
    /// A client for the bucket of `config`; nothing is sent until the first request.
    pub(crate) fn connect(config: &S3Config) -> Result<S3Objects> {
        Ok(S3Objects {
            bucket: Bucket::connect(config)?,
            prefix: config.prefix.clone(),
        })
    }

    fn location(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// `s3://bucket/prefix+key`, for messages.
    pub(crate) fn describe(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("s3://{}/{}{key}", self.bucket.name, self.prefix))
    }

    /// Stores `bytes` under their key (the same bytes twice are one object).
    pub(crate) fn put(&self, bytes: &[u8]) -> Result<String> {
        let key = key_of(bytes);
        self.bucket.put(&self.location(&key), bytes.to_vec())?;
        Ok(key)
    }

    /// The bytes of `key`, checked against it; `None` when the bucket has no such object.
    pub(crate) fn get_if_present(&self, key: &str) -> Result<Option<Vec<u8>>> {
        if !is_key(key) {
            return Err(Error::invalid(format!("{key:?} is not an object key (64 lower-case hex digits)")));
        }
        let Some(bytes) = self.bucket.get(&self.location(key))? else {
            return Ok(None);
        };
        let found = key_of(&bytes);
        if found != key {
            return Err(Error::Corruption {
                file: self.describe(key),
                offset: 0,
                kind: CorruptionKind::Malformed(format!("object {key} holds bytes whose sha256 is {found}")),
            });
        }
        Ok(Some(bytes))
    }

    /// The keys of every object under the prefix, sorted.
    pub(crate) fn keys(&self) -> Result<Vec<String>> {
        let prefix = self.prefix.trim_end_matches('/').to_string();
        let listed = self.bucket.list(&prefix)?;
        let mut keys: Vec<String> = listed
            .iter()
            .filter_map(|o| o.path.strip_prefix(self.prefix.as_str()).map(str::to_string))
            .filter(|k| is_key(k))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Deletes `key` (an orphan); a missing one is not an error.
    pub(crate) fn remove(&self, key: &str) -> Result<()> {
        if !is_key(key) {
            return Err(Error::invalid(format!("{key:?} is not an object key")));
        }
        self.bucket.delete(&self.location(key))
    }
}
