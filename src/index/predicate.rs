//! Tag predicates: which series a query reads.
//!
//! Negations (`!=`, `not in`, `!~`, `missing`, `not`) include series that lack the tag, as
//! in PromQL and InfluxQL. Regular expressions match anywhere in the value (anchor them
//! with `^` and `$`); a series without the tag never matches `=~`. `@kind = log` selects a
//! series kind; keys starting with `@` are reserved for such terms.

use super::TagIndex;
use crate::error::{Error, Result};
use crate::model::{SeriesKey, SeriesKind};
use roaring::RoaringBitmap;

/// A condition on a series' tags.
///
/// ```
/// use annals::TagPredicate;
/// let p = TagPredicate::parse("region in (eu, us) and not host =~ '^db-'").unwrap();
/// assert_eq!(p.to_string(), "(region in (eu, us) and not (host =~ '^db-'))");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagPredicate {
    /// The tag has this value.
    Eq(String, String),
    /// The tag does not have this value (or is missing).
    Ne(String, String),
    /// The tag has one of these values.
    In(String, Vec<String>),
    /// The tag has none of these values (or is missing).
    NotIn(String, Vec<String>),
    /// The tag's value matches the regular expression.
    Regex(String, String),
    /// The tag's value does not match (or the tag is missing).
    NotRegex(String, String),
    /// The series has the tag.
    Exists(String),
    /// The series lacks the tag.
    Missing(String),
    /// The series is of this kind (`@kind = log`).
    Kind(SeriesKind),
    /// All hold.
    And(Vec<TagPredicate>),
    /// At least one holds.
    Or(Vec<TagPredicate>),
    /// Does not hold.
    Not(Box<TagPredicate>),
}

fn compile(pattern: &str) -> Result<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| Error::invalid(format!("invalid regular expression {pattern:?}: {e}")))
}

impl TagPredicate {
    /// `key = value`.
    pub fn eq(key: impl Into<String>, value: impl Into<String>) -> TagPredicate {
        TagPredicate::Eq(key.into(), value.into())
    }

    /// All of `predicates` (`None` when empty).
    pub fn all(mut predicates: Vec<TagPredicate>) -> Option<TagPredicate> {
        match predicates.len() {
            0 => None,
            1 => predicates.pop(),
            _ => Some(TagPredicate::And(predicates)),
        }
    }

    /// Whether a series key satisfies the predicate (the definition the index must agree
    /// with).
    pub fn matches(&self, key: &SeriesKey) -> Result<bool> {
        Ok(match self {
            TagPredicate::Eq(k, v) => key.tag(k) == Some(v.as_str()),
            TagPredicate::Ne(k, v) => key.tag(k) != Some(v.as_str()),
            TagPredicate::In(k, vs) => key.tag(k).is_some_and(|t| vs.iter().any(|v| v == t)),
            TagPredicate::NotIn(k, vs) => !key.tag(k).is_some_and(|t| vs.iter().any(|v| v == t)),
            TagPredicate::Regex(k, re) => {
                let re = compile(re)?;
                key.tag(k).is_some_and(|t| re.is_match(t))
            }
            TagPredicate::NotRegex(k, re) => {
                let re = compile(re)?;
                !key.tag(k).is_some_and(|t| re.is_match(t))
            }
            TagPredicate::Exists(k) => key.tag(k).is_some(),
            TagPredicate::Missing(k) => key.tag(k).is_none(),
            TagPredicate::Kind(kind) => key.kind() == *kind,
            TagPredicate::And(ps) => {
                for p in ps {
                    if !p.matches(key)? {
                        return Ok(false);
                    }
                }
                true
            }
            TagPredicate::Or(ps) => {
                for p in ps {
                    if p.matches(key)? {
                        return Ok(true);
                    }
                }
                false
            }
            TagPredicate::Not(p) => !p.matches(key)?,
        })
    }

    /// The series of `universe` that satisfy the predicate.
    pub(crate) fn evaluate(&self, index: &TagIndex, universe: &RoaringBitmap) -> Result<RoaringBitmap> {
        let values = |k: &str| index.tag_values(k);
        let eq = |k: &str, v: &str| values(k).and_then(|vs| vs.get(v)).cloned().unwrap_or_default() & universe;
        let any_of = |k: &str, pred: &dyn Fn(&str) -> bool| {
            let mut out = RoaringBitmap::new();
            if let Some(vs) = values(k) {
                for (v, b) in vs {
                    if pred(v) {
                        out |= b;
                    }
                }
            }
            out & universe
        };
        // A list of values is looked up value by value, not matched against every value of
        // the key (a key like hostname has one value per series).
        let union_of = |k: &str, listed: &[String]| {
            let mut out = RoaringBitmap::new();
            if let Some(vs) = values(k) {
                for v in listed {
                    if let Some(b) = vs.get(v.as_str()) {
                        out |= b;
                    }
                }
            }
            out & universe
        };
        Ok(match self {
            TagPredicate::Eq(k, v) => eq(k, v),
            TagPredicate::Ne(k, v) => universe - eq(k, v),
            TagPredicate::In(k, vs) => union_of(k, vs),
            TagPredicate::NotIn(k, vs) => universe - union_of(k, vs),
            TagPredicate::Regex(k, re) => {
                let re = compile(re)?;
                any_of(k, &|t| re.is_match(t))
            }
            TagPredicate::NotRegex(k, re) => {
                let re = compile(re)?;
                universe - any_of(k, &|t| re.is_match(t))
            }
            TagPredicate::Exists(k) => any_of(k, &|_| true),
            TagPredicate::Missing(k) => universe - any_of(k, &|_| true),
            TagPredicate::Kind(kind) => index.by_kind.get(&(*kind as u8)).cloned().unwrap_or_default() & universe,
            TagPredicate::And(ps) => {
                let mut out = universe.clone();
                for p in ps {
                    out = p.evaluate(index, &out)?;
                    if out.is_empty() {
                        break;
                    }
                }
                out
            }
            TagPredicate::Or(ps) => {
                let mut out = RoaringBitmap::new();
                for p in ps {
                    out |= p.evaluate(index, universe)?;
                }
                out
            }
            TagPredicate::Not(p) => universe - p.evaluate(index, universe)?,
        })
    }

    /// Parses a predicate:
    ///
    /// ```text
    /// expr       := term ("or" term)*
    /// term       := factor ("and" factor)*
    /// factor     := "not" factor | "(" expr ")" | comparison
    /// comparison := key ("=" | "!=" | "=~" | "!~") value
    ///             | key ["not"] "in" "(" value ("," value)* ")"
    ///             | key "exists" | key "missing"
    /// ```
    ///
    /// Keys and values are bare words or quoted with `'` or `"` (backslash escapes the
    /// quote). Errors name the column.
    pub fn parse(text: &str) -> Result<TagPredicate> {
        let mut p = Parser { text, pos: 0 };
        let expr = p.expr()?;
        p.skip_space();
        if p.pos < text.len() {
            return Err(p.error("unexpected text after the predicate"));
        }
        Ok(expr)
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, why: &str) -> Error {
        Error::InvalidInput {
            line: None,
            column: Some(self.pos as u64 + 1),
            reason: format!("cannot read tag predicate {:?}: {why}", self.text),
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    /// Consumes a keyword (case-insensitive) followed by a non-word character.
    fn keyword(&mut self, word: &str) -> bool {
        self.skip_space();
        let rest = self.rest();
        // `get` rather than slicing: the keyword's length may fall inside a multi-byte char.
        if rest.get(..word.len()).is_some_and(|head| head.eq_ignore_ascii_case(word)) {
            let after = rest[word.len()..].chars().next();
            if after.is_none_or(|c| !is_word(c)) {
                self.pos += word.len();
                return true;
            }
        }
        false
    }

    fn symbol(&mut self, s: &str) -> bool {
        self.skip_space();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            return true;
        }
        false
    }

    fn expr(&mut self) -> Result<TagPredicate> {
        let mut terms = vec![self.term()?];
        while self.keyword("or") {
            terms.push(self.term()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            TagPredicate::Or(terms)
        })
    }

    fn term(&mut self) -> Result<TagPredicate> {
        let mut factors = vec![self.factor()?];
        while self.keyword("and") {
            factors.push(self.factor()?);
        }
        Ok(if factors.len() == 1 {
            factors.remove(0)
        } else {
            TagPredicate::And(factors)
        })
    }

    fn factor(&mut self) -> Result<TagPredicate> {
        if self.keyword("not") {
            return Ok(TagPredicate::Not(Box::new(self.factor()?)));
        }
        if self.symbol("(") {
            let inner = self.expr()?;
            if !self.symbol(")") {
                return Err(self.error("expected ')'"));
            }
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<TagPredicate> {
        let key = self.word("a tag key")?;
        if let Some(reserved) = key.strip_prefix('@') {
            if reserved != "kind" || !self.symbol("=") {
                return Err(self.error("the only reserved term is '@kind = <metric|performance|log|alert|commit>'"));
            }
            let kind = self.word("a kind")?;
            return SeriesKind::parse(&kind)
                .map(TagPredicate::Kind)
                .ok_or_else(|| self.error(&format!("unknown kind {kind:?}")));
        }
        if self.symbol("=~") {
            return Ok(TagPredicate::Regex(key, self.word("a regular expression")?));
        }
        if self.symbol("!~") {
            return Ok(TagPredicate::NotRegex(key, self.word("a regular expression")?));
        }
        if self.symbol("!=") {
            return Ok(TagPredicate::Ne(key, self.word("a value")?));
        }
        if self.symbol("=") {
            return Ok(TagPredicate::Eq(key, self.word("a value")?));
        }
        if self.keyword("exists") {
            return Ok(TagPredicate::Exists(key));
        }
        if self.keyword("missing") {
            return Ok(TagPredicate::Missing(key));
        }
        let negated = self.keyword("not");
        if self.keyword("in") {
            let values = self.list()?;
            return Ok(if negated {
                TagPredicate::NotIn(key, values)
            } else {
                TagPredicate::In(key, values)
            });
        }
        Err(self.error("expected =, !=, =~, !~, in, not in, exists or missing"))
    }

    fn list(&mut self) -> Result<Vec<String>> {
        if !self.symbol("(") {
            return Err(self.error("expected '(' and a list of values"));
        }
        let mut values = vec![self.word("a value")?];
        while self.symbol(",") {
            values.push(self.word("a value")?);
        }
        if !self.symbol(")") {
            return Err(self.error("expected ',' or ')'"));
        }
        Ok(values)
    }

    fn word(&mut self, what: &str) -> Result<String> {
        self.skip_space();
        let rest = self.rest();
        let Some(first) = rest.chars().next() else {
            return Err(self.error(&format!("expected {what}")));
        };
        if first == '\'' || first == '"' {
            let mut out = String::new();
            let mut chars = rest.char_indices().skip(1);
            while let Some((i, c)) = chars.next() {
                if c == '\\' {
                    if let Some((_, next)) = chars.next() {
                        out.push(next);
                    }
                } else if c == first {
                    self.pos += i + 1;
                    return Ok(out);
                } else {
                    out.push(c);
                }
            }
            return Err(self.error("unterminated quoted value"));
        }
        let len = rest
            .find(|c: char| c.is_whitespace() || "()=!~,'\"".contains(c))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(self.error(&format!("expected {what}")));
        }
        self.pos += len;
        Ok(rest[..len].to_string())
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '.'
}

fn quote(text: &str) -> String {
    if !text.is_empty()
        && text.chars().all(|c| !c.is_whitespace() && !"()=!~,'\"".contains(c))
        && !["and", "or", "not", "in"].contains(&text.to_ascii_lowercase().as_str())
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// The predicate in the syntax [`TagPredicate::parse`] reads.
impl std::fmt::Display for TagPredicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |vs: &[String]| vs.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", ");
        match self {
            TagPredicate::Eq(k, v) => write!(f, "{} = {}", quote(k), quote(v)),
            TagPredicate::Ne(k, v) => write!(f, "{} != {}", quote(k), quote(v)),
            TagPredicate::In(k, vs) => write!(f, "{} in ({})", quote(k), list(vs)),
            TagPredicate::NotIn(k, vs) => write!(f, "{} not in ({})", quote(k), list(vs)),
            TagPredicate::Regex(k, re) => write!(f, "{} =~ '{}'", quote(k), re.replace('\\', "\\\\").replace('\'', "\\'")),
            TagPredicate::NotRegex(k, re) => write!(f, "{} !~ '{}'", quote(k), re.replace('\\', "\\\\").replace('\'', "\\'")),
            TagPredicate::Exists(k) => write!(f, "{} exists", quote(k)),
            TagPredicate::Missing(k) => write!(f, "{} missing", quote(k)),
            TagPredicate::Kind(kind) => write!(f, "@kind = {}", kind.name()),
            TagPredicate::And(ps) => write!(f, "({})", ps.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" and ")),
            TagPredicate::Or(ps) => write!(f, "({})", ps.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" or ")),
            TagPredicate::Not(p) => write!(f, "not ({p})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tags: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new(SeriesKind::Metric, "m", tags.iter().copied()).unwrap()
    }

    #[test]
    fn a_keyword_prefix_inside_a_multibyte_char_is_an_error_not_a_panic() {
        // Found by the query_flags fuzz target: "or" checked against the bytes "5\xDF".
        assert!(TagPredicate::parse("-5\u{7de}").is_err());
        assert!(TagPredicate::parse("a=b o\u{e9}").is_err());
    }

    #[test]
    fn parses_every_form() {
        for (text, expected) in [
            ("host=a", TagPredicate::eq("host", "a")),
            ("host != 'web 1'", TagPredicate::Ne("host".into(), "web 1".into())),
            ("host =~ ^db", TagPredicate::Regex("host".into(), "^db".into())),
            ("host !~ \"x\\\"y\"", TagPredicate::NotRegex("host".into(), "x\"y".into())),
            ("dc in (a, 'b c')", TagPredicate::In("dc".into(), vec!["a".into(), "b c".into()])),
            ("dc NOT IN (a)", TagPredicate::NotIn("dc".into(), vec!["a".into()])),
            ("rack exists", TagPredicate::Exists("rack".into())),
            ("rack missing", TagPredicate::Missing("rack".into())),
            ("@kind = log", TagPredicate::Kind(SeriesKind::Log)),
            (
                "a=1 or b=2 and not (c=3)",
                TagPredicate::Or(vec![
                    TagPredicate::eq("a", "1"),
                    TagPredicate::And(vec![
                        TagPredicate::eq("b", "2"),
                        TagPredicate::Not(Box::new(TagPredicate::eq("c", "3"))),
                    ]),
                ]),
            ),
        ] {
            let parsed = TagPredicate::parse(text).unwrap();
            assert_eq!(parsed, expected, "{text}");
            assert_eq!(
                TagPredicate::parse(&parsed.to_string()).unwrap(),
                parsed,
                "display of {text} parses back"
            );
        }
        for (bad, column) in [
            ("host", 5),
            ("host = ", 8),
            ("(a=1", 5),
            ("a in (x", 8),
            ("a=1 b=2", 5),
            ("a =~ 'open", 6),
            ("", 1),
        ] {
            match TagPredicate::parse(bad) {
                Err(Error::InvalidInput { column: Some(c), .. }) => assert_eq!(c, column, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn index_agrees_with_the_definition() {
        let keys = [
            key(&[("host", "a"), ("dc", "x")]),
            key(&[("host", "b")]),
            key(&[("dc", "y")]),
            key(&[]),
            key(&[("host", "ab"), ("dc", "x")]),
        ];
        let mut index = TagIndex::default();
        for (i, k) in keys.iter().enumerate() {
            index.insert(i as u32, k);
        }
        let universe = index.select(None, None, None).unwrap();
        for text in [
            "host=a",
            "host!=a",
            "host in (a, b)",
            "host in (a, zz, a)",
            "host not in (a)",
            "host not in (zz, b)",
            "dc in (nope)",
            "host=~^a",
            "host!~b",
            "dc exists",
            "dc missing",
            "not (host=a or dc=y)",
            "host=~a and dc=x",
        ] {
            let p = TagPredicate::parse(text).unwrap();
            let by_index: Vec<u32> = p.evaluate(&index, &universe).unwrap().iter().collect();
            let by_definition: Vec<u32> = (0..keys.len() as u32).filter(|&i| p.matches(&keys[i as usize]).unwrap()).collect();
            assert_eq!(by_index, by_definition, "{text}");
        }
        assert!(TagPredicate::parse("host=~'('").unwrap().evaluate(&index, &universe).is_err());
    }
}
