//! The tokenizer of log text, shared by the full-text index, the head's in-memory index,
//! query strings and the brute-force matcher, so all four agree on what a term is.
//!
//! Text is split at whitespace into *chunks*; a chunk is split into *parts*: maximal runs
//! of letters, digits and `_` (what `grep -w` calls a word). Parts are lowercased (keeping
//! only the word characters of the lowercase, so a term tokenizes to itself) and are the
//! terms. The characters between parts of a chunk (`.`, `-`, `:`, `/`, `=`, ...) join
//! them: parts of one chunk get consecutive positions, and one position is left empty
//! between chunks. So `10.250.19.102:50010` is the terms `10 250 19 102 50010` at
//! consecutive positions, and the query word `10.250.19.102` (the phrase of its parts)
//! finds it whole, while `10 250` typed with a space does not match it. Hashes of any
//! length, block ids (`blk_-160...`), dotted class names and UUIDs are found the same way.
//!
//! A chunk without parts (`--`, `|`) still takes one position, so `a b` does not match
//! `a | b`. Parts longer than [`MAX_TERM_BYTES`] are not indexed but keep their position.

/// Longest indexed term, in bytes (after lowercasing).
pub const MAX_TERM_BYTES: usize = 256;

/// One term of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextToken {
    /// The lowercased term.
    pub term: String,
    /// Its position: consecutive within a chunk, with a gap between chunks.
    pub position: u32,
    /// Byte range of the original text it came from.
    pub offsets: std::ops::Range<usize>,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Walks a text, producing terms in order. The state machine is shared by every user so
/// positions agree exactly.
#[derive(Debug, Clone)]
pub(crate) struct Terms<'a> {
    text: &'a str,
    at: usize,
    /// Position of the next part of the current chunk.
    next_position: u32,
    /// Parts seen in the current chunk.
    parts_in_chunk: u32,
    /// Inside a chunk (a non-whitespace character was seen since the last whitespace).
    in_chunk: bool,
}

impl<'a> Terms<'a> {
    pub(crate) fn new(text: &'a str) -> Terms<'a> {
        Terms {
            text,
            at: 0,
            next_position: 0,
            parts_in_chunk: 0,
            in_chunk: false,
        }
    }

    /// Ends the current chunk: the next chunk starts one position after it (a chunk without
    /// parts takes one position).
    fn end_chunk(&mut self) {
        if self.in_chunk {
            if self.parts_in_chunk == 0 {
                self.next_position += 1;
            }
            self.next_position += 1;
            self.in_chunk = false;
            self.parts_in_chunk = 0;
        }
    }

    /// The next term: writes it lowercased into `term` and returns (position, byte range).
    pub(crate) fn next_into(&mut self, term: &mut String) -> Option<(u32, std::ops::Range<usize>)> {
        loop {
            let rest = &self.text[self.at..];
            let mut chars = rest.char_indices();
            let (offset, c) = chars.next()?;
            debug_assert_eq!(offset, 0);
            if c.is_whitespace() {
                self.end_chunk();
                self.at += c.len_utf8();
                continue;
            }
            self.in_chunk = true;
            if !is_word(c) {
                self.at += c.len_utf8();
                continue;
            }
            let len = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
            let start = self.at;
            self.at += len;
            let position = self.next_position;
            self.next_position += 1;
            self.parts_in_chunk += 1;
            let part = &rest[..len];
            term.clear();
            if part.is_ascii() {
                term.push_str(part);
                term.make_ascii_lowercase();
            } else {
                // Lowercasing can yield a character that is not part of a word (`İ` becomes
                // `i` and a combining dot above); it is dropped, so a term tokenizes to
                // itself and `istanbul` finds `İSTANBUL`.
                term.extend(part.chars().flat_map(char::to_lowercase).filter(|&c| is_word(c)));
            }
            if term.is_empty() || term.len() > MAX_TERM_BYTES {
                continue;
            }
            return Some((position, start..start + len));
        }
    }
}

/// The terms of `text`, as the index sees them.
///
/// ```
/// use annals::text::tokenize;
/// let terms: Vec<(String, u32)> = tokenize("Served blk_-42 to /10.0.0.1:50010")
///     .into_iter()
///     .map(|t| (t.term, t.position))
///     .collect();
/// assert_eq!(
///     terms,
///     [("served", 0), ("blk_", 2), ("42", 3), ("to", 5), ("10", 7), ("0", 8), ("0", 9), ("1", 10), ("50010", 11)]
///         .map(|(t, p)| (t.to_string(), p))
/// );
/// ```
pub fn tokenize(text: &str) -> Vec<TextToken> {
    let mut out = Vec::new();
    let mut terms = Terms::new(text);
    let mut term = String::new();
    while let Some((position, offsets)) = terms.next_into(&mut term) {
        out.push(TextToken {
            term: term.clone(),
            position,
            offsets,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn terms(text: &str) -> Vec<(String, u32)> {
        tokenize(text).into_iter().map(|t| (t.term, t.position)).collect()
    }

    fn owned(v: &[(&str, u32)]) -> Vec<(String, u32)> {
        v.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn identifiers_split_into_consecutive_parts() {
        assert_eq!(
            terms("PacketResponder 1 for block blk_38865049064139660 terminating"),
            owned(&[
                ("packetresponder", 0),
                ("1", 2),
                ("for", 4),
                ("block", 6),
                ("blk_38865049064139660", 8),
                ("terminating", 10)
            ])
        );
        assert_eq!(
            terms("dfs.DataNode$PacketResponder: x"),
            owned(&[("dfs", 0), ("datanode", 1), ("packetresponder", 2), ("x", 4)])
        );
        let uuid = terms("id=123e4567-e89b-12d3-a456-426614174000");
        assert_eq!(uuid.len(), 6);
        assert_eq!(uuid[1], ("123e4567".to_string(), 1));
    }

    #[test]
    fn chunks_without_parts_take_a_position_and_whitespace_does_not() {
        assert_eq!(terms("a b"), owned(&[("a", 0), ("b", 2)]));
        assert_eq!(terms("  a \t\n  b  "), owned(&[("a", 0), ("b", 2)]));
        assert_eq!(terms("a | b"), owned(&[("a", 0), ("b", 4)]));
        assert_eq!(terms("(a)"), owned(&[("a", 0)]));
        assert!(terms("-- |").is_empty());
    }

    #[test]
    fn case_is_folded_and_offsets_point_into_the_original() {
        let t = tokenize("ÉCOLE Straße x");
        assert_eq!(t[0].term, "école");
        assert_eq!(&"ÉCOLE Straße x"[t[0].offsets.clone()], "ÉCOLE");
        assert_eq!(t[1].term, "straße");
        assert_eq!(t[2].position, 4);
        // The lowercase of `İ` is `i` and a combining dot, which is not a word character.
        let t = tokenize("İSTANBUL Se2vedİlock");
        assert_eq!((t[0].term.as_str(), t[1].term.as_str()), ("istanbul", "se2vedilock"));
        assert_eq!(&"İSTANBUL Se2vedİlock"[t[1].offsets.clone()], "Se2vedİlock");
    }

    #[test]
    fn long_parts_are_skipped_but_keep_their_position() {
        let long = "a".repeat(MAX_TERM_BYTES + 1);
        let text = format!("x.{long}.y");
        assert_eq!(terms(&text), owned(&[("x", 0), ("y", 2)]));
        let exact = "b".repeat(MAX_TERM_BYTES);
        assert_eq!(terms(&exact).len(), 1);
    }

    proptest! {
        #![proptest_config(crate::codec::tests::proptest_config())]
        #[test]
        fn terms_are_words_in_increasing_positions(text in "[a-zA-Z0-9_ .:/\\-=|\t\né]{0,80}") {
            let tokens = tokenize(&text);
            for pair in tokens.windows(2) {
                prop_assert!(pair[0].position < pair[1].position);
                prop_assert!(pair[0].offsets.end <= pair[1].offsets.start);
            }
            for t in &tokens {
                prop_assert!(!t.term.is_empty());
                prop_assert!(t.term.chars().all(is_word));
                prop_assert_eq!(t.term.clone(), text[t.offsets.clone()].to_lowercase());
            }
            // Whitespace runs are all alike.
            let squeezed = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let a: Vec<_> = tokens.iter().map(|t| (t.term.clone(), t.position)).collect();
            let b: Vec<_> = tokenize(&squeezed).into_iter().map(|t| (t.term, t.position)).collect();
            prop_assert_eq!(a, b);
        }

        #[test]
        fn a_term_tokenizes_to_itself(text in "(İ|\\PC){0,40}") {
            for t in tokenize(&text) {
                let again: Vec<String> = tokenize(&t.term).into_iter().map(|t| t.term).collect();
                prop_assert_eq!(again, vec![t.term.clone()], "{:?}", text);
            }
        }
    }
}
