//! The `annals` command line, run as a real process.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn annals(data: &Path, args: &[&str]) -> Output {
    annals_with_input(data, args, None)
}

fn annals_with_input(data: &Path, args: &[&str], input: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("ANNALS_DATA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(text) = input {
        stdin.write_all(text.as_bytes()).unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn ingest_reports_malformed_lines_and_stores_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let input =
        "cpu,host=a usage=1.5 1000\ncpu,host=a usage= 2000\n\n# comment\ncpu,host=b usage=2.5,cores=4i 3000\ncpu,host=b usage=NaN 4000\n";
    let out = annals_with_input(dir.path(), &["ingest", "-"], Some(input));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "skipped lines exit with 2: {stderr}");
    assert!(stderr.contains("malformed line 2, column 18: empty field value"), "{stderr}");
    assert!(
        stderr.contains("malformed line 6, column 18: invalid field value \"NaN\""),
        "{stderr}"
    );
    assert!(stderr.contains("ingested 2 rows (3 points) from 6 lines"), "{stderr}");

    let out = annals(
        dir.path(),
        &["scan", "--measurement", "cpu", "--format", "csv", "--time-format", "ns"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "time,host,cores,usage\n1000,a,,1.5\n3000,b,4,2.5\n");

    let out = annals(
        dir.path(),
        &["scan", "-m", "cpu", "--field", "usage", "--where", "host=b", "--format", "csv"],
    );
    assert_eq!(text(&out.stdout), "time,host,usage\n1970-01-01T00:00:00.000003Z,b,2.5\n");
}

#[test]
fn lines_of_one_series_and_timestamp_merge_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let input = "m,h=1 a=1 1000000000\nm,h=1 b=2 1000000000\nm,h=1 a=3,c=\"x\" 2000000000\nm,h=1 c=\"y\" 2000000000\n";
    let out = annals_with_input(dir.path(), &["ingest", "-"], Some(input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = annals(
        dir.path(),
        &["scan", "--measurement", "m", "--format", "csv", "--time-format", "ns"],
    );
    assert_eq!(text(&out.stdout), "time,h,a,b,c\n1000000000,1,1,2,\n2000000000,1,3,,y\n");
    let out = annals(
        dir.path(),
        &["query", "--measurement", "m", "--field", "a", "--agg", "count", "--format", "csv"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "count(a)\n2\n");
    // Across a flush (the first writes in a segment, the next in the head) and a compaction.
    let out = annals_with_input(dir.path(), &["ingest", "-"], Some("m,h=1 b=5 2000000000\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(annals(dir.path(), &["compact", "--full"]).status.success());
    let out = annals(
        dir.path(),
        &["scan", "--measurement", "m", "--format", "csv", "--time-format", "ns"],
    );
    assert_eq!(text(&out.stdout), "time,h,a,b,c\n1000000000,1,1,2,\n2000000000,1,3,5,y\n");
}

#[test]
fn integer_timestamps_in_another_unit_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let input = "{\"kind\":\"point\",\"timestamp\":1454284800,\"measurement\":\"m\",\"fields\":{\"v\":1}}\n\
                 {\"kind\":\"point\",\"timestamp\":1454371200,\"measurement\":\"m\",\"fields\":{\"v\":2}}\n";
    let out = annals_with_input(dir.path(), &["ingest", "--format", "jsonl", "-"], Some(input));
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "a warning is not a failure: {stderr}");
    assert!(
        stderr.contains(
            "warning: every integer timestamp (1454284800 to 1454371200) lies before 1971 or after 2200 when read as nanoseconds (--precision ns); they look like seconds: ingest them again with --precision s"
        ),
        "{stderr}"
    );
    let out = annals_with_input(dir.path(), &["ingest", "--format", "jsonl", "--precision", "s", "-"], Some(input));
    assert!(!text(&out.stderr).contains("warning"), "{}", text(&out.stderr));
    let out = annals_with_input(dir.path(), &["ingest", "-"], Some("m v=1 1454284800000000000\n"));
    assert!(!text(&out.stderr).contains("warning"), "{}", text(&out.stderr));
}

#[test]
fn strict_mode_stops_at_the_first_malformed_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = "m v=1 1\nm v=2 2\nm v=oops 3\nm v=4 4\n";
    let out = annals_with_input(dir.path(), &["ingest", "--strict", "--batch-rows", "1"], Some(input));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("stopped at the first malformed line (--strict): line 3, column 5"),
        "{stderr}"
    );
    let out = annals(dir.path(), &["scan", "-m", "m", "--format", "csv", "--time-format", "ns"]);
    assert_eq!(text(&out.stdout), "time,v\n1,1\n2,2\n", "lines before the bad one are stored");
}

#[test]
fn jsonl_kinds_scan_as_json_and_progress_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let input = [
        r#"{"kind":"metric","timestamp":"2016-01-01T00:00:00Z","metric_type":"cpu","metric_name":"usage_percent","value":12.5,"unit":"percent","tags":{"host":"a"}}"#,
        r#"{"kind":"log","timestamp":"2016-01-01T00:00:01Z","level":"ERROR","logger_name":"db","message":"connection lost","line_number":42}"#,
        r#"{"kind":"log","timestamp":"2016-01-01T00:00:01Z","level":"INFO","logger_name":"db","message":"reconnected"}"#,
        r#"{"kind":"alert","timestamp":"2016-01-01T00:00:02Z","alert_id":"a1","level":"WARNING","category":"SYSTEM","title":"disk","resolved_at":"2016-01-01T01:00:00Z"}"#,
        r#"{"kind":"performance","timestamp":"2016-01-01T00:00:03Z","component":"buffer","operation":"flush","duration_ms":3.5}"#,
    ]
    .join("\n");
    let out = annals_with_input(
        dir.path(),
        &["ingest", "--format", "jsonl", "--progress", "json", "--batch-rows", "2"],
        Some(&input),
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let progress: Vec<&str> = stderr.lines().filter(|l| l.starts_with("{\"durable_rows\"")).collect();
    assert_eq!(progress.last(), Some(&"{\"durable_rows\":6,\"durable_points\":12}"), "{stderr}");
    assert_eq!(progress.len(), 3);

    let out = annals(dir.path(), &["scan", "-m", "log", "--where", "level=ERROR", "--format", "json"]);
    let line = text(&out.stdout);
    let value: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(value["time"], "2016-01-01T00:00:01Z");
    assert_eq!(value["tags"]["logger_name"], "db");
    assert_eq!(value["fields"]["message"], "connection lost");
    assert_eq!(value["fields"]["line_number"], 42);
    assert!(value["record_id"].is_u64());

    let out = annals(
        dir.path(),
        &[
            "scan", "-m", "alert", "--field", "state", "--order", "desc", "--limit", "1", "--format", "csv",
        ],
    );
    assert_eq!(
        text(&out.stdout),
        "time,category,level,state\n2016-01-01T01:00:00Z,SYSTEM,WARNING,resolved\n"
    );
}

#[test]
fn stats_and_verify_report_and_repair() {
    let dir = tempfile::tempdir().unwrap();
    let input: String = (0..1000).map(|i| format!("m,host=h{} v={}i {}\n", i % 3, i, i)).collect();
    assert!(annals_with_input(dir.path(), &["ingest"], Some(&input)).status.success());

    let out = annals(dir.path(), &["stats", "--format", "json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["series"], 3);
    assert_eq!(stats["points"], 1000);
    assert!(stats["bytes"].as_u64().unwrap() > 0);
    assert_eq!(stats["months"][0]["month"], "1970-01");
    let out = annals(dir.path(), &["stats"]);
    assert!(text(&out.stdout).contains("series       3"));

    let out = annals(dir.path(), &["verify"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("clean"));
    let segment = std::fs::read_dir(dir.path().join("data/1970-01"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[60] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();
    let out = annals(dir.path(), &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("DAMAGED"), "{}", text(&out.stdout));
    let out = annals(dir.path(), &["scan", "-m", "m"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("verify --repair"), "{}", text(&out.stderr));
    let out = annals(dir.path(), &["verify", "--repair"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(annals(dir.path(), &["verify"]).status.success());
}

#[test]
fn demo_writes_once_and_answers_twice() {
    let dir = tempfile::tempdir().unwrap();
    let out = annals(dir.path(), &["demo", "--days", "2"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("wrote 2 days of history"), "{stdout}");
    assert!(stdout.contains("latest cpu usage per host:"), "{stdout}");
    assert!(stdout.contains("log records by level:"), "{stdout}");
    let out = annals(dir.path(), &["demo", "--days", "2"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("demo data was already written"), "{stdout}");
    assert!(annals(dir.path(), &["verify"]).status.success());
}

#[test]
fn data_directory_comes_from_the_environment_and_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("from-env");
    let out = Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(["ingest", "-"])
        .env("ANNALS_DATA", &store)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(store.join("MANIFEST").is_file());

    let out = annals(&dir.path().join("missing"), &["scan", "-m", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no annals store at"), "{}", text(&out.stderr));
    let out = annals(dir.path(), &["scan", "-m", "x", "--from", "yesterday-ish"]);
    assert!(text(&out.stderr).contains("cannot read time"), "{}", text(&out.stderr));
    let out = annals(dir.path(), &["ingest", "--durability", "maybe"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit with 2");
    let out = Command::new(env!("CARGO_BIN_EXE_annals")).arg("--help").output().unwrap();
    let help = text(&out.stdout);
    for command in ["ingest", "scan", "stats", "verify", "demo"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn query_aggregates_groups_buckets_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let minute = 60_000_000_000i64;
    let mut input = String::new();
    for i in 0..6i64 {
        for host in ["a", "b"] {
            input.push_str(&format!(
                "cpu,host={host},dc=x usage={}.5,idle={}i {}\n",
                i,
                100 - i,
                i * 30_000_000_000
            ));
        }
    }
    assert!(annals_with_input(dir.path(), &["ingest"], Some(&input)).status.success());

    let out = annals(
        dir.path(),
        &[
            "query",
            "-m",
            "cpu",
            "--field",
            "usage",
            "--agg",
            "max,count",
            "--every",
            "1m",
            "--time-format",
            "ns",
            "--format",
            "csv",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("time,max(usage),count(usage)\n0,1.5,4\n{minute},3.5,4\n{},5.5,4\n", 2 * minute)
    );

    let out = annals(
        dir.path(),
        &[
            "query",
            "-m",
            "cpu",
            "--agg",
            "mean(usage),p50(idle)",
            "--group-by",
            "host",
            "--where",
            "host in (b)",
            "--format",
            "csv",
        ],
    );
    assert_eq!(text(&out.stdout), "host,mean(usage),p50(idle)\nb,3,97\n");

    let out = annals(
        dir.path(),
        &[
            "query",
            "-m",
            "cpu",
            "--agg",
            "count",
            "--every",
            "1m",
            "--from",
            "0",
            "--to",
            "240000000000",
            "--fill",
            "0",
            "--time-format",
            "ns",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        text(&out.stdout),
        format!("time,count(*)\n0,4\n{minute},4\n{},4\n{},0\n", 2 * minute, 3 * minute)
    );

    let out = annals(
        dir.path(),
        &[
            "query",
            "-m",
            "cpu",
            "--lastpoint",
            "--field",
            "usage",
            "--time-format",
            "ns",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        text(&out.stdout),
        "time,dc,host,usage\n150000000000,x,a,5.5\n150000000000,x,b,5.5\n"
    );

    let out = annals(
        dir.path(),
        &[
            "query",
            "-m",
            "cpu",
            "--field",
            "usage",
            "--agg",
            "max",
            "--every",
            "1m",
            "--limit",
            "2",
            "--time-format",
            "ns",
            "--format",
            "csv",
        ],
    );
    let cursor = text(&out.stderr)
        .trim()
        .strip_prefix("next page: --cursor ")
        .expect("a cursor for the next page")
        .to_string();
    let out = annals(
        dir.path(),
        &[
            "query",
            "-m",
            "cpu",
            "--field",
            "usage",
            "--agg",
            "max",
            "--every",
            "1m",
            "--limit",
            "2",
            "--time-format",
            "ns",
            "--format",
            "csv",
            "--cursor",
            &cursor,
        ],
    );
    assert_eq!(text(&out.stdout), format!("time,max(usage)\n{},5.5\n", 2 * minute));
    assert!(text(&out.stderr).is_empty(), "no further page");

    for (args, message) in [
        (vec!["--agg", "median", "--field", "usage"], "unknown aggregate"),
        (vec!["--agg", "max"], "needs a field: name one (--field"),
        (vec!["--every", "0s", "--agg", "count"], "longer than zero"),
        (vec!["--where", "host in (a"], "column 11"),
        (vec!["--filter", "usage ~ 3"], "cannot read filter"),
        (vec!["--group-by", "host"], "need at least one aggregate"),
    ] {
        let mut full = vec!["query", "-m", "cpu"];
        full.extend(args);
        let out = annals(dir.path(), &full);
        assert_eq!(out.status.code(), Some(1), "{full:?}");
        assert!(text(&out.stderr).contains(message), "{full:?}: {}", text(&out.stderr));
    }
}

#[test]
fn retention_shows_then_drops_and_queries_say_they_used_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let hour = 3_600_000_000_000i64;
    // Two days of 2016: long past the default 30 days of detail, within no summary year.
    let start = 1_451_606_400_000_000_000i64;
    let mut input = String::new();
    for i in 0..48 {
        input.push_str(&format!("cpu,host=a usage={}.5 {}\n", i % 10, start + i * hour));
    }
    assert!(annals_with_input(dir.path(), &["ingest"], Some(&input)).status.success());
    let plan = annals(dir.path(), &["retention"]);
    let plan_text = text(&plan.stdout);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    assert!(
        plan_text.contains("2016-01") && plan_text.contains("drop") && plan_text.contains("dry run"),
        "{plan_text}"
    );
    assert_eq!(scan_count(dir.path()), 48, "a dry run drops nothing");
    let applied = annals(dir.path(), &["retention", "--apply", "--format", "json"]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let report: serde_json::Value = serde_json::from_slice(&applied.stdout).unwrap();
    assert_eq!(report["applied"], true);
    assert_eq!(report["summary"]["days"], 2);
    assert_eq!(scan_count(dir.path()), 0, "detail and (after a year) summaries are gone");
    let stats = text(&annals(dir.path(), &["stats"]).stdout);
    assert!(stats.contains("summaries"), "{stats}");
    assert!(annals(dir.path(), &["verify"]).status.success());
}

fn scan_count(data: &Path) -> usize {
    let out = annals(data, &["scan", "-m", "cpu", "--format", "csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().count().saturating_sub(1)
}

#[test]
fn commits_come_in_as_json_lines_and_show_log_diff_and_search_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let patch = b"@@ -1 +1,2 @@\n-a\n+b\n+\xff not utf-8\n";
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, patch);
    let hash_a = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    let hash_b = "5b825dc642cb6eb9a060e54bf8d69288fbee4904";
    let input = format!(
        r#"{{"kind":"commit","timestamp":"2026-11-01T10:00:00Z","commit_hash":"{hash_a}","message":"Fix the flush order\n\nbody","author":"Ada","author_email":"ada@example.com","repository":"acme/app","branch":"main","diffs":[{{"file_path":"src/flush.rs","additions":2,"deletions":1,"diff_content":"{encoded}"}},{{"file_path":"docs/new.md","old_path":"docs/old.md"}}]}}
{{"kind":"commit","timestamp":"2026-11-02T10:00:00Z","commit_hash":"{hash_b}","message":"Second","author":"Bob","repository":"acme/app","branch":"main","diffs":[{{"file_path":"docs/z.md","additions":1}}]}}
{{"kind":"commit","timestamp":"2026-11-02T10:00:00Z","commit_hash":"{hash_b}","message":"Second again","author":"Bob","repository":"acme/app","branch":"main"}}
{{"kind":"commit","timestamp":1,"commit_hash":"abc","message":"m","author":"a","repository":"r","branch":"b"}}
{{"kind":"commit","timestamp":1,"commit_hash":"{hash_a}","message":"m","author":"a","repository":"r","branch":"b","diffs":[{{"file_path":"x","diff_content":"not base64!"}}]}}
"#
    );
    let out = annals_with_input(&data, &["ingest", "--format", "jsonl", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(2), "malformed lines: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("malformed line 4: commit_hash \"abc\" has 3 characters"),
        "{stderr}"
    );
    assert!(
        stderr.contains("malformed line 5: diffs[0].diff_content of \"x\" is not base64"),
        "{stderr}"
    );
    assert!(
        stderr.contains("commits: 2 stored, 1 duplicate (already in the store) skipped"),
        "{stderr}"
    );

    let out = annals(&data, &["commits", "show", &hash_a[..7], "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = shown.as_object().unwrap().keys().map(String::as_str).collect();
    for key in [
        "commit_hash",
        "message",
        "author",
        "author_email",
        "timestamp",
        "repository",
        "branch",
        "pusher",
        "commit_count",
        "commit_id",
        "additions",
        "deletions",
        "diff_count",
        "files",
    ] {
        assert!(keys.contains(&key), "{key} missing from {shown}");
    }
    assert_eq!(shown["diff_count"], 2);
    assert_eq!(shown["timestamp"], "2026-11-01T10:00:00Z");
    let file = &shown["files"][0];
    assert_eq!(
        (
            &file["file_path"],
            &file["additions"],
            &file["deletions"],
            &file["binary"],
            &file["diff_bytes"],
            &file["stored"]
        ),
        (
            &"src/flush.rs".into(),
            &2.into(),
            &1.into(),
            &false.into(),
            &(patch.len() as u64).into(),
            &"inline".into()
        )
    );
    assert_eq!(shown["files"][1]["old_path"], "docs/old.md");
    assert_eq!(shown["files"][1]["stored"], "none");

    let out = annals(&data, &["commits", "diff", hash_a, "src/flush.rs"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, patch, "the original bytes, byte for byte");
    let out = annals(&data, &["commits", "diff", hash_a, "docs/new.md"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("docs/new.md was stored without its diff"),
        "{}",
        text(&out.stderr)
    );
    let out = annals(&data, &["commits", "show", "0000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no stored commit has the hash 0000000"));

    let out = annals(&data, &["commits", "log", "--format", "csv", "--path", "docs/"]);
    let csv = text(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "timestamp,commit_hash,repository,branch,author,author_email,commit_id,diff_count,additions,deletions,message"
    );
    assert!(
        lines[1].starts_with(&format!("2026-11-02T10:00:00Z,{hash_b},acme/app,main,Bob,")),
        "{csv}"
    );
    let out = annals(&data, &["commits", "log", "--format", "json", "--author", "Ada", "--limit", "1"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["commit_hash"], hash_a);
    assert!(listed.get("files").is_none(), "a listing has no files");

    let out = annals(&data, &["search", "flush", "--kind", "commit", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hits: Vec<serde_json::Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(hits.len(), 2, "the message and the file path: {hits:?}");
    assert!(hits.iter().all(|h| h["kind"] == "commit"));
    assert!(
        hits.iter().all(|h| h["fields"].get("diff").is_none()),
        "hits leave the diff bytes out"
    );

    let out = annals(&data, &["verify"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("checked 2 commits (3 files) against the commit index, 0 objects"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn the_memory_budget_sets_when_the_head_is_flushed() {
    // 20,000 lines of 200-byte strings in batches of 500: about 5 MB in the head.
    let input: String = (0..20_000)
        .map(|i| format!("m,host=h{} s=\"{:0>200}\" {}\n", i % 3, i, i))
        .collect();
    let segments = |memory: Option<&str>, env: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["ingest", "--batch-rows", "500"];
        if let Some(mb) = memory {
            args = vec!["--memory-mb", mb, "ingest", "--batch-rows", "500"];
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
            .arg("--data")
            .arg(dir.path())
            .args(&args)
            .env_remove("ANNALS_DATA")
            .env_remove("ANNALS_MEMORY_MB")
            .envs(env.map(|mb| ("ANNALS_MEMORY_MB", mb)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = annals(dir.path(), &["stats", "--format", "json"]);
        let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(stats["points"], 20_000);
        stats["segments"].as_u64().unwrap()
    };
    // 512 MiB by default: one flush, at the end. With 1 MiB the head flushes at 256 KiB.
    assert_eq!(segments(None, None), 1);
    assert!(segments(Some("1"), None) >= 10);
    assert!(segments(None, Some("1")) >= 10);

    let out = annals(Path::new("unused"), &["--memory-mb", "0", "stats"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--memory-mb"), "{}", text(&out.stderr));
}
