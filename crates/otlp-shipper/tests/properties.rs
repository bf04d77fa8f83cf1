//! Property tests over arbitrary input (proptest; 256 cases each by default, more with
//! `PROPTEST_CASES`, see docs/development.md): the Fluent Bit config parser and the line
//! encoder never panic, and the encoder's split parts always reassemble to the exact input,
//! whatever the shape of a request body.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use otlp_shipper::config::fluent_bit::{expand_vars, parse_fluent_bit};
use otlp_shipper::encode::{Encoder, escaped_len, split_parts};
use proptest::prelude::*;
use std::path::Path;

fn attr<'a>(r: &'a LogRecord, key: &str) -> Option<&'a Value> {
    r.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn attr_str<'a>(r: &'a LogRecord, key: &str) -> Option<&'a str> {
    match attr(r, key) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn attr_int(r: &LogRecord, key: &str) -> Option<i64> {
    match attr(r, key) {
        Some(Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

fn body(r: &LogRecord) -> &str {
    match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Value::StringValue(s)) => s,
        _ => panic!("a string body"),
    }
}

/// The events of one line.
fn encode(line: &[u8], event_max_bytes: usize) -> Vec<LogRecord> {
    let mut encoder = Encoder::new(event_max_bytes);
    let mut events = Vec::new();
    encoder.encode_line(line, 1, &mut |r| events.push(r.clone()));
    events
}

/// The body `name` rebuilt from the events: inline on the main event, or its ordered parts.
fn reassembled(events: &[LogRecord], name: &str) -> String {
    if let Some(inline) = attr_str(&events[0], &format!("claude.{name}")) {
        return inline.to_string();
    }
    let mut parts: Vec<(i64, &str)> = events[1..]
        .iter()
        .filter(|e| attr_str(e, "claude.body.name") == Some(name))
        .map(|e| (attr_int(e, "claude.body.part").unwrap(), body(e)))
        .collect();
    parts.sort_by_key(|p| p.0);
    let declared = attr_int(&events[0], &format!("claude.{name}.parts"))
        .expect("a body is inline or declares its parts");
    assert_eq!(parts.len() as i64, declared);
    parts.iter().map(|p| p.1).collect()
}

/// Arbitrary JSON, with the keys a request body is split by (`json`, `messages`) among
/// keys that need escapes.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as J;
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::from),
        any::<i64>().prop_map(J::from),
        "\\PC{0,20}".prop_map(J::from),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        let key = prop_oneof![
            Just("json".to_string()),
            Just("messages".to_string()),
            Just("size".to_string()),
            "\\PC{0,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(J::Array),
            proptest::collection::vec((key, inner), 0..6)
                .prop_map(|members| J::Object(members.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn the_fluent_bit_parser_never_panics(text in "(\\PC|\n|\\[|\\]|@SET |\\$\\{|\\}|=| ){0,400}") {
        let env = |name: &str| (name == "HOME").then(|| "/root".to_string());
        let _ = parse_fluent_bit(&text, Path::new("fluent-bit.conf"), &env);
        let _ = expand_vars(&text, &env);
    }

    #[test]
    fn the_encoder_never_panics_on_arbitrary_bytes(line in proptest::collection::vec(any::<u8>(), 0..4000)) {
        let events = encode(&line, 8192);
        prop_assert!(!events.is_empty());
    }

    #[test]
    fn split_parts_concatenate_to_the_input_and_fit_the_budget(s in "\\PC{0,3000}", budget in 12usize..400) {
        let parts = split_parts(&s, budget);
        prop_assert_eq!(parts.concat(), s.clone());
        for p in &parts {
            prop_assert!(escaped_len(p) <= budget || p.chars().count() == 1);
        }
    }

    #[test]
    fn a_long_plain_line_reassembles_exactly(text in "\\PC{0,12000}") {
        // A line that is not a record: one event, or parts 1..=n only.
        let events = encode(text.as_bytes(), 8192);
        let rebuilt = if events.len() == 1 {
            body(&events[0]).to_string()
        } else {
            let mut parts: Vec<(i64, &str)> = events
                .iter()
                .map(|e| (attr_int(e, "claude.body.part").unwrap(), body(e)))
                .collect();
            parts.sort_by_key(|p| p.0);
            parts.iter().map(|p| p.1).collect()
        };
        prop_assert!(rebuilt == text, "rebuilt {} bytes of {}", rebuilt.len(), text.len());
    }

    #[test]
    fn record_bodies_split_into_parts_reassemble_to_the_exact_json(
        request in "\\PC{0,10000}",
        response in proptest::collection::vec(any::<u8>(), 0..12000),
    ) {
        let response = String::from_utf8_lossy(&response).into_owned();
        let line = serde_json::json!({
            "v": 1, "kind": "claude_api_exchange", "id": "0123456789abcdef0123456789abcdef",
            "started_at": "2026-12-03T10:00:00Z", "ended_at": "2026-12-03T10:00:01Z",
            "duration_ms": 1000.0, "outcome": "complete", "stream": false,
            "request": {"method": "POST", "path": "/v1/messages", "headers": {},
                        "body": {"size": request.len(), "text": request}},
            "response": {"status": 200, "headers": {},
                         "body": {"size": response.len(), "text": response}},
        })
        .to_string();
        let events = encode(line.as_bytes(), 8192);
        let record: serde_json::Value = serde_json::from_str(&line).unwrap();
        for (name, field) in [("request.body", &record["request"]["body"]), ("response.body", &record["response"]["body"])] {
            let raw = serde_json::to_string(field).unwrap();
            let rebuilt = reassembled(&events, name);
            prop_assert!(rebuilt == raw, "{}: rebuilt {} bytes of {}", name, rebuilt.len(), raw.len());
        }
    }

    #[test]
    fn a_request_body_of_any_shape_ships_as_its_exact_text(
        value in json_value(),
        wrapped in any::<bool>(),
        pretty in any::<bool>(),
        path in prop_oneof![Just("/v1/messages"), Just("/v1/other")],
    ) {
        let value = if wrapped { serde_json::json!({"size": 1, "json": value}) } else { value };
        let body = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            serde_json::to_string(&value).unwrap()
        };
        let line = format!(
            r#"{{"v":1,"kind":"claude_api_exchange","id":"0123456789abcdef0123456789abcdef","started_at":"2026-12-03T10:00:00Z","outcome":"complete","request":{{"method":"POST","path":"{path}","headers":{{}},"body":{body}}},"response":{{"status":200,"body":{{"size":0}}}}}}"#
        );
        // Delta (the default) ships a request whole when nothing in it was shipped before.
        let events = encode(line.as_bytes(), 200_000);
        prop_assert_eq!(attr_str(&events[0], "claude.exchange.id"), Some("0123456789abcdef0123456789abcdef"));
        prop_assert_eq!(reassembled(&events, "request.body"), body);
    }
}
