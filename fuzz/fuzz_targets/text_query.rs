//! Full-text query strings and log text: parsing never panics, a parsed query prints to a
//! string that parses back to the same query, and tokenizing and brute-force matching any
//! text never panic.
#![no_main]
use annals::text::{DocTerms, TextQuery, tokenize};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (query, doc) = text.split_once('\u{1}').unwrap_or((text, text));
    for token in tokenize(doc) {
        assert!(doc.is_char_boundary(token.offsets.start) && token.offsets.end <= doc.len());
    }
    if let Ok(parsed) = TextQuery::parse(query) {
        let printed = parsed.to_string();
        let reparsed = TextQuery::parse(&printed).expect("a printed query parses");
        assert_eq!(parsed, reparsed, "{query:?} printed as {printed:?}");
        let _ = parsed.matches(&DocTerms::new(doc), &|_| Some("error".to_string()));
    }
});
