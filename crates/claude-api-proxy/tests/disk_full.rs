//! A traffic log on a volume that fills up: clients are unaffected, records lose their bodies
//! (marked `degraded: disk_full`, counted, reported once per burst) rather than disappear, and
//! full records come back on their own once space returns. The volume is a 2 MiB tmpfs mounted
//! by the test (it runs as root, like CI).

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("vol");
        std::fs::create_dir(&mount).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&mount)
            .output()
            .expect("run mount (util-linux)");
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs for the disk-full test (it needs root or CAP_SYS_ADMIN, \
             as scripts/test.sh runs in CI): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { _dir: dir, mount }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.mount.join(name)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mount)
            .status();
    }
}

fn lines(path: &Path) -> Vec<Value> {
    validate_log(path)
}

async fn post(proxy: &Proxy, n: usize, bytes: usize) {
    let text = format!("disk {n}: {}", "y".repeat(bytes));
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request(&text, n % 2 == 1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the client is unaffected");
    let body = response.text().await.unwrap();
    assert!(
        body.contains(&format!("disk {n}:")),
        "the whole answer came back"
    );
}

async fn wait_records(log: &Path, n: usize, proxy: &Proxy) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let records = lines(log);
        if records.len() >= n {
            return records;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} records; stderr: {}",
            records.len(),
            proxy.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_full_disk_degrades_records_without_touching_clients_and_recovers_when_space_returns() {
    let volume = Tmpfs::mount("2m");
    // Ballast that leaves ~1 MiB for the log; deleting it later is "space returns".
    std::fs::write(volume.path("ballast"), vec![0u8; 1 << 20]).unwrap();
    let log = volume.path("traffic.log");
    let log_arg = log.to_str().unwrap().to_string();
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut proxy = Proxy::start_with(
        &fake_upstream().await,
        &[
            "--log-file",
            &log_arg,
            "--rotate-size",
            "0",
            "--metrics-listen",
            &metrics,
        ],
        &[],
    )
    .await;

    // ~200 KB per record (the request and its echo): the volume fills after a few.
    let full = 20;
    for n in 0..full {
        post(&proxy, n, 100_000).await;
    }
    let records = wait_records(&log, full, &proxy).await;
    assert_eq!(records.len(), full, "one record per exchange, none lost");
    let degraded: Vec<&Value> = records
        .iter()
        .filter(|r| r.get("degraded").is_some())
        .collect();
    assert!(
        degraded.len() >= 4,
        "the disk filled: {} degraded",
        degraded.len()
    );
    for r in &degraded {
        assert_eq!(r["degraded"], "disk_full");
        assert_eq!(r["request"]["body"]["truncated"], true);
        assert!(r["request"]["body"]["size"].as_u64().unwrap() > 100_000);
        assert!(r["request"]["body"].get("json").is_none());
        assert_eq!(r["response"]["status"], 200);
    }
    assert!(
        records[0].get("degraded").is_none(),
        "the first fit in full"
    );
    // Counted where monitoring sees it (the counter moves just after the append).
    let want = format!("\nclaude_proxy_records_degraded_total {}\n", degraded.len());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let counters = client()
            .get(format!("http://{metrics}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if counters.contains(&want) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{counters}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stderr = proxy.stderr();
    assert_eq!(
        stderr
            .matches("traffic records are written without their bodies")
            .count(),
        1,
        "reported once for the burst: {stderr}"
    );

    // Space returns: the next record is written in full, and the burst is reported (once full
    // records have been written for a second: the writer's BURST_QUIET).
    std::fs::remove_file(volume.path("ballast")).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    post(&proxy, full, 100_000).await;
    let records = wait_records(&log, full + 1, &proxy).await;
    let last = records.last().unwrap();
    assert!(last.get("degraded").is_none(), "{last}");
    assert!(
        last["request"]["body"]["json"]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with(&format!("disk {full}:"))
    );
    // stderr goes through the proxy's diagnostics thread and a pipe: the line may lag.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !proxy
        .stderr()
        .contains("traffic records are written in full again")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the end of the burst is reported: {}",
            proxy.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let status = proxy.terminate().await;
    assert!(status.success());
    // The last stderr lines may still be on their way through the pipe.
    for _ in 0..100 {
        if proxy.stderr().contains("traffic log closed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stderr = proxy.stderr();
    let counts = format!(
        "written={} degraded={} lost=0",
        full + 1 - degraded.len(),
        degraded.len()
    );
    assert!(stderr.contains(&counts), "counted ({counts}): {stderr}");
}
