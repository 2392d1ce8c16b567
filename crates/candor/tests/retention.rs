//! Retention end to end: the purge deletes what is older than its
//! category's period (events and activity rollups), spares employees under
//! legal hold, logs its counts, and placing or releasing a hold is itself in
//! the access log.

mod common;

use common::*;
use serde_json::json;

fn span(seq: u64, ts_ms: i64) -> candor_proto::Event {
    candor_proto::Event {
        seq,
        ts_ms,
        duration_ms: Some(60_000),
        category: candor_proto::Category::Activity,
        payload: candor_proto::Payload::Activity {
            app: "wps".into(),
            exe: None,
            wm_class: None,
            title: None,
            title_hash: None,
            pid: None,
            pid_verified: false,
            state: "active".into(),
            user: None,
        }
        .to_json(),
    }
}

fn counts(server: &Server, agent: u64) -> (i64, i64) {
    let db = server.db();
    let events = db.query_row("SELECT count(*) FROM events WHERE agent_id = ?1", [agent as i64], |r| r.get(0)).unwrap();
    let days =
        db.query_row("SELECT count(*) FROM activity_daily WHERE agent_id = ?1", [agent as i64], |r| r.get(0)).unwrap();
    (events, days)
}

#[tokio::test]
async fn purge_respects_periods_and_legal_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "[retention]\nactivity_days = 1\nsystem_days = 0\n").await;
    let a = Agent::enroll(&server, "a", &fast_agent_toml(""));
    let b = Agent::enroll(&server, "b", &fast_agent_toml(""));
    let team = server.team().await;
    team.setup_collection(a.id, &["activity"], true).await;
    let held =
        team.sys.post("/api/v1/employees", json!({"name": "李四", "username": "lisi"})).await["id"].as_u64().unwrap();
    team.sys.put(&format!("/api/v1/agents/{}/assignment", b.id), json!({"employee_id": held})).await;
    team.consent(held, "activity", true).await;
    let now = candor_proto::now_ms();
    let old = now - 3 * 86_400_000;
    for agent in [&a, &b] {
        let (status, ack) = agent.send(&server, vec![span(1, old), span(2, now - 3_600_000)]).await;
        assert_eq!((status, ack["stored"].as_u64()), (200, Some(2)), "{ack}");
    }
    assert_eq!(counts(&server, a.id), (2, 2));

    // Holds need a reason, a known employee and the right role.
    let hold = format!("/api/v1/employees/{held}/legal-hold");
    let (s, _) = team.sys.call(reqwest::Method::PUT, &hold, Some(json!({"reason": " "}))).await;
    assert_eq!(s, 400);
    let (s, _) =
        team.sys.call(reqwest::Method::PUT, "/api/v1/employees/999/legal-hold", Some(json!({"reason": "x"}))).await;
    assert_eq!(s, 404);
    let (s, _) = team.aud.call(reqwest::Method::PUT, &hold, Some(json!({"reason": "x"}))).await;
    assert_eq!(s, 403);
    team.sys.put(&hold, json!({"reason": "劳动仲裁 2026-118"})).await;

    let purged = team.sys.post("/api/v1/retention/purge", json!({})).await;
    let activity = purged.as_array().unwrap().iter().find(|p| p["category"] == "activity").unwrap().clone();
    assert_eq!((activity["events"].as_u64(), activity["held_endpoints"].as_u64()), (Some(1), Some(1)), "{purged}");
    assert!(purged.as_array().unwrap().iter().all(|p| p["category"] != "system"), "0 days: kept");
    assert_eq!(counts(&server, a.id), (1, 1), "the old span and its day are gone; today's stay");
    assert_eq!(counts(&server, b.id), (2, 2), "held: nothing purged");

    let overview = team.aud.get("/api/v1/retention").await;
    assert_eq!(overview["periods"]["activity_days"], 1);
    assert_eq!(overview["holds"][0]["employee_id"], held);
    assert_eq!(overview["purges"][0]["events"], 1, "logged with its counts");
    let log = team.aud.get("/api/v1/access-log").await;
    assert!(log.as_array().unwrap().iter().any(|e| e["action"] == "legal_hold.place"));

    // Released: the next purge catches up.
    let (s, _) = team.sys.call(reqwest::Method::DELETE, &hold, None).await;
    assert_eq!(s, 204);
    team.sys.post("/api/v1/retention/purge", json!({})).await;
    assert_eq!(counts(&server, b.id), (1, 1));
    let log = team.aud.get("/api/v1/access-log").await;
    assert!(log.as_array().unwrap().iter().any(|e| e["action"] == "legal_hold.release"));
}
