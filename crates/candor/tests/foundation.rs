//! Foundation, end to end with real processes on loopback: enrollment,
//! exactly-once delivery through crashes, spool bounds, bad input, consent
//! gating, revocation and presence.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn synthetic_events_arrive_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "").await;
    let mut agent = Agent::enroll(&server, "agent", &fast_agent_toml(""));
    let team = server.team().await;
    team.setup_collection(agent.id, &["activity"], true).await;
    const N: u64 = 5000;
    agent.start(&["--synthetic-rate", "5000", "--synthetic-total", &N.to_string()]);
    wait_until(Duration::from_secs(60), "all synthetic events stored", async || {
        server.synthetic_counts(agent.id).2 == N
    })
    .await;
    assert_eq!(server.synthetic_counts(agent.id), (N, N, N), "rows, distinct n, max n");
    // The admin API serves them, and the read is in the access log.
    let page = team.sec.get(&format!("/api/v1/events?agent={}&category=activity&limit=10", agent.id)).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 10);
    assert!(page["next_cursor"].is_string());
    let next = team
        .sec
        .get(&format!(
            "/api/v1/events?agent={}&category=activity&limit=10&cursor={}",
            agent.id,
            page["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert!(next["events"][0]["seq"].as_u64() > page["events"][9]["seq"].as_u64());
    let log = team.aud.get("/api/v1/access-log").await;
    assert!(log.as_array().unwrap().iter().any(|e| e["action"] == "events.query" && e["actor"] == "sec"));
    agent.stop();
    assert!(agent.log().contains("synthetic source finished"));
}

#[tokio::test]
async fn exactly_once_through_kill9_of_server_and_agent_and_an_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(tmp.path(), "").await;
    let mut agent = Agent::enroll(&server, "agent", &fast_agent_toml(""));
    let team = server.team().await;
    team.setup_collection(agent.id, &["activity"], true).await;
    const N: u64 = 30_000;
    let args = ["--synthetic-rate", "3000", "--synthetic-total", "30000"];
    agent.start(&args);
    team.wait_applied(agent.id).await;
    // Crash the server repeatedly while batches are in flight.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        server.kill9();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.restart().await;
    }
    // Crash the agent repeatedly while it writes to its spool.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        agent.kill9();
        agent.start(&args);
    }
    // A longer outage: the spool holds everything meanwhile.
    server.kill9();
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.restart().await;
    wait_until(Duration::from_secs(120), "all synthetic events stored", async || {
        server.synthetic_counts(agent.id).2 == N
    })
    .await;
    // Give in-flight retries a moment, then check exactly-once.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(server.synthetic_counts(agent.id), (N, N, N), "rows, distinct n, max n");
    // Every seq 1..=max is present exactly once (the primary key forbids duplicates).
    let (count, max): (i64, i64) = server
        .db()
        .query_row("SELECT count(*), max(seq) FROM events WHERE agent_id = ?1", [agent.id as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(count, max, "seqs are contiguous from 1");
    let starts: i64 = server
        .db()
        .query_row("SELECT count(*) FROM events WHERE json_extract(payload, '$.type') = 'agent_started'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(starts, 4, "each agent start is recorded once");
}

#[tokio::test]
async fn full_spool_drops_oldest_and_reports_the_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(tmp.path(), "").await;
    // About 200 synthetic events fit in 20 kB.
    let mut agent = Agent::enroll(&server, "agent", &fast_agent_toml("[spool]\nmax_bytes = 20000\n"));
    let team = server.team().await;
    team.setup_collection(agent.id, &["activity"], true).await;
    agent.start(&[]);
    team.wait_applied(agent.id).await;
    agent.stop();
    server.kill9();
    const N: u64 = 2000;
    agent.start(&["--synthetic-rate", "20000", "--synthetic-total", &N.to_string()]);
    let t = Instant::now();
    // The spool writer commits what the source handed over up to 100 ms later.
    while !(agent.log().contains("synthetic source finished")
        && agent.log().contains("spool dropped its oldest events"))
    {
        assert!(t.elapsed() < Duration::from_secs(30), "synthetic source did not finish with drops: {}", agent.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.restart().await;
    let db = server.db();
    wait_until(Duration::from_secs(30), "spool drained", async || {
        let max_n = server.synthetic_counts(agent.id).2;
        let acked: i64 =
            db.query_row("SELECT acked_seq FROM agents WHERE id = ?1", [agent.id as i64], |r| r.get(0)).unwrap();
        let max_seq: i64 = db
            .query_row("SELECT coalesce(max(seq), 0) FROM events WHERE agent_id = ?1", [agent.id as i64], |r| r.get(0))
            .unwrap();
        max_n == N && acked == max_seq
    })
    .await;
    let (stored, max_seq, dropped, reports): (i64, i64, i64, i64) = db
        .query_row(
            "SELECT count(*), max(seq),
                    coalesce(sum(CASE WHEN json_extract(payload, '$.type') = 'spool_dropped' THEN json_extract(payload, '$.count') END), 0),
                    count(CASE WHEN json_extract(payload, '$.type') = 'spool_dropped' THEN 1 END)
             FROM events WHERE agent_id = ?1",
            [agent.id as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert!(reports >= 1, "a spool_dropped event arrived");
    assert!(dropped > 1000, "most of {N} events could not fit: dropped {dropped}");
    assert_eq!(stored + dropped, max_seq, "every seq is stored or counted in a spool_dropped report");
    let (rows, distinct, _) = server.synthetic_counts(agent.id);
    assert_eq!(rows, distinct, "no duplicates");
    assert_eq!(server.synthetic_counts(agent.id).2, N, "the newest events survive");
}

#[tokio::test]
async fn consent_gates_collection_on_agent_and_server() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "").await;
    let mut agent = Agent::enroll(&server, "agent", &fast_agent_toml(""));
    let team = server.team().await;
    let emp = team.setup_collection(agent.id, &["activity"], false).await;
    agent.start(&["--synthetic-rate", "200"]);
    team.wait_applied(agent.id).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(server.synthetic_counts(agent.id).0, 0, "enabled by policy but no consent: nothing");

    team.consent(emp, "activity", true).await;
    let granted = Instant::now();
    wait_until(Duration::from_secs(10), "events after consent", async || server.synthetic_counts(agent.id).0 > 0).await;
    println!("first event {:?} after consent", granted.elapsed());

    team.consent(emp, "activity", false).await;
    let withdrawn = Instant::now();
    team.wait_applied(agent.id).await;
    println!("withdrawal applied by the agent after {:?}", withdrawn.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await; // in-flight batches settle
    let after = server.synthetic_counts(agent.id).0;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(server.synthetic_counts(agent.id).0, after, "collection stopped after withdrawal");
    assert!(withdrawn.elapsed() < Duration::from_secs(15));

    // Defense in depth: the server refuses a category that is not allowed.
    // (Events the agent spooled just before the withdrawal may have been
    // refused already; count from here.)
    let agent_path = format!("/api/v1/agents/{}", agent.id);
    let refused_before = team.sys.get(&agent_path).await["agent"]["refused_events"].as_u64().unwrap();
    let (_, ack) = agent.send(&server, vec![synthetic_event(1_000_000, candor_proto::Category::Web)]).await;
    assert_eq!(ack["refused"], 1);
    assert_eq!(ack["stored"], 0);
    let stored: i64 =
        server.db().query_row("SELECT count(*) FROM events WHERE seq = 1000000", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, 0);
    let refused = team.sys.get(&agent_path).await["agent"]["refused_events"].as_u64().unwrap();
    assert_eq!(refused, refused_before + 1, "refusals are counted");
}

#[tokio::test]
async fn presence_marks_offline_and_records_the_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "[presence]\noffline_after_secs = 2\n").await;
    let mut agent = Agent::enroll(&server, "agent", &fast_agent_toml(""));
    let team = server.team().await;
    agent.start(&[]);
    let path = format!("/api/v1/agents/{}", agent.id);
    wait_until(Duration::from_secs(10), "online", async || team.sys.get(&path).await["agent"]["online"] == true).await;
    let a = team.sys.get(&path).await;
    assert!(!a["agent"]["os"].as_str().unwrap().is_empty());
    assert_eq!(a["agent"]["agent_version"], env!("CARGO_PKG_VERSION"));
    agent.kill9();
    wait_until(Duration::from_secs(15), "offline", async || team.sys.get(&path).await["agent"]["online"] == false)
        .await;
    agent.start(&[]);
    wait_until(Duration::from_secs(10), "back online with a gap", async || {
        let v = team.sys.get(&path).await;
        v["agent"]["online"] == true && v["offline_gaps"].as_array().is_some_and(|g| g.len() == 1)
    })
    .await;
    let list = team.sys.get("/api/v1/agents").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let _ = json!(null);
}
