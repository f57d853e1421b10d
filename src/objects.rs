//! The object store of large diffs: content-addressed files under `<dir>/objects/`.
//!
//! A diff above the inline limit is kept as an object whose key is the sha256 of its bytes
//! (64 hex digits), at `objects/<first two digits>/<other 62>`. The same bytes are stored
//! once however many commits carry them. An object is written (temporary file, fsync,
//! rename, fsync of the directory) before the commit row that names it reaches the WAL, so
//! a crash leaves at most an object nothing names, never a commit naming a missing object.
//! Every read checks the bytes against the key.

use crate::error::{CorruptionKind, Error, Result};
use crate::io::{self, Fs};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

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
        if is_key(key) && !self.path(key).exists() {
            return Ok(None);
        }
        self.get(key).map(Some)
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

    /// The bytes of object `key`, checked against it. A missing object is
    /// [`Error::Corruption`] naming its path (a commit names it, so it should be there).
    pub(crate) fn get(&self, key: &str) -> Result<Vec<u8>> {
        if !is_key(key) {
            return Err(Error::invalid(format!("{key:?} is not an object key (64 lower-case hex digits)")));
        }
        let path = self.path(key);
        let Some(bytes) = io::read_file_if_exists(&path)? else {
            return Err(Error::Corruption {
                file: path,
                offset: 0,
                kind: CorruptionKind::Malformed(format!("object {key} is missing")),
            });
        };
        let found = key_of(&bytes);
        if found != key {
            return Err(Error::Corruption {
                file: path,
                offset: 0,
                kind: CorruptionKind::Malformed(format!("object {key} holds bytes whose sha256 is {found}")),
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_content_addressed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let objects = LocalObjects::new(Fs::default(), dir.path());
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
