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
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as StorePath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A bucket of objects.
pub(crate) struct S3Objects {
    store: Arc<AmazonS3>,
    /// `Some` until dropped (see `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
    bucket: String,
    prefix: String,
}

impl std::fmt::Debug for S3Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Objects")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Drop for S3Objects {
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

impl S3Objects {
    /// A client for the bucket of `config`; nothing is sent until the first request.
    pub(crate) fn connect(config: &S3Config) -> Result<S3Objects> {
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
        Ok(S3Objects {
            store: Arc::new(store),
            runtime: Some(runtime),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
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

    fn location(&self, key: &str) -> StorePath {
        StorePath::from(format!("{}{key}", self.prefix))
    }

    /// `s3://bucket/prefix+key`, for messages.
    pub(crate) fn describe(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("s3://{}/{}{key}", self.bucket, self.prefix))
    }

    /// Stores `bytes` under their key (the same bytes twice are one object).
    pub(crate) fn put(&self, bytes: &[u8]) -> Result<String> {
        let key = key_of(bytes);
        let (store, location) = (self.store.clone(), self.location(&key));
        let payload = bytes.to_vec();
        self.call(async move { store.put(&location, payload.into()).await })?
            .map_err(|e| store_error(&self.bucket, &format!("{}{key}", self.prefix), e))?;
        Ok(key)
    }

    /// The bytes of `key`, checked against it; `None` when the bucket has no such object.
    pub(crate) fn get_if_present(&self, key: &str) -> Result<Option<Vec<u8>>> {
        if !is_key(key) {
            return Err(Error::invalid(format!("{key:?} is not an object key (64 lower-case hex digits)")));
        }
        let (store, location) = (self.store.clone(), self.location(key));
        let fetched = self.call(async move {
            match store.get(&location).await {
                Ok(result) => result.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        let Some(bytes) = fetched.map_err(|e| store_error(&self.bucket, &format!("{}{key}", self.prefix), e))? else {
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
        Ok(Some(bytes.to_vec()))
    }

    /// The keys of every object under the prefix, sorted.
    pub(crate) fn keys(&self) -> Result<Vec<String>> {
        let store = self.store.clone();
        let prefix = self.prefix.trim_end_matches('/').to_string();
        let listed = self
            .call(async move { store.list_with_delimiter(Some(&StorePath::from(prefix))).await })?
            .map_err(|e| store_error(&self.bucket, &self.prefix, e))?;
        let mut keys: Vec<String> = listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
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
        let (store, location) = (self.store.clone(), self.location(key));
        match self.call(async move { store.delete(&location).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(&self.bucket, &format!("{}{key}", self.prefix), e)),
        }
    }
}
