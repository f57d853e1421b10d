//! LogQL's syntax, the part annals evaluates.
//!
//! ```text
//! log query     := selector pipeline
//! selector      := "{" matchers "}"                       (PromQL's label matchers)
//! pipeline      := (("|=" | "!=" | "|~" | "!~") string)*
//! log range     := selector pipeline "[" duration "]" pipeline ["offset" duration]
//! metric query  := PromQL in which every `f(log range)` stands for an instant vector,
//!                  f one of count_over_time, rate, bytes_over_time, bytes_rate,
//!                  absent_over_time
//! string        := "…" (Go escapes) | `…` (raw)
//! ```
//!
//! A metric query is read as PromQL after each log range aggregation is replaced by a
//! selector of a reserved name ([`placeholder`]); LogQL's aggregations, binary operators,
//! `vector()`, `label_replace` and the rest are PromQL's, so the PromQL evaluator runs them.
//! Parser stages (`| json`, `| logfmt`, `| line_format`, `| unwrap`, label filters) are
//! [`Error::Unsupported`], named.

use crate::error::{Error, Result};
use promql_parser::label::Matcher;
use promql_parser::parser::Expr;
use regex::Regex;

/// The log range aggregations annals evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeFunction {
    /// Lines in the window.
    CountOverTime,
    /// Lines per second in the window.
    Rate,
    /// Bytes of the lines in the window.
    BytesOverTime,
    /// Bytes per second in the window.
    BytesRate,
    /// 1 when no stream has a line in the window.
    AbsentOverTime,
}

impl RangeFunction {
    fn from_name(name: &str) -> Option<RangeFunction> {
        Some(match name {
            "count_over_time" => RangeFunction::CountOverTime,
            "rate" => RangeFunction::Rate,
            "bytes_over_time" => RangeFunction::BytesOverTime,
            "bytes_rate" => RangeFunction::BytesRate,
            "absent_over_time" => RangeFunction::AbsentOverTime,
            _ => return None,
        })
    }
}

/// Range aggregations that need `| unwrap` (a value taken from the line), which annals does
/// not evaluate.
const UNWRAP_FUNCTIONS: &[&str] = &[
    "sum_over_time",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "first_over_time",
    "last_over_time",
    "stdvar_over_time",
    "stddev_over_time",
    "quantile_over_time",
    "rate_counter",
];

/// A line filter.
#[derive(Debug, Clone)]
pub(crate) enum LineFilter {
    /// `|= "text"`: the line contains the text (case-sensitive).
    Contains(String),
    /// `!= "text"`: the line does not contain it.
    NotContains(String),
    /// `|~ "re"`: the regular expression matches somewhere in the line.
    Matches(Regex),
    /// `!~ "re"`: it matches nowhere.
    NotMatches(Regex),
}

impl LineFilter {
    /// True when the line passes this filter.
    pub fn keeps(&self, line: &str) -> bool {
        match self {
            LineFilter::Contains(text) => line.contains(text.as_str()),
            LineFilter::NotContains(text) => !line.contains(text.as_str()),
            LineFilter::Matches(re) => re.is_match(line),
            LineFilter::NotMatches(re) => !re.is_match(line),
        }
    }
}

/// A stream selector and its line filters.
#[derive(Debug, Clone)]
pub(crate) struct LogSelector {
    pub matchers: Vec<Matcher>,
    pub filters: Vec<LineFilter>,
}

impl LogSelector {
    /// True when `line` passes every filter.
    pub fn keeps(&self, line: &str) -> bool {
        self.filters.iter().all(|f| f.keeps(line))
    }
}

/// `f(selector pipeline [range] offset d)`.
#[derive(Debug, Clone)]
pub(crate) struct LogRange {
    pub function: RangeFunction,
    pub selector: LogSelector,
    pub range_ms: i64,
    pub offset_ms: i64,
}

/// A parsed LogQL query.
#[derive(Debug, Clone)]
pub(crate) enum LogQuery {
    /// A log query: lines.
    Log(LogSelector),
    /// A metric query: the PromQL expression, whose placeholders stand for `ranges`.
    Metric { promql: Expr, ranges: Vec<LogRange> },
}

const PLACEHOLDER_PREFIX: &str = "__annals_logql_range_";

/// The selector name standing for the `i`-th log range aggregation.
pub(crate) fn placeholder(i: usize) -> String {
    format!("{PLACEHOLDER_PREFIX}{i}")
}

/// The index of a placeholder name.
pub(crate) fn placeholder_index(name: &str) -> Option<usize> {
    name.strip_prefix(PLACEHOLDER_PREFIX)?.parse().ok()
}

/// Parses a LogQL query.
pub(crate) fn parse(text: &str) -> Result<LogQuery> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid("the query is empty"));
    }
    let mut cursor = Cursor { text: trimmed, at: 0 };
    if trimmed.starts_with('{') {
        let selector = cursor.log_selector()?;
        cursor.skip_ws();
        if cursor.peek() == Some('[') {
            return Err(cursor.error("a log range must be the argument of a range aggregation, such as count_over_time({…}[5m])"));
        }
        if !cursor.at_end() {
            return Err(cursor.error("expected a line filter (|=, !=, |~, !~) or the end of the query"));
        }
        return Ok(LogQuery::Log(selector));
    }
    let mut promql = String::with_capacity(trimmed.len());
    let mut ranges = Vec::new();
    while let Some(c) = cursor.peek() {
        match c {
            '"' | '\'' | '`' => {
                let start = cursor.at;
                cursor.skip_quoted()?;
                promql.push_str(&trimmed[start..cursor.at]);
            }
            '{' => {
                return Err(cursor.error("a stream selector must be the argument of a range aggregation, such as count_over_time({…}[5m])"));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let name = cursor.identifier();
                let after_name = cursor.at;
                cursor.skip_ws();
                if cursor.eat("(") {
                    cursor.skip_ws();
                    if cursor.peek() == Some('{') {
                        let Some(function) = RangeFunction::from_name(name) else {
                            return Err(if UNWRAP_FUNCTIONS.contains(&name) {
                                Error::Unsupported {
                                    what: format!("`{name}`, which needs `| unwrap` (annals counts lines and bytes only)"),
                                }
                            } else {
                                cursor.error(&format!("{name}() does not take a log range"))
                            });
                        };
                        let range = cursor.log_range(function)?;
                        promql.push_str(&placeholder(ranges.len()));
                        ranges.push(range);
                        continue;
                    }
                }
                cursor.at = after_name;
                promql.push_str(name);
            }
            other => {
                promql.push(other);
                cursor.at += other.len_utf8();
            }
        }
    }
    let promql = super::super::promql::parse(&promql)
        .map_err(|e| Error::invalid(format!("invalid LogQL {trimmed:?}: {}", strip_prefix_of_promql(&e))))?;
    Ok(LogQuery::Metric { promql, ranges })
}

/// The PromQL parser's own words without the PromQL query it quotes (which has the
/// placeholders in it).
fn strip_prefix_of_promql(error: &Error) -> String {
    let text = match error {
        Error::InvalidInput { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    match text.find("\": ") {
        Some(at) if text.starts_with("invalid PromQL \"") => text[at + 3..].to_string(),
        _ => text,
    }
}

struct Cursor<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Cursor<'t> {
    fn rest(&self) -> &'t str {
        &self.text[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.at >= self.text.len()
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn error(&self, what: &str) -> Error {
        let column = self.text[..self.at].chars().count() + 1;
        Error::invalid(format!("invalid LogQL {:?} at column {column}: {what}", self.text))
    }

    fn identifier(&mut self) -> &'t str {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        self.at += len;
        &rest[..len]
    }

    /// Skips a quoted string (`"…"`, `'…'` with backslash escapes, or `` `…` ``).
    fn skip_quoted(&mut self) -> Result<()> {
        let start = self.at;
        let Some(quote) = self.peek() else { return Ok(()) };
        self.at += 1;
        let mut escaped = false;
        for (i, c) in self.rest().char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' && quote != '`' {
                escaped = true;
            } else if c == quote {
                self.at += i + 1;
                return Ok(());
            }
        }
        self.at = start;
        Err(self.error("unterminated string"))
    }

    /// A string literal, unquoted.
    fn string(&mut self) -> Result<String> {
        let start = self.at;
        match self.peek() {
            Some('"') | Some('`') => {}
            _ => return Err(self.error("expected a string in double quotes or backticks")),
        }
        self.skip_quoted()?;
        let quoted = &self.text[start..self.at];
        let inner = &quoted[1..quoted.len() - 1];
        if quoted.starts_with('`') {
            return Ok(inner.to_string());
        }
        unescape(inner).map_err(|what| {
            Cursor {
                text: self.text,
                at: start,
            }
            .error(&what)
        })
    }

    /// `{…}`: PromQL's label matchers, read by the PromQL parser.
    fn selector(&mut self) -> Result<Vec<Matcher>> {
        let start = self.at;
        if !self.eat("{") {
            return Err(self.error("expected a stream selector `{…}`"));
        }
        loop {
            match self.peek() {
                None => {
                    self.at = start;
                    return Err(self.error("the stream selector has no closing `}`"));
                }
                Some('}') => {
                    self.at += 1;
                    break;
                }
                Some('"') | Some('\'') | Some('`') => self.skip_quoted()?,
                Some(c) => self.at += c.len_utf8(),
            }
        }
        let text = &self.text[start..self.at];
        match super::super::promql::parse(text) {
            Ok(Expr::VectorSelector(vs)) if vs.name.is_none() => super::super::promql::selector_matchers(&vs),
            Ok(_) => Err(self.error("expected a stream selector `{…}`")),
            Err(e) => Err(Error::invalid(format!(
                "invalid stream selector {text}: {}",
                strip_prefix_of_promql(&e)
            ))),
        }
    }

    /// Line filters, as many as follow.
    fn pipeline(&mut self, filters: &mut Vec<LineFilter>) -> Result<()> {
        loop {
            self.skip_ws();
            let op = if self.eat("|=") {
                "|="
            } else if self.eat("|~") {
                "|~"
            } else if self.eat("!~") {
                "!~"
            } else if self.rest().starts_with("!=") {
                self.at += 2;
                "!="
            } else if self.rest().starts_with('|') || self.rest().starts_with("!>") {
                self.at += 1;
                self.skip_ws();
                let stage: String = self.rest().chars().take_while(|c| !c.is_whitespace() && *c != '(').collect();
                return Err(Error::Unsupported {
                    what: format!("the LogQL pipeline stage `| {stage}` (annals evaluates the line filters |=, !=, |~ and !~)"),
                });
            } else {
                return Ok(());
            };
            self.skip_ws();
            let text = self.string()?;
            filters.push(match op {
                "|=" => LineFilter::Contains(text),
                "!=" => LineFilter::NotContains(text),
                _ => {
                    let re = Regex::new(&text)
                        .map_err(|e| Error::invalid(format!("invalid regular expression {text:?} in a line filter: {e}")))?;
                    if op == "|~" {
                        LineFilter::Matches(re)
                    } else {
                        LineFilter::NotMatches(re)
                    }
                }
            });
            self.skip_ws();
            if self.rest().starts_with("or ") || self.rest().starts_with("or\"") || self.rest().starts_with("or`") {
                return Err(Error::Unsupported {
                    what: "`or` between line filters (write one |~ with an alternation instead)".into(),
                });
            }
        }
    }

    fn log_selector(&mut self) -> Result<LogSelector> {
        let matchers = self.selector()?;
        let mut filters = Vec::new();
        self.pipeline(&mut filters)?;
        Ok(LogSelector { matchers, filters })
    }

    /// A duration such as `5m` or `1h30m`.
    fn duration(&mut self) -> Result<i64> {
        let rest = self.rest();
        let len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
        let text = &rest[..len];
        let ms = promql_parser::util::parse_duration(text)
            .ok()
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .filter(|&ms| ms > 0)
            .ok_or_else(|| self.error(&format!("{text:?} is not a positive duration such as 5m")))?;
        self.at += len;
        Ok(ms)
    }

    /// The argument of a log range aggregation, from its `{` to the call's `)`.
    fn log_range(&mut self, function: RangeFunction) -> Result<LogRange> {
        let mut selector = self.log_selector()?;
        self.skip_ws();
        if !self.eat("[") {
            return Err(self.error("a log range aggregation needs a range such as [5m] after its selector"));
        }
        self.skip_ws();
        let range_ms = self.duration()?;
        self.skip_ws();
        if !self.eat("]") {
            return Err(self.error("expected `]`"));
        }
        // Loki still reads filters written after the range.
        self.pipeline(&mut selector.filters)?;
        self.skip_ws();
        let mut offset_ms = 0;
        if self.rest().starts_with("offset") {
            self.at += "offset".len();
            self.skip_ws();
            offset_ms = self.duration()?;
            self.skip_ws();
        }
        if !self.eat(")") {
            return Err(self.error("expected `)` closing the range aggregation"));
        }
        Ok(LogRange {
            function,
            selector,
            range_ms,
            offset_ms,
        })
    }
}

/// Go's escapes in a double-quoted string.
fn unescape(text: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escape = chars.next().ok_or("a string ends in a lone backslash")?;
        match escape {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' | '"' | '\'' => out.push(escape),
            'x' | 'u' | 'U' => {
                let digits = match escape {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.by_ref().take(digits).collect();
                let value = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == digits)
                    .ok_or_else(|| format!("invalid escape \\{escape}{hex}"))?;
                out.push(char::from_u32(value).ok_or_else(|| format!("\\{escape}{hex} is not a character"))?);
            }
            other => return Err(format!("unknown escape \\{other} (write \\\\ for a backslash)")),
        }
    }
    Ok(out)
}
