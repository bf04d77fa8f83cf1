//! Measures the reader side alone (tail + encode + batch, no network): how many MB/s of JSONL
//! one core turns into OTLP request bytes. `cargo run --release -p otlp-shipper --example
//! encode_speed -- FILE`.

use otlp_shipper::encode::Encoder;
use otlp_shipper::sink::batch::Batch;
use otlp_shipper::source::tail::{Start, Tailer};
use std::time::{Duration, Instant};

fn main() {
    let path = std::env::args().nth(1).expect("usage: encode_speed FILE");
    let mut tailer = Tailer::new(path.as_ref(), Start::Head, Duration::ZERO).expect("open");
    let mut encoder = Encoder::new(otlp_shipper::config::DEFAULT_EVENT_MAX_BYTES);
    let mut batch = Batch::default();
    let (mut lines, mut bytes, mut out_bytes) = (0u64, 0u64, 0u64);
    let mut line = Vec::new();
    let start = Instant::now();
    while tailer.next_line(&mut line).expect("read").is_some() {
        lines += 1;
        bytes += line.len() as u64 + 1;
        encoder.encode_line(&line, 0, &mut |ev| batch.push(ev));
        if batch.bytes() > 4_000_000 {
            out_bytes += batch.bytes() as u64;
            batch = Batch::default();
        }
    }
    out_bytes += batch.bytes() as u64;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{lines} lines, {:.1} MB in {secs:.2} s: {:.1} MB/s, {:.0} lines/s, {:.1} MB of OTLP",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs,
        lines as f64 / secs,
        out_bytes as f64 / 1e6
    );
}
