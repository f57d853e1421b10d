//! The examples of InfluxDB's line protocol reference (the v2 reference page, and the v1
//! reference and tutorial where they state a result), ingested through the parser the CLI
//! and the library share, stored, and read back: each must land on exactly the documented
//! measurement, tags, field values and types, and timestamp.

use crate::common::{options, scan_selected};
use annals::ingest::{Format, Parser};
use annals::time::Precision;
use annals::{Batch, Engine, Error, FieldValue, Limits, SeriesSelector};

/// Stands in for "the server's time" of lines without a timestamp.
const NOW: i64 = 1_700_000_000_000_000_000;

/// What one line must become: measurement, tags, timestamp, fields.
struct Expected {
    measurement: &'static str,
    tags: Vec<(&'static str, &'static str)>,
    timestamp: i64,
    fields: Vec<(&'static str, FieldValue)>,
}

fn expect(
    measurement: &'static str,
    tags: &[(&'static str, &'static str)],
    timestamp: i64,
    fields: Vec<(&'static str, FieldValue)>,
) -> Expected {
    Expected {
        measurement,
        tags: tags.to_vec(),
        timestamp,
        fields,
    }
}

fn float(v: f64) -> FieldValue {
    FieldValue::F64(v)
}

fn int(v: i64) -> FieldValue {
    FieldValue::I64(v)
}

fn text(v: &str) -> FieldValue {
    FieldValue::Str(v.to_string())
}

/// A row read back: measurement, tags, timestamp, fields.
type Stored = (String, Vec<(String, String)>, i64, Vec<(String, FieldValue)>);

/// Parses `line` alone into a fresh store and reads back its one row.
fn ingest_one(line: &str) -> Stored {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let mut parser = Parser::new(Format::LineProtocol, Precision::Nanoseconds, Limits::default());
    let mut batch = Batch::new();
    assert!(
        parser
            .parse_into(line, 1, NOW, &mut batch)
            .unwrap_or_else(|e| panic!("{line}: {e}")),
        "{line}: parsed as a comment"
    );
    engine.write(&batch).unwrap();
    // Half the lines are read back from a segment, half from the head.
    if line.len().is_multiple_of(2) {
        engine.flush().unwrap();
    }
    let rows = scan_selected(&engine, SeriesSelector::default());
    assert_eq!(rows.len(), 1, "{line}");
    let row = &rows[0];
    (
        row.key.measurement().to_string(),
        row.key.tags().to_vec(),
        row.timestamp,
        row.fields.iter().map(|(n, v)| (n.to_string(), v.clone())).collect(),
    )
}

fn check(line: &str, want: Expected) {
    let (measurement, tags, timestamp, fields) = ingest_one(line);
    assert_eq!(measurement, want.measurement, "measurement of {line}");
    let want_tags: Vec<(String, String)> = want.tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(tags, want_tags, "tags of {line}");
    assert_eq!(timestamp, want.timestamp, "timestamp of {line}");
    let mut want_fields: Vec<(String, FieldValue)> = want.fields.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
    want_fields.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(fields, want_fields, "fields of {line}");
}

#[test]
fn the_reference_examples_store_the_documented_values() {
    let ts = 1_556_813_561_098_000_000;
    let tutorial_ts = 1_465_839_830_100_400_200;
    check(
        r#"myMeasurement,tag1=value1,tag2=value2 fieldKey="fieldValue" 1556813561098000000"#,
        expect(
            "myMeasurement",
            &[("tag1", "value1"), ("tag2", "value2")],
            ts,
            vec![("fieldKey", text("fieldValue"))],
        ),
    );
    // Special characters.
    check(
        r#"my\ Measurement fieldKey="string value""#,
        expect("my Measurement", &[], NOW, vec![("fieldKey", text("string value"))]),
    );
    check(
        r#"myMeasurement fieldKey="\"string\" within a string""#,
        expect("myMeasurement", &[], NOW, vec![("fieldKey", text(r#""string" within a string"#))]),
    );
    check(
        r"myMeasurement,tag\ Key1=tag\ Value1,tag\ Key2=tag\ Value2 fieldKey=100",
        expect(
            "myMeasurement",
            &[("tag Key1", "tag Value1"), ("tag Key2", "tag Value2")],
            NOW,
            vec![("fieldKey", float(100.0))],
        ),
    );
    check(
        r#"myMeasurement,tagKey=🍭 fieldKey="Launch 🚀" 1556813561098000000"#,
        expect("myMeasurement", &[("tagKey", "🍭")], ts, vec![("fieldKey", text("Launch 🚀"))]),
    );
    // Numbers: floats by default (scientific notation too), `i` integers, `u` unsigned.
    for (value, want) in [
        ("1.0", float(1.0)),
        ("1", float(1.0)),
        ("-1.234456e+78", float(-1.234456e78)),
        ("1.e+78", float(1e78)),
        ("1.E+78", float(1e78)),
        ("1i", int(1)),
        ("12485903i", int(12_485_903)),
        ("-12485903i", int(-12_485_903)),
        ("-9223372036854775808i", int(i64::MIN)),
        ("9223372036854775807i", int(i64::MAX)),
        ("1u", int(1)),
        ("12485903u", int(12_485_903)),
        (r#""this is a string""#, text("this is a string")),
    ] {
        check(
            &format!("myMeasurement fieldKey={value}"),
            expect("myMeasurement", &[], NOW, vec![("fieldKey", want)]),
        );
    }
    // Every boolean spelling; a quoted one is a string.
    for (spelling, want) in [
        ("t", true),
        ("T", true),
        ("true", true),
        ("True", true),
        ("TRUE", true),
        ("f", false),
        ("F", false),
        ("false", false),
        ("False", false),
        ("FALSE", false),
    ] {
        check(
            &format!("myMeasurement fieldKey={spelling}"),
            expect("myMeasurement", &[], NOW, vec![("fieldKey", FieldValue::Bool(want))]),
        );
    }
    check(r#"mymeas value="true""#, expect("mymeas", &[], NOW, vec![("value", text("true"))]));
    check(
        r#"measurementName fieldKey="field string value" 1556813561098000000"#,
        expect("measurementName", &[], ts, vec![("fieldKey", text("field string value"))]),
    );
    // The timestamp range of the reference.
    for timestamp in [-9_223_372_036_854_775_806i64, 9_223_372_036_854_775_806] {
        check(
            &format!(r#"myMeasurementName fieldKey="fieldValue" {timestamp}"#),
            expect("myMeasurementName", &[], timestamp, vec![("fieldKey", text("fieldValue"))]),
        );
    }
    // Escapes of the v1 tutorial.
    let weather =
        |tags: &[(&'static str, &'static str)], field: &'static str| expect("weather", tags, tutorial_ts, vec![(field, float(82.0))]);
    check(
        r"weather,location=us\,midwest temperature=82 1465839830100400200",
        weather(&[("location", "us,midwest")], "temperature"),
    );
    check(
        r"weather,location=us-midwest temp\=rature=82 1465839830100400200",
        weather(&[("location", "us-midwest")], "temp=rature"),
    );
    check(
        r"weather,location\ place=us-midwest temperature=82 1465839830100400200",
        weather(&[("location place", "us-midwest")], "temperature"),
    );
    for (line, measurement) in [
        (r"wea\,ther,location=us-midwest temperature=82 1465839830100400200", "wea,ther"),
        (r"wea\ ther,location=us-midwest temperature=82 1465839830100400200", "wea ther"),
        ("we⛅️ther,location=us-midwest temper🔥ture=82 1465839830100400200", "we⛅️ther"),
    ] {
        let field = if measurement == "we⛅️ther" {
            "temper🔥ture"
        } else {
            "temperature"
        };
        check(
            line,
            expect(measurement, &[("location", "us-midwest")], tutorial_ts, vec![(field, float(82.0))]),
        );
    }
    check(
        r#"weather,location=us-midwest temperature="too\"hot\"" 1465839830100400200"#,
        expect(
            "weather",
            &[("location", "us-midwest")],
            tutorial_ts,
            vec![("temperature", text(r#"too"hot""#))],
        ),
    );
    // Backslashes in strings: two stand for one, a lone one for itself.
    for (i, (raw, stored)) in [
        ("too hot/cold", "too hot/cold"),
        (r"too hot\cold", r"too hot\cold"),
        (r"too hot\\cold", r"too hot\cold"),
        (r"too hot\\\cold", r"too hot\\cold"),
        (r"too hot\\\\cold", r"too hot\\cold"),
        (r"too hot\\\\\cold", r"too hot\\\cold"),
    ]
    .into_iter()
    .enumerate()
    {
        let timestamp = 1_465_839_830_100_400_201 + i as i64;
        check(
            &format!(r#"weather,location=us-midwest temperature_str="{raw}" {timestamp}"#),
            expect(
                "weather",
                &[("location", "us-midwest")],
                timestamp,
                vec![("temperature_str", text(stored))],
            ),
        );
    }
    // The v1 reference's example of every escape at once.
    check(
        r#""measurement\ with\ quo⚡️es\ and\ emoji",tag\ key\ with\ sp🚀ces=tag\,value\,with"commas" field_k\ey="string field value, only \" need be esc🍭ped""#,
        expect(
            r#""measurement with quo⚡️es and emoji""#,
            &[("tag key with sp🚀ces", r#"tag,value,with"commas""#)],
            NOW,
            vec![(r"field_k\ey", text(r#"string field value, only " need be esc🍭ped"#))],
        ),
    );
}

#[test]
fn comments_and_what_annals_cannot_store_are_answered_clearly() {
    let mut parser = Parser::new(Format::LineProtocol, Precision::Nanoseconds, Limits::default());
    let mut batch = Batch::new();
    assert!(!parser.parse_into("# This is a comment", 1, NOW, &mut batch).unwrap());
    assert!(batch.is_empty());
    // The largest unsigned integer of the reference does not fit annals' 64-bit signed
    // integers: refused by name, never stored as something else.
    match parser.parse_into("myMeasurement fieldKey=18446744073709551615u", 2, NOW, &mut batch) {
        Err(Error::InvalidInput { line, column, reason }) => {
            assert_eq!((line, column), (Some(2), Some(24)));
            assert!(reason.contains("exceeds the largest storable integer (2^63-1)"), "{reason}");
        }
        other => panic!("expected the unsigned integer to be refused, got {other:?}"),
    }
    assert!(batch.is_empty());
}

#[test]
fn a_point_written_again_keeps_the_union_of_its_fields_the_newer_value_winning() {
    // The reference's rule for duplicate points: same measurement, tag set and timestamp.
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let mut parser = Parser::new(Format::LineProtocol, Precision::Nanoseconds, Limits::default());
    for (i, line) in [
        "weather,location=us-midwest temperature=82,humidity=71 1465839830100400200",
        "weather,location=us-midwest temperature=85,wind=12i 1465839830100400200",
    ]
    .into_iter()
    .enumerate()
    {
        let mut batch = Batch::new();
        parser.parse_into(line, i as u64 + 1, NOW, &mut batch).unwrap();
        engine.write(&batch).unwrap();
        engine.flush().unwrap();
    }
    let rows = scan_selected(&engine, SeriesSelector::default());
    assert_eq!(rows.len(), 1);
    let fields: Vec<(String, FieldValue)> = rows[0].fields.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
    assert_eq!(
        fields,
        vec![
            ("humidity".to_string(), float(71.0)),
            ("temperature".to_string(), float(85.0)),
            ("wind".to_string(), int(12)),
        ]
    );
}
