//! Writes a synthetic traffic log shaped like Claude Code's (a big system prompt and tool list,
//! a history re-sent and growing every request, streamed responses with their SSE events), to
//! measure the viewer (docs/performance.md, "Session viewer").
//!
//! `cargo run --release -p viewer --example gen_log -- many OUT MEGABYTES`: sessions of 30
//! exchanges until the file reaches MEGABYTES.
//! `cargo run --release -p viewer --example gen_log -- big OUT`: one session of 200 exchanges
//! whose requests are all over 1 MB.

use serde_json::{Value, json};
use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: gen_log many OUT MEGABYTES | gen_log big OUT";
    let (mode, out) = (args.get(1).expect(usage), args.get(2).expect(usage));
    let mut file = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let system = "You are Claude Code, Anthropic's official CLI for Claude. ".repeat(400);
    let tools: Vec<Value> = (0..20)
        .map(|i| {
            json!({"name": format!("Tool{i}"), "description": "Does a thing. ".repeat(60),
                "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}})
        })
        .collect();
    let mut written = 0u64;
    let mut n = 0u64;
    match mode.as_str() {
        "many" => {
            let limit: u64 =
                args.get(3).expect(usage).parse::<u64>().expect("MEGABYTES") * 1_000_000;
            let mut s = 0;
            while written < limit {
                let session = format!("00000000-0000-4000-8000-{s:012}");
                let mut history = vec![
                    json!({"role": "user", "content": format!("Please fix the bug number {s}.")}),
                ];
                for turn in 0..30 {
                    if written >= limit {
                        break;
                    }
                    let line = record(&mut n, &session, &system, &tools, &history, 2_000);
                    written += line.len() as u64 + 1;
                    file.write_all(line.as_bytes())?;
                    file.write_all(b"\n")?;
                    grow(&mut history, turn, 8_000);
                }
                s += 1;
            }
        }
        "big" => {
            let session = "00000000-0000-4000-8000-b16b16b16b16";
            let mut history = vec![
                json!({"role": "user", "content": "Read the whole log file and summarise it."}),
                json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_big", "name": "Read", "input": {"file_path": "/var/log/big.log"}}]}),
                json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_big", "content": "a line of a big file that Claude Code read\n".repeat(24_000)}]}),
            ];
            for turn in 0..200 {
                let line = record(&mut n, session, &system, &tools, &history, 1_000);
                written += line.len() as u64 + 1;
                file.write_all(line.as_bytes())?;
                file.write_all(b"\n")?;
                grow(&mut history, turn, 1_500);
            }
        }
        _ => panic!("{usage}"),
    }
    file.flush()?;
    eprintln!("wrote {out}: {n} records, {written} bytes");
    Ok(())
}

/// The previous answer and a tool round trip of about `bytes` are appended to the history.
fn grow(history: &mut Vec<Value>, turn: usize, bytes: usize) {
    let id = format!("toolu_{turn:08}");
    history.push(json!({"role": "assistant", "content": [
        {"type": "text", "text": format!("Step {turn}: I will look at the code.")},
        {"type": "tool_use", "id": id, "name": "Bash", "input": {"command": format!("cat src/file{turn}.rs")}}]}));
    history.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": id, "content": "fn main() { println!(\"hello\"); }\n".repeat(bytes / 34)}]}));
}

fn record(
    n: &mut u64,
    session: &str,
    system: &str,
    tools: &[Value],
    history: &[Value],
    reply: usize,
) -> String {
    *n += 1;
    let text = "The answer is in the code. ".repeat(reply / 27);
    let mut events = vec![
        json!({"event": "message_start", "data": {"type": "message_start", "message": {"id": format!("msg_{n}"), "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [], "usage": {"input_tokens": 10, "output_tokens": 1}}}}),
        json!({"event": "content_block_start", "data": {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}}),
    ];
    for chunk in text.as_bytes().chunks(40) {
        events.push(json!({"event": "content_block_delta", "data": {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": String::from_utf8_lossy(chunk)}}}));
    }
    events.push(json!({"event": "message_stop", "data": {"type": "message_stop"}}));
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
        "system": [{"type": "text", "text": system}], "tools": tools, "messages": history,
        "metadata": {"user_id": format!("user_x_account__session_{session}")}});
    let size = body.to_string().len();
    json!({
        "v": 1, "kind": "claude_api_exchange", "id": format!("{n:032x}"),
        "started_at": format!("2026-12-03T10:{:02}:{:02}.000000000Z", (*n / 60) % 60, *n % 60),
        "ended_at": format!("2026-12-03T10:{:02}:{:02}.500000000Z", (*n / 60) % 60, *n % 60),
        "duration_ms": 500.0, "ttfb_ms": 120.0, "outcome": "complete", "session_id": session,
        "model": "claude-sonnet-4-5", "stream": true, "stop_reason": "end_turn",
        "usage": {"input_tokens": size / 4, "output_tokens": reply / 4, "cache_read_input_tokens": size / 5, "cache_creation_input_tokens": 100},
        "request": {"method": "POST", "path": "/v1/messages", "query": "beta=true",
            "headers": {"x-api-key": "[REDACTED]", "content-type": "application/json", "x-claude-code-session-id": session},
            "body": {"size": size, "json": body}},
        "response": {"status": 200, "headers": {"content-type": "text/event-stream"}, "body": {"size": text.len() * 3},
            "sse": {"events": events, "message": {"id": format!("msg_{n}"), "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": reply / 4}}}}
    })
    .to_string()
}
