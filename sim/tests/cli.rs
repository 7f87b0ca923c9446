//! The binary: one listening line on stdout, requests served, clean exit on
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn binary_prints_url_serves_and_exits_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sync-sim"))
        .args(["--port", "0", "--key", "sk-cli-a", "--key", "sk-cli-b", "--pending-ms", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("sync-sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"));

    let c = reqwest::Client::new();
    let r = c.get(format!("{url}/v2/generations")).header("x-api-key", "sk-cli-b").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let st: serde_json::Value = c.get(format!("{url}/_sim/stats")).send().await.unwrap().json().await.unwrap();
    assert!(st["keys"]["sk-cli-a"].is_object());
    assert_eq!(st["keys"]["sk-cli-b"]["requests"]["other"], 1);

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("GET /v2/generations -> 200"), "{err}");
    assert!(!err.contains("sk-cli"), "keys are never logged");
}
