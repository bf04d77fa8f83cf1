//! Cost of the body secret scan per MB, on the writer thread: `cargo bench -p
//! claude-api-proxy --bench redact`. Prints the time to scan a 1 MiB Claude Code-like request
//! body (JSON: prose, code and shell output) with no secret, and with a secret every ~10 KB.

use claude_api_proxy::redact::Redactor;
use std::time::Instant;

fn body(with_secrets: bool) -> String {
    let chunk = "Here is the output of `cargo test`:\\n\\nrunning 12 tests\\ntest config::tests::sizes ... ok\\nfn parse_size(value: &str) -> Option<usize> { let value = value.trim(); value.parse().ok() }\\nThe max_tokens setting is 32000; tokens = many. export PATH=/usr/bin:$PATH\\n";
    let mut text = String::new();
    let mut n = 0;
    while text.len() < (1 << 20) - 200 {
        text.push_str(chunk);
        n += 1;
        if with_secrets && n % 40 == 0 {
            text.push_str("AWS_ACCESS_KEY_ID=AKIAZ7QWERTYUIOP2345\\nkey sk-ant-api03-Zr8kQ2vN5xW1yT7uP3sL9mB4cD6fG0hJ\\n");
        }
    }
    serde_json::json!({"model": "claude-opus-4-1", "messages": [{"role": "user", "content": text}]})
        .to_string()
}

fn main() {
    let redactor = Redactor::default();
    for (name, with) in [("no secret", false), ("a secret per ~10 KB", true)] {
        let text = body(with);
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
