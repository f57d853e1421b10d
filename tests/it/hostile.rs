//! Hostile input through `annals ingest`: every malformed line is answered with an error
//! naming its line and the reason, the valid lines around it are all stored, and a
//! cardinality attack (10^6 distinct tag values) stays within the series limit and a
//! bounded memory ceiling, which the test prints.

use crate::common::{assert_verifies, options, scan_all};
use annals::{Engine, FieldValue};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `annals --data <store> ingest <args>`; returns (exit code, stderr, peak RSS in KiB).
// The child is reaped by wait4 (for its own rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn ingest(store: &Path, args: &[&str]) -> (i32, String, u64) {
    let stderr_path = store.with_extension("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("--data")
        .arg(store)
        .arg("ingest")
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 gives this child's own peak RSS (other tests' children run concurrently).
    // SAFETY: `child` is our unwaited child; status and usage point to writable memory.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    (code, stderr, usage.ru_maxrss as u64)
}

#[test]
fn malformed_line_protocol_is_reported_by_line_and_valid_lines_around_it_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let input = dir.path().join("hostile.lp");
    let huge = [b"m,host=a v=".as_slice(), &vec![b'9'; 5 << 20], b" 1008"].concat();
    let lines: Vec<(&[u8], Option<&str>)> = vec![
        (b"m,host=a v=1 1000", None),
        (b"m,host=a v=1\xff\xfe 1001", Some("line 2: line is not valid UTF-8")),
        (
            b"m,host=a s=\"unterminated 1002",
            Some("line 3, column 12: unterminated string value"),
        ),
        (b"m,host=a v=NaN 1003", Some("line 4, column 12: invalid field value \"NaN\"")),
        (b"m,host=a v=inf 1004", Some("line 5, column 12: invalid field value \"inf\"")),
        (
            b"m,host=a v=1 99999999999999999999",
            Some("line 6, column 14: timestamp \"99999999999999999999\" is not an integer in range"),
        ),
        (b",host=a v=1 1005", Some("line 7, column 1: empty measurement name")),
        (b"m,host=a v=2 1007", None),
        (&huge, Some("(line 9)")),
        (b"m,host=a v=3 1009", None),
        (
            b"m,host=a v=1e400 1011",
            Some("line 11, column 12: float \"1e400\" is out of range"),
        ),
        (
            b"m,host=a v=1 -9223372036854775809",
            Some("line 12, column 14: timestamp \"-9223372036854775809\" is not an integer in range"),
        ),
        (b"m,=a v=1 1012", Some("line 13")),
        (b"m,host=a v=4 1013", None),
    ];
    let mut bytes = Vec::new();
    for (line, _) in &lines {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    std::fs::write(&input, bytes).unwrap();
    let (code, stderr, _) = ingest(&store, &[input.to_str().unwrap()]);
    assert_eq!(code, 2, "without --strict, malformed lines are skipped (exit status 2): {stderr}");
    for (line, expected) in &lines {
        if let Some(expected) = expected {
            assert!(
                stderr.contains(expected),
                "no {expected:?} for {:?} in\n{stderr}",
                String::from_utf8_lossy(&line[..line.len().min(40)])
            );
        }
    }
    let malformed = lines.iter().filter(|(_, e)| e.is_some()).count();
    assert!(stderr.contains(&format!("{malformed} malformed lines skipped")), "{stderr}");
    assert!(stderr.contains("max_line_bytes exceeded: 5242896 > 4194304"), "{stderr}");
    let engine = Engine::open(&store, options()).unwrap();
    let values: Vec<(i64, FieldValue)> = scan_all(&engine, "m")
        .into_iter()
        .map(|r| (r.timestamp, r.fields[0].1.clone()))
        .collect();
    assert_eq!(
        values,
        [(1000, 1.0), (1007, 2.0), (1009, 3.0), (1013, 4.0)].map(|(t, v)| (t, FieldValue::F64(v))),
        "every valid line is stored, nothing else"
    );
    engine.close().unwrap();
    assert_verifies(&store, "after hostile line protocol");

    // --strict stops at the first bad line and keeps the lines before it.
    let strict_store = dir.path().join("strict");
    let (code, stderr, _) = ingest(&strict_store, &["--strict", input.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("line 2: line is not valid UTF-8"), "{stderr}");
    let engine = Engine::open(&strict_store, options()).unwrap();
    assert_eq!(scan_all(&engine, "m").len(), 1);
    engine.close().unwrap();
    assert_verifies(&strict_store, "after a strict ingest");
}

#[test]
fn malformed_json_lines_are_reported_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let input = dir.path().join("hostile.jsonl");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let lines: Vec<(String, Option<&str>)> = vec![
        (r#"{"kind":"point","timestamp":1,"measurement":"j","fields":{"v":1}}"#.into(), None),
        (
            r#"{"kind":"point","timestamp":2,"measurement":"j","fields":{"v":"#.into(),
            Some("line 2"),
        ),
        (
            r#"{"kind":"point","timestamp":3,"measurement":"","fields":{"v":1}}"#.into(),
            Some("line 3"),
        ),
        (
            r#"{"kind":"point","timestamp":1e30,"measurement":"j","fields":{"v":1}}"#.into(),
            Some("line 4"),
        ),
        (
            r#"{"kind":"point","timestamp":5,"measurement":"j","fields":{"v":"NaN\u0000"}}"#.into(),
            None,
        ),
        (deep, Some("line 6")),
        (
            r#"{"kind":"point","timestamp":7,"measurement":"j","fields":{}}"#.into(),
            Some("line 7"),
        ),
        (
            r#"{"kind":"metric","timestamp":"2300-01-01T00:00:00Z","metric_type":"cpu","metric_name":"u","value":1}"#.into(),
            Some("line 8"),
        ),
        (r#"{"kind":"point","timestamp":9,"measurement":"j","fields":{"v":2}}"#.into(), None),
    ];
    let mut text = lines.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>().join("\n");
    text.push('\n');
    std::fs::write(&input, text).unwrap();
    let (code, stderr, _) = ingest(&store, &[input.to_str().unwrap()]);
    assert_eq!(code, 2, "malformed lines skipped: {stderr}");
    for (_, expected) in &lines {
        if let Some(expected) = expected {
            assert!(stderr.contains(&format!("malformed {expected}")), "no {expected:?} in\n{stderr}");
        }
    }
    let engine = Engine::open(&store, options()).unwrap();
    let rows = scan_all(&engine, "j");
    assert_eq!(rows.iter().map(|r| r.timestamp).collect::<Vec<_>>(), [1, 5, 9]);
    engine.close().unwrap();
    assert_verifies(&store, "after hostile JSON lines");
}

/// 10^6 distinct tag values, then more: the store takes series up to its limit (10^6 by
/// default) and refuses the batch that would pass it; the ingest's peak memory is printed.
#[test]
fn a_cardinality_attack_stops_at_the_series_limit_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let input = dir.path().join("cardinality.lp");
    const DISTINCT: u64 = 1_000_000;
    const EXTRA: u64 = 2_000;
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for i in 0..DISTINCT + EXTRA {
            writeln!(out, "card,id=v{i} n={i}i {}", 1_451_606_400_000_000_000u64 + i).unwrap();
        }
    }
    let started = std::time::Instant::now();
    let (code, stderr, peak_kib) = ingest(&store, &["--progress", "none", input.to_str().unwrap()]);
    // The batch that would pass the limit is refused whole and the ingest stops, saying how
    // far it got: everything before it is durable.
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("writing failed after 1,000,000 durable rows: max_series exceeded"),
        "{stderr}"
    );
    assert!(
        stderr.contains("input from line 1,000,001 on was not stored (the refused batch held lines 1,000,001-1,002,000)"),
        "{stderr}"
    );
    eprintln!(
        "cardinality attack: {} distinct tag values offered, {DISTINCT} ingested in {:.1?} until the series limit, peak RSS {} MiB",
        DISTINCT + EXTRA,
        started.elapsed(),
        peak_kib / 1024
    );
    // A ceiling that a leak per line, or growth beyond ~1.5 KiB per series, would break
    // (measured: about 1.0 GiB for 10^6 series: catalog, tag index, and a frozen and an
    // active head while a flush runs).
    assert!(peak_kib < 1536 << 10, "ingest peaked at {peak_kib} KiB");
    let engine = Engine::open(&store, options()).unwrap();
    assert_eq!(engine.stats().unwrap().series, DISTINCT);
    engine.close().unwrap();
    assert_verifies(&store, "after the cardinality attack");
}
