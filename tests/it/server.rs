//! `annals serve` through a real HTTP client: the binary is started on a free loopback
//! port, spoken to with ureq, stopped with SIGTERM, and its answers compared with the
//! library's on the same store afterwards.

use annals::history::History;
use annals::query::QuerySpec;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `annals serve`, stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Server {
    fn start(data: &Path, token: Option<&str>, extra: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_annals"));
        command
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("ANNALS_TOKEN")
            .env_remove("ANNALS_WEBHOOK_SECRET")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            command.env("ANNALS_TOKEN", t);
        }
        let mut child = command.spawn().unwrap();
        // The first line on stderr names the bound address.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || for _ in stderr.lines() {});
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        Server {
            child,
            base: format!("http://{address}"),
            token: token.map(String::from),
            agent,
        }
    }

    /// GET with the server's token; (status, body as JSON or as text in a string).
    fn get(&self, path: &str) -> (u16, Value) {
        let mut request = self.agent.get(&format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            request = request.header("Authorization", &format!("Bearer {t}"));
        }
        answer(request.call().unwrap())
    }

    /// POST with the server's token.
    fn post(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self.agent.post(&format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            request = request.header("Authorization", &format!("Bearer {t}"));
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        answer(request.send(body).unwrap())
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn answer(mut response: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

const LINES: &str = "cpu,host=a usage=1.5,cores=8i 1451606400000000000\n\
cpu,host=b usage=2.5,cores=4i 1451606400000000000\n\
cpu,host=a usage=3.5,cores=8i 1451606460000000000\n";

#[test]
fn writes_and_queries_over_http_equal_the_librarys_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    assert_eq!(server.get("/health"), (200, json!({"status": "ok"})));

    assert_eq!(server.post("/write", LINES.as_bytes(), &[]).0, 204);
    // A bad third line: 400 naming it, and none of the request stored.
    let (status, error) = server.post(
        "/write?precision=s",
        b"mem,host=a used=1 1451606400\nmem,host=a used=2 1451606460\nmem,host=a used= 1451606520\n",
        &[],
    );
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"], "bad_input");
    assert_eq!(error["line"], 3, "{error}");
    let (status, error) = server.post("/write?precision=fortnights", b"x v=1", &[]);
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")));

    // A gzip'd body is accepted.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"disk,host=a free=10 1451606400000000000\n").unwrap();
    let gzipped = gz.finish().unwrap();
    assert_eq!(server.post("/write", &gzipped, &[("Content-Encoding", "gzip")]).0, 204);

    // Typed JSON records, all or nothing; a bad element is named by its position.
    let logs = json!([
        {"timestamp": "2016-01-01T00:00:00Z", "level": "ERROR", "logger_name": "db", "message": "connection lost"},
        {"timestamp": "2016-01-01T00:01:00Z", "level": "INFO", "logger_name": "db", "message": "reconnected"},
    ]);
    let (status, stored) = server.post("/history/logs", logs.to_string().as_bytes(), &[]);
    assert_eq!((status, stored["stored"].clone()), (201, json!(2)), "{stored}");
    let bad = json!([
        {"timestamp": "2016-01-01T00:02:00Z", "level": "INFO", "logger_name": "db", "message": "fine"},
        {"timestamp": "2016-01-01T00:03:00Z", "level": "INFO", "logger_name": "db", "mesage": "typo"},
    ]);
    let (status, error) = server.post("/history/logs", bad.to_string().as_bytes(), &[]);
    assert_eq!((status, error["line"].clone()), (400, json!(2)), "{error}");

    // Queries: raw rows with paging, and an aggregate.
    let (status, page) = server.get("/history/metrics?measurement=cpu&field=usage&order=asc&limit=2&time_format=ns");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["columns"], json!(["time", "host", "usage"]));
    assert_eq!(page["rows"].as_array().unwrap().len(), 2);
    assert_eq!(page["total_count"], 3);
    assert!(page["next_cursor"].is_string());
    let raw_query = "measurement=cpu&field=usage&order=asc&limit=2";
    let aggregate_query = "measurement=cpu&field=usage&agg=max&group_by=host&where=host%20in%20(a%2C%20b)";
    let (status, aggregated) = server.get(&format!("/history/metrics?{aggregate_query}"));
    assert_eq!(status, 200, "{aggregated}");
    assert_eq!(aggregated["rows"], json!([["a", 3.5], ["b", 2.5]]));
    let (status, error) = server.get("/history/metrics?measurement=cpu&agg=max");
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")), "{error}");
    let (status, raw_page) = server.get(&format!("/history/metrics?{raw_query}"));
    assert_eq!(status, 200);

    // Records of a kind, newest first, as the library's query_data gives them.
    let (status, logs_page) = server.get("/history/logs?level=ERROR");
    assert_eq!(status, 200, "{logs_page}");
    assert_eq!(logs_page["records"].as_array().unwrap().len(), 1);
    assert_eq!(logs_page["records"][0]["message"], "connection lost");
    assert_eq!(logs_page["records"][0]["kind"], "log");
    let samples = json!([{"timestamp": "2016-01-01T00:00:00Z", "component": "buffer", "operation": "flush", "duration_ms": 3.5}]);
    assert_eq!(server.post("/history/performance", samples.to_string().as_bytes(), &[]).0, 201);
    let (status, perf_page) = server.get("/history/performance?component=buffer&order=asc");
    assert_eq!(status, 200, "{perf_page}");
    assert_eq!(perf_page["records"][0]["duration_ms"], 3.5);
    assert_eq!(server.get("/history/performance?level=ERROR").0, 400, "level is a logs parameter");

    // Reports over the query engine.
    let (status, summary) = server.get("/history/metrics/summary?measurement=cpu&field=usage&period=hour");
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        summary["rows"][0],
        json!(["2016-01-01T00:00:00Z", 3, 2.5, 1.5, 3.5, 3.5]),
        "{summary}"
    );
    assert_eq!(
        server.get("/history/metrics/summary?measurement=cpu&field=usage&period=month").0,
        400
    );
    let (status, stats) = server.get("/history/logs/stats?every=1d");
    assert_eq!(status, 200, "{stats}");
    let mut per_level: Vec<(String, i64)> = stats["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[1].as_str().unwrap().to_string(), r[2].as_i64().unwrap()))
        .collect();
    per_level.sort();
    assert_eq!(per_level, [("ERROR".to_string(), 1), ("INFO".to_string(), 1)]);
    let (status, analysis) = server.get("/history/performance/analysis");
    assert_eq!(status, 200, "{analysis}");
    let row = &analysis["rows"][0];
    assert_eq!(
        (row[0].clone(), row[1].clone(), row[2].clone(), row[4].clone()),
        (json!("buffer"), json!("flush"), json!(1), json!(3.5))
    );
    assert_eq!(analysis["columns"].as_array().unwrap().last().unwrap(), "error_rate");
    assert_eq!(row.as_array().unwrap().last().unwrap(), &json!(0.0));
    assert_eq!(
        server.get("/history/performance/analysis?measurement=cpu").0,
        400,
        "the report fixes its measurement"
    );
    let later = json!([{"timestamp": "2016-01-02T00:00:00Z", "component": "buffer", "operation": "flush", "duration_ms": 7.0}]);
    assert_eq!(server.post("/history/performance", later.to_string().as_bytes(), &[]).0, 201);
    let (status, compared) =
        server.get("/history/performance/compare?baseline_from=2016-01-01&baseline_to=2016-01-02&from=2016-01-02&to=2016-01-03");
    assert_eq!(status, 200, "{compared}");
    let columns = compared["columns"].as_array().unwrap();
    let p50 = columns.iter().position(|c| c == "ratio p50(duration_ms)").unwrap();
    assert_eq!(compared["rows"][0][p50], 2.0, "7 ms against 3.5 ms: {compared}");

    // Full-text search over the logs, with snippets and highlights.
    let (status, found) = server.get("/history/logs/search?q=connection&level=error&logger=db");
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["total"], 1, "{found}");
    let hit = &found["hits"][0];
    assert_eq!(hit["fields"]["message"], "connection lost");
    let fragment = hit["snippet"]["fragment"].as_str().unwrap();
    let [start, end] = [0, 1].map(|i| hit["snippet"]["highlights"][0][i].as_u64().unwrap() as usize);
    assert_eq!(&fragment[start..end], "connection");
    assert_eq!(server.get("/history/logs/search?q=connection&level=info").1["total"], 0);
    let (status, error) = server.get("/history/logs/search?q=(unclosed");
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")), "{error}");
    assert!(error["reason"].as_str().unwrap().starts_with("q: "), "{error}");

    // Unknown routes and commits are 404, as JSON.
    let (status, error) = server.get("/history/nothing");
    assert_eq!((status, error["error"].as_str()), (404, Some("not_found")));

    assert!(server.stop().success(), "SIGTERM stops the server cleanly");

    // The library answers the same on the same store.
    let history = History::open(dir.path(), annals::Options::default()).unwrap();
    let library_rows = |query: &str| -> Vec<Value> {
        let pairs: Vec<(String, String)> = query
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.replace("%20", " ").replace("%2C", ","))
            })
            .collect();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        query_rows(&history, &pairs)
            .iter()
            .map(|r| {
                let mut cells: Vec<Value> = r.time.map(|t| annals::time::format_rfc3339(t).into()).into_iter().collect();
                cells.extend(r.tags.iter().map(|t| t.clone().map_or(Value::Null, Value::from)));
                cells.extend(r.values.iter().map(|v| v.as_ref().map_or(Value::Null, |v| v.to_json())));
                Value::Array(cells)
            })
            .collect()
    };
    assert_eq!(raw_page["rows"], Value::Array(library_rows(raw_query)));
    assert_eq!(aggregated["rows"], Value::Array(library_rows(aggregate_query)));
    assert!(
        library_rows("measurement=mem").is_empty(),
        "the request with a bad line stored nothing"
    );
    assert_eq!(library_rows("measurement=disk").len(), 1);
    assert_eq!(
        library_rows("measurement=log&kind=log").len(),
        2,
        "the bad log array stored nothing"
    );
    let library_logs = history
        .query_data(&annals::history::DataQuery {
            data_types: vec![annals::history::DataType::Logs],
            levels: vec![annals::LogLevel::Error],
            ..annals::history::DataQuery::default()
        })
        .unwrap();
    let as_json: Vec<Value> = library_logs.rows.iter().map(|r| r.to_json()).collect();
    assert_eq!(logs_page["records"], Value::Array(as_json));
}

#[test]
fn a_token_guards_every_route_but_health() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some("s3cret"), &["--max-body-bytes", "1000"]);
    let base = server.base.clone();
    let raw = |path: &str, auth: Option<&str>| {
        let mut request = server.agent.get(&format!("{base}{path}"));
        if let Some(a) = auth {
            request = request.header("Authorization", a);
        }
        answer(request.call().unwrap())
    };
    assert_eq!(raw("/health", None).0, 200);
    let (status, document) = raw("/openapi.json", None);
    assert_eq!(
        (status, document["openapi"].as_str()),
        (200, Some("3.1.0")),
        "the API document needs no token"
    );
    let (status, error) = raw("/history/storage", None);
    assert_eq!((status, error["error"].as_str()), (401, Some("unauthorized")));
    assert!(!error.to_string().contains("points"), "a refusal reveals no data: {error}");
    assert_eq!(raw("/history/storage", Some("Bearer wrong")).0, 401);
    assert_eq!(raw("/history/storage", Some("s3cret")).0, 401, "the Bearer scheme is required");
    assert_eq!(server.get("/history/storage").0, 200);

    // Bodies over the limit: as sent, and after decompression.
    let big = "cpu,host=a usage=1 1\n".repeat(100);
    let (status, error) = server.post("/write", big.as_bytes(), &[]);
    assert_eq!((status, error["limit"].as_str()), (413, Some("body size")), "{error}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(big.as_bytes()).unwrap();
    let gzipped = gz.finish().unwrap();
    assert!(gzipped.len() < 1000);
    assert_eq!(server.post("/write", &gzipped, &[("Content-Encoding", "gzip")]).0, 413);
    assert_eq!(server.post("/write", b"x", &[("Content-Encoding", "br")]).0, 415);
    assert!(server.stop().success());
}

#[test]
fn a_public_address_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("--data")
        .arg(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("ANNALS_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without a token"), "{stderr}");
    assert!(!dir.path().join("MANIFEST").exists(), "nothing was created");
}

#[test]
fn commits_are_stored_listed_and_read_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let hash = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    let patch = b"@@ -1 +1 @@\n-old\n+new\n";
    let commit = json!({
        "commit_hash": hash, "message": "Fix the parser", "author": "Ada", "timestamp": "2016-01-01T00:00:00Z",
        "repository": "acme/app", "branch": "main",
        "diffs": [{"file_path": "src/a.rs", "additions": 1, "deletions": 1,
                   "diff_content": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, patch)}],
    });
    let (status, results) = server.post("/history/commits", commit.to_string().as_bytes(), &[]);
    assert_eq!(status, 200, "{results}");
    assert_eq!(results[0]["status"], "Success");
    assert_eq!(results[0]["metadata"]["total_additions"], 1);
    let (status, results) = server.post("/history/commits", json!([commit]).to_string().as_bytes(), &[]);
    assert_eq!((status, results[0]["status"].as_str()), (200, Some("Duplicate")));

    let (status, shown) = server.get(&format!("/history/commits/{}?diff=true", &hash[..8]));
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["commit_hash"], hash);
    assert_eq!(shown["diff_count"], 1);
    let encoded = shown["files"][0]["diff_content"].as_str().unwrap();
    assert_eq!(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap(),
        patch
    );
    let (status, listed) = server.get("/history/commits?repository=acme/app&limit=10");
    assert_eq!(status, 200);
    assert_eq!(listed["commits"][0]["commit_hash"], hash);
    assert_eq!(listed["next_cursor"], Value::Null);
    let (status, error) = server.get("/history/commits/0000000000");
    assert_eq!((status, error["error"].as_str()), (404, Some("not_found")));
    let (status, error) = server.get("/history/commits?colour=red");
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")));
    assert!(server.stop().success());

    let history = History::open(dir.path(), annals::Options::default()).unwrap();
    let stored = history.get_commit_by_hash(hash).unwrap().unwrap();
    assert_eq!(stored.to_json(true), {
        let mut shown = shown.clone();
        shown["files"][0].as_object_mut().unwrap().remove("diff_content");
        shown
    });
}

#[test]
fn alerts_are_acknowledged_resolved_and_listed_by_state() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let alerts = json!([
        {"timestamp": "2016-01-01T00:00:00Z", "alert_id": "disk-1", "level": "WARNING", "category": "SYSTEM", "title": "disk 91% full"},
        {"timestamp": "2016-01-01T00:05:00Z", "alert_id": "cpu-1", "level": "ERROR", "category": "PERFORMANCE", "title": "cpu hot"},
    ]);
    assert_eq!(server.post("/history/alerts", alerts.to_string().as_bytes(), &[]).0, 201);
    let ids = |body: &Value| -> Vec<String> {
        body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}:{}", a["alert_id"].as_str().unwrap(), a["state"].as_str().unwrap()))
            .collect()
    };
    let (status, open) = server.get("/history/alerts?state=open");
    assert_eq!(status, 200, "{open}");
    assert_eq!(ids(&open), ["cpu-1:raised", "disk-1:raised"]);

    let (status, acknowledged) = server.post("/history/alerts/disk-1/acknowledge?at=2016-01-01T00:10:00Z", b"", &[]);
    assert_eq!(
        (status, acknowledged["state"].as_str()),
        (200, Some("acknowledged")),
        "{acknowledged}"
    );
    assert_eq!(acknowledged["title"], "disk 91% full", "the event keeps the alert's fields");
    let (status, resolved) = server.post("/history/alerts/cpu-1/resolve?at=2016-01-01T00:20:00Z", b"", &[]);
    assert_eq!((status, resolved["state"].as_str()), (200, Some("resolved")));

    assert_eq!(ids(&server.get("/history/alerts?state=open").1), ["disk-1:acknowledged"]);
    assert_eq!(ids(&server.get("/history/alerts?state=resolved").1), ["cpu-1:resolved"]);
    assert_eq!(ids(&server.get("/history/alerts").1), ["cpu-1:resolved", "disk-1:acknowledged"]);
    let (status, error) = server.post("/history/alerts/nope/resolve", b"", &[]);
    assert_eq!((status, error["error"].as_str()), (404, Some("not_found")));
    let (status, error) = server.get("/history/alerts?state=sleeping");
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")));
    assert!(server.stop().success());

    let history = History::open(dir.path(), annals::Options::default()).unwrap();
    let open = history
        .alerts(&[annals::AlertState::Raised, annals::AlertState::Acknowledged], 10)
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].alert_id, "disk-1");
}

#[test]
fn signed_git_push_deliveries_are_stored_once() {
    use hmac::{KeyInit, Mac};
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("hook-secret");
    std::fs::write(&secret_file, "hook-s3cret\n").unwrap();
    let store = dir.path().join("store");
    let server = Server::start(&store, Some("api-token"), &["--webhook-secret-file", secret_file.to_str().unwrap()]);
    let push = json!({
        "ref": "refs/heads/main",
        "repository": {"full_name": "acme/app"},
        "pusher": {"name": "ada"},
        "commits": [{
            "id": "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "message": "Fix the parser",
            "timestamp": "2016-01-01T00:00:00Z", "author": {"name": "Ada", "email": "ada@example.com"},
            "added": ["src/new.rs"], "removed": [], "modified": ["src/a.rs"],
        }],
    })
    .to_string();
    let sign = |body: &[u8], key: &[u8]| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        format!("sha256={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
    };
    // A delivery carries no bearer token: its signature authenticates it.
    let deliver = |body: &[u8], signature: Option<String>, event: &str| {
        let mut request = server
            .agent
            .post(&format!("{}/hooks/git", server.base))
            .header("X-GitHub-Event", event)
            .header("Content-Type", "application/json");
        if let Some(s) = signature {
            request = request.header("X-Hub-Signature-256", &s);
        }
        answer(request.send(body).unwrap())
    };
    let (status, stored) = deliver(push.as_bytes(), Some(sign(push.as_bytes(), b"hook-s3cret")), "push");
    assert_eq!((status, stored["stored"].clone()), (200, json!(1)), "{stored}");
    let (status, again) = deliver(push.as_bytes(), Some(sign(push.as_bytes(), b"hook-s3cret")), "push");
    assert_eq!(
        (status, again["duplicates"].clone()),
        (200, json!(1)),
        "a re-delivery is a duplicate"
    );
    let (status, error) = deliver(push.as_bytes(), Some(sign(push.as_bytes(), b"wrong")), "push");
    assert_eq!((status, error["error"].as_str()), (401, Some("unauthorized")));
    assert_eq!(deliver(push.as_bytes(), None, "push").0, 401);
    assert_eq!(
        deliver(b"{}", Some(sign(b"{}", b"hook-s3cret")), "ping"),
        (200, json!({"ok": true}))
    );
    let (status, error) = deliver(b"{}", Some(sign(b"{}", b"hook-s3cret")), "push");
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")), "{error}");

    let (status, shown) = server.get("/history/commits/4b825dc");
    assert_eq!(status, 200);
    assert_eq!(shown["pusher"], "ada");
    assert_eq!(shown["files"].as_array().unwrap().len(), 2);
    assert!(server.stop().success());
}

/// The rows of a query written as parameters, read through the library.
fn query_rows(history: &History, pairs: &[(&str, &str)]) -> Vec<annals::QueryRow> {
    let spec = QuerySpec::from_pairs(pairs.iter().copied()).unwrap();
    let (rows, _) = history
        .engine()
        .snapshot()
        .query(&spec.to_query(0).unwrap())
        .unwrap()
        .collect_rows()
        .unwrap();
    rows
}

/// Runs the `annals` binary on the store in `data` and waits for it.
fn run_annals(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// A WebSocket client of `GET /history/ws`, reading with a timeout.
struct Events {
    socket: tungstenite::WebSocket<std::net::TcpStream>,
}

impl Events {
    fn connect(server: &Server, query: &str) -> Events {
        use tungstenite::client::IntoClientRequest;
        let address = server.base.trim_start_matches("http://").to_string();
        let mut request = format!("ws://{address}/history/ws{query}").into_client_request().unwrap();
        if let Some(t) = &server.token {
            request
                .headers_mut()
                .insert("Authorization", format!("Bearer {t}").parse().unwrap());
        }
        let stream = std::net::TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let (socket, _) = tungstenite::client(request, stream).unwrap();
        Events { socket }
    }

    /// The next event as JSON.
    fn next(&mut self) -> Value {
        loop {
            match self.socket.read().unwrap() {
                tungstenite::Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                tungstenite::Message::Close(frame) => panic!("the server closed the event stream: {frame:?}"),
                _ => {}
            }
        }
    }

    fn send(&mut self, text: &str) {
        self.socket.send(tungstenite::Message::Text(text.into())).unwrap();
    }
}

#[test]
fn data_events_arrive_in_commit_order_and_filters_apply() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some("sesame"), &[]);
    let mut all = Events::connect(&server, "");
    assert_eq!(all.next()["type"], "subscribed");
    let mut only_logs = Events::connect(&server, "?kinds=log");
    assert_eq!(only_logs.next()["kinds"], json!(["log"]));

    let writes = 40;
    for i in 0..writes {
        let line = format!(
            "cpu,host=h{} usage={i} {}\n",
            i % 3,
            1_451_606_400_000_000_000i64 + i * 1_000_000_000
        );
        assert_eq!(server.post("/write", line.as_bytes(), &[]).0, 204);
    }
    let log = json!([{"timestamp": "2016-01-01T00:00:00Z", "level": "ERROR", "logger_name": "db", "message": "lost"}]);
    assert_eq!(server.post("/history/logs", log.to_string().as_bytes(), &[]).0, 201);

    // Every row arrives once, in commit order, in few merged events.
    let (mut rows, mut next_seq, mut events) = (0, 1, 0);
    while rows < writes + 1 {
        let event = all.next();
        assert_eq!(event["type"], "history_data_updated", "{event}");
        assert_eq!(event["first_seq"], next_seq, "events in commit order: {event}");
        next_seq = event["last_seq"].as_u64().unwrap() + 1;
        rows += event["rows"].as_u64().unwrap() as i64;
        events += 1;
    }
    assert_eq!(rows, writes + 1);
    assert!(events <= writes + 1);
    let event = only_logs.next();
    assert_eq!(
        (event["kinds"].clone(), event["rows"].clone()),
        (json!(["log"]), json!(1)),
        "{event}"
    );

    // A filter sent as a message replaces the query string's; a bad one is answered.
    only_logs.send(r#"{"types": ["nope"]}"#);
    let answer = only_logs.next();
    assert_eq!(answer["type"], "error", "{answer}");
    only_logs.send(r#"{"types": ["history_data_updated"], "measurements": ["mem"]}"#);
    assert_eq!(only_logs.next()["measurements"], json!(["mem"]));
    assert_eq!(server.post("/write", b"mem,host=a used=1 1451606400000000000\n", &[]).0, 204);
    let event = only_logs.next();
    assert_eq!(event["measurements"], json!(["mem"]), "{event}");

    // Browsers cannot send headers with a handshake: the token may come as `?token=`.
    let mut headerless = Server::start(dir.path().join("other").as_path(), Some("sesame"), &[]);
    headerless.token = None;
    let mut by_query = Events::connect(&headerless, "?token=sesame&types=lagged");
    assert_eq!(by_query.next()["types"], json!(["lagged"]));
    assert_eq!(headerless.get("/history/ws?token=wrong").0, 401);
    assert_eq!(
        headerless.get("/history/storage?token=sesame").0,
        401,
        "only the handshake takes it"
    );
    // The page holds no data and needs no token.
    let (status, page) = headerless.get("/");
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("<title>annals</title>"));
    drop(by_query);
    drop(headerless);

    // The bad filter of a query string is a 400 before any upgrade; no token is a 401.
    assert_eq!(server.get("/history/ws?types=nope").0, 400);
    let unauthenticated = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .get(&format!("{}/history/ws", server.base))
        .call()
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);

    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(metrics.contains("annals_websocket_subscribers 2"), "{metrics}");
    assert!(
        metrics.contains("annals_ingested_rows_total{kind=\"line_protocol\"} 41"),
        "{metrics}"
    );
    assert!(
        metrics.contains("annals_http_requests_total{route=\"/write\",method=\"POST\",status=\"204\"} 41"),
        "{metrics}"
    );
    assert!(metrics.contains("annals_http_request_duration_seconds_bucket{"), "{metrics}");
    assert!(server.stop().success());
}

/// The server's count of events dropped from WebSocket queues, from `GET /metrics`.
fn dropped_events(server: &Server) -> u64 {
    let (_, metrics) = server.get("/metrics");
    metrics
        .as_str()
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("annals_websocket_dropped_events_total "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[test]
fn a_stalled_client_loses_the_oldest_events_is_told_so_and_never_holds_up_writers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &["--subscriber-queue", "4"]);
    let mut stalled = Events::connect(&server, "");
    assert_eq!(stalled.next()["type"], "subscribed");
    let line = |i: u64| format!("cpu,host=a usage={i} {}\n", 1_451_606_400_000_000_000u64 + i);

    // The client reads nothing from here on. Data events merge while unread: many writes
    // fit in its queue of four, and none is lost.
    let mut rows = 0u64;
    for _ in 0..300 {
        rows += 1;
        assert_eq!(server.post("/write", line(rows).as_bytes(), &[]).0, 204);
    }
    // Data and operation events in turn do not merge: the queue overflows and drops its
    // oldest. Bounded: rounds until the server reports a drop.
    let mut operations = Vec::new();
    while dropped_events(&server) == 0 {
        assert!(operations.len() < 400, "no event was dropped after {} rounds", operations.len());
        rows += 1;
        assert_eq!(server.post("/write", line(rows).as_bytes(), &[]).0, 204);
        let (status, started) = server.post("/history/optimize", b"", &[]);
        assert_eq!(status, 202, "{started}");
        let id = started["id"].as_u64().unwrap();
        operations.push(id);
        for _ in 0..1000 {
            let (_, operation) = server.get(&format!("/history/operations/{id}"));
            if operation["status"] != "running" {
                assert_eq!(operation["status"], "succeeded", "{operation}");
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    // Now it reads: data events in commit order, `lagged` counting what it lost, and the
    // newest events (the last write, the last operation) always there.
    let (mut last_seq, mut lagged, mut last_operation) = (0u64, 0u64, None);
    while last_seq < rows || last_operation != operations.last().copied() {
        let event = stalled.next();
        match event["type"].as_str().unwrap() {
            "history_data_updated" => {
                let first = event["first_seq"].as_u64().unwrap();
                assert!(first > last_seq, "commit order: {event} after row {last_seq}");
                last_seq = event["last_seq"].as_u64().unwrap();
            }
            "lagged" => lagged += event["dropped"].as_u64().unwrap(),
            "operation_completed" => last_operation = event["id"].as_u64(),
            other => panic!("unexpected event {other}: {event}"),
        }
    }
    assert_eq!(last_seq, rows);
    assert!(lagged > 0, "the client was told of its losses");
    assert_eq!(dropped_events(&server), lagged, "the server counts what its clients were told");
    assert!(server.stop().success());
}

#[test]
fn dashboard_reports_and_analyze_answer_as_the_library_does() {
    let dir = tempfile::tempdir().unwrap();
    let demo = run_annals(dir.path(), &["demo", "--days", "2", "--seed", "7"]);
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let server = Server::start(dir.path(), None, &[]);
    let (status, board) = server.get("/history/dashboard?from=now-3d&to=now%2B1h");
    assert_eq!(status, 200, "{board}");
    assert_eq!(board["latest"].as_array().unwrap().len(), 24, "8 hosts, 3 readings: {board}");
    assert_eq!(board["busiest"].as_array().unwrap().len(), 5);
    assert!(board["logs_by_level"]["INFO"].as_u64().unwrap() > 0, "{board}");
    assert!(!board["log_timeline"].as_array().unwrap().is_empty());
    assert_eq!(board["latency"].as_array().unwrap().len(), 6, "{board}");
    let (status, error) = server.get("/history/dashboard?reading=cpu");
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")), "{error}");
    let (status, error) = server.get("/history/dashboard?color=red");
    assert_eq!(status, 400, "{error}");

    let (status, report) = server.get("/history/reports?period=day&end=now%2B1h");
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["period"], "day");
    assert!(report["changes"].as_array().unwrap().len() >= 3, "{report}");
    let html = server
        .agent
        .get(&format!("{}/history/reports?period=week", server.base))
        .header("Accept", "text/html")
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        html.starts_with("<!doctype html>") && html.contains("Operation latency by component"),
        "{html}"
    );
    assert_eq!(server.get("/history/reports?period=month").0, 400);

    let query = json!({"measurement": "cpu", "field": "usage_percent", "agg": ["max"], "group_by": "host", "kind": "metric"});
    let (status, analyzed) = server.post("/history/analyze", query.to_string().as_bytes(), &[]);
    assert_eq!(status, 200, "{analyzed}");
    let (_, same) = server.get("/history/metrics?measurement=cpu&field=usage_percent&agg=max&group_by=host&kind=metric");
    assert_eq!(analyzed, same, "the JSON form and the query string are one query");
    let (status, error) = server.post("/history/analyze", b"{\"measurement\": ", &[]);
    assert_eq!((status, error["line"].clone()), (400, json!(1)), "{error}");
    let (status, error) = server.get("/history/analyze");
    assert_eq!((status, error["error"].as_str()), (405, Some("method_not_allowed")), "{error}");

    // The same questions asked of the library on the same store give the same answers.
    let fixed = "from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z";
    let (_, board) = server.get(&format!("/history/dashboard?{fixed}"));
    assert!(server.stop().success());
    let history = History::open(dir.path(), annals::Options::default()).unwrap();
    let from = annals::time::parse_time("2000-01-01T00:00:00Z", 0).unwrap();
    let to = annals::time::parse_time("2100-01-01T00:00:00Z", 0).unwrap();
    let library = history.dashboard(&annals::history::DashboardRequest::new(from, to)).unwrap();
    // The server's store was flushed when it stopped: means over blocks and over the
    // head add in another order, so floats may differ in their last bits.
    assert_json_close(&board, &serde_json::to_value(&library).unwrap(), "dashboard");
}

#[test]
fn trends_over_http_answer_as_the_library_does() {
    let dir = tempfile::tempdir().unwrap();
    let demo = run_annals(dir.path(), &["demo", "--days", "2", "--seed", "7"]);
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let server = Server::start(dir.path(), None, &[]);
    let path = "/history/metrics/trends?measurement=cpu&field=usage_percent&kind=metric&from=2000-01-01&parts=patterns,anomalies,forecast,correlation&horizon=2h&threshold=95";
    let (status, trends) = server.get(path);
    assert_eq!(status, 200, "{trends}");
    let series = trends["series"].as_array().unwrap();
    assert_eq!(series.len(), 8, "one per host: {trends}");
    assert!(series[0]["first"].as_str().unwrap().ends_with('Z'), "times are RFC 3339 by default");
    assert!(!series[0]["forecast"]["points"].as_array().unwrap().is_empty());
    assert_eq!(trends["correlation"]["pairs"].as_array().unwrap().len(), 28);
    let (_, ns) = server.get(&format!("{path}&time_format=ns&points=all"));
    assert!(ns["series"][0]["first"].is_i64());
    assert_eq!(
        ns["series"][0]["anomalies"]["points"].as_array().unwrap().len() as u64,
        ns["series"][0]["points"].as_u64().unwrap()
    );
    for (bad, why) in [
        ("parts=bogus", "unknown trend part"),
        ("limit=3", "unknown trend parameter"),
        ("sensitivity=2", "sensitivity"),
        ("points=some", "points"),
    ] {
        let (status, error) = server.get(&format!("/history/metrics/trends?measurement=cpu&{bad}"));
        assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")), "{bad}: {error}");
        assert!(error["reason"].as_str().unwrap_or_default().contains(why), "{bad}: {error}");
    }
    let (status, analysis) = server.get("/history/performance/analysis?from=2000-01-01&trends=forecast,anomalies&every=1h");
    assert_eq!(status, 200, "{analysis}");
    let groups = analysis["trends"]["series"].as_array().unwrap();
    assert!(
        !groups.is_empty() && groups[0]["label"].as_str().unwrap().starts_with("duration_ms{component="),
        "{analysis}"
    );
    assert!(server.get("/history/performance/analysis?from=2000-01-01").1["trends"].is_null());

    assert!(server.stop().success());
    let history = History::open(dir.path(), annals::Options::default()).unwrap();
    let query = annals::trends::TrendQuery::from_pairs(
        path.split_once('?').unwrap().1.split('&').map(|kv| kv.split_once('=').unwrap()),
        annals::time::now_ns(),
    )
    .unwrap();
    let library = history.get_trends(&query).unwrap().to_json(true, false);
    assert_json_close(&trends, &library, "trends");
}

#[test]
fn a_watched_series_raises_an_anomaly_alert_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &["--watch", "cpu:usage@host=a", "--watch-store-alerts"]);
    let mut lines = String::new();
    for i in 0..500i64 {
        let usage = if i == 400 { 900.0 } else { 10.0 + (i % 5) as f64 };
        lines.push_str(&format!(
            "cpu,host=a usage={usage} {}\n",
            1_451_606_400_000_000_000i64 + i * 60_000_000_000
        ));
        lines.push_str(&format!(
            "cpu,host=b usage={} {}\n",
            if i == 400 { 900.0 } else { 10.0 },
            1_451_606_400_000_000_000i64 + i * 60_000_000_000
        ));
    }
    let (status, body) = server.post("/write", lines.as_bytes(), &[]);
    assert_eq!(status, 204, "{body}");
    let mut found = Value::Null;
    for _ in 0..200 {
        let (_, alerts) = server.get("/history/alerts?state=raised");
        if alerts["alerts"].as_array().is_some_and(|a| !a.is_empty()) {
            found = alerts;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let alerts = found["alerts"].as_array().unwrap_or_else(|| panic!("no anomaly alert: {found}"));
    assert_eq!(alerts.len(), 1, "host b is not watched: {found}");
    assert_eq!(alerts[0]["category"], "anomaly", "{found}");
    assert!(server.stop().success());
    let (status, _) = (run_annals(dir.path(), &["serve", "--watch", ":x"]).status, ());
    assert!(!status.success());
}

/// Asserts two JSON values are equal, numbers within a relative 1e-12.
fn assert_json_close(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x != y => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * x.abs().max(y.abs()), "{at}: {x} != {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: {a} != {b}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_json_close(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}");
            for (key, x) in x {
                assert_json_close(x, &y[key], &format!("{at}.{key}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

#[test]
fn management_operations_run_in_the_background_and_announce_their_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let mut events = Events::connect(&server, "?types=archive_completed,operation_completed");
    assert_eq!(events.next()["type"], "subscribed");
    let lines = "cpu,host=a usage=1 1451606400000000000\ncpu,host=a usage=2 1454284800000000000\n";
    assert_eq!(server.post("/write", lines.as_bytes(), &[]).0, 204);

    let (status, error) = server.post("/history/archive", b"", &[]);
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")), "{error}");
    let (status, error) = server.post("/history/archive?before=2016-13", b"", &[]);
    assert_eq!(status, 400, "{error}");
    let (status, started) = server.post("/history/archive?before=2016-02", b"", &[]);
    assert_eq!((status, started["status"].as_str()), (202, Some("running")), "{started}");
    let id = started["id"].as_u64().unwrap();
    let archived = events.next();
    assert_eq!(archived["type"], "archive_completed", "{archived}");
    assert_eq!(archived["months"], json!(["2016-01"]));
    let ended = events.next();
    assert_eq!(
        (ended["type"].as_str(), ended["id"].as_u64(), ended["status"].as_str()),
        (Some("operation_completed"), Some(id), Some("succeeded")),
        "{ended}"
    );
    let (status, operation) = server.get(&format!("/history/operations/{id}"));
    assert_eq!(status, 200);
    assert_eq!(operation["status"], "succeeded", "{operation}");
    assert_eq!(operation["result"]["months"], json!(["2016-01"]));
    assert!(operation["progress"]["done"].as_u64().unwrap() > 0, "{operation}");

    // Archiving nothing fails as an operation, with the library's reason.
    let (_, again) = server.post("/history/archive?before=2016-02", b"", &[]);
    let ended = events.next();
    assert_eq!(ended["status"], "failed", "{ended}");
    let (_, operation) = server.get(&format!("/history/operations/{}", again["id"]));
    assert!(
        operation["error"]["reason"].as_str().unwrap().contains("nothing to archive"),
        "{operation}"
    );

    let (status, plan) = server.post("/history/cleanup", b"", &[]);
    assert_eq!((status, plan["dry_run"].clone()), (200, json!(true)), "{plan}");
    let (status, optimizing) = server.post("/history/optimize", b"", &[]);
    assert_eq!(status, 202, "{optimizing}");
    assert_eq!(events.next()["operation"], "optimize");
    let (status, list) = server.get("/history/operations");
    assert_eq!(status, 200);
    assert_eq!(list["operations"].as_array().unwrap().len(), 3);
    assert_eq!(server.get("/history/operations/999").0, 404);
    assert_eq!(server.get("/history/operations/x").0, 400);
    assert!(server.stop().success());

    let history = History::open(dir.path(), annals::Options::default()).unwrap();
    let stats = history.storage_stats().unwrap();
    assert_eq!(stats.rows, 1, "January left for the archive");
}

/// Line protocol of `rows` cpu rows over 4 hosts, one second apart from 2016-01-01.
fn cpu_lines(first: i64, rows: i64) -> String {
    let mut text = String::new();
    for i in first..first + rows {
        text.push_str(&format!(
            "cpu,host=h{} usage={}.5 {}\n",
            i % 4,
            i % 100,
            1_451_606_400_000_000_000i64 + i * 1_000_000_000
        ));
    }
    text
}

#[test]
fn exports_stream_csv_ndjson_and_parquet_as_the_cli_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let rows = 50_000;
    assert_eq!(server.post("/write", cpu_lines(0, rows).as_bytes(), &[]).0, 204);
    let log = json!([{"timestamp": "2016-01-01T00:00:00Z", "level": "ERROR", "logger_name": "db", "message": "lost, \"badly\""}]);
    assert_eq!(server.post("/history/logs", log.to_string().as_bytes(), &[]).0, 201);

    let query = json!({"measurement": "cpu", "field": "usage", "where": "host=h1"});
    let mut response = server
        .agent
        .post(&format!("{}/history/metrics/export?format=csv", server.base))
        .send(query.to_string().as_bytes())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"annals-cpu-") && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let csv = response.body_mut().with_config().limit(u64::MAX).read_to_string().unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("time,host,usage"));
    assert_eq!(lines.count() as i64, rows / 4);

    let mut response = server
        .agent
        .post(&format!("{}/history/metrics/export?format=parquet", server.base))
        .send(query.to_string().as_bytes())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/vnd.apache.parquet");
    assert!(response.headers()["content-disposition"].to_str().unwrap().ends_with(".parquet\""));
    let parquet = response.body_mut().with_config().limit(u64::MAX).read_to_vec().unwrap();
    assert!(
        parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"),
        "{} bytes",
        parquet.len()
    );

    let (status, ndjson) = server.post("/history/logs/export?format=ndjson&time_format=ns", b"", &[]);
    assert_eq!(status, 200);
    // One record: the whole body is its one JSON line.
    let record = ndjson;
    assert_eq!(record["fields"]["message"], "lost, \"badly\"");
    assert_eq!(record["time"], 1_451_606_400_000_000_000i64);

    let (status, error) = server.post("/history/metrics/export?format=xlsx", query.to_string().as_bytes(), &[]);
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")), "{error}");
    let (status, error) = server.post("/history/metrics/export", b"{\"measurement\": \"cpu\", \"agg\": \"max\"}", &[]);
    assert_eq!(status, 400, "an aggregate needs a field: {error}");
    assert!(server.stop().success());

    // The CLI's export of the same query writes the same bytes, to a file put in place whole.
    let file = dir.path().join("h1.csv");
    let out = run_annals(
        dir.path(),
        &["export", "-m", "cpu", "-f", "usage", "-w", "host=h1", "-o", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), csv);
    assert!(String::from_utf8_lossy(&out.stderr).contains("exported 12,500 rows"));
    assert!(!dir.path().join("h1.csv.partial").exists());
    let file = dir.path().join("h1.parquet");
    let out = run_annals(
        dir.path(),
        &[
            "export",
            "-m",
            "cpu",
            "-f",
            "usage",
            "-w",
            "host=h1",
            "--format",
            "parquet",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&file).unwrap(), parquet);
    let out = run_annals(dir.path(), &["export", "-m", "cpu", "--format", "table"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format table is for reading"));
}

#[test]
fn query_limits_busy_slots_and_timeouts_answer_422_429_and_503() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        None,
        &["--max-query-series", "2", "--max-concurrent-queries", "1", "--max-subscribers", "1"],
    );
    // Enough that the export below (half the rows, about 27 MB of CSV) cannot fit in the
    // socket buffers of loopback (a few MB each way).
    let rows = 1_200_000;
    for part in 0..12 {
        assert_eq!(server.post("/write", cpu_lines(part * rows / 12, rows / 12).as_bytes(), &[]).0, 204);
    }
    let (status, error) = server.get("/history/metrics?measurement=cpu&agg=max&field=usage");
    assert_eq!((status, error["error"].as_str()), (422, Some("query_limit")), "{error}");
    assert!(error["limit"].is_string(), "{error}");
    assert_eq!(
        server.get("/history/metrics?measurement=cpu&agg=max&field=usage&where=host=h1").0,
        200
    );

    // An export whose client does not read holds the one query slot: the next query waits
    // for nothing and is answered 429.
    let stalled = server
        .agent
        .post(&format!("{}/history/metrics/export", server.base))
        .send(b"{\"measurement\": \"cpu\", \"where\": \"host in (h1, h2)\"}")
        .unwrap();
    assert_eq!(stalled.status().as_u16(), 200);
    let (status, error) = server.get("/history/metrics?measurement=cpu&field=usage&where=host=h1&limit=1");
    assert_eq!((status, error["error"].as_str()), (429, Some("too_many_queries")), "{error}");
    drop(stalled);

    // One subscriber at most.
    let mut first = Events::connect(&server, "");
    assert_eq!(first.next()["type"], "subscribed");
    let (status, error) = server.get("/history/ws");
    assert_eq!((status, error["error"].as_str()), (429, Some("too_many_subscribers")), "{error}");
    assert!(server.stop().success());

    // A read past the request timeout is 503 `timeout`.
    let server = Server::start(dir.path(), None, &["--request-timeout", "1ns"]);
    let (status, error) = server.get("/history/dashboard?from=2016-01-01&to=2016-02-01");
    assert_eq!((status, error["error"].as_str()), (503, Some("timeout")), "{error}");
    assert!(server.stop().success());
}

#[test]
fn a_killed_server_keeps_every_acknowledged_write_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let base = server.base.clone();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u32, u32)>::new()));
    let clients: Vec<_> = (0..4u32)
        .map(|client| {
            let (base, acknowledged) = (base.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .new_agent();
                // Each request: 50 rows of one (client, request) pair; bounded whatever happens.
                for request in 0..5_000u32 {
                    let mut body = String::new();
                    for row in 0..50u32 {
                        body.push_str(&format!(
                            "load,client=c{client} request={request}i,row={row}i {}\n",
                            1_451_606_400_000_000_000i64 + (request as i64 * 50 + row as i64) * 1_000_000
                        ));
                    }
                    match agent.post(&format!("{base}/write")).send(body.as_bytes()) {
                        Ok(response) if response.status().as_u16() == 204 => acknowledged.lock().unwrap().push((client, request)),
                        // The server was killed: connection refused or reset.
                        _ => return,
                    }
                }
            })
        })
        .collect();
    // Kill once enough writes are acknowledged, while the clients are still sending.
    for _ in 0..6_000 {
        if acknowledged.lock().unwrap().len() >= 400 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut child = server;
    child.child.kill().unwrap();
    child.child.wait().unwrap();
    for c in clients {
        c.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 400, "only {} writes were acknowledged", acknowledged.len());

    let report = annals::history::verify_store(dir.path(), false, annals::ObjectStoreConfig::default()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let history = History::open(dir.path(), annals::Options::default()).unwrap();
    let rows = query_rows(&history, &[("measurement", "load"), ("field", "request,row")]);
    let mut per_request: std::collections::BTreeMap<(u32, u32), u32> = Default::default();
    for row in &rows {
        let client: u32 = row.tags[0].as_deref().unwrap()[1..].parse().unwrap();
        let request = match row.values[0] {
            Some(annals::FieldValue::I64(r)) => r as u32,
            ref other => panic!("request field {other:?}"),
        };
        *per_request.entry((client, request)).or_default() += 1;
    }
    for pair in &acknowledged {
        assert_eq!(
            per_request.get(pair),
            Some(&50),
            "acknowledged write {pair:?} is not whole after the crash"
        );
    }
    // A request cut off by the kill is whole or absent, never in part.
    for (pair, rows) in &per_request {
        assert_eq!(*rows, 50, "write {pair:?} is in part");
    }
    history.close().unwrap();
}

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[test]
fn sixteen_clients_write_and_query_without_errors_and_every_acknowledged_row_is_kept() {
    // 10 s here; `ANNALS_LOAD_SECONDS=60 cargo test --profile bench --test it sixteen_clients`
    // for the minute the server issue names.
    let seconds: u64 = std::env::var("ANNALS_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..16u32)
        .map(|client| {
            let base = server.base.clone();
            std::thread::spawn(move || -> (u64, u64) {
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(60)))
                    .build()
                    .new_agent();
                let (mut rows, mut queries) = (0u64, 0u64);
                for request in 0..1_000_000u64 {
                    if std::time::Instant::now() >= deadline {
                        break;
                    }
                    if request % 4 == 3 {
                        let url = format!("{base}/history/metrics?measurement=load&field=v&agg=count,max&group_by=client");
                        let mut response = agent.get(&url).call().unwrap();
                        let status = response.status().as_u16();
                        let body = response.body_mut().read_to_string().unwrap();
                        assert_eq!(status, 200, "client {client} query: {body}");
                        queries += 1;
                        continue;
                    }
                    let mut body = String::with_capacity(500 * 60);
                    for row in 0..500u64 {
                        let ts = 1_451_606_400_000_000_000i64 + ((request * 500 + row) as i64) * 1_000_000;
                        body.push_str(&format!("load,client=c{client} v={row}i {ts}\n"));
                    }
                    let mut response = agent.post(&format!("{base}/write")).send(body.as_bytes()).unwrap();
                    let status = response.status().as_u16();
                    let text = response.body_mut().read_to_string().unwrap_or_default();
                    assert_eq!(status, 204, "client {client} write: {text}");
                    rows += 500;
                }
                (rows, queries)
            })
        })
        .collect();
    let results: Vec<(u64, u64)> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let rss = peak_rss(server.child.id());
    assert!(server.stop().success());
    let written: u64 = results.iter().map(|r| r.0).sum();
    let queried: u64 = results.iter().map(|r| r.1).sum();
    assert!(written > 0 && queried > 0, "{written} rows, {queried} queries");
    if let Some(bytes) = rss {
        assert!(bytes < 1 << 30, "the server's peak RSS was {} MiB", bytes >> 20);
    }
    let history = History::open(dir.path(), annals::Options::default()).unwrap();
    let rows = query_rows(&history, &[("measurement", "load"), ("agg", "count(*)"), ("group_by", "client")]);
    for (client, (acknowledged, _)) in results.iter().enumerate() {
        let name = format!("c{client}");
        let stored = rows
            .iter()
            .find(|r| r.tags[0].as_deref() == Some(name.as_str()))
            .and_then(|r| match r.values[0] {
                Some(annals::FieldValue::I64(n)) => Some(n as u64),
                _ => None,
            })
            .unwrap_or(0);
        assert_eq!(stored, *acknowledged, "client {name}");
    }
    println!(
        "{seconds} s: {written} rows written and {queried} queries answered by 16 clients; server peak RSS {} MiB",
        rss.map_or(0, |b| b >> 20)
    );
    history.close().unwrap();
}

#[test]
fn influx_v1_and_v2_writes_keep_their_database_as_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    // 1.x: db and rp, precision in hours (2016-01-01T00:00Z is hour 403,224).
    assert_eq!(
        server
            .post("/write?db=prod&rp=autogen&precision=h", b"cpu,host=a usage=1.5 403224\n", &[])
            .0,
        204
    );
    assert_eq!(
        server.post("/write?db=prod&precision=m", b"cpu,host=a usage=2.5 24193441\n", &[]).0,
        204
    );
    // 2.x: bucket (required), org, gzip'd body.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"cpu,host=a usage=7.5 1451606400\n").unwrap();
    let (status, error) = server.post(
        "/api/v2/write?org=acme&bucket=staging&precision=s",
        &gz.finish().unwrap(),
        &[("Content-Encoding", "gzip")],
    );
    assert_eq!(status, 204, "{error}");
    let (status, error) = server.post("/api/v2/write?org=acme&precision=s", b"cpu,host=a usage=1 1451606400\n", &[]);
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")), "{error}");
    assert!(error["reason"].as_str().unwrap_or_default().contains("bucket"), "{error}");
    // A bad second line: 400 naming it, nothing of the request stored.
    let (status, error) = server.post(
        "/api/v2/write?bucket=staging&precision=s",
        b"cpu,host=b usage=1 1451606400\ncpu,host=b usage=x 1451606460\n",
        &[],
    );
    assert_eq!((status, error["line"].clone()), (400, json!(2)), "{error}");
    // A line whose own db tag differs from the request's is refused, naming both.
    let (status, error) = server.post("/write?db=prod", b"cpu,db=test,host=a usage=1 1451606400000000000\n", &[]);
    assert_eq!((status, error["line"].clone()), (400, json!(1)), "{error}");
    assert!(error["reason"].as_str().unwrap_or_default().contains("db=test"), "{error}");
    let (status, error) = server.post("/write?precision=d", b"cpu usage=1 1\n", &[]);
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")), "{error}");

    let (status, page) = server.get("/history/metrics?measurement=cpu&field=usage&order=asc&time_format=ns");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["columns"], json!(["time", "db", "host", "usage"]), "{page}");
    assert_eq!(
        page["rows"],
        json!([
            [1_451_606_400_000_000_000i64, "prod", "a", 1.5],
            [1_451_606_400_000_000_000i64, "staging", "a", 7.5],
            [1_451_606_460_000_000_000i64, "prod", "a", 2.5],
        ]),
        "{page}"
    );
}

/// A series of a remote-write request: its name, other labels, and (ms, value) samples.
type PromSeries<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// A remote-write body as Prometheus sends it: the protobuf `WriteRequest`, snappy (block).
fn remote_write_body(series: &[PromSeries<'_>]) -> Vec<u8> {
    use annals::ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest};
    use prost::Message;
    let request = WriteRequest {
        timeseries: series
            .iter()
            .map(|(name, labels, samples)| TimeSeries {
                labels: std::iter::once(("__name__", *name))
                    .chain(labels.iter().copied())
                    .map(|(n, v)| Label {
                        name: n.into(),
                        value: v.into(),
                    })
                    .collect(),
                samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
                histograms: Vec::new(),
            })
            .collect(),
    };
    snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).unwrap()
}

const REMOTE_WRITE_HEADERS: [(&str, &str); 3] = [
    ("Content-Encoding", "snappy"),
    ("Content-Type", "application/x-protobuf"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

#[test]
fn prometheus_remote_write_stores_samples_and_refuses_bad_bodies_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let t = 1_451_606_400_000i64; // 2016-01-01T00:00:00Z in ms
    let body = remote_write_body(&[
        (
            "up",
            vec![("job", "node"), ("instance", "a:9100")],
            vec![(t, 1.0), (t + 15_000, 0.0)],
        ),
        ("up", vec![("job", "node"), ("instance", "b:9100")], vec![(t, 1.0)]),
    ]);
    let (status, answer) = server.post("/api/v1/write", &body, &REMOTE_WRITE_HEADERS);
    assert_eq!(status, 204, "{answer}");
    let stored = || server.get("/history/metrics?measurement=up&field=value&order=asc&time_format=ns").1["rows"].clone();
    let expected = json!([
        [1_451_606_400_000_000_000i64, "a:9100", "node", 1.0],
        [1_451_606_400_000_000_000i64, "b:9100", "node", 1.0],
        [1_451_606_415_000_000_000i64, "a:9100", "node", 0.0],
    ]);
    assert_eq!(stored(), expected);

    // Remote write 2.0 and other encodings: 415, so a sender falls back or says why.
    let v2 = [
        ("Content-Encoding", "snappy"),
        ("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request"),
    ];
    assert_eq!(server.post("/api/v1/write", &body, &v2).0, 415);
    assert_eq!(server.post("/api/v1/write", &body, &[("Content-Encoding", "gzip")]).0, 415);
    // Truncated snappy, a protobuf that is not a WriteRequest, a series without a name: 400.
    let (status, error) = server.post("/api/v1/write", &body[..body.len() - 3], &REMOTE_WRITE_HEADERS);
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")), "{error}");
    let garbage = snap::raw::Encoder::new().compress_vec(b"\x0a\x05\xff\xff\xff\xff\xff").unwrap();
    let (status, error) = server.post("/api/v1/write", &garbage, &REMOTE_WRITE_HEADERS);
    assert_eq!(status, 400, "{error}");
    assert!(error["reason"].as_str().unwrap_or_default().contains("WriteRequest"), "{error}");
    let unnamed = remote_write_body(&[
        ("up", vec![("job", "x")], vec![(t + 30_000, 1.0)]),
        ("", vec![("job", "y")], vec![(t, 1.0)]),
    ]);
    let (status, error) = server.post("/api/v1/write", &unnamed, &REMOTE_WRITE_HEADERS);
    assert_eq!((status, error["line"].clone()), (400, json!(2)), "{error}");
    // A label set past max_tags_per_series (64): refused whole, naming the limit.
    let names: Vec<String> = (0..100).map(|i| format!("l{i}")).collect();
    let wide: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let (status, error) = server.post(
        "/api/v1/write",
        &remote_write_body(&[("up", vec![("job", "z")], vec![(t + 45_000, 1.0)]), ("wide", wide, vec![(t, 1.0)])]),
        &REMOTE_WRITE_HEADERS,
    );
    assert_eq!((status, error["limit"].as_str()), (400, Some("max_tags_per_series")), "{error}");
    // 10^6 series of two samples in one request: past max_batch_rows (or the body limit).
    let ids: Vec<String> = (0..1_000_000).map(|i| i.to_string()).collect();
    let huge: Vec<PromSeries<'_>> = ids
        .iter()
        .map(|id| ("huge", vec![("id", id.as_str())], vec![(t, 1.0), (t + 1, 2.0)]))
        .collect();
    let (status, error) = server.post("/api/v1/write", &remote_write_body(&huge), &REMOTE_WRITE_HEADERS);
    assert!(
        status == 413 || (status, error["limit"].as_str()) == (400, Some("max_batch_rows")),
        "{status} {error}"
    );
    // Nothing of the refused requests was stored.
    assert_eq!(stored(), expected);
    assert_eq!(server.get("/history/metrics?measurement=huge&field=value").1["rows"], json!([]));
    assert_eq!(server.get("/history/metrics?measurement=wide&field=value").1["rows"], json!([]));
}

#[test]
fn loki_pushes_in_json_and_protobuf_become_log_records() {
    use annals::ingest::loki::{EntryAdapter, LabelPair, PushRequest, StreamAdapter, Timestamp};
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let json = br#"{"streams":[{"stream":{"job":"varlogs","filename":"/var/log/a.log"},"values":[
        ["1451606400000000000","081109 203615 148 ERROR dfs.DataNode: lost block"],
        ["1451606401000000000","all quiet",{"trace_id":"abc"}]]}]}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json).unwrap();
    let (status, answer) = server.post(
        "/loki/api/v1/push",
        &gz.finish().unwrap(),
        &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
    );
    assert_eq!(status, 204, "{answer}");
    // promtail's form: a snappy protobuf PushRequest without a Content-Encoding.
    let request = PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{job="api", level="warn", host="b"}"#.into(),
            entries: vec![EntryAdapter {
                timestamp: Some(Timestamp {
                    seconds: 1_451_606_402,
                    nanos: 7,
                }),
                line: "slow request ERROR-looking text".into(),
                structured_metadata: vec![LabelPair {
                    name: "route".into(),
                    value: "/x".into(),
                }],
            }],
        }],
    };
    let snappy = snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).unwrap();
    let (status, answer) = server.post("/loki/api/v1/push", &snappy, &[("Content-Type", "application/x-protobuf")]);
    assert_eq!(status, 204, "{answer}");

    let (status, page) = server.get("/history/logs?order=asc");
    assert_eq!(status, 200, "{page}");
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{page}");
    assert_eq!(records[0]["message"], "081109 203615 148 ERROR dfs.DataNode: lost block");
    assert_eq!(records[0]["level"], "ERROR", "the level the line states");
    assert_eq!(records[0]["logger_name"], "varlogs");
    assert_eq!(records[0]["tags"]["filename"], "/var/log/a.log", "{page}");
    assert_eq!(records[1]["level"], "INFO", "a line that states none");
    assert_eq!(records[1]["extra_data"]["trace_id"], "abc", "{page}");
    assert_eq!(records[2]["level"], "WARNING", "the level label wins over the line");
    assert_eq!(records[2]["tags"]["host"], "b", "{page}");
    assert_eq!(records[2]["extra_data"]["route"], "/x", "{page}");

    // A bad entry in the second stream: 400 naming it, and the first stream not stored.
    let bad = br#"{"streams":[{"stream":{"job":"x"},"values":[["1451606500000000000","fine"]]},{"stream":{"job":"y"},"values":[["soon","bad"]]}]}"#;
    let (status, error) = server.post("/loki/api/v1/push", bad, &[("Content-Type", "application/json")]);
    assert_eq!((status, error["line"].clone()), (400, json!(2)), "{error}");
    assert!(
        error["reason"].as_str().unwrap_or_default().starts_with("stream 2, entry 1"),
        "{error}"
    );
    let (status, error) = server.post(
        "/loki/api/v1/push",
        &snappy[..snappy.len() - 2],
        &[("Content-Type", "application/x-protobuf")],
    );
    assert_eq!((status, error["error"].as_str()), (400, Some("bad_input")), "{error}");
    assert_eq!(server.get("/history/logs").1["records"].as_array().map(Vec::len), Some(3));
}

#[test]
fn loki_query_api_answers_logql_over_pushed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    // Two streams of one job, a line every 10 s for 5 minutes from 2016-01-01T00:00:00Z;
    // every third line of host a is an error.
    let t = 1_451_606_400i64;
    let mut streams = Vec::new();
    for host in ["a", "b"] {
        let values: Vec<Value> = (0..30)
            .map(|i| {
                let line = if host == "a" && i % 3 == 0 {
                    format!("ERROR request {i} failed: connection refused by upstream")
                } else {
                    format!("request {i} served in {}ms", 10 + i)
                };
                json!([((t + i * 10) * 1_000_000_000).to_string(), line])
            })
            .collect();
        streams.push(json!({"stream": {"job": "web", "host": host}, "values": values}));
    }
    let body = serde_json::to_vec(&json!({"streams": streams})).unwrap();
    assert_eq!(
        server.post("/loki/api/v1/push", &body, &[("Content-Type", "application/json")]).0,
        204
    );
    let (start, end) = (t.to_string(), (t + 300).to_string());

    // Log query: the newest three errors, newest first, with nanosecond strings.
    let (status, answer) = server.get(&format!(
        "/loki/api/v1/query_range?{}",
        query_string(&[
            ("query", r#"{job="web"} |= "connection refused by""#),
            ("start", &start),
            ("end", &end),
            ("limit", "3")
        ])
    ));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["resultType"], "streams");
    assert_eq!(
        answer["data"]["result"],
        json!([{"stream": {"host": "a", "job": "web", "level": "error"}, "values": [
            [((t + 270) * 1_000_000_000).to_string(), "ERROR request 27 failed: connection refused by upstream"],
            [((t + 240) * 1_000_000_000).to_string(), "ERROR request 24 failed: connection refused by upstream"],
            [((t + 210) * 1_000_000_000).to_string(), "ERROR request 21 failed: connection refused by upstream"],
        ]}]),
        "{answer}"
    );
    // Metric query as a form POST: lines per level over one-minute windows, each minute.
    let form = query_string(&[
        ("query", r#"sum by (level) (count_over_time({job="web"}[1m]))"#),
        ("start", &(t + 60).to_string()),
        ("end", &(t + 120).to_string()),
        ("step", "60"),
    ]);
    let (status, answer) = server.post(
        "/loki/api/v1/query_range",
        form.as_bytes(),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(status, 200, "{answer}");
    // (0, 60 s]: lines 1..=6 of each host, host a's 3 and 6 errors; (60, 120]: 7..=12, 9 and 12.
    assert_eq!(
        answer["data"]["result"],
        json!([
            {"metric": {"level": "error"}, "values": [[t + 60, "2"], [t + 120, "2"]]},
            {"metric": {"level": "info"}, "values": [[t + 60, "10"], [t + 120, "10"]]},
        ]),
        "{answer}"
    );
    // Grafana's health check on the instant route.
    let (status, answer) = server.get(&format!("/loki/api/v1/query?{}", query_string(&[("query", "vector(1)+vector(1)")])));
    assert_eq!(
        (status, answer["data"]["result"][0]["value"][1].clone()),
        (200, json!("2")),
        "{answer}"
    );
    // Labels, values and series.
    let span = query_string(&[("start", &start), ("end", &end)]);
    assert_eq!(
        server.get(&format!("/loki/api/v1/labels?{span}")),
        (200, json!({"status": "success", "data": ["host", "job", "level"]}))
    );
    assert_eq!(
        server.get(&format!("/loki/api/v1/label/level/values?{span}")).1["data"],
        json!(["error", "info"])
    );
    let (status, answer) = server.get(&format!(
        "/loki/api/v1/series?{}&{span}",
        query_string(&[("match[]", r#"{host="b"}"#)])
    ));
    assert_eq!(
        (status, answer["data"].clone()),
        (200, json!([{"host": "b", "job": "web", "level": "info"}]))
    );
    // Errors are plain text: 400 for bad LogQL, 422 for what annals does not evaluate.
    let (status, error) = server.get(&format!(
        "/loki/api/v1/query_range?{}",
        query_string(&[("query", r#"{job="web"} |~ "(""#)])
    ));
    assert_eq!(status, 400);
    assert!(error.as_str().is_some_and(|e| e.contains("regular expression")), "{error}");
    let (status, error) = server.get(&format!(
        "/loki/api/v1/query_range?{}",
        query_string(&[("query", r#"{job="web"} | logfmt"#)])
    ));
    assert_eq!(status, 422);
    assert!(error.as_str().is_some_and(|e| e.contains("| logfmt")), "{error}");
    let (status, error) = server.get(&format!("/loki/api/v1/query?{}", query_string(&[("query", r#"{job="web"}"#)])));
    assert_eq!(status, 400);
    assert!(error.as_str().is_some_and(|e| e.contains("instant")), "{error}");
    let (status, _) = server.get("/loki/api/v1/series");
    assert_eq!(status, 400);
}

/// `?name=value&…` with the values percent-encoded.
fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

#[test]
fn prometheus_query_api_answers_promql_in_prometheus_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let t = 1_451_606_400_000i64; // 2016-01-01T00:00:00Z in ms
    // Two counters scraped every 15 s for 10 minutes: a grows 1.5 per scrape, b 3.
    let a: Vec<(i64, f64)> = (0..=40).map(|i| (t + i * 15_000, 1.5 * i as f64)).collect();
    let b: Vec<(i64, f64)> = (0..=40).map(|i| (t + i * 15_000, 3.0 * i as f64)).collect();
    let body = remote_write_body(&[
        ("requests_total", vec![("job", "api"), ("instance", "a")], a),
        ("requests_total", vec![("job", "api"), ("instance", "b")], b),
    ]);
    assert_eq!(server.post("/api/v1/write", &body, &REMOTE_WRITE_HEADERS).0, 204);
    let at = (t + 600_000) as f64 / 1000.0;

    let (status, answer) = server.get(&format!(
        "/api/v1/query?{}",
        query_string(&[("query", "sum by (job) (rate(requests_total[5m]))"), ("time", &at.to_string())])
    ));
    assert_eq!(status, 200, "{answer}");
    // (1.5 + 3) per 15 s over a window exactly covered by samples.
    assert_eq!(answer["status"], "success");
    assert_eq!(answer["data"]["resultType"], "vector");
    let result = &answer["data"]["result"];
    assert_eq!(
        (result[0]["metric"].clone(), result[0]["value"][0].clone()),
        (json!({"job": "api"}), json!(1_451_607_000i64)),
        "{answer}"
    );
    let rate: f64 = result[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((rate - 0.3).abs() < 1e-12, "{answer}");
    // A form POST of a range query, steps of one minute over the last three.
    let form = query_string(&[
        ("query", "requests_total{instance=\"a\"}"),
        ("start", "2016-01-01T00:08:00Z"),
        ("end", &at.to_string()),
        ("step", "1m"),
    ]);
    let (status, answer) = server.post(
        "/api/v1/query_range",
        form.as_bytes(),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["data"],
        json!({"resultType": "matrix", "result": [{
            "metric": {"__name__": "requests_total", "instance": "a", "job": "api"},
            "values": [[1_451_606_880i64, "48"], [1_451_606_940i64, "54"], [1_451_607_000i64, "60"]]
        }]})
    );
    // Grafana's data source test.
    let (status, answer) = server.get(&format!(
        "/api/v1/query?{}",
        query_string(&[("query", "1+1"), ("time", "1451606400.5")])
    ));
    assert_eq!(
        (status, answer["data"].clone()),
        (200, json!({"resultType": "scalar", "result": [1_451_606_400.5, "2"]}))
    );
    let (_, answer) = server.get(&format!(
        "/api/v1/series?{}",
        query_string(&[("match[]", "requests_total"), ("start", "1451606400")])
    ));
    assert_eq!(answer["data"].as_array().map(Vec::len), Some(2), "{answer}");
    let (_, answer) = server.get(&format!("/api/v1/series?{}", query_string(&[("match", "{instance=\"b\"}")])));
    assert_eq!(
        answer["data"],
        json!([{"__name__": "requests_total", "instance": "b", "job": "api"}])
    );
    assert_eq!(server.get("/api/v1/labels").1["data"], json!(["__name__", "instance", "job"]));
    assert_eq!(server.get("/api/v1/label/__name__/values").1["data"], json!(["requests_total"]));
    assert_eq!(server.get("/api/v1/label/instance/values").1["data"], json!(["a", "b"]));
    assert_eq!(server.get("/api/v1/status/buildinfo").1["data"]["version"], "2.42.0");

    // Errors in Prometheus' envelope: bad syntax and parameters 400, unsupported 422.
    let (status, answer) = server.get(&format!("/api/v1/query?{}", query_string(&[("query", "sum(")])));
    assert_eq!(
        (status, answer["status"].as_str(), answer["errorType"].as_str()),
        (400, Some("error"), Some("bad_data")),
        "{answer}"
    );
    let (status, answer) = server.get("/api/v1/query");
    assert!(
        status == 400 && answer["error"].as_str().unwrap_or("").contains("query"),
        "{answer}"
    );
    let (status, answer) = server.get(&format!("/api/v1/query?{}", query_string(&[("query", "up"), ("time", "soon")])));
    assert!(status == 400 && answer["error"].as_str().unwrap_or("").contains("time"), "{answer}");
    let (status, answer) = server.get(&format!(
        "/api/v1/query_range?{}",
        query_string(&[("query", "up"), ("start", "0"), ("end", "100000"), ("step", "1")])
    ));
    assert!(
        status == 400 && answer["error"].as_str().unwrap_or("").contains("11000"),
        "{answer}"
    );
    let (status, answer) = server.get(&format!(
        "/api/v1/query?{}",
        query_string(&[("query", "limitk(1, requests_total)")])
    ));
    assert_eq!((status, answer["errorType"].as_str()), (422, Some("execution")), "{answer}");
    assert!(answer["error"].as_str().unwrap_or("").contains("limitk"), "{answer}");
    let (status, answer) = server.get(&format!(
        "/api/v1/query?{}",
        query_string(&[("query", "requests_total / on (job) requests_total"), ("time", &at.to_string())])
    ));
    assert_eq!((status, answer["errorType"].as_str()), (422, Some("execution")), "{answer}");
    let (status, answer) = server.post("/api/v1/query", b"{\"query\": \"up\"}", &[("Content-Type", "application/json")]);
    assert_eq!((status, answer["errorType"].as_str()), (400, Some("bad_data")), "{answer}");
}

/// `annals serve --config FILE` with a `[forward]` section replicates the store's metrics
/// to the remote-write URL it names, shows its progress in `/metrics`, and keeps its
/// position in the store; a bad section is refused before the store is opened.
#[test]
fn serve_forwards_the_metrics_its_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let lines: String = (0..10)
        .map(|i| {
            format!(
                "cpu,host=h{} usage={i}.5,procs={i}i {}\n",
                i % 2,
                1_451_606_400_000_000_000i64 + i * 60_000_000_000
            )
        })
        .collect();
    std::fs::write(dir.path().join("cpu.lp"), lines).unwrap();
    assert!(
        run_annals(&data, &["ingest", dir.path().join("cpu.lp").to_str().unwrap()])
            .status
            .success()
    );
    let remote = crate::forward::ScriptedRemote::start(Vec::new());
    let config = dir.path().join("annals.toml");
    std::fs::write(
        &config,
        format!(
            "[forward]\nurl = \"{}\"\nfrom = \"2016-01-01\"\nsettle = \"0s\"\ninterval = \"50ms\"\nbearer_token = \"t0k\"\nmeasurements = [\"cpu\"]\n",
            remote.url()
        ),
    )
    .unwrap();
    let server = Server::start(&data, None, &["--config", config.to_str().unwrap()]);
    let started = std::time::Instant::now();
    while remote.received.lock().unwrap().values().map(Vec::len).sum::<usize>() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the remote got {:?}",
            remote.received.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let received = remote.received.lock().unwrap().clone();
    let usage: Vec<(String, String)> = vec![("__name__".into(), "cpu_usage".into()), ("host".into(), "h1".into())];
    assert_eq!(
        received[&usage],
        [
            (1_451_606_460_000, 1.5),
            (1_451_606_580_000, 3.5),
            (1_451_606_700_000, 5.5),
            (1_451_606_820_000, 7.5),
            (1_451_606_940_000, 9.5)
        ]
    );
    assert_eq!(
        remote.requests.lock().unwrap()[0].1.get("authorization").map(String::as_str),
        Some("Bearer t0k")
    );
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(metrics.contains("annals_forward_sent_samples 20"), "{metrics}");
    assert!(server.stop().success());
    let position = std::fs::read_to_string(data.join("forward/default.json")).unwrap();
    assert!(position.contains("\"samples_sent\": 20"), "{position}");

    std::fs::write(
        &config,
        "[forward]\nurl = \"http://127.0.0.1:1/api/v1/write\"\nintervall = \"1s\"\n",
    )
    .unwrap();
    let refused = run_annals(&data, &["serve", "--config", config.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("unknown field `intervall`"), "{said}");
    std::fs::write(&config, "[forward]\nurl = \"udp://x\"\n").unwrap();
    let refused = run_annals(&data, &["serve", "--config", config.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("is not an http:// or https:// URL"),
        "{said}"
    );
}
