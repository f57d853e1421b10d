//! Content similarity as git estimates it for rename detection.
//!
//! Git does not diff candidate pairs line by line. It cuts each blob into
//! chunks (a chunk ends after a newline or after 64 bytes, whichever comes
//! first), hashes every chunk into one of roughly 2^17 buckets, and sums the
//! chunk lengths per bucket. The number of bytes "copied" from the source to
//! the destination is then the sum, over all buckets, of the smaller of the
//! two byte counts. Bucket collisions are part of the estimate, so the exact
//! hash (and its 32-bit wrap-around arithmetic) must be reproduced to get the
//! same scores as git.

/// The score git assigns to a perfect match (git's `MAX_SCORE`).
pub const MAX_SCORE: u32 = 60_000;

/// Git's default minimum score for a rename (`-M` without a value: 50%).
pub const DEFAULT_RENAME_SCORE: u32 = 30_000;

/// Number of buckets; a prime between 2^16 and 2^17 chosen by git.
const HASHBASE: u32 = 107_927;

/// A chunk is cut after this many bytes even without a newline.
const MAX_CHUNK: u32 = 64;

/// Git only looks at this many leading bytes to decide "binary".
const BINARY_PROBE_LEN: usize = 8000;

/// Per-bucket byte counts of one blob, sorted by bucket so that two blobs can
/// be compared with a single merge walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanCounts {
    /// `(bucket, bytes)` pairs, strictly increasing by bucket.
    entries: Vec<(u32, u32)>,
}

/// Git's default binary test: a NUL byte among the first 8000 bytes.
///
/// Git lets `.gitattributes` override this (`binary`, `-diff`, `diff=...`);
/// callers who honour attributes pass the override in
/// [`super::FileSide::binary`].
pub fn looks_binary(data: &[u8]) -> bool {
    let probe = &data[..data.len().min(BINARY_PROBE_LEN)];
    probe.contains(&0)
}

impl SpanCounts {
    /// Chunks and hashes `data`. For text (`is_binary == false`) a CR that is
    /// immediately followed by LF is skipped entirely, so CRLF and LF versions
    /// of a file look identical; it also does not count towards chunk length.
    pub fn new(data: &[u8], is_binary: bool) -> SpanCounts {
        let mut raw: Vec<(u32, u32)> = Vec::new();
        let mut acc1: u32 = 0;
        let mut acc2: u32 = 0;
        let mut len: u32 = 0;
        let mut pos = 0;
        while pos < data.len() {
            let byte = data[pos];
            pos += 1;
            if !is_binary && byte == b'\r' && data.get(pos) == Some(&b'\n') {
                continue;
            }
            // A 64-bit rolling value split over two 32-bit halves, rotated by
            // 7 bits per byte; the wrapping behaviour is what git computes.
            let prev1 = acc1;
            acc1 = (acc1 << 7) ^ (acc2 >> 25);
            acc2 = (acc2 << 7) ^ (prev1 >> 25);
            acc1 = acc1.wrapping_add(u32::from(byte));
            len += 1;
            if len < MAX_CHUNK && byte != b'\n' {
                continue;
            }
            raw.push((bucket_of(acc1, acc2), len));
            len = 0;
            acc1 = 0;
            acc2 = 0;
        }
        if len > 0 {
            raw.push((bucket_of(acc1, acc2), len));
        }
        raw.sort_unstable_by_key(|&(bucket, _)| bucket);
        let mut entries: Vec<(u32, u32)> = Vec::with_capacity(raw.len());
        for (bucket, bytes) in raw {
            match entries.last_mut() {
                // Git keeps the per-bucket total in an `unsigned int`.
                Some(last) if last.0 == bucket => last.1 = last.1.wrapping_add(bytes),
                _ => entries.push((bucket, bytes)),
            }
        }
        SpanCounts { entries }
    }

    /// Bytes of `self` (the source) that also appear in `dst`: the sum over
    /// buckets of the smaller count. This is git's `src_copied`.
    pub fn copied_to(&self, dst: &SpanCounts) -> u64 {
        let mut copied: u64 = 0;
        let mut d = dst.entries.iter().peekable();
        for &(bucket, src_bytes) in &self.entries {
            while d.next_if(|&&(b, _)| b < bucket).is_some() {}
            if let Some(&(_, dst_bytes)) = d.next_if(|&&(b, _)| b == bucket) {
                copied += u64::from(src_bytes.min(dst_bytes));
            }
        }
        copied
    }
}

fn bucket_of(acc1: u32, acc2: u32) -> u32 {
    acc1.wrapping_add(acc2.wrapping_mul(0x61)) % HASHBASE
}

/// Git's size-ratio shortcut: a pair whose sizes differ by too much cannot
/// reach `minimum_score`, so git does not even hash it. Returns `true` when
/// git would skip the pair (and score it 0).
///
/// Git evaluates this in `double`; doing the same keeps the boundary cases
/// identical.
pub fn sizes_too_different(src_len: u64, dst_len: u64, minimum_score: u32) -> bool {
    let max_size = src_len.max(dst_len);
    let delta = max_size - src_len.min(dst_len);
    let max_score = f64::from(MAX_SCORE);
    (max_size as f64) * (max_score - f64::from(minimum_score)) < (delta as f64) * max_score
}

/// Turns copied bytes into git's score: `copied * MAX_SCORE / max(sizes)`,
/// computed in `double` and truncated, as git does. An empty destination
/// scores 0.
pub fn score_from_copied(copied: u64, src_len: u64, dst_len: u64) -> u32 {
    if dst_len == 0 {
        return 0;
    }
    let max_size = src_len.max(dst_len);
    // Truncation towards zero is git's `(int)` cast; `copied <= max_size`
    // keeps the value within 0..=MAX_SCORE.
    (copied as f64 * f64::from(MAX_SCORE) / max_size as f64) as u32
}

/// Git's content score (0..=[`MAX_SCORE`]) of `dst` as an edited copy of
/// `src`, for two regular files, using git's default binary test, once a
/// pair passes the size-ratio shortcut ([`sizes_too_different`]). The
/// detector scores through the counts it keeps per file; the tests score
/// pairs directly.
#[cfg(test)]
pub fn similarity(src: &[u8], dst: &[u8]) -> u32 {
    let s = SpanCounts::new(src, looks_binary(src));
    let d = SpanCounts::new(dst, looks_binary(dst));
    score_from_copied(s.copied_to(&d), src.len() as u64, dst.len() as u64)
}

/// The percentage git prints for a score (`similarity index N%`, `R<N>`):
/// `score * 100 / MAX_SCORE`, truncated.
pub fn similarity_percent(score: u32) -> u32 {
    (f64::from(score) * 100.0 / f64::from(MAX_SCORE)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_text_scores_max() {
        let text = b"one\ntwo\nthree\n";
        assert_eq!(similarity(text, text), MAX_SCORE);
    }

    #[test]
    fn crlf_is_ignored_for_text_only() {
        let lf = SpanCounts::new(b"a\nb\n", false);
        let crlf = SpanCounts::new(b"a\r\nb\r\n", false);
        assert_eq!(lf, crlf);
        let crlf_bin = SpanCounts::new(b"a\r\nb\r\n", true);
        assert_ne!(lf, crlf_bin);
    }

    #[test]
    fn long_lines_are_cut_at_64_bytes() {
        let data = [b'x'; 130];
        let counts = SpanCounts::new(&data, false);
        let total: u32 = counts.entries.iter().map(|e| e.1).sum();
        assert_eq!(total, 130);
        // Two full 64-byte chunks hash alike; the 2-byte tail differs.
        assert_eq!(counts.entries.len(), 2);
    }

    #[test]
    fn size_shortcut_boundary() {
        // With 50%: skip when delta > max/2.
        assert!(!sizes_too_different(100, 50, DEFAULT_RENAME_SCORE));
        assert!(sizes_too_different(100, 49, DEFAULT_RENAME_SCORE));
        assert!(sizes_too_different(0, 1, DEFAULT_RENAME_SCORE));
        assert!(!sizes_too_different(0, 0, DEFAULT_RENAME_SCORE));
    }

    #[test]
    fn percent_truncates() {
        assert_eq!(similarity_percent(MAX_SCORE), 100);
        assert_eq!(similarity_percent(59_999), 99);
        assert_eq!(similarity_percent(30_000), 50);
    }
}
