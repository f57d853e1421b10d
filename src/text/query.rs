//! Full-text query strings: parsing, printing, and matching one document by brute force.
//!
//! ```text
//! query   := or
//! or      := and ("OR" and)*
//! and     := unary (["AND"] unary)*          juxtaposition means AND
//! unary   := ("NOT" | "-") unary | atom
//! atom    := "(" or ")" | phrase ["*"] | field ":" (word | phrase) | word ["*"] | "*"
//! field   := "level" | "logger"
//! ```
//!
//! A word is tokenized like the indexed text: one term, or (for `10.0.0.1`, `blk_-42`) the
//! phrase of its parts. A trailing `*` makes the last term a prefix. Operators are
//! upper case; lower-case `and`, `or`, `not` are ordinary words. `level:` and `logger:`
//! compare the record's level and logger name, ignoring case.

use super::tokenizer::{MAX_TERM_BYTES, Terms};
use crate::error::{Error, Result};
use rustc_hash::FxHashMap;
use std::fmt;

/// A record attribute that `field:value` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextField {
    /// The `level` tag of logs and alerts.
    Level,
    /// The `logger_name` tag of logs.
    Logger,
}

impl TextField {
    /// The name used in query strings.
    pub fn name(&self) -> &'static str {
        match self {
            TextField::Level => "level",
            TextField::Logger => "logger",
        }
    }

    /// The series tag it reads.
    pub fn tag_key(&self) -> &'static str {
        match self {
            TextField::Level => "level",
            TextField::Logger => "logger_name",
        }
    }
}

/// A parsed full-text query.
///
/// ```
/// use annals::text::TextQuery;
/// let q = TextQuery::parse(r#"error AND ("disk full" OR blk_-42) NOT level:debug"#).unwrap();
/// assert_eq!(q.to_string(), r#"error AND ("disk full" OR "blk_.42") AND NOT level:debug"#);
/// assert!(TextQuery::parse("(unbalanced").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextQuery {
    /// Every record that has text (the empty query, or `*`).
    All,
    /// Records with this term.
    Term(String),
    /// Records with a term that starts with this.
    Prefix(String),
    /// Records with these terms at these relative positions (the first at 0; at least two
    /// terms). With `prefix_last`, the last term is a prefix.
    Phrase {
        /// (relative position, term), by position.
        terms: Vec<(u32, String)>,
        /// The last term is a prefix.
        prefix_last: bool,
    },
    /// Records whose level or logger is this (ignoring case).
    Field {
        /// Which attribute.
        field: TextField,
        /// The value, lowercased.
        value: String,
    },
    /// All hold.
    And(Vec<TextQuery>),
    /// At least one holds.
    Or(Vec<TextQuery>),
    /// Does not hold.
    Not(Box<TextQuery>),
}

impl TextQuery {
    /// Parses a query string. Errors name the column (in characters, from 1).
    pub fn parse(text: &str) -> Result<TextQuery> {
        let tokens = lex(text)?;
        let mut parser = Parser { text, tokens, at: 0 };
        if parser.tokens.is_empty() {
            return Ok(TextQuery::All);
        }
        let query = parser.or()?;
        if let Some(t) = parser.tokens.get(parser.at) {
            return Err(parser.error(t.column, "unexpected ')'"));
        }
        Ok(query)
    }

    /// Whether a document with these terms (and these level and logger values) matches.
    /// This is the reference the indexes are tested against.
    pub fn matches(&self, doc: &DocTerms, field: &dyn Fn(TextField) -> Option<String>) -> bool {
        match self {
            TextQuery::All => true,
            TextQuery::Term(t) => doc.positions.contains_key(t.as_str()),
            TextQuery::Prefix(p) => doc.positions.keys().any(|t| t.starts_with(p.as_str())),
            TextQuery::Phrase { terms, prefix_last } => doc.has_phrase(terms, *prefix_last),
            TextQuery::Field { field: f, value } => field(*f).is_some_and(|v| v.to_lowercase() == *value),
            TextQuery::And(all) => all.iter().all(|q| q.matches(doc, field)),
            TextQuery::Or(any) => any.iter().any(|q| q.matches(doc, field)),
            TextQuery::Not(q) => !q.matches(doc, field),
        }
    }

    /// Terms and prefixes that make a document match (outside `NOT`), for highlighting:
    /// (term, is a prefix).
    pub fn positive_terms(&self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        self.collect_positive(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect_positive(&self, out: &mut Vec<(String, bool)>) {
        match self {
            TextQuery::Term(t) => out.push((t.clone(), false)),
            TextQuery::Prefix(p) => out.push((p.clone(), true)),
            TextQuery::Phrase { terms, prefix_last } => {
                for (i, (_, t)) in terms.iter().enumerate() {
                    out.push((t.clone(), *prefix_last && i + 1 == terms.len()));
                }
            }
            TextQuery::And(qs) | TextQuery::Or(qs) => qs.iter().for_each(|q| q.collect_positive(out)),
            TextQuery::All | TextQuery::Field { .. } | TextQuery::Not(_) => {}
        }
    }
}

/// The terms of one document by position, for [`TextQuery::matches`].
#[derive(Debug, Clone, Default)]
pub struct DocTerms {
    positions: FxHashMap<String, Vec<u32>>,
    /// (position, term) by position.
    by_position: Vec<(u32, String)>,
}

impl DocTerms {
    /// Tokenizes `text` like the index does.
    pub fn new(text: &str) -> DocTerms {
        let mut doc = DocTerms::default();
        let mut terms = Terms::new(text);
        let mut term = String::new();
        while let Some((position, _)) = terms.next_into(&mut term) {
            doc.positions.entry(term.clone()).or_default().push(position);
            doc.by_position.push((position, term.clone()));
        }
        doc
    }

    fn term_at(&self, position: u32) -> Option<&str> {
        self.by_position
            .binary_search_by_key(&position, |(p, _)| *p)
            .ok()
            .map(|i| self.by_position[i].1.as_str())
    }

    fn has_phrase(&self, terms: &[(u32, String)], prefix_last: bool) -> bool {
        let Some(((first_offset, first), rest)) = terms.split_first() else {
            return false;
        };
        let Some(starts) = self.positions.get(first.as_str()) else {
            return false;
        };
        starts.iter().any(|&p| {
            let Some(base) = p.checked_sub(*first_offset) else { return false };
            rest.iter().enumerate().all(|(i, (offset, term))| {
                let at = base + offset;
                if prefix_last && i + 1 == rest.len() {
                    self.term_at(at).is_some_and(|t| t.starts_with(term.as_str()))
                } else {
                    self.positions.get(term.as_str()).is_some_and(|ps| ps.binary_search(&at).is_ok())
                }
            })
        })
    }
}

impl fmt::Display for TextQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextQuery::All => f.write_str("*"),
            TextQuery::Term(t) => f.write_str(t),
            TextQuery::Prefix(p) => write!(f, "{p}*"),
            TextQuery::Phrase { terms, prefix_last } => {
                f.write_str("\"")?;
                let mut previous: Option<u32> = None;
                for (offset, term) in terms {
                    if let Some(p) = previous {
                        match offset - p {
                            1 => f.write_str(".")?,
                            d => {
                                // Every empty chunk between two terms takes two positions.
                                f.write_str(" ")?;
                                for _ in 0..(d.saturating_sub(2) / 2) {
                                    f.write_str("- ")?;
                                }
                            }
                        }
                    }
                    f.write_str(term)?;
                    previous = Some(*offset);
                }
                f.write_str("\"")?;
                if *prefix_last {
                    f.write_str("*")?;
                }
                Ok(())
            }
            TextQuery::Field { field, value } => {
                if !value.is_empty() && value.chars().all(|c| c.is_alphanumeric() || "_.-$".contains(c)) {
                    write!(f, "{}:{value}", field.name())
                } else {
                    write!(f, "{}:\"{}\"", field.name(), value.replace('\\', "\\\\").replace('"', "\\\""))
                }
            }
            TextQuery::And(all) => {
                for (i, q) in all.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" AND ")?;
                    }
                    match q {
                        TextQuery::Or(_) => write!(f, "({q})")?,
                        _ => write!(f, "{q}")?,
                    }
                }
                Ok(())
            }
            TextQuery::Or(any) => {
                for (i, q) in any.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    write!(f, "{q}")?;
                }
                Ok(())
            }
            TextQuery::Not(q) => match **q {
                TextQuery::And(_) | TextQuery::Or(_) => write!(f, "NOT ({q})"),
                _ => write!(f, "NOT {q}"),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Lexeme {
    Open,
    Close,
    And,
    Or,
    Not,
    /// A bare word; `prefix` when it ended in `*`.
    Word {
        text: String,
        prefix: bool,
    },
    /// A quoted phrase; `prefix` when `*` followed the closing quote.
    Quoted {
        text: String,
        prefix: bool,
    },
    /// `level:` or `logger:` followed by its value.
    Field {
        field: TextField,
        value: String,
    },
}

#[derive(Debug)]
struct Token {
    lexeme: Lexeme,
    /// Column (characters, from 1).
    column: usize,
}

fn column_of(text: &str, byte: usize) -> usize {
    text[..byte].chars().count() + 1
}

fn syntax_error(text: &str, column: usize, why: &str) -> Error {
    Error::InvalidInput {
        line: None,
        column: Some(column as u64),
        reason: format!("in search query {text:?}: {why}"),
    }
}

/// Reads a quoted string starting at `start` (the opening quote); returns it unescaped and
/// the byte after the closing quote.
fn read_quoted(text: &str, start: usize) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + 1 + i + 1)),
            '\\' => match chars.next() {
                Some((_, e)) => out.push(e),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(syntax_error(text, column_of(text, start), "the quote is not closed"))
}

fn lex(text: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let Some(c) = rest.chars().next() else { break };
        let column = column_of(text, at);
        if c.is_whitespace() {
            at += c.len_utf8();
            continue;
        }
        let push = |tokens: &mut Vec<Token>, lexeme| tokens.push(Token { lexeme, column });
        match c {
            '(' => {
                push(&mut tokens, Lexeme::Open);
                at += 1;
            }
            ')' => {
                push(&mut tokens, Lexeme::Close);
                at += 1;
            }
            '"' => {
                let (phrase, end) = read_quoted(text, at)?;
                at = end;
                let prefix = text[at..].starts_with('*');
                if prefix {
                    at += 1;
                }
                push(&mut tokens, Lexeme::Quoted { text: phrase, prefix });
            }
            '-' if rest[1..].starts_with(|c: char| !c.is_whitespace() && c != ')' && c != '-') => {
                push(&mut tokens, Lexeme::Not);
                at += 1;
            }
            _ => {
                let len = rest.find(|c: char| c.is_whitespace() || "()\"".contains(c)).unwrap_or(rest.len());
                let word = &rest[..len];
                at += len;
                let field = word.split_once(':').and_then(|(name, value)| {
                    let field = match name.to_ascii_lowercase().as_str() {
                        "level" => TextField::Level,
                        "logger" => TextField::Logger,
                        _ => return None,
                    };
                    Some((field, value))
                });
                let lexeme = match (word, field) {
                    ("AND", _) => Lexeme::And,
                    ("OR", _) => Lexeme::Or,
                    ("NOT", _) => Lexeme::Not,
                    (_, Some((field, value))) => {
                        let value = if value.is_empty() && text[at..].starts_with('"') {
                            let (quoted, end) = read_quoted(text, at)?;
                            at = end;
                            quoted
                        } else {
                            value.to_string()
                        };
                        if value.is_empty() {
                            return Err(syntax_error(text, column, &format!("{}: needs a value", field.name())));
                        }
                        Lexeme::Field {
                            field,
                            value: value.to_lowercase(),
                        }
                    }
                    _ => match word.strip_suffix('*') {
                        Some(stem) => Lexeme::Word {
                            text: stem.to_string(),
                            prefix: true,
                        },
                        None => Lexeme::Word {
                            text: word.to_string(),
                            prefix: false,
                        },
                    },
                };
                push(&mut tokens, lexeme);
            }
        }
    }
    Ok(tokens)
}

/// Appends `q` to the operands of an OR (`or`) or AND, inlining a nested group of the
/// same operator so that equal queries have one form.
fn push_flat(operands: &mut Vec<TextQuery>, q: TextQuery, or: bool) {
    match q {
        TextQuery::Or(inner) if or => operands.extend(inner),
        TextQuery::And(inner) if !or => operands.extend(inner),
        q => operands.push(q),
    }
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

impl Parser<'_> {
    fn error(&self, column: usize, why: &str) -> Error {
        syntax_error(self.text, column, why)
    }

    fn end_column(&self) -> usize {
        self.text.chars().count() + 1
    }

    fn peek(&self) -> Option<&Lexeme> {
        self.tokens.get(self.at).map(|t| &t.lexeme)
    }

    fn or(&mut self) -> Result<TextQuery> {
        let mut any = Vec::new();
        push_flat(&mut any, self.and()?, true);
        while self.peek() == Some(&Lexeme::Or) {
            self.at += 1;
            push_flat(&mut any, self.and()?, true);
        }
        Ok(if any.len() == 1 { any.remove(0) } else { TextQuery::Or(any) })
    }

    fn and(&mut self) -> Result<TextQuery> {
        let mut all = Vec::new();
        push_flat(&mut all, self.unary()?, false);
        loop {
            match self.peek() {
                Some(Lexeme::And) => {
                    self.at += 1;
                    push_flat(&mut all, self.unary()?, false);
                }
                Some(Lexeme::Or | Lexeme::Close) | None => break,
                Some(_) => push_flat(&mut all, self.unary()?, false),
            }
        }
        Ok(if all.len() == 1 { all.remove(0) } else { TextQuery::And(all) })
    }

    fn unary(&mut self) -> Result<TextQuery> {
        if self.peek() == Some(&Lexeme::Not) {
            self.at += 1;
            return Ok(TextQuery::Not(Box::new(self.unary()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<TextQuery> {
        let Some(token) = self.tokens.get(self.at) else {
            return Err(self.error(self.end_column(), "expected a term, a phrase or '(' at the end"));
        };
        let column = token.column;
        let lexeme = token.lexeme.clone();
        self.at += 1;
        match lexeme {
            Lexeme::Open => {
                let inner = self.or()?;
                if self.peek() != Some(&Lexeme::Close) {
                    let at = self.tokens.get(self.at).map_or(self.end_column(), |t| t.column);
                    return Err(self.error(at, &format!("expected ')' to close the '(' at column {column}")));
                }
                self.at += 1;
                Ok(inner)
            }
            Lexeme::Close => Err(self.error(column, "unexpected ')'")),
            Lexeme::And | Lexeme::Or => Err(self.error(column, "AND and OR need a term on each side")),
            Lexeme::Not => Err(self.error(column, "NOT needs a term after it")),
            Lexeme::Field { field, value } => Ok(TextQuery::Field { field, value }),
            Lexeme::Word { text, prefix } if text.is_empty() && prefix => Ok(TextQuery::All),
            Lexeme::Word { text, prefix } | Lexeme::Quoted { text, prefix } => self.terms_of(&text, prefix, column),
        }
    }

    /// A word or phrase as the index sees it: one term, or the phrase of its terms.
    fn terms_of(&self, text: &str, prefix: bool, column: usize) -> Result<TextQuery> {
        let too_long = text
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|part| part.chars().flat_map(char::to_lowercase).map(char::len_utf8).sum::<usize>() > MAX_TERM_BYTES);
        if too_long {
            return Err(self.error(
                column,
                &format!("a term is longer than {MAX_TERM_BYTES} bytes, and such terms are not indexed"),
            ));
        }
        let mut terms = Vec::new();
        let mut walker = Terms::new(text);
        let mut term = String::new();
        while let Some((position, _)) = walker.next_into(&mut term) {
            terms.push((position, term.clone()));
        }
        let Some(&(first, _)) = terms.first() else {
            return Err(self.error(column, &format!("{text:?} has nothing to search for (letters, digits or _)")));
        };
        if terms.len() == 1 {
            let (_, term) = terms.remove(0);
            return Ok(if prefix { TextQuery::Prefix(term) } else { TextQuery::Term(term) });
        }
        for (position, _) in &mut terms {
            *position -= first;
        }
        Ok(TextQuery::Phrase {
            terms,
            prefix_last: prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> TextQuery {
        TextQuery::parse(s).unwrap()
    }

    fn term(t: &str) -> TextQuery {
        TextQuery::Term(t.into())
    }

    fn phrase(terms: &[(u32, &str)], prefix_last: bool) -> TextQuery {
        TextQuery::Phrase {
            terms: terms.iter().map(|(p, t)| (*p, t.to_string())).collect(),
            prefix_last,
        }
    }

    fn none(_: TextField) -> Option<String> {
        None
    }

    #[test]
    fn parses_terms_phrases_operators_and_fields() {
        assert_eq!(q(""), TextQuery::All);
        assert_eq!(q("  * "), TextQuery::All);
        assert_eq!(q("Error"), term("error"));
        assert_eq!(q("err*"), TextQuery::Prefix("err".into()));
        assert_eq!(q("a b"), TextQuery::And(vec![term("a"), term("b")]));
        assert_eq!(
            q("a AND b OR c"),
            TextQuery::Or(vec![TextQuery::And(vec![term("a"), term("b")]), term("c")])
        );
        assert_eq!(q("a and b"), TextQuery::And(vec![term("a"), term("and"), term("b")]));
        assert_eq!(q("-a"), TextQuery::Not(Box::new(term("a"))));
        assert_eq!(
            q("NOT (a OR b)"),
            TextQuery::Not(Box::new(TextQuery::Or(vec![term("a"), term("b")])))
        );
        assert_eq!(q("10.250.19.102"), phrase(&[(0, "10"), (1, "250"), (2, "19"), (3, "102")], false));
        assert_eq!(q("\"disk full\""), phrase(&[(0, "disk"), (2, "full")], false));
        assert_eq!(q("\"a | b\""), phrase(&[(0, "a"), (4, "b")], false));
        assert_eq!(q("\"block blk_\"*"), phrase(&[(0, "block"), (2, "blk_")], true));
        assert_eq!(q("blk_-16*"), phrase(&[(0, "blk_"), (1, "16")], true));
        assert_eq!(q("\"(x)\""), term("x"));
        assert_eq!(
            q("level:ERROR logger:\"dfs.DataNode$PacketResponder\""),
            TextQuery::And(vec![
                TextQuery::Field {
                    field: TextField::Level,
                    value: "error".into()
                },
                TextQuery::Field {
                    field: TextField::Logger,
                    value: "dfs.datanode$packetresponder".into()
                },
            ])
        );
        // A hyphen inside a word is a joiner, at the start a negation, alone an error.
        assert_eq!(q("a-b"), phrase(&[(0, "a"), (1, "b")], false));
        assert!(TextQuery::parse("x - y").is_err());
        // Nested groups of the same operator are flattened.
        assert_eq!(q("(a b) c"), TextQuery::And(vec![term("a"), term("b"), term("c")]));
        assert_eq!(q("a OR (b OR c)"), TextQuery::Or(vec![term("a"), term("b"), term("c")]));
        // A lowercase that is not all word characters (`İ`) still prints to the same query
        // (found by the fuzz target: it printed a prefix that parsed back as a phrase).
        let dotted = q("\"Se2vedİlock\"*");
        assert_eq!(dotted, TextQuery::Prefix("se2vedilock".into()));
        assert_eq!(q(&dotted.to_string()), dotted);
    }

    #[test]
    fn mistakes_are_reported_with_their_column() {
        let column = |s: &str| match TextQuery::parse(s) {
            Err(Error::InvalidInput { column, reason, .. }) => {
                assert!(reason.contains("search query"), "{reason}");
                column
            }
            other => panic!("{s:?} parsed as {other:?}"),
        };
        assert_eq!(column("(a b"), Some(5));
        assert_eq!(column("a b)"), Some(4));
        assert_eq!(column("a \"b c"), Some(3));
        assert_eq!(column("a AND"), Some(6));
        assert_eq!(column("OR a"), Some(1));
        assert_eq!(column("a --- b"), Some(3));
        assert_eq!(column("é level:"), Some(3));
        assert_eq!(column(&format!("x {}", "a".repeat(MAX_TERM_BYTES + 1))), Some(3));
        assert_eq!(column(&format!("x.{}.y", "a".repeat(MAX_TERM_BYTES + 1))), Some(1));
    }

    #[test]
    fn matching_follows_positions() {
        let doc = DocTerms::new("Receiving block blk_-42 src: /10.250.19.102:54106 dest: /10.250.19.102:50010");
        let m = |s: &str| q(s).matches(&doc, &none);
        assert!(m("receiving"));
        assert!(m("10.250.19.102"));
        assert!(m("250.19"));
        assert!(!m("10.250.19.10"));
        assert!(m("\"block blk_-42\""));
        assert!(!m("\"blk_-42 block\""));
        assert!(m("blk_-4*"));
        assert!(m("rec*"));
        assert!(!m("rex*"));
        assert!(m("\"src 10.250\""));
        assert!(!m("\"receiving blk_\""));
        assert!(m("NOT missing"));
        assert!(m("missing OR dest"));
        assert!(!m("missing AND dest"));
        assert!(!m("level:info"));
        let info = |f: TextField| (f == TextField::Level).then(|| "INFO".to_string());
        assert!(q("level:info dest").matches(&doc, &info));
    }

    #[test]
    fn positive_terms_skip_negations() {
        assert_eq!(
            q("a \"b c\"* NOT d x*").positive_terms(),
            vec![
                ("a".to_string(), false),
                ("b".into(), false),
                ("c".into(), true),
                ("x".into(), true)
            ]
        );
    }

    fn arb_query() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            "[a-z0-9]{1,6}",
            "[a-z0-9]{1,4}\\*",
            "\"[a-z0-9]{1,4}( [a-z0-9]{1,4}){1,3}\"",
            "[a-z0-9]{1,3}(\\.[a-z0-9]{1,3}){1,3}",
            "level:[a-z]{1,5}",
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} {b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
                inner.prop_map(|a| format!("NOT {a}")),
            ]
        })
    }

    proptest! {
        #![proptest_config(crate::codec::tests::proptest_config())]
        #[test]
        fn printing_round_trips(text in arb_query()) {
            let parsed = q(&text);
            let printed = parsed.to_string();
            prop_assert_eq!(TextQuery::parse(&printed).unwrap(), parsed, "{} printed as {}", text, printed);
        }

        #[test]
        fn any_string_parses_or_errs_without_panicking(text in "\\PC{0,40}") {
            let _ = TextQuery::parse(&text);
        }
    }
}
