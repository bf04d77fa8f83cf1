//! The binary's contract: `--listen 127.0.0.1:0` prints exactly `listening on IP:PORT`, then
//! serves the fake API there.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn request(addr: &str, raw: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

#[test]
fn prints_its_address_then_serves_health_messages_count_tokens_and_404() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-anthropic"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _child = Killed(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    let health = request(
        &addr,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let body =
        r#"{"model":"claude-any","max_tokens":10,"messages":[{"role":"user","content":"ping"}]}"#;
    let reply = request(
        &addr,
        &format!(
            "POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("request-id: req_"), "{reply}");
    assert!(reply.contains("Hello from fake-anthropic. You said: ping"));
    assert!(reply.contains(&format!("\"input_tokens\":{}", body.len() / 4)));

    let count = request(
        &addr,
        &format!(
            "POST /v1/messages/count_tokens HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(
        count.contains(&format!("{{\"input_tokens\":{}}}", body.len() / 4)),
        "{count}"
    );

    let missing = request(
        &addr,
        "GET /v1/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(
        missing.contains("\"type\":\"not_found_error\""),
        "{missing}"
    );
}
