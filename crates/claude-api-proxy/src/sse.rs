//! Server-sent events of a streamed response: parsed with eventsource-stream, and the
//! Anthropic message rebuilt from them (text, thinking + signature, tool_use with its input
//! parsed from the `input_json_delta` pieces, stop reason, usage).

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// One parsed event: its name (`message` when the stream gave none) and its data.
#[derive(Debug)]
pub struct Event {
    pub event: String,
    pub data: String,
}

/// Parses a complete (or cut) SSE body into events.
pub fn parse(body: &[u8]) -> Vec<Event> {
    let source = futures_util::stream::iter(std::iter::once(Ok::<_, std::io::Error>(
        Bytes::copy_from_slice(body),
    )));
    let events = source.eventsource();
    drain_ready(events)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| Event {
            event: if e.event.is_empty() {
                "message".to_string()
            } else {
                e.event
            },
            data: e.data,
        })
        .collect()
}

/// Parses a body kept as the chunks it arrived in; each event comes with the index of the
/// chunk that completed it (so its arrival time is that chunk's).
pub fn parse_chunks(chunks: &[Bytes]) -> Vec<(Event, usize)> {
    use std::cell::Cell;
    // The parser pulls a chunk only when its buffer holds no complete event, so the last
    // chunk pulled when an event comes out is the one that completed it.
    let pulled = Cell::new(0usize);
    let source = futures_util::stream::iter(chunks.iter().enumerate().map(|(i, c)| {
        pulled.set(i);
        Ok::<_, std::io::Error>(c.clone())
    }));
    let mut events = pin!(source.eventsource());
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    while let Poll::Ready(Some(item)) = events.poll_next_unpin(&mut cx) {
        if let Ok(e) = item {
            let event = Event {
                event: if e.event.is_empty() {
                    "message".to_string()
                } else {
                    e.event
                },
                data: e.data,
            };
            out.push((event, pulled.get()));
        }
    }
    out
}

/// Collects a stream whose items are all immediately ready (an in-memory source).
fn drain_ready<S: Stream>(stream: S) -> Vec<S::Item> {
    let mut stream = pin!(stream);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    while let Poll::Ready(Some(item)) = stream.poll_next_unpin(&mut cx) {
        out.push(item);
    }
    out
}

/// The message rebuilt from the events, plus the message of an `error` event if one came.
#[derive(Debug, Default)]
pub struct Reassembled {
    pub message: Option<Value>,
    pub error: Option<String>,
}

/// Rebuilds the Anthropic message the way the SDKs do.
pub fn reassemble(events: &[Event]) -> Reassembled {
    let mut message: Option<Map<String, Value>> = None;
    let mut blocks: BTreeMap<u64, Map<String, Value>> = BTreeMap::new();
    let mut partial_json: BTreeMap<u64, String> = BTreeMap::new();
    let mut error = None;
    for e in events {
        let Ok(Value::Object(data)) = serde_json::from_str::<Value>(&e.data) else {
            continue;
        };
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(&e.event)
            .to_string();
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind.as_str() {
            "message_start" => {
                if let Some(Value::Object(m)) = data.get("message") {
                    message = Some(m.clone());
                }
            }
            "content_block_start" => {
                if let Some(Value::Object(b)) = data.get("content_block") {
                    blocks.insert(index, b.clone());
                }
            }
            "content_block_delta" => {
                let Some(delta) = data.get("delta") else {
                    continue;
                };
                let block = blocks.entry(index).or_default();
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => append(block, "text", delta.get("text")),
                    Some("thinking_delta") => append(block, "thinking", delta.get("thinking")),
                    Some("signature_delta") => append(block, "signature", delta.get("signature")),
                    Some("input_json_delta") => {
                        if let Some(p) = delta.get("partial_json").and_then(Value::as_str) {
                            partial_json.entry(index).or_default().push_str(p);
                        }
                    }
                    Some("citations_delta") => {
                        if let Some(c) = delta.get("citation") {
                            let list = block
                                .entry("citations")
                                .or_insert_with(|| Value::Array(Vec::new()));
                            if let Value::Array(list) = list {
                                list.push(c.clone());
                            }
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => finish_input(&mut blocks, &mut partial_json, index),
            "message_delta" => {
                let m = message.get_or_insert_with(Map::new);
                if let Some(Value::Object(delta)) = data.get("delta") {
                    for (k, v) in delta {
                        m.insert(k.clone(), v.clone());
                    }
                }
                if let Some(Value::Object(usage)) = data.get("usage") {
                    let target = m
                        .entry("usage")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(target) = target {
                        for (k, v) in usage {
                            if !v.is_null() {
                                target.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
            }
            "error" => {
                let text = data
                    .get("error")
                    .map(|err| {
                        let kind = err.get("type").and_then(Value::as_str).unwrap_or("error");
                        let msg = err.get("message").and_then(Value::as_str).unwrap_or("");
                        format!("{kind}: {msg}")
                    })
                    .unwrap_or_else(|| "error event".to_string());
                error = Some(text);
                if let Some(m) = &mut message {
                    m.insert(
                        "error".to_string(),
                        data.get("error").cloned().unwrap_or(Value::Null),
                    );
                }
            }
            _ => {}
        }
    }
    // A cut stream never sent its content_block_stop: keep what arrived.
    let open: Vec<u64> = partial_json.keys().copied().collect();
    for index in open {
        finish_input(&mut blocks, &mut partial_json, index);
    }
    if let Some(m) = &mut message {
        let content: Vec<Value> = blocks.into_values().map(Value::Object).collect();
        if !content.is_empty() || !m.contains_key("content") {
            m.insert("content".to_string(), Value::Array(content));
        }
    }
    Reassembled {
        message: message.map(Value::Object),
        error,
    }
}

fn append(block: &mut Map<String, Value>, field: &str, piece: Option<&Value>) {
    let Some(piece) = piece.and_then(Value::as_str) else {
        return;
    };
    match block.get_mut(field) {
        Some(Value::String(s)) => s.push_str(piece),
        _ => {
            block.insert(field.to_string(), Value::String(piece.to_string()));
        }
    }
}

/// Parses the accumulated `input_json_delta` pieces of a tool_use block into its `input`.
fn finish_input(
    blocks: &mut BTreeMap<u64, Map<String, Value>>,
    partial_json: &mut BTreeMap<u64, String>,
    index: u64,
) {
    let Some(json) = partial_json.remove(&index) else {
        return;
    };
    let block = blocks.entry(index).or_default();
    if json.trim().is_empty() {
        block
            .entry("input")
            .or_insert_with(|| Value::Object(Map::new()));
        return;
    }
    match serde_json::from_str::<Value>(&json) {
        Ok(input) => {
            block.insert("input".to_string(), input);
        }
        Err(_) => {
            // Cut mid-stream: keep the raw text so nothing is lost.
            block.insert("input_partial_json".to_string(), Value::String(json));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\":\"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hm\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"sig\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"Bash\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"command\\\": \"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"ls\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    #[test]
    fn rebuilds_thinking_and_tool_use_with_parsed_input() {
        let events = parse(STREAM.as_bytes());
        assert_eq!(events.len(), 12);
        assert_eq!(events[2].event, "ping");
        let r = reassemble(&events);
        let m = r.message.unwrap();
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(m["usage"]["input_tokens"], 10);
        assert_eq!(m["usage"]["output_tokens"], 42);
        assert_eq!(m["content"][0]["thinking"], "hm");
        assert_eq!(m["content"][0]["signature"], "sig");
        assert_eq!(m["content"][1]["input"]["command"], "ls");
        assert!(r.error.is_none());
    }

    #[test]
    fn a_cut_stream_keeps_what_arrived() {
        let cut = &STREAM[..STREAM
            .find("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1")
            .unwrap()];
        let m = reassemble(&parse(cut.as_bytes())).message.unwrap();
        assert_eq!(m["content"][1]["input"]["command"], "ls");
        assert!(m["stop_reason"].is_null());
    }

    #[test]
    fn each_event_is_matched_with_the_chunk_that_completed_it() {
        let chunks: Vec<Bytes> = [
            "event: a\ndata: 1\n\nevent: b\nda",
            "ta: 2\n",
            "\n",
            ": comment\n\nevent: c\ndata: 3\n\nevent: d\ndata: 4\n\n",
        ]
        .iter()
        .map(|s| Bytes::from_static(s.as_bytes()))
        .collect();
        let got: Vec<(String, usize)> = parse_chunks(&chunks)
            .into_iter()
            .map(|(e, i)| (e.event, i))
            .collect();
        assert_eq!(
            got,
            [
                ("a".into(), 0),
                ("b".into(), 2),
                ("c".into(), 3),
                ("d".into(), 3)
            ]
        );
    }
}
