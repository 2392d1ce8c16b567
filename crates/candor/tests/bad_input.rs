//! Hostile and wrong input against a real server: malformed, truncated,
//! oversized and wrongly-versioned batches; bad, foreign and revoked
//! credentials; reused, expired and forged enrollment tokens.

mod common;

use candor_proto::batch::{self, Batch};
use candor_proto::{Category, Event, Payload};
use common::*;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

fn batch_for(agent_id: u64, n: u64) -> Vec<u8> {
    batch::encode(
        &Batch {
            agent_id,
            floor: 1,
            events: (1..=n)
                .map(|seq| Event {
                    seq,
                    ts_ms: 1_700_000_000_000,
                    duration_ms: None,
                    category: Category::System,
                    payload: Payload::AgentStarted { version: "x".into() }.to_json(),
                })
                .collect(),
        },
        1,
    )
}

fn events_stored(server: &Server) -> i64 {
    server.db().query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn bad_batches_get_4xx_and_store_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "[ingest]\nmax_batch_bytes = 65536\n").await;
    let agent = Agent::enroll(&server, "agent", "");
    let other = Agent::enroll(&server, "other", "");
    let team = server.team().await;
    let ingest = format!("{}/api/v1/ingest", server.url);
    let send = async |auth: &str, body: Vec<u8>| {
        let r = team.sys.client.post(&ingest).header("authorization", auth).body(body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    };
    let auth = agent.bearer();
    let good = batch_for(agent.id, 3);

    let (s, body) = send(&auth, b"garbage that is not a batch".to_vec()).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("bad magic"), "{body}");

    let (s, body) = send(&auth, good[..good.len() - 4].to_vec()).await;
    assert_eq!(s, 400, "truncated: {body}");

    let mut wrong_version = good.clone();
    wrong_version[4] = 77;
    let (s, body) = send(&auth, wrong_version).await;
    assert_eq!(s, 400);
    assert!(body.contains("unsupported batch version 77"), "{body}");

    // Past the 64 KiB limit (small enough that the client finishes writing
    // before the server answers, so the client can read the 413).
    let big: Vec<u8> = (0..66_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let (s, _) = send(&auth, big).await;
    assert_eq!(s, 413, "oversized");

    // A zstd bomb: small on the wire, huge decompressed.
    let mut bomb = batch::MAGIC.to_vec();
    bomb.extend_from_slice(&batch::VERSION.to_le_bytes());
    bomb.extend_from_slice(&zstd_bomb());
    let (s, body) = send(&auth, bomb).await;
    assert!(s == 413 || s == 400, "bomb: {s} {body}");

    let mut bad_payload = Batch { agent_id: agent.id, floor: 1, events: vec![] };
    bad_payload.events.push(Event {
        seq: 1,
        ts_ms: 0,
        duration_ms: None,
        category: Category::System,
        payload: b"{\"type\":\"no_such_type\"}".to_vec(),
    });
    let (s, body) = send(&auth, batch::encode(&bad_payload, 1)).await;
    assert_eq!(s, 400);
    assert!(body.contains("event 0"), "{body}");

    assert_eq!(events_stored(&server), 0, "nothing stored from bad batches");

    // Credentials: wrong secret, unknown agent, another agent's id.
    let (s, _) = send(&format!("Bearer {}.{}", agent.id, "0".repeat(64)), good.clone()).await;
    assert_eq!(s, 401);
    let (s, _) = send("Bearer 999.abc", good.clone()).await;
    assert_eq!(s, 401);
    let (s, _) = send("", good.clone()).await;
    assert_eq!(s, 401);
    let (s, body) = send(&other.bearer(), good.clone()).await;
    assert_eq!(s, 403, "agent cannot write under another agent's id: {body}");
    assert_eq!(events_stored(&server), 0);

    // The server keeps serving: the good batch goes in, and a resend dedupes.
    let (s, body) = send(&auth, good.clone()).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = send(&auth, good.clone()).await;
    assert_eq!(s, 200);
    let ack: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (ack["acked"].as_u64(), ack["stored"].as_u64(), ack["duplicates"].as_u64()),
        (Some(3), Some(0), Some(3))
    );
    assert_eq!(events_stored(&server), 3);

    // Admin API without a session.
    let r = team.sys.client.get(format!("{}/api/v1/agents", server.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (s, v) = team
        .sys
        .call(
            reqwest::Method::POST,
            "/api/v1/consents",
            Some(json!({"employee_id": 1, "category": "nope", "granted": true})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("unknown category"));
    let (s, _) = team
        .sys
        .call(
            reqwest::Method::POST,
            "/api/v1/policies",
            Some(json!({"name": "x", "doc": {"collect": {"keystrokes": true}}})),
        )
        .await;
    assert_eq!(s, 422, "unknown policy fields are refused");
}

/// A valid zstd frame of 100 MiB of zeros.
fn zstd_bomb() -> Vec<u8> {
    let zeros = vec![0u8; 100 << 20];
    zstd::stream::encode_all(&zeros[..], 19).unwrap()
}

#[tokio::test]
async fn tokens_are_single_use_expire_and_cannot_be_forged() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "").await;
    let enroll = |token: &str, dir: &str| {
        Command::new(BIN)
            .args(["agent", "enroll", token, "--state-dir"])
            .arg(server.dir.join(dir))
            .args(["--config", "/nonexistent"])
            .output()
            .unwrap()
    };
    let token = server.token(&["--department", "Sales"]);
    assert!(enroll(&token, "a1").status.success());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(server.dir.join("a1/credentials.json")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "credentials are private");
    let again = enroll(&token, "a2");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already used"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let short = server.token(&["--expires", "1s"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expired = enroll(&short, "a3");
    assert!(String::from_utf8_lossy(&expired.stderr).contains("expired"));

    let mut t = candor_proto::token::EnrollToken::decode(&server.token(&[])).unwrap();
    let real_secret = t.secret.clone();
    t.secret = "ab".repeat(32);
    let forged = enroll(&t.encode(), "a4");
    assert!(
        String::from_utf8_lossy(&forged.stderr).contains("not known"),
        "{}",
        String::from_utf8_lossy(&forged.stderr)
    );
    t.secret = real_secret;
    t.ca = "cd".repeat(32);
    let wrong_ca = enroll(&t.encode(), "a5");
    assert!(
        String::from_utf8_lossy(&wrong_ca.stderr).contains("does not match the fingerprint"),
        "{}",
        String::from_utf8_lossy(&wrong_ca.stderr)
    );
    let garbage = enroll("CANDOR1.x", "a6");
    assert!(String::from_utf8_lossy(&garbage.stderr).contains("damaged"));

    let team = server.team().await;
    let agents = team.sys.get("/api/v1/agents").await;
    assert_eq!(agents.as_array().unwrap().len(), 1, "only the first enrollment made an agent");
    let depts = team.sys.get("/api/v1/departments").await;
    assert_eq!(agents[0]["department_id"], depts[0]["id"], "token's department applied");
}

#[tokio::test]
async fn revoked_agent_stops_uploading_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "").await;
    let mut agent = Agent::enroll(&server, "agent", &fast_agent_toml(""));
    let team = server.team().await;
    team.setup_collection(agent.id, &["activity"], true).await;
    agent.start(&["--synthetic-rate", "100"]);
    wait_until(Duration::from_secs(15), "uploading", async || server.synthetic_counts(agent.id).0 > 0).await;
    team.sys.post(&format!("/api/v1/agents/{}/revoke", agent.id), json!({"reason": "laptop stolen"})).await;
    wait_until(Duration::from_secs(15), "agent exits", async || agent.exited().is_some()).await;
    assert_eq!(agent.exited(), Some(false));
    assert!(agent.log().contains("laptop stolen"), "the agent logs why");
    let stored = server.synthetic_counts(agent.id).0;
    let (s, _) = team.sys.call(reqwest::Method::GET, &format!("/api/v1/agents/{}", agent.id), None).await;
    assert_eq!(s, 200);
    // It refuses to run again until re-enrolled, and the server refuses it anyway.
    agent.kill9();
    agent.start(&[]);
    wait_until(Duration::from_secs(10), "agent refuses to start", async || agent.exited().is_some()).await;
    assert!(agent.log().contains("revoked"));
    let r = team
        .sys
        .client
        .post(format!("{}/api/v1/ingest", server.url))
        .header("authorization", agent.bearer())
        .body(batch_for(agent.id, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(server.synthetic_counts(agent.id).0, stored, "nothing more arrives");
}
