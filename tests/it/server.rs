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
        let spec = QuerySpec::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        let (rows, _) = history
            .engine()
            .snapshot()
            .query(&spec.to_query(0).unwrap())
            .unwrap()
            .collect_rows()
            .unwrap();
        rows.iter()
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
