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

/// Old screen frames go with their blob files, except those a kept frame
/// still builds on (its key frame) and files another kept frame shares;
/// held employees keep everything.
#[tokio::test]
async fn screen_purge_deletes_frames_and_files_but_never_a_kept_frames_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "[retention]\nscreen_days = 1\n").await;
    let a = Agent::enroll(&server, "a", &fast_agent_toml(""));
    let b = Agent::enroll(&server, "b", &fast_agent_toml(""));
    let team = server.team().await;
    team.setup_collection(a.id, &["screen"], true).await;
    let held =
        team.sys.post("/api/v1/employees", json!({"name": "李四", "username": "lisi"})).await["id"].as_u64().unwrap();
    team.sys.put(&format!("/api/v1/agents/{}/assignment", b.id), json!({"employee_id": held})).await;
    team.consent(held, "screen", true).await;
    team.sys.put(&format!("/api/v1/employees/{held}/legal-hold"), json!({"reason": "调查"})).await;

    let now = candor_proto::now_ms();
    let old = now - 3 * 86_400_000;
    let opts = candor_screen::EncoderOptions { quality: 80, ..Default::default() };
    let mut e0 = candor_screen::Encoder::new(opts);
    let (k1, d2) = (screen_frame(&mut e0, 40, 0), screen_frame(&mut e0, 40, 64));
    e0.reset();
    let (k3, d4) = (screen_frame(&mut e0, 90, 0), screen_frame(&mut e0, 90, 128));
    // Display :1 has one old key frame with the same picture as k3: one shared file.
    let k5 = k3.clone();
    let events = || {
        vec![
            screen_event(1, old, ":0", &k1),
            screen_event(2, old + 10_000, ":0", &d2),
            screen_event(3, old + 3_600_000, ":0", &k3),
            screen_event(4, now - 3_600_000, ":0", &d4),
            screen_event(5, old, ":1", &k5),
        ]
    };
    for agent in [&a, &b] {
        let (status, ack) = agent.send(&server, events()).await;
        assert_eq!((status, ack["stored"].as_u64()), (200, Some(5)), "{ack}");
    }
    let file = |bytes: &[u8]| {
        let key = candor_proto::token::sha256_hex(bytes);
        tmp.path().join("data/blobs").join(&key[..2]).join(&key[2..4]).join(&key)
    };
    assert!([&k1, &d2, &k3, &d4].iter().all(|f| file(f).exists()));
    let rows = |agent: u64| -> Vec<i64> {
        let db = server.db();
        let mut st = db.prepare("SELECT seq FROM screen_frames WHERE agent_id = ?1 ORDER BY seq").unwrap();
        st.query_map([agent as i64], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };

    let purged = team.sys.post("/api/v1/retention/purge", json!({})).await;
    let screen = purged.as_array().unwrap().iter().find(|p| p["category"] == "screen").unwrap().clone();
    assert_eq!(screen["rollups"], 3, "three frame index rows: {purged}");
    assert_eq!(rows(a.id), vec![3, 4], "the key frame today's delta builds on stays");
    assert_eq!(rows(b.id), vec![1, 2, 3, 4, 5], "held: nothing purged");
    // Files: b (held) still references all of them, so nothing is deleted yet.
    assert!([&k1, &d2, &k3, &d4].iter().all(|f| file(f).exists()));
    let (s, _) = team
        .sec
        .call(reqwest::Method::GET, &format!("/api/v1/screen/image?agent={}&display=:0&at_ms={now}", a.id), None)
        .await;
    assert_eq!(s, 200, "today's frame still renders after the purge");

    // The hold ends: b's old frames go too, and now their files.
    team.sys.call(reqwest::Method::DELETE, &format!("/api/v1/employees/{held}/legal-hold"), None).await;
    team.sys.post("/api/v1/retention/purge", json!({})).await;
    assert_eq!(rows(b.id), vec![3, 4]);
    assert!(!file(&k1).exists() && !file(&d2).exists(), "files no frame references are deleted");
    assert!(file(&k3).exists() && file(&d4).exists(), "a file a kept frame uses stays (k5 shared k3's)");
    let queued: i64 = server.db().query_row("SELECT count(*) FROM blob_purge_queue", [], |r| r.get(0)).unwrap();
    assert_eq!(queued, 0, "the queue empties once the files are gone");
}
