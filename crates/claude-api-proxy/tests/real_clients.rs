//! Real clients through the real proxy binary: the official Python `anthropic` SDK and the Claude
//! Code CLI, against fake-anthropic on loopback, checking both what the client saw and what the
//! proxy logged.
//!
//! The peers come from `scripts/test.sh` (`TEST_PYTHON`: a venv with `anthropic`; `CLAUDE_BIN`:
//! npm `@anthropic-ai/claude-code`); a missing one fails the test. Every client runs with a
//! cleared environment, a fresh random API key, and a timeout; every record is validated against
//! docs/log-format.schema.json by the shared harness in `common/`.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use test_peers::{PATH, required_env};
use tokio::process::Command;

const SDK_TIMEOUT: Duration = Duration::from_secs(60);
const CLAUDE_TIMEOUT: Duration = Duration::from_secs(120);

fn test_python() -> PathBuf {
    required_env("TEST_PYTHON", "a Python venv with the anthropic SDK")
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// fake-anthropic in-process, the proxy binary in front of it, and a fresh random key.
struct Rig {
    proxy: common::Proxy,
    base_url: String,
    key: String,
}

impl Rig {
    async fn start() -> Rig {
        let upstream = common::fake_upstream().await;
        let proxy = common::Proxy::start(&upstream).await;
        let key = format!("sk-ant-test-{:032x}", rand::random::<u128>());
        Rig {
            base_url: format!("http://{}", proxy.addr),
            proxy,
            key,
        }
    }

    fn dir(&self) -> &Path {
        self.proxy.dir.path()
    }

    /// Runs the SDK driver script in `mode`; returns what it printed as JSON.
    async fn sdk(&self, mode: &str) -> Value {
        let mut cmd = Command::new(test_python());
        cmd.arg(clients_dir().join("sdk.py"))
            .arg(mode)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", self.dir())
            .env("ANTHROPIC_BASE_URL", &self.base_url)
            .env("ANTHROPIC_API_KEY", &self.key);
        let stdout = run(cmd, SDK_TIMEOUT, "python sdk.py").await;
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("sdk.py {mode} printed no JSON ({e}): {stdout}"))
    }

    /// Runs `claude -p PROMPT --output-format json` with an isolated HOME and TMPDIR.
    async fn claude(&self, prompt: &str) -> Value {
        self.claude_with(prompt, "ANTHROPIC_API_KEY").await
    }

    /// Like [`Rig::claude`], passing the key in `key_var`: `ANTHROPIC_API_KEY` (sent as
    /// `x-api-key`) or `ANTHROPIC_AUTH_TOKEN` (sent as `authorization: Bearer`).
    async fn claude_with(&self, prompt: &str, key_var: &str) -> Value {
        self.claude_run(&["-p", prompt], key_var).await
    }

    /// `claude ARGS --output-format json --dangerously-skip-permissions`; HOME, TMPDIR and the
    /// working directory are the same for every run of one rig (so `-c` finds the last one).
    async fn claude_run(&self, args: &[&str], key_var: &str) -> Value {
        let home = self.dir().join("home");
        let tmp = self.dir().join("tmp");
        let work = self.dir().join("work");
        for d in [&home, &tmp, &work] {
            std::fs::create_dir_all(d).unwrap();
        }
        let mut cmd = Command::from(test_peers::claude_command(
            &work,
            &home,
            &tmp,
            &self.base_url,
        ));
        cmd.args(args)
            .args(["--output-format", "json"])
            .arg("--dangerously-skip-permissions")
            .env(key_var, &self.key)
            .env("DISABLE_TELEMETRY", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
        let stdout = run(cmd, CLAUDE_TIMEOUT, "claude -p").await;
        let out: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("claude printed no JSON result ({e}): {stdout}"));
        assert_eq!(out["is_error"], false, "claude reported an error: {out}");
        out
    }

    /// Waits until `done` holds for the records logged so far (each validated against the
    /// schema), then returns them all.
    async fn records_until(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + common::RECORD_TIMEOUT;
        loop {
            let records = common::validate_log(&self.proxy.log);
            if done(&records) {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} in the log within {:?}; records: {}\nproxy stderr:\n{}",
                common::RECORD_TIMEOUT,
                brief(&records),
                self.proxy.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The checks every test ends with: SIGTERM drains and exits 0, every record fits the
    /// schema, and the key is nowhere in the log or the proxy's output.
    async fn check_log(mut self) {
        let status = self.proxy.terminate().await;
        assert!(status.success(), "proxy exit after SIGTERM: {status}");
        common::validate_log(&self.proxy.log);
        let log = std::fs::read_to_string(&self.proxy.log).expect("read traffic log");
        assert!(
            !log.contains(&self.key),
            "the API key reached the traffic log"
        );
        let output = self.proxy.stdout() + &self.proxy.stderr();
        assert!(
            !output.contains(&self.key),
            "the API key reached the proxy's output:\n{output}"
        );
    }
}

/// Runs `cmd` to completion within `timeout` (killed otherwise); panics unless it succeeds.
async fn run(mut cmd: Command, timeout: Duration, what: &str) -> String {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {timeout:?}"))
        .unwrap_or_else(|e| panic!("wait for {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed with {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// One line per record (path, stream, status, outcome): failure messages stay readable even
/// though Claude Code's records hold 50-80 KB bodies.
/// A record cut to its first 1,500 characters, for failure messages.
fn short(r: &Value) -> String {
    r.to_string().chars().take(1500).collect()
}

fn brief(records: &[Value]) -> String {
    records
        .iter()
        .map(|r| {
            format!(
                "\n  {} {} stream={} status={} outcome={}",
                r["request"]["method"].as_str().unwrap_or("?"),
                r["request"]["path"].as_str().unwrap_or("?"),
                r["stream"],
                r["response"]["status"],
                r["outcome"]
            )
        })
        .collect()
}

fn messages_records(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["request"]["path"] == "/v1/messages")
        .collect()
}

/// The common shape of a logged `POST /v1/messages` that completed with 200.
fn assert_complete_messages_exchange(r: &Value) {
    assert_eq!(r["kind"], "claude_api_exchange", "{}", short(r));
    assert_eq!(r["request"]["method"], "POST");
    assert_eq!(r["request"]["path"], "/v1/messages");
    assert_eq!(r["outcome"], "complete", "{}", short(r));
    assert_eq!(r["response"]["status"], 200, "{}", short(r));
    // Claude Code sends `x-api-key`; this SDK version sends `authorization: Bearer`.
    let auth: Vec<&Value> = ["x-api-key", "authorization"]
        .iter()
        .map(|h| &r["request"]["headers"][h])
        .filter(|v| !v.is_null())
        .collect();
    assert!(!auth.is_empty(), "no auth header logged: {}", short(r));
    assert!(
        auth.iter().all(|v| *v == "[REDACTED]"),
        "auth not redacted: {auth:?}"
    );
    assert!(
        r["response"]["headers"]["request-id"].is_string(),
        "request-id header not logged: {}",
        short(r)
    );
    let id = r["id"].as_str().expect("id");
    assert_eq!(id.len(), 32, "id is 32 hex digits: {id}");
}

/// The text of the `system` prompt, whether a string or a list of text blocks.
fn system_text(body: &Value) -> String {
    match &body["system"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn message_text(message: &Value) -> String {
    message["content"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

fn tool_uses(message: &Value) -> Vec<&Value> {
    message["content"]
        .as_array()
        .map(|blocks| blocks.iter().filter(|b| b["type"] == "tool_use").collect())
        .unwrap_or_default()
}

/// The `tool_result` blocks of the last user message of a request body.
fn last_tool_results(body: &Value) -> Vec<&Value> {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_array())
        .map(|blocks| {
            blocks
                .iter()
                .filter(|b| b["type"] == "tool_result")
                .collect()
        })
        .unwrap_or_default()
}

/// A tool_result's content as text, whether a string or a list of text blocks.
fn tool_result_text(block: &Value) -> String {
    match &block["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// The official Python SDK.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_create_is_logged_with_system_prompt_response_and_redacted_key() {
    let rig = Rig::start().await;
    let out = rig.sdk("create").await;
    assert_eq!(
        out["text"],
        "Hello from fake-anthropic. You said: sdk create: hello proxy"
    );

    let records = rig.records_until("create record", |r| !r.is_empty()).await;
    assert_eq!(
        records.len(),
        1,
        "one exchange, one record: {}",
        brief(&records)
    );
    let r = &records[0];
    assert_complete_messages_exchange(r);
    assert_eq!(r["stream"], false);
    let body = &r["request"]["body"]["json"];
    assert!(
        system_text(body).contains("sys-7f3a"),
        "system prompt: {}",
        short(r)
    );
    assert_eq!(body["messages"][0]["content"], "sdk create: hello proxy");
    let message = &r["response"]["body"]["json"];
    assert_eq!(message["id"], out["id"]);
    assert_eq!(message_text(message), out["text"].as_str().unwrap());
    assert_eq!(r["model"], "claude-sonnet-4-6");
    assert_eq!(r["stop_reason"], "end_turn");
    assert_eq!(r["usage"]["input_tokens"], out["usage"]["input_tokens"]);
    assert_eq!(r["usage"]["output_tokens"], out["usage"]["output_tokens"]);
    rig.check_log().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_gets_the_gzip_response_it_accepts_and_the_log_holds_it_decoded() {
    let rig = Rig::start().await;
    let out = rig.sdk("gzip").await;
    let text = out["text"].as_str().unwrap();
    assert!(
        text.starts_with("Hello from fake-anthropic. You said: sdk gzip:"),
        "sdk text: {text}"
    );

    let records = rig.records_until("gzip record", |r| !r.is_empty()).await;
    assert_eq!(records.len(), 1, "{}", brief(&records));
    let r = &records[0];
    assert_complete_messages_exchange(r);
    let response = &r["response"];
    assert_eq!(
        response["headers"]["content-encoding"],
        "gzip",
        "{}",
        short(r)
    );
    assert_eq!(response["body"]["decoded_from"], "gzip", "{}", short(r));
    assert_eq!(message_text(&response["body"]["json"]), text);
    assert_eq!(response["body"]["json"]["id"], out["id"]);
    rig.check_log().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_count_tokens_is_logged_with_its_path_and_answer() {
    let rig = Rig::start().await;
    let out = rig.sdk("count_tokens").await;
    let counted = out["input_tokens"].as_u64().expect("input_tokens");
    assert!(counted > 0, "{out}");

    let records = rig
        .records_until("count_tokens record", |r| !r.is_empty())
        .await;
    assert_eq!(records.len(), 1, "{}", brief(&records));
    let r = &records[0];
    assert_eq!(r["request"]["path"], "/v1/messages/count_tokens");
    assert_eq!(r["outcome"], "complete");
    assert_eq!(r["response"]["status"], 200);
    let body = &r["request"]["body"]["json"];
    assert!(system_text(body).contains("sys-7f3a"), "{}", short(r));
    assert_eq!(body["tools"][0]["name"], "Bash", "{}", short(r));
    assert_eq!(r["response"]["body"]["json"]["input_tokens"], counted);
    rig.check_log().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_create_stream_is_logged_with_events_and_reassembled_message() {
    let rig = Rig::start().await;
    let out = rig.sdk("stream").await;
    let text = out["text"].as_str().unwrap();
    assert_eq!(
        text,
        "Hello from fake-anthropic. You said: sdk stream: hello proxy"
    );

    let records = rig.records_until("stream record", |r| !r.is_empty()).await;
    assert_eq!(records.len(), 1, "{}", brief(&records));
    let r = &records[0];
    assert_complete_messages_exchange(r);
    assert_eq!(r["stream"], true);
    assert!(system_text(&r["request"]["body"]["json"]).contains("sys-7f3a"));
    let sse = &r["response"]["sse"];
    // The SDK hides pings; every other event it saw is in the log, in order.
    let logged: Vec<&str> = sse["events"]
        .as_array()
        .expect("sse.events")
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .filter(|e| *e != "ping")
        .collect();
    let seen: Vec<&str> = out["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(logged, seen);
    assert_eq!(message_text(&sse["message"]), text);
    assert_eq!(sse["message"]["stop_reason"], "end_turn");
    assert_eq!(r["stop_reason"], "end_turn");
    assert!(
        r["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{}",
        short(r)
    );
    rig.check_log().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_stream_helper_tool_use_round_trip_is_logged() {
    let rig = Rig::start().await;
    let out = rig.sdk("stream_tool").await;
    assert_eq!(out["first_stop_reason"], "tool_use");
    assert_eq!(out["tool_use"]["name"], "Bash");
    assert_eq!(out["tool_use"]["input"]["command"], "echo sdk-tool-42");
    assert_eq!(out["text"], "Tool result received: sdk-tool-42\n");

    let records = rig.records_until("both turns", |r| r.len() >= 2).await;
    assert_eq!(records.len(), 2, "{}", brief(&records));
    let (first, second) = (&records[0], &records[1]);
    for r in [first, second] {
        assert_complete_messages_exchange(r);
        assert_eq!(r["stream"], true);
        let body = &r["request"]["body"]["json"];
        assert!(system_text(body).contains("sys-7f3a"));
        assert_eq!(
            body["tools"][0]["name"],
            "Bash",
            "tools logged: {}",
            short(r)
        );
        assert_eq!(
            body["tools"][0]["input_schema"]["required"][0],
            "command",
            "tool schema logged in full: {}",
            short(r)
        );
    }

    let message = &first["response"]["sse"]["message"];
    let uses = tool_uses(message);
    assert_eq!(uses.len(), 1, "{}", short(message));
    assert_eq!(uses[0]["id"], out["tool_use"]["id"]);
    // The input arrived as input_json_delta fragments; the log holds it parsed.
    assert_eq!(uses[0]["input"], out["tool_use"]["input"]);
    assert_eq!(first["stop_reason"], "tool_use");
    assert!(
        first["response"]["sse"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["data"]["delta"]["type"] == "input_json_delta"),
        "input_json_delta events logged"
    );

    let results = last_tool_results(&second["request"]["body"]["json"]);
    assert_eq!(results.len(), 1, "{}", short(second));
    assert_eq!(results[0]["tool_use_id"], out["tool_use"]["id"]);
    assert_eq!(tool_result_text(results[0]), "sdk-tool-42\n");
    assert_eq!(
        message_text(&second["response"]["sse"]["message"]),
        out["text"].as_str().unwrap()
    );
    rig.check_log().await;
}

// ---------------------------------------------------------------------------------------------
// The real Claude Code CLI.

/// Checks shared by both Claude Code tests; returns its `/v1/messages` records.
fn assert_claude_code_records<'a>(records: &'a [Value], out: &Value) -> Vec<&'a Value> {
    let session = out["session_id"]
        .as_str()
        .expect("claude printed session_id");
    let messages = messages_records(records);
    assert!(!messages.is_empty(), "{}", brief(records));
    for r in &messages {
        assert_eq!(
            r["request"]["headers"]["x-claude-code-session-id"],
            session,
            "Claude Code sends its session id header: {}",
            short(r)
        );
        assert_eq!(r["session_id"], session, "record session_id: {}", short(r));
    }
    messages
}

/// The main-loop request: the one with Claude Code's tools and its full system prompt.
fn assert_main_loop_request(r: &Value) {
    let body = &r["request"]["body"]["json"];
    let system = system_text(body);
    assert!(
        system.contains("Claude Code") && system.len() > 5_000,
        "the whole system prompt is logged ({} chars): {:.300}",
        system.len(),
        system
    );
    let tools: Vec<&str> = body["tools"]
        .as_array()
        .expect("tools logged")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tools.contains(&"Bash"), "tools: {tools:?}");
    assert_eq!(r["stream"], true, "Claude Code streams");
    assert!(
        r["request"]["body"]["size"].as_u64().unwrap() > 20_000,
        "Claude Code's first turn is tens of KB: {}",
        r["request"]["body"]["size"]
    );
}

fn request_mentions(r: &Value, needle: &str) -> bool {
    r["request"]["body"]["json"]["messages"]
        .to_string()
        .contains(needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_text_turn_is_logged_with_system_prompt_tools_and_session_id() {
    let rig = Rig::start().await;
    let prompt = "Say hello to the logger [cc-text-5d1e]";
    let out = rig.claude(prompt).await;
    let result = out["result"].as_str().expect("result");
    assert!(
        result.starts_with("Hello from fake-anthropic. You said:"),
        "claude result: {result}"
    );

    let records = rig
        .records_until("the prompt's exchange", |rs| {
            rs.iter().any(|r| {
                request_mentions(r, "cc-text-5d1e") && r["response"]["sse"]["message"].is_object()
            })
        })
        .await;
    let messages = assert_claude_code_records(&records, &out);
    let turn = messages
        .iter()
        .find(|r| {
            request_mentions(r, "cc-text-5d1e") && r["request"]["body"]["json"]["tools"].is_array()
        })
        .unwrap_or_else(|| panic!("no main-loop request with the prompt: {}", brief(&records)));
    assert_complete_messages_exchange(turn);
    assert_main_loop_request(turn);
    assert_eq!(
        message_text(&turn["response"]["sse"]["message"]).trim(),
        result.trim()
    );
    assert_eq!(turn["stop_reason"], "end_turn");
    rig.check_log().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_tool_use_turn_runs_the_command_and_logs_the_tool_result() {
    let rig = Rig::start().await;
    let out = rig.claude("Run it [[tool:Bash:echo marker-123]]").await;
    let result = out["result"].as_str().expect("result");
    assert!(
        result.contains("Tool result received: marker-123"),
        "claude result: {result}"
    );

    let records = rig
        .records_until("the tool_result exchange", |rs| {
            rs.iter().any(|r| {
                !last_tool_results(&r["request"]["body"]["json"]).is_empty()
                    && r["response"]["sse"]["message"].is_object()
            })
        })
        .await;
    let messages = assert_claude_code_records(&records, &out);

    let ask = messages
        .iter()
        .find(|r| !tool_uses(&r["response"]["sse"]["message"]).is_empty())
        .unwrap_or_else(|| panic!("no record with the tool_use: {}", brief(&records)));
    assert_complete_messages_exchange(ask);
    assert_main_loop_request(ask);
    let uses = tool_uses(&ask["response"]["sse"]["message"]);
    assert_eq!(uses[0]["name"], "Bash");
    assert_eq!(uses[0]["input"]["command"], "echo marker-123");
    assert_eq!(ask["stop_reason"], "tool_use");

    let answer = messages
        .iter()
        .find(|r| !last_tool_results(&r["request"]["body"]["json"]).is_empty())
        .unwrap_or_else(|| panic!("no request carrying the tool_result: {}", brief(&records)));
    assert_complete_messages_exchange(answer);
    let results = last_tool_results(&answer["request"]["body"]["json"]);
    assert_eq!(results[0]["tool_use_id"], uses[0]["id"]);
    // The command's output, not its text: Claude Code really ran it.
    assert_eq!(tool_result_text(results[0]).trim(), "marker-123");
    assert!(
        message_text(&answer["response"]["sse"]["message"])
            .starts_with("Tool result received: marker-123"),
        "{}",
        short(answer)
    );
    let started = |r: &Value| r["started_at"].as_str().unwrap().to_owned();
    assert!(
        started(answer) > started(ask),
        "the tool_result comes second"
    );
    rig.check_log().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_sub_agent_requests_are_marked_apart_from_the_main_conversation() {
    use otlp_shipper::encode::Encoder;
    let rig = Rig::start().await;
    // The fake asks for Claude Code's sub-agent tool; the agent runs with its own system
    // prompt and tools, then the main conversation gets its result.
    rig.claude("Delegate [[tool:Agent:list the config files cc-agent-7f3a]]")
        .await;
    let is_sub =
        |r: &Value| request_mentions(r, "cc-agent-7f3a") && !request_mentions(r, "[[tool:Agent:");
    let records = rig
        .records_until("the sub-agent's and the main's last exchange", |rs| {
            rs.iter().any(is_sub)
                && rs
                    .iter()
                    .any(|r| !last_tool_results(&r["request"]["body"]["json"]).is_empty())
        })
        .await;
    // The shipper's encoder, over the log in its order, as it runs in production.
    let text = std::fs::read_to_string(&rig.proxy.log).unwrap();
    let mut encoder = Encoder::new(200_000);
    let mut agent: std::collections::HashMap<String, String> = Default::default();
    for line in text.lines() {
        encoder.encode_line(line.as_bytes(), 0, &mut |e| {
            let get = |k: &str| {
                e.attributes.iter().find(|kv| kv.key == k).and_then(|kv| {
                    match kv.value.as_ref()?.value.as_ref()? {
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                            s,
                        ) => Some(s.clone()),
                        _ => None,
                    }
                })
            };
            if let (Some(id), Some(a)) = (get("claude.exchange.id"), get("claude.agent")) {
                agent.insert(id, a);
            }
        });
    }
    let of = |r: &Value| agent.get(r["id"].as_str().unwrap()).map(String::as_str);
    let subs: Vec<&Value> = records.iter().filter(|r| is_sub(r)).collect();
    assert!(
        !subs.is_empty(),
        "no sub-agent request: {}",
        brief(&records)
    );
    for r in &subs {
        assert_eq!(of(r), Some("subagent"), "{}", short(r));
    }
    let mains: Vec<&Value> = records
        .iter()
        .filter(|r| {
            request_mentions(r, "[[tool:Agent:") && r["request"]["body"]["json"]["tools"].is_array()
        })
        .collect();
    assert!(
        mains.len() >= 2,
        "the ask and the answer: {}",
        brief(&records)
    );
    for r in &mains {
        assert_eq!(of(r), Some("main"), "{}", short(r));
    }
    rig.check_log().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_bearer_token_and_retry_after_sse_error_are_both_logged() {
    let rig = Rig::start().await;
    // An `event: error` frame mid-stream makes Claude Code retry with `stream: false`.
    let out = rig
        .claude_with(
            "Retry me [[sse-error]] [cc-retry-9b2c]",
            "ANTHROPIC_AUTH_TOKEN",
        )
        .await;
    let result = out["result"].as_str().expect("result");
    assert!(
        result.starts_with("Hello from fake-anthropic. You said:"),
        "claude result: {result}"
    );

    let mentions = |r: &&Value| request_mentions(r, "cc-retry-9b2c");
    let records = rig
        .records_until("the stream and its retry", |rs| {
            rs.iter().filter(mentions).count() >= 2
        })
        .await;
    let messages = assert_claude_code_records(&records, &out);
    let turns: Vec<&Value> = messages.into_iter().filter(|r| mentions(r)).collect();
    assert_eq!(turns.len(), 2, "{}", brief(&records));
    for r in &turns {
        assert_eq!(
            r["request"]["headers"]["authorization"],
            "[REDACTED]",
            "{}",
            short(r)
        );
        assert!(
            r["request"]["headers"]["x-api-key"].is_null(),
            "{}",
            short(r)
        );
    }
    let (streamed, retried) = (turns[0], turns[1]);
    assert_eq!(streamed["stream"], true);
    let events = streamed["response"]["sse"]["events"]
        .as_array()
        .expect("events");
    let error = events
        .iter()
        .find(|e| e["event"] == "error")
        .unwrap_or_else(|| panic!("the error frame is logged: {}", short(streamed)));
    assert_eq!(error["data"]["type"], "error", "{}", short(error));
    assert_eq!(retried["stream"], false);
    assert_complete_messages_exchange(retried);
    assert_eq!(
        message_text(&retried["response"]["body"]["json"]).trim(),
        result.trim()
    );
    rig.check_log().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_continued_conversation_resends_the_first_turn_in_the_same_session() {
    let rig = Rig::start().await;
    let first = rig
        .claude_run(&["-p", "First turn [cc-turn-one-41]"], "ANTHROPIC_API_KEY")
        .await;
    let second = rig
        .claude_run(
            &["-c", "-p", "Second turn [cc-turn-two-42]"],
            "ANTHROPIC_API_KEY",
        )
        .await;
    assert_eq!(first["session_id"], second["session_id"], "-c continues");

    let main_loop = |r: &&Value| r["request"]["body"]["json"]["tools"].is_array();
    let records = rig
        .records_until("both turns", |rs| {
            rs.iter()
                .any(|r| request_mentions(r, "cc-turn-two-42") && main_loop(&r))
        })
        .await;
    let messages = assert_claude_code_records(&records, &second);
    let one = messages
        .iter()
        .find(|r| main_loop(r) && !request_mentions(r, "cc-turn-two-42"))
        .unwrap_or_else(|| panic!("no first turn: {}", brief(&records)));
    let two = messages
        .iter()
        .find(|r| main_loop(r) && request_mentions(r, "cc-turn-two-42"))
        .unwrap();
    assert!(request_mentions(one, "cc-turn-one-41"));
    // The whole conversation is re-sent: the second request holds the first turn too.
    assert!(request_mentions(two, "cc-turn-one-41"), "{}", short(two));
    let size = |r: &Value| r["request"]["body"]["size"].as_u64().unwrap();
    assert!(size(two) > size(one), "{} <= {}", size(two), size(one));
    for r in [one, two] {
        assert_complete_messages_exchange(r);
        assert_main_loop_request(r);
    }
    rig.check_log().await;
}
