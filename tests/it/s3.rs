//! Large diffs in an S3-compatible bucket: a real server (moto, installed with pip when
//! missing) on 127.0.0.1, started and stopped by the test. Objects are written and checked
//! on read; a corrupted object is an error naming its key, never wrong bytes; verify finds
//! orphans and damage in the bucket; a store that goes away mid-import fails the commits
//! that need it and stores nothing half.

use crate::common::options;
use annals::history::{History, ImportOptions};
use annals::{CommitData, DiffData, Error, ObjectStoreConfig, S3Config, StorageStatus};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const BUCKET: &str = "annals-test";

/// A moto S3 server on a free loopback port, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Moto {
    fn start() -> Moto {
        if Command::new("moto_server").arg("--help").output().is_err() {
            let installed = Command::new("pip")
                .args(["install", "-q", "moto[s3,server]==5.2.5"])
                .status()
                .expect("pip runs");
            assert!(installed.success(), "installing moto with pip failed");
        }
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto { child, port };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Public read and write, so the test's own unsigned requests may look at
                // and damage objects.
                let (status, _) = http(port, "PUT", &format!("/{BUCKET}"), b"");
                assert_eq!(status, 200, "creating the bucket");
                let (status, _) = http(port, "PUT", &format!("/{BUCKET}?acl"), b"");
                assert_eq!(status, 200, "creating the bucket");
                return moto;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not listen on 127.0.0.1:{port} within 20 s");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request (moto accepts unsigned requests): status and body.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-amz-acl: public-read-write\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body_at = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    (status, response[body_at..].to_vec())
}

/// A TCP relay in front of the server that can be cut (connections refused and the open
/// ones closed) and restored, so the store disappears without the server losing its
/// objects.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Relay {
    fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !flag.load(Ordering::SeqCst) {
                    // Cut: the connection is closed at once, as a dead server's would be.
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream, flag: Arc<AtomicBool>| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 65536];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) if flag.load(Ordering::SeqCst) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                                Ok(_) => break,
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                };
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap(), flag.clone());
                pipe(server, client, flag.clone());
            }
        });
        Relay { port, up }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

fn s3(port: u16) -> ObjectStoreConfig {
    ObjectStoreConfig::S3(S3Config {
        bucket: BUCKET.into(),
        region: Some("us-east-1".into()),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        prefix: "objects/".into(),
    })
}

fn commit(i: u64) -> CommitData {
    CommitData {
        commit_hash: format!("{:040x}", 0xfeed_0000 + i),
        message: format!("commit {i}"),
        author: "ada".into(),
        author_email: None,
        timestamp: 1_700_000_000_000_000_000 + i as i64,
        repository: "acme/app".into(),
        branch: "main".into(),
        pusher: None,
        commit_count: 1,
    }
}

fn big_diff(i: u64) -> DiffData {
    let bytes: Vec<u8> = (0..300_000u64).map(|b| ((b * 7 + i) % 251) as u8).collect();
    DiffData {
        file_path: "big.bin".into(),
        old_path: None,
        additions: 1,
        deletions: 0,
        binary: false,
        changes: None,
        diff_content: Some(bytes),
    }
}

#[test]
fn large_diffs_live_in_the_bucket_checked_on_read_and_verified() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let config = s3(moto.port);
    let history = History::open(
        dir.path(),
        annals::Options {
            objects: config.clone(),
            ..options()
        },
    )
    .unwrap();
    let stored = history.store_commit(&commit(0), &[big_diff(0)]).unwrap();
    assert_eq!(stored.status, StorageStatus::Success, "{}", stored.message);
    assert_eq!(stored.metadata.offloaded_bytes, 300_000);
    assert_eq!(
        history.get_diff(&commit(0).commit_hash, "big.bin").unwrap().unwrap(),
        big_diff(0).diff_content.unwrap()
    );
    assert!(!dir.path().join("objects").exists(), "nothing went to the local directory");
    let found = history.get_commit_by_hash(&commit(0).commit_hash).unwrap().unwrap();
    let annals::history::DiffStorage::Object { key } = &found.files[0].stored else {
        panic!("the diff is not an object: {:?}", found.files[0].stored);
    };
    let (status, body) = http(moto.port, "GET", &format!("/{BUCKET}/objects/{key}"), b"");
    assert_eq!((status, body.len()), (200, 300_000), "the object is in the bucket under its key");

    // A corrupted object is an error naming it, never other bytes.
    http(moto.port, "PUT", &format!("/{BUCKET}/objects/{key}"), b"not the diff");
    match history.get_diff(&commit(0).commit_hash, "big.bin") {
        Err(Error::Corruption { file, kind, .. }) => {
            assert_eq!(file, std::path::PathBuf::from(format!("s3://{BUCKET}/objects/{key}")));
            assert!(kind.to_string().contains("holds bytes whose sha256 is"), "{kind}");
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    // An orphan in the bucket: verify notes it, repair removes it; the damaged object is
    // damage.
    let orphan = annals_key(b"an orphan");
    http(moto.port, "PUT", &format!("/{BUCKET}/objects/{orphan}"), b"an orphan");
    history.close().unwrap();
    let report = annals::history::verify_store(dir.path(), true, config.clone()).unwrap();
    assert!(
        report.problems.iter().any(|p| p.what.contains("holds bytes whose sha256 is")),
        "{report:?}"
    );
    assert!(report.repairs.iter().any(|r| r.contains(&orphan)), "{report:?}");
    let (status, _) = http(moto.port, "GET", &format!("/{BUCKET}/objects/{orphan}"), b"");
    assert_eq!(status, 404, "repair removed the orphan");
}

/// sha256 hex, as the store names objects.
fn annals_key(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_bucket_that_goes_away_mid_import_fails_commits_and_stores_nothing_half() {
    let moto = Moto::start();
    let relay = Relay::start(moto.port);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let hashes = crate::git_import::big_history(&repo, 12);
    let config = s3(relay.port);
    let history = History::open(
        dir.path().join("store"),
        annals::Options {
            objects: config.clone(),
            ..options()
        },
    )
    .unwrap();

    // Without the store, a commit with a large diff fails and nothing of it is kept.
    relay.set_up(false);
    let failed = history.store_commit(&commit(1), &[big_diff(1)]).unwrap();
    assert_eq!(failed.status, StorageStatus::Failed);
    assert!(
        failed.message.contains("the object store could not keep the diff"),
        "{}",
        failed.message
    );
    assert_eq!(history.engine().commit_count(), 0);
    relay.set_up(true);

    // Cut the store after the first stored batch of an import.
    let options = ImportOptions {
        batch_commits: 2,
        threads: 1,
        ..ImportOptions::default()
    };
    let report = history
        .import_git(&repo, &options, &mut |p| {
            if p.stored >= 2 {
                relay.set_up(false);
            }
        })
        .unwrap();
    assert!(report.stored >= 2 && report.failed > 0, "{report:?}");
    assert_eq!(report.stored + report.failed, hashes.len() as u64, "{report:?}");
    assert!(report.stopped.as_deref().is_some_and(|r| r.contains("object store")), "{report:?}");
    relay.set_up(true);
    // Every stored commit is whole: its diffs read back and check.
    for (i, hash) in hashes.iter().enumerate() {
        match history.get_commit_with_diffs(hash).unwrap() {
            Some((commit, diffs)) => {
                assert!((i as u64) < report.stored, "commit {i} is stored but the import failed it");
                assert_eq!(commit.diff_count, 2);
                assert!(diffs.iter().all(Option::is_some));
            }
            None => assert!((i as u64) >= report.stored, "stored commit {i} is missing"),
        }
    }
    // Once the store is back, the import goes on from there.
    let again = history.import_git(&repo, &options, &mut |_| {}).unwrap();
    assert_eq!(
        (again.duplicates, again.stored, again.failed),
        (report.stored, hashes.len() as u64 - report.stored, 0)
    );
    history.close().unwrap();
    let verified = annals::history::verify_store(&dir.path().join("store"), false, config).unwrap();
    assert!(verified.is_clean(), "{verified:?}");
}

/// A partitioned Parquet export to a bucket (`annals::dataset`): every row once, a file
/// over the part size sent as a multipart upload, reruns adding only what is new and
/// removing a replaced file's object.
#[test]
fn a_partitioned_export_to_a_bucket_is_whole_and_incremental() {
    use crate::dataset::{BASE, HOUR, exported_rows, store_rows_of, write_hours};
    use annals::dataset::{DatasetOptions, Destination, export_dataset};
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let engine = annals::Engine::open(dir.path().join("store"), options()).unwrap();
    write_hours(&engine, 0, 24 * 40);
    // March: 1.2 million values that do not compress, so the file is over 8 MiB and goes
    // up in parts.
    let mut batch = annals::Batch::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..1_200_000i64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = annals::SeriesKey::metric("noise")
            .unwrap()
            .with_tag("host", format!("n{}", i % 4))
            .unwrap();
        let value = annals::FieldValue::F64(f64::from_bits((x >> 12) | 0x3ff0_0000_0000_0000));
        batch
            .add_row(&key, BASE + 24 * 62 * HOUR + i * 1_000_000, [("usage", value)])
            .unwrap();
        if batch.len() == 400_000 {
            engine.write(&std::mem::take(&mut batch)).unwrap();
        }
    }
    engine.flush().unwrap();
    let ObjectStoreConfig::S3(mut config) = s3(moto.port) else {
        unreachable!()
    };
    config.prefix = "lake/".into();
    let options = |incremental| DatasetOptions {
        incremental,
        ..DatasetOptions::new(Destination::S3(config.clone()))
    };
    let first = export_dataset(&engine, &options(false), &mut |_| {}).unwrap();
    assert_eq!((first.units_new, first.files_written), (5, 5), "{first:?}");
    let objects = list(moto.port, "lake/");
    let noise = objects
        .iter()
        .find(|(key, _)| key == "lake/kind=metric/month=2016-03/part-00000.parquet")
        .unwrap_or_else(|| panic!("{objects:?}"));
    assert!(noise.1 > 8 << 20, "the noise file is over one part: {} bytes", noise.1);
    let expected = store_rows_of(&engine, &["cpu", "noise"]);
    assert_eq!(
        exported_rows(&download(moto.port, &objects, dir.path().join("first").as_path())),
        expected
    );

    let again = export_dataset(&engine, &options(true), &mut |_| {}).unwrap();
    assert_eq!((again.files_written, again.units_unchanged), (0, 5), "{again:?}");
    assert_eq!(list(moto.port, "lake/"), objects, "nothing new, nothing written");

    let mut late = annals::Batch::new();
    let key = annals::SeriesKey::metric("cpu").unwrap().with_tag("host", "h7").unwrap();
    late.add_row(&key, BASE + 3 * HOUR, [("usage", annals::FieldValue::F64(2.5))])
        .unwrap();
    engine.write(&late).unwrap();
    let rewritten = export_dataset(&engine, &options(true), &mut |_| {}).unwrap();
    assert_eq!((rewritten.units_rewritten, rewritten.files_removed), (1, 1), "{rewritten:?}");
    let objects = list(moto.port, "lake/");
    assert!(
        !objects
            .iter()
            .any(|(key, _)| key == "lake/kind=metric/month=2016-01/part-00000.parquet"),
        "{objects:?}"
    );
    let expected = store_rows_of(&engine, &["cpu", "noise"]);
    assert_eq!(
        exported_rows(&download(moto.port, &objects, dir.path().join("second").as_path())),
        expected
    );
    engine.close().unwrap();
}

/// (key, size) of every object under `prefix`, sorted (ListObjectsV2, one page).
fn list(port: u16, prefix: &str) -> Vec<(String, u64)> {
    let (status, body) = http(port, "GET", &format!("/{BUCKET}?list-type=2&max-keys=1000&prefix={prefix}"), b"");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains("<IsTruncated>true"), "one page holds the listing");
    let field = |item: &str, name: &str| -> String {
        let start = item.find(&format!("<{name}>")).unwrap() + name.len() + 2;
        let end = item.find(&format!("</{name}>")).unwrap();
        item[start..end].to_string()
    };
    let mut out: Vec<(String, u64)> = text
        .split("<Contents>")
        .skip(1)
        .map(|item| (field(item, "Key"), field(item, "Size").parse().unwrap()))
        .collect();
    out.sort();
    out
}

/// Downloads the objects (keys under `lake/`) into `to`, as a directory of the export.
fn download(port: u16, objects: &[(String, u64)], to: &std::path::Path) -> std::path::PathBuf {
    for (key, size) in objects {
        let (status, body) = http(port, "GET", &format!("/{BUCKET}/{key}"), b"");
        assert_eq!((status, body.len() as u64), (200, *size), "{key}");
        let path = to.join(key.strip_prefix("lake/").unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    to.to_path_buf()
}
