//! What the tests of the git ports share: a seeded random generator, seeds and case counts
//! from the environment, temporary directories, and the installed `git` run isolated from
//! the user's and the system's configuration, so only git's defaults (and a repository's
//! own config) apply.
//!
//! Environment: `ANNALS_GITPORT_SEED` replays a seed (each failure prints the one to use),
//! `ANNALS_GITPORT_KEEP` keeps the temporary repositories, and `ANNALS_GITPORT_REPO` names
//! a repository whose history the corpus tests compare (`ANNALS_GITPORT_COMMITS`,
//! `ANNALS_GITPORT_SKIP` and `ANNALS_GITPORT_REV` select the commits).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// xorshift64* seeded through splitmix64, so any seed (0 included) works.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num/den`.
    pub(crate) fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The seed of a test: `ANNALS_GITPORT_SEED` when set, else `default`.
pub(crate) fn seed(default: u64) -> u64 {
    env_count("ANNALS_GITPORT_SEED", default)
}

/// A count from the environment variable `name`, else `default`: the soaks run with larger
/// counts than the defaults, which keep the test suite fast.
pub(crate) fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A directory removed when dropped (kept when `ANNALS_GITPORT_KEEP` is set).
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "annals-gitport-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("ANNALS_GITPORT_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `git` with no user or system configuration (an empty home), no inherited repository
/// or diff settings, the C locale and a fixed identity and date.
pub(crate) fn git_command() -> Command {
    let home = std::env::temp_dir().join("annals-gitport-empty-home");
    let _ = std::fs::create_dir_all(&home);
    let mut cmd = Command::new("git");
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_EXTERNAL_DIFF",
        "GIT_DIFF_OPTS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", &home)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("LC_ALL", "C")
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_AUTHOR_DATE", "2000-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_DATE", "2000-01-01T00:00:00Z");
    cmd
}

/// Runs `cmd` with `stdin`: its output and its warnings, or its error message.
pub(crate) fn run(mut cmd: Command, stdin: Option<Vec<u8>>) -> Result<(Vec<u8>, String), String> {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn git");
    // Fed from a thread, so that a large output cannot deadlock the two.
    let writer = child.stdin.take().map(|mut pipe| {
        let input = stdin.unwrap_or_default();
        std::thread::spawn(move || pipe.write_all(&input))
    });
    let out = child.wait_with_output().expect("wait for git");
    if let Some(writer) = writer {
        writer.join().expect("the stdin thread").expect("write git's stdin");
    }
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok((out.stdout, stderr))
    } else {
        Err(format!("{cmd:?}: {stderr}"))
    }
}

/// The git directory of the repository whose history the corpus tests compare:
/// `ANNALS_GITPORT_REPO` (git.git, cargo: a soak), else annals' own repository (short in a
/// fresh clone, so the tests assume no count). `None` (the test is skipped) when it is not
/// a git repository.
pub(crate) fn corpus_repo() -> Option<PathBuf> {
    let dir = std::env::var_os("ANNALS_GITPORT_REPO").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let mut cmd = git_command();
    cmd.arg("-C").arg(&dir).args(["rev-parse", "--absolute-git-dir"]);
    match run(cmd, None) {
        Ok((out, _)) => Some(PathBuf::from(String::from_utf8_lossy(&out).trim_end())),
        Err(e) => {
            eprintln!("{} is not a git repository ({e}): skipped", dir.display());
            None
        }
    }
}

/// The revision-list arguments of the corpus tests: `-n<count>` (`ANNALS_GITPORT_COMMITS`,
/// else `default_count`, kept small for annals' own history), `--skip=<n>` (`ANNALS_GITPORT_SKIP`) and the revision
/// (`ANNALS_GITPORT_REV`, else `HEAD`).
pub(crate) fn corpus_revs(default_count: u64) -> Vec<String> {
    vec![
        format!("-n{}", env_count("ANNALS_GITPORT_COMMITS", default_count)),
        format!("--skip={}", env_count("ANNALS_GITPORT_SKIP", 0)),
        std::env::var("ANNALS_GITPORT_REV").unwrap_or_else(|_| "HEAD".to_string()),
    ]
}
