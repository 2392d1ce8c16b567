//! The CLI end to end: `candor up`, `candor audit verify` against tampering,
//! and the ingest bench at a small size.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn up_starts_server_and_local_agent_and_prints_login() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["up", "--config", "/nonexistent.toml", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--public-url", &format!("https://127.0.0.1:{port}"), "--data-dir"])
        .arg(tmp.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut console, mut password, mut fingerprint) = (None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("Console:") {
            console = rest.split_whitespace().next().map(str::to_string);
        }
        if let Some(rest) = line.trim().strip_prefix("Admin login: admin / ") {
            password = rest.split_whitespace().next().map(str::to_string);
        }
        if let Some(rest) = line.trim().strip_prefix("CA fingerprint (SHA-256): ") {
            fingerprint = Some(rest.to_string());
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let console = console.expect("console URL printed");
    assert_eq!(console, format!("https://127.0.0.1:{port}/"));
    let api =
        AdminApi::login(&format!("https://127.0.0.1:{port}"), &fingerprint.unwrap(), "admin", &password.unwrap()).await;
    let page = api.client.get(&console).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<title>Candor</title>"));
    wait_until(Duration::from_secs(15), "local agent online", async || {
        api.get("/api/v1/agents").await.as_array().is_some_and(|a| a.len() == 1 && a[0]["online"] == true)
    })
    .await;
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "up exits cleanly on SIGTERM");
}

#[tokio::test]
async fn audit_verify_detects_a_tampered_access_log() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(tmp.path(), "").await;
    let team = server.team().await;
    for _ in 0..3 {
        team.sec.get("/api/v1/events?limit=1").await;
    }
    team.sec.get("/api/v1/consents").await;
    let verify = |server: &Server| {
        Command::new(BIN).args(["audit", "verify", "--config"]).arg(server.config()).output().unwrap()
    };
    let out = verify(&server);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact: 4 entries"));
    server.kill9();
    // The API offers no way to edit the log and SQLite triggers refuse it; an
    // attacker with the database file drops the triggers first.
    let db = rusqlite::Connection::open(tmp.path().join("data/candor.db")).unwrap();
    assert!(db.execute("UPDATE access_log SET actor = 'nobody' WHERE id = 2", []).is_err());
    db.execute_batch("DROP TRIGGER access_log_no_update; UPDATE access_log SET actor = 'nobody' WHERE id = 2;")
        .unwrap();
    drop(db);
    let out = verify(&server);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("broken at entry 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ingest_bench_runs_and_prints_ratios() {
    let out = Command::new(BIN)
        .args(["bench", "ingest", "--agents", "2", "--events", "20000", "--batch", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ratio candor / bare SQLite"), "{text}");
}
