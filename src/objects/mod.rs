//! The object store of large diffs: content-addressed files under `<dir>/objects/`.
//!
//! A diff above the inline limit is kept as an object whose key is the sha256 of its bytes
//! (64 hex digits), at `objects/<first two digits>/<other 62>`. The same bytes are stored
//! once however many commits carry them. An object is written (temporary file, fsync,
//! rename, fsync of the directory) before the commit row that names it reaches the WAL, so
//! a crash leaves at most an object nothing names, never a commit naming a missing object.
//! Every read checks the bytes against the key. With the `s3` feature the objects can live
//! in an S3-compatible bucket instead ([`ObjectStoreConfig::S3`]), under the same keys.

use crate::error::{CorruptionKind, Error, Result};
use crate::io::{self, Fs};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[cfg(feature = "s3")]
pub(crate) mod s3;

/// Where the store keeps objects (diffs over the inline limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ObjectStoreConfig {
    /// Files under `<data directory>/objects/`.
    #[default]
    Local,
    /// An S3-compatible bucket (feature `s3`).
    S3(S3Config),
}

/// An S3-compatible bucket, as the original design configured it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    /// The bucket (`AWS_S3_BUCKET`).
    pub bucket: String,
    /// The region (`AWS_REGION`; `us-east-1` when unset).
    pub region: Option<String>,
    /// The endpoint of an S3-compatible service (`AWS_ENDPOINT_URL`), e.g.
    /// `http://127.0.0.1:9000`; Amazon's when unset.
    pub endpoint: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// Prepended to every key (default `objects/`).
    pub prefix: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs and error messages.
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl ObjectStoreConfig {
    /// The configuration the environment gives: an S3 bucket when `AWS_S3_BUCKET` is set
    /// (with `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`), the local directory otherwise.
    pub fn from_env() -> ObjectStoreConfig {
        match env_var("AWS_S3_BUCKET") {
            Some(bucket) => ObjectStoreConfig::S3(S3Config::from_env(bucket, "objects/")),
            None => ObjectStoreConfig::Local,
        }
    }
}

impl S3Config {
    /// `bucket` and `prefix`, with the region, endpoint and keys the environment gives
    /// (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
    pub fn from_env(bucket: impl Into<String>, prefix: impl Into<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            region: env_var("AWS_REGION"),
            endpoint: env_var("AWS_ENDPOINT_URL"),
            access_key_id: env_var("AWS_ACCESS_KEY_ID"),
            secret_access_key: env_var("AWS_SECRET_ACCESS_KEY"),
            prefix: prefix.into(),
        }
    }
}

/// An environment variable's value, `None` when unset or empty.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The object store of an open store.
#[derive(Debug)]
pub(crate) enum Objects {
    /// Files in the data directory.
    Local(LocalObjects),
    /// A bucket.
    #[cfg(feature = "s3")]
    S3(s3::S3Objects),
}

impl Objects {
    /// The object store `config` names, for the store in `store_dir`.
    pub(crate) fn open(config: &ObjectStoreConfig, fs: Fs, store_dir: &Path) -> Result<Objects> {
        match config {
            ObjectStoreConfig::Local => Ok(Objects::Local(LocalObjects::new(fs, store_dir))),
            #[cfg(feature = "s3")]
            ObjectStoreConfig::S3(s3) => {
                if s3.bucket.is_empty() {
                    return Err(Error::invalid("the S3 bucket name is empty"));
                }
                Ok(Objects::S3(s3::S3Objects::connect(s3)?))
            }
            #[cfg(not(feature = "s3"))]
            ObjectStoreConfig::S3(_) => Err(Error::invalid(
                "an S3 object store is configured, but this build of annals has no S3 support (feature `s3`)",
            )),
        }
    }

    /// Stores `bytes` durably and returns their key.
    pub(crate) fn put(&self, bytes: &[u8]) -> Result<String> {
        match self {
            Objects::Local(l) => l.put(bytes),
            #[cfg(feature = "s3")]
            Objects::S3(s) => s.put(bytes),
        }
    }

    /// The bytes of `key`, checked; a missing object is corruption (a commit names it).
    pub(crate) fn get(&self, key: &str) -> Result<Vec<u8>> {
        self.get_if_present(key)?.ok_or_else(|| Error::Corruption {
            file: self.path(key),
            offset: 0,
            kind: CorruptionKind::Malformed(format!("object {key} is missing")),
        })
    }

    /// The bytes of `key` when present, checked.
    pub(crate) fn get_if_present(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Objects::Local(l) => l.get_if_present(key),
            #[cfg(feature = "s3")]
            Objects::S3(s) => s.get_if_present(key),
        }
    }

    /// Keys of every object, sorted.
    pub(crate) fn keys(&self) -> Result<Vec<String>> {
        match self {
            Objects::Local(l) => l.keys(),
            #[cfg(feature = "s3")]
            Objects::S3(s) => s.keys(),
        }
    }

    /// Removes `key`; a missing one is not an error.
    pub(crate) fn remove(&self, key: &str) -> Result<()> {
        match self {
            Objects::Local(l) => l.remove(key),
            #[cfg(feature = "s3")]
            Objects::S3(s) => s.remove(key),
        }
    }

    /// Where `key` is kept (a path, or `s3://bucket/key`), for messages.
    pub(crate) fn path(&self, key: &str) -> PathBuf {
        match self {
            Objects::Local(l) => l.path(key),
            #[cfg(feature = "s3")]
            Objects::S3(s) => s.describe(key),
        }
    }
}

/// Directory of the objects inside a store.
pub(crate) const OBJECTS_DIR: &str = "objects";

/// The key of `bytes`: their sha256, lower-case hex.
pub(crate) fn key_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut key = String::with_capacity(64);
    for b in digest.iter() {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

/// True for 64 lower-case hex digits.
pub(crate) fn is_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Content-addressed objects in a directory, written through the store's file system.
#[derive(Debug, Clone)]
pub(crate) struct LocalObjects {
    fs: Fs,
    dir: PathBuf,
}

impl LocalObjects {
    /// The objects of the store in `store_dir`.
    pub(crate) fn new(fs: Fs, store_dir: &Path) -> LocalObjects {
        LocalObjects {
            fs,
            dir: store_dir.join(OBJECTS_DIR),
        }
    }

    /// Where object `key` is kept.
    pub(crate) fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(&key[2..])
    }

    /// Stores `bytes` durably and returns their key. Bytes stored already (and intact) are
    /// not written again; a damaged copy is replaced.
    pub(crate) fn put(&self, bytes: &[u8]) -> Result<String> {
        let key = key_of(bytes);
        let path = self.path(&key);
        if let Some(existing) = io::read_file_if_exists(&path)?
            && key_of(&existing) == key
        {
            return Ok(key);
        }
        if let Some(parent) = path.parent() {
            self.fs.create_dir_durable(parent)?;
        }
        self.fs.write_file_atomic(&path, bytes)?;
        Ok(key)
    }

    /// The bytes of object `key` when it is there, checked against it; `None` when it is
    /// not.
    pub(crate) fn get_if_present(&self, key: &str) -> Result<Option<Vec<u8>>> {
        if !is_key(key) {
            return Err(Error::invalid(format!("{key:?} is not an object key (64 lower-case hex digits)")));
        }
        let path = self.path(key);
        let Some(bytes) = io::read_file_if_exists(&path)? else {
            return Ok(None);
        };
        let found = key_of(&bytes);
        if found != key {
            return Err(Error::Corruption {
                file: path,
                offset: 0,
                kind: CorruptionKind::Malformed(format!("object {key} holds bytes whose sha256 is {found}")),
            });
        }
        Ok(Some(bytes))
    }

    /// Keys of every object present, sorted.
    pub(crate) fn keys(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        if !self.dir.is_dir() {
            return Ok(keys);
        }
        for fan in io::list_dir(&self.dir)? {
            if !fan.is_dir || fan.name.len() != 2 {
                continue;
            }
            for entry in io::list_dir(&fan.path)? {
                let key = format!("{}{}", fan.name, entry.name);
                if !entry.is_dir && is_key(&key) {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Removes object `key` (an orphan); a missing one is not an error.
    pub(crate) fn remove(&self, key: &str) -> Result<()> {
        if !is_key(key) {
            return Err(Error::invalid(format!("{key:?} is not an object key")));
        }
        self.fs.remove_file(&self.path(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_content_addressed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::Local(LocalObjects::new(Fs::default(), dir.path()));
        let bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        let key = objects.put(&bytes).unwrap();
        // sha256 of the empty input, a known value, checks the key function.
        assert_eq!(key_of(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(objects.put(&bytes).unwrap(), key, "the same bytes, the same object");
        assert_eq!(objects.get(&key).unwrap(), bytes);

        let path = dir.path().join(OBJECTS_DIR).join(&key[..2]).join(&key[2..]);
        let mut damaged = bytes.clone();
        damaged[1000] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        match objects.get(&key) {
            Err(Error::Corruption {
                file,
                kind: CorruptionKind::Malformed(why),
                ..
            }) => {
                assert_eq!(file, path);
                assert!(why.contains(&format!("object {key} holds bytes whose sha256 is")), "{why}");
            }
            other => panic!("expected a corruption error, got {other:?}"),
        }
        // Storing the bytes again repairs the copy.
        objects.put(&bytes).unwrap();
        assert_eq!(objects.get(&key).unwrap(), bytes);

        std::fs::remove_file(&path).unwrap();
        match objects.get(&key) {
            Err(Error::Corruption {
                kind: CorruptionKind::Malformed(why),
                ..
            }) => assert!(why.ends_with("is missing"), "{why}"),
            other => panic!("expected a missing object, got {other:?}"),
        }
        assert!(matches!(objects.get("../etc/passwd"), Err(Error::InvalidInput { .. })));
    }
}
