//! Writes the seed inputs of the fuzz targets (`fuzz/seeds/`) from real files that a store
//! writes, so the seeds follow the formats when they change:
//!
//! ```sh
//! cargo run --example write_fuzz_seeds
//! ```
//!
//! `cargo test` runs every committed seed through its target (`tests/it/fuzz_seeds.rs`).
//! Seeds named `*-v2.*` are not written here: they are the same files in segment version
//! 2 (whole-block checksums), kept so the fuzzers keep reaching the older layout's reader.

use annals::{Batch, Engine, FieldValue, LogEntry, LogLevel, Options, SeriesKey};
use std::path::Path;

/// A store that flushes only when told to, so the files are exactly what this writes.
fn options() -> Options {
    Options {
        background_flush: false,
        compaction: annals::CompactionOptions {
            background: false,
            ..annals::CompactionOptions::default()
        },
        retention: annals::lifecycle::RetentionOptions::manual(),
        ..Options::default()
    }
}

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn first_file(dir: &Path, extension: &str) -> Vec<u8> {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) == Some(extension) {
            return std::fs::read(path).unwrap();
        }
    }
    panic!("no .{extension} file in {}", dir.display());
}

/// The commit store's seeds: a `COMMITS` file of three commits (first byte 0), the WAL
/// payload of a commit with two files (first byte 1), and a segment with a bytes column.
fn commit_seeds() {
    use annals::{CommitData, DiffData};
    let dir = tempfile::tempdir().unwrap();
    let history = annals::history::History::open(dir.path(), options()).unwrap();
    let store = |i: u64| {
        let commit = CommitData {
            commit_hash: format!("{:040x}", 0x1234_5678_9abc_u64 * (i + 1)),
            message: format!("change {i}"),
            author: "ada".into(),
            author_email: None,
            timestamp: 1_451_606_400_000_000_000 + i as i64,
            repository: "acme/app".into(),
            branch: "main".into(),
            pusher: None,
            commit_count: 1,
        };
        let file = |path: &str, bytes: &[u8]| DiffData {
            file_path: path.into(),
            old_path: None,
            additions: 1,
            deletions: 1,
            binary: false,
            changes: None,
            diff_content: Some(bytes.to_vec()),
        };
        let files = [file("a.rs", b"@@ -1 +1 @@\n-a\n+b\n"), file("b\\377.txt", &[0xff, 0, 1])];
        history.store_commit(&commit, &files).unwrap();
    };
    store(0);
    let wal = first_file(&dir.path().join("wal"), "wal");
    // The WAL header is 24 bytes; the first record's frame header 12, its length first.
    let len = u32::from_le_bytes(wal[24..28].try_into().unwrap()) as usize;
    put("commits", "payload-one-commit", &[&[1u8][..], &wal[36..36 + len]].concat());
    store(1);
    store(2);
    history.engine().flush().unwrap();
    put(
        "commits",
        "index-three",
        &[&[0u8][..], &std::fs::read(dir.path().join("COMMITS")).unwrap()].concat(),
    );
    put("segment", "commits.seg", &first_file(&dir.path().join("data/2016-01"), "seg"));
    history.close().unwrap();
}

fn main() {
    commit_seeds();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let mut batch = Batch::new();
    for i in 0..40i64 {
        let key = SeriesKey::metric("cpu").unwrap().with_tag("host", format!("h{}", i % 2)).unwrap();
        batch
            .add_row(
                &key,
                1_451_606_400_000_000_000 + i * 10_000_000_000,
                [("usage", FieldValue::F64(i as f64 / 4.0)), ("n", FieldValue::I64(i))],
            )
            .unwrap();
        if i % 8 == 0 {
            batch
                .add_log(&LogEntry {
                    timestamp: 1_451_606_400_000_000_000 + i,
                    level: LogLevel::Error,
                    logger_name: "db".into(),
                    message: format!("connection {i} lost"),
                    module: Some("pool".into()),
                    function_name: None,
                    line_number: Some(i),
                    thread_id: None,
                    process_id: None,
                    extra_data: Default::default(),
                    tags: Default::default(),
                })
                .unwrap();
        }
    }
    engine.write(&batch).unwrap();
    engine.flush().unwrap();
    engine.write(&batch).unwrap();
    drop(engine);
    {
        // A second store, archived: a small, valid archive.
        let other = tempfile::tempdir().unwrap();
        let engine = Engine::open(other.path(), options()).unwrap();
        engine.write(&batch).unwrap();
        let out = other.path().join("seed.annarc");
        engine
            .archive(annals::Month::new(2016, 2).unwrap(), Some(&out), &mut |_, _| {})
            .unwrap();
        put("archive", "one-month.annarc", &std::fs::read(&out).unwrap());
        engine.close().unwrap();
    }
    put("wal", "one-record.wal", &first_file(&dir.path().join("wal"), "wal"));
    put("catalog", "three-series", &std::fs::read(dir.path().join("CATALOG")).unwrap());
    put("manifest", "one-segment", &std::fs::read(dir.path().join("MANIFEST")).unwrap());
    put("segment", "cpu-and-log.seg", &first_file(&dir.path().join("data/2016-01"), "seg"));
    put(
        "line_protocol",
        "forms",
        b"cpu,host=a,region=eu usage=1.5,n=3i,u=4u,ok=t,msg=\"hi \\\"x\\\"\" 1000\nmy\\ m,t\\=k=v\\,w f=-2e3\n# comment\n\nm v=1 -5\r\n",
    );
    put(
        "jsonl",
        "kinds",
        br#"{"kind":"metric","timestamp":"2016-01-01T00:00:00Z","metric_type":"cpu","metric_name":"usage","value":1.5,"unit":"percent","tags":{"host":"a"}}
{"kind":"log","timestamp":10,"level":"warn","logger_name":"db","message":"slow","extra_data":{"ms":12.5}}
{"kind":"alert","timestamp":1,"alert_id":"x","level":"ERROR","category":"SYSTEM","title":"t","resolved_at":3}
{"kind":"performance","timestamp":1,"component":"buffer","operation":"flush","duration_ms":2}
{"kind":"point","timestamp":1,"measurement":"m","fields":{"a":1,"b":true}}
"#,
    );
    put(
        "jsonl",
        "commits",
        br#"{"kind":"commit","timestamp":"2026-11-01T10:00:00Z","commit_hash":"4b825dc642cb6eb9a060e54bf8d69288fbee4904","message":"Fix the flush order","author":"Ada","author_email":"ada@example.com","repository":"acme/app","branch":"main","diffs":[{"file_path":"src/flush.rs","additions":2,"deletions":1,"diff_content":"QEAgLTEgKzEsMiBAQAotYQorYgorYwo="},{"file_path":"docs/new.md","old_path":"docs/old.md","binary":false}]}
{"kind":"commit","timestamp":1,"commit_hash":"zz","message":"m","author":"a","repository":"r","branch":"b","diffs":[{"file_path":"x","diff_content":"not base64!"}]}
"#,
    );
    {
        use annals::ingest::remote_write::{Label, STALE_NAN_BITS, Sample, TimeSeries, WriteRequest};
        use prost::Message;
        let label = |name: &str, value: &str| Label {
            name: name.into(),
            value: value.into(),
        };
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![label("__name__", "up"), label("job", "node"), label("instance", "a:9100")],
                samples: vec![
                    Sample {
                        value: 1.0,
                        timestamp: 1_451_606_400_000,
                    },
                    Sample {
                        value: f64::from_bits(STALE_NAN_BITS),
                        timestamp: 1_451_606_415_000,
                    },
                ],
                histograms: Vec::new(),
            }],
        };
        let protobuf = request.encode_to_vec();
        let snappy = snap::raw::Encoder::new().compress_vec(&protobuf).unwrap();
        put("remote_write", "snappy", &[&[0u8][..], &snappy].concat());
        put("remote_write", "protobuf", &[&[1u8][..], &protobuf].concat());
    }
    {
        use annals::ingest::loki::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};
        use prost::Message;
        put(
            "loki_push",
            "json",
            &[
                b"\x00".as_slice(),
                br#"{"streams":[{"stream":{"job":"varlogs","level":"warn"},"values":[["1451606400000000000","disk almost full",{"trace_id":"abc"}]]}]}"#,
            ]
            .concat(),
        );
        let request = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{job="varlogs", filename="/var/log/syslog"}"#.into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds: 1_451_606_400,
                        nanos: 5,
                    }),
                    line: "081109 203615 148 ERROR dfs.DataNode: lost block".into(),
                    structured_metadata: Vec::new(),
                }],
            }],
        };
        let snappy = snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).unwrap();
        put("loki_push", "protobuf", &[&[1u8][..], &snappy].concat());
        put("loki_push", "labels", b"\x02{a=\"1\", b=\"x\\\"y\"}\nts=1 level=error msg=x");
    }
    put(
        "http_bodies",
        "logs",
        &[b"\x02".as_slice(), br#"[{"timestamp":"2016-01-01T00:00:00Z","level":"ERROR","logger_name":"db","message":"lost"},{"kind":"log","timestamp":5,"level":"INFO","logger_name":"db","message":"back"}]"#].concat(),
    );
    put(
        "http_bodies",
        "alerts",
        &[
            b"\x03".as_slice(),
            br#"[{"timestamp":1,"alert_id":"x","level":"ERROR","category":"SYSTEM","title":"t","resolved_at":3}]"#,
        ]
        .concat(),
    );
    put(
        "http_bodies",
        "push",
        &[b"\x06".as_slice(), br#"{"ref":"refs/heads/main","repository":{"full_name":"acme/app"},"pusher":{"name":"ada"},"commits":[{"id":"4b825dc642cb6eb9a060e54bf8d69288fbee4904","message":"Fix","timestamp":"2016-01-01T00:00:00Z","author":{"name":"Ada"},"added":["a"],"removed":["b"],"modified":[]}]}"#].concat(),
    );
    put(
        "http_bodies",
        "query",
        b"\x05measurement=cpu&field=usage&agg=max&every=1h&group_by=host&where=host=a&fill=null",
    );
    put(
        "http_bodies",
        "analyze",
        &[
            b"\x05".as_slice(),
            br#"{"measurement":"cpu","field":"usage","agg":["mean","p95"],"every":"1h","where":["host=a"],"limit":10}"#,
        ]
        .concat(),
    );
    let mut codec_seed = vec![2u8];
    for v in [1234i16, 1250, 1199, -5, 0] {
        codec_seed.extend_from_slice(&v.to_le_bytes());
    }
    put("codecs", "decimals", &codec_seed);
    put(
        "codecs",
        "ints",
        &[0, 1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 127],
    );
    trend_seeds();
}

/// A daily rhythm with a spike (five-minute points), and extreme times and values.
fn trend_seeds() {
    let point = |t: i64, v: f64| [t.to_le_bytes(), v.to_bits().to_le_bytes()].concat();
    let mut rhythm = b"measurement=cpu&parts=all&horizon=1h&threshold=90&max_lag=5\n".to_vec();
    for i in 0..600i64 {
        let v = 50.0 + 20.0 * (std::f64::consts::TAU * (i % 288) as f64 / 288.0).sin() + if i == 500 { 300.0 } else { 0.0 };
        rhythm.extend(point(1_700_000_000_000_000_000 + i * 300_000_000_000, v));
    }
    put("trends", "rhythm", &rhythm);
    let mut extreme = b"measurement=cpu&utc_offset=-18:00&sensitivity=1\n".to_vec();
    for (t, v) in [
        (i64::MIN, 1.0),
        (i64::MAX, -1.0),
        (0, f64::NAN),
        (1, f64::INFINITY),
        (2, 1e308),
        (3, -1e308),
        (i64::MAX, 5e-324),
    ] {
        extreme.extend(point(t, v));
    }
    put("trends", "extreme", &extreme);
}
