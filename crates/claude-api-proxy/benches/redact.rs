//! Cost of the body secret scan per MB, on the writer thread: `cargo bench -p
//! claude-api-proxy --bench redact`. Prints the time to scan a 1 MiB Claude Code-like request
//! body (JSON: prose, code and shell output) with no secret, with a secret every ~10 KB, and
//! with no secret but the `\u001b` escapes of coloured terminal output every ~1 KB (the text
//! then holds `\uXXXX` escapes, which the scan decodes before matching).

use claude_api_proxy::redact::Redactor;
use std::time::Instant;

const CHUNK: &str = "Here is the output of `cargo test`:\\n\\nrunning 12 tests\\ntest config::tests::sizes ... ok\\nfn parse_size(value: &str) -> Option<usize> { let value = value.trim(); value.parse().ok() }\\nThe max_tokens setting is 32000; tokens = many. export PATH=/usr/bin:$PATH\\n";

fn body(every_40th: &str, every_4th: &str) -> String {
    let mut text = String::new();
    let mut n = 0;
    while text.len() < (1 << 20) - 200 {
        text.push_str(CHUNK);
        n += 1;
        if n % 4 == 0 {
            text.push_str(every_4th);
        }
        if n % 40 == 0 {
            text.push_str(every_40th);
        }
    }
    serde_json::json!({"model": "claude-opus-4-1", "messages": [{"role": "user", "content": text}]})
        .to_string()
        // serde_json writes `\\u001b` for the escaped backslash of the literal below; the body
        // as a client sends it holds the escape itself.
        .replace("\\\\u001b", "\\u001b")
}

fn main() {
    let redactor = Redactor::default();
    let secrets = "AWS_ACCESS_KEY_ID=AKIAZ7QWERTYUIOP2345\\nkey sk-ant-api03-Zr8kQ2vN5xW1yT7uP3sL9mB4cD6fG0hJ\\n";
    let colours = "\\u001b[32mtest result: ok\\u001b[0m. 12 passed; 0 failed\\n";
    for (name, text) in [
        ("no secret", body("", "")),
        ("a secret per ~10 KB", body(secrets, "")),
        ("no secret, \\u escapes per ~1 KB", body("", colours)),
    ] {
        let mb = text.len() as f64 / (1 << 20) as f64;
        // Warm up, then the best of 20 runs (the machine may be shared).
        let _ = redactor.json(text.clone());
        let mut best = f64::MAX;
        for _ in 0..20 {
            let input = text.clone();
            let start = Instant::now();
            let out = redactor.json(input);
            best = best.min(start.elapsed().as_secs_f64());
            std::hint::black_box(out);
        }
        println!(
            "{name}: {:.2} ms per MiB ({:.0} MiB/s)",
            best * 1000.0 / mb,
            mb / best
        );
    }
}
