//! Personal-device mode: an endpoint marked personal collects nothing but
//! system events, whatever its policy and consent say — on the agent (the
//! gate drops them) and at ingest (the server refuses them). The person at
//! the desktop sees it with `candor agent status`.

mod common;

use common::*;
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::time::Duration;

#[tokio::test]
async fn personal_devices_collect_only_system_events() {
    let tmp = tempfile::tempdir().unwrap();
    // Readable by a local user, as /etc/candor and /var/lib/candor-agent are.
    std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let server = Server::start(tmp.path(), "").await;
    let mut agent = Agent::enroll(&server, "agent", &fast_agent_toml(""));
    let team = server.team().await;
    team.setup_collection(agent.id, &["activity"], true).await;
    team.sys.put(&format!("/api/v1/agents/{}/assignment", agent.id), json!({"personal": true})).await;
    let eff = team.sec.get(&format!("/api/v1/agents/{}/effective-policy", agent.id)).await;
    assert_eq!(eff["current"]["personal"], true);
    assert_eq!(eff["current"]["allowed"], 1 << 8, "system only: {eff}");

    // The synthetic source (activity) waits for its category to be allowed.
    agent.start(&["--synthetic-rate", "1000", "--synthetic-total", "200"]);
    team.wait_applied(agent.id).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(server.synthetic_counts(agent.id).0, 0, "nothing personal stored");
    // The agent still reports itself (system events).
    let started: i64 = server
        .db()
        .query_row(
            "SELECT count(*) FROM events WHERE agent_id = ?1 AND json_extract(payload, '$.type') = 'agent_started'",
            [agent.id as i64],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(started, 1);
    // Even an agent that ignored the mode could not store anything personal.
    let (status, ack) = agent.send(&server, vec![synthetic_event(1_000_000, candor_proto::Category::Activity)]).await;
    assert_eq!((status, ack["refused"].as_u64()), (200, Some(1)), "{ack}");
    // The person at the desktop can see it, without root (the status file is world-readable).
    let status = |agent: &Agent| {
        let out = std::process::Command::new(BIN)
            .args(["agent", "status", "--config"])
            .arg(agent.config_path())
            .uid(1000)
            .gid(1000)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = status(&agent);
    println!("{shown}");
    assert!(shown.contains("personal device / 个人设备:    yes") && shown.contains("正在收集:         —"), "{shown}");
    // Back to a company device: collection resumes under the policy and consent.
    team.sys.put(&format!("/api/v1/agents/{}/assignment", agent.id), json!({"personal": false})).await;
    wait_until(Duration::from_secs(20), "collection resumes", async || server.synthetic_counts(agent.id).0 == 200)
        .await;
    wait_until(Duration::from_secs(10), "status shows collection", async || {
        status(&agent).contains("collecting / 正在收集:         activity")
    })
    .await;
    agent.stop();
    let log = team.aud.get("/api/v1/access-log").await;
    assert!(log.as_array().unwrap().iter().any(|e| e["action"] == "agent.personal"));
}
