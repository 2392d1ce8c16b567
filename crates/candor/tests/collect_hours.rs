//! Collection hours: with a policy window that excludes now, the agent
//! records nothing personal (system events still flow); once the window
//! includes now, collection resumes. A malformed window is refused.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn nothing_personal_outside_collection_hours() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "").await;
    let mut agent = Agent::enroll(&server, "agent", &fast_agent_toml(""));
    let team = server.team().await;
    team.setup_collection(agent.id, &["activity"], true).await;
    let policy = team.sec.get("/api/v1/policies").await[0]["id"].as_u64().unwrap();
    let (today, _) = candor_agent::host::local_time(candor_proto::now_ms());
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let other_days: Vec<&str> = days.iter().enumerate().filter(|(i, _)| *i as u32 != today).map(|(_, d)| *d).collect();
    let doc = |hours: serde_json::Value| json!({"doc": {"collect": {"activity": true}, "collect_hours": hours}});
    let (status, body) = team
        .sec
        .call(reqwest::Method::PUT, &format!("/api/v1/policies/{policy}"), Some(doc(json!({"from": "9am"}))))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("collect_hours"), "{body}");

    // A window on every other day (all day long): not now.
    team.sec
        .put(&format!("/api/v1/policies/{policy}"), doc(json!({"days": other_days, "from": "00:00", "to": "24:00"})))
        .await;
    agent.start(&["--synthetic-rate", "50"]);
    team.wait_applied(agent.id).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(server.synthetic_counts(agent.id).0, 0, "nothing personal outside the hours");
    let system: i64 = server
        .db()
        .query_row("SELECT count(*) FROM events WHERE agent_id = ?1 AND category = 8", [agent.id as i64], |r| r.get(0))
        .unwrap();
    assert!(system >= 1, "system events still flow");

    // Every day: collection resumes.
    team.sec
        .put(&format!("/api/v1/policies/{policy}"), doc(json!({"days": days, "from": "00:00", "to": "24:00"})))
        .await;
    wait_until(Duration::from_secs(20), "collection resumes", async || server.synthetic_counts(agent.id).0 > 20).await;
    let (stored, _, last_n) = server.synthetic_counts(agent.id);
    assert!(last_n >= stored + 50, "events made outside the hours were dropped, not delayed: {stored} of {last_n}");
    agent.stop();
}
