//! The employee self-service portal over the real API: an employee account
//! sees its own day and consents, sees who viewed its data, downloads all
//! of it as a ZIP, and can reach nothing else.

mod common;

use common::*;
use serde_json::json;
use std::io::Read;

#[tokio::test]
async fn employee_sees_own_data_who_viewed_it_and_exports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "").await;
    let agent = Agent::enroll(&server, "a", &fast_agent_toml(""));
    let team = server.team().await;
    let emp = team.setup_collection(agent.id, &["activity"], true).await; // 张三, zhangsan
    let events: Vec<_> = (1..=3).map(|s| synthetic_event(s, candor_proto::Category::Activity)).collect();
    let (status, _) = agent.send(&server, events).await;
    assert_eq!(status, 200);

    // Accounts for employees must name a real employee.
    let (s, v) = team
        .sys
        .call(reqwest::Method::POST, "/api/v1/admins", Some(json!({"username": "nobody", "role": "employee"})))
        .await;
    assert_eq!(s, 400, "{v}");
    let created = team.sys.post("/api/v1/admins", json!({"username": "zhangsan", "role": "employee"})).await;
    let me =
        AdminApi::login(&server.url, &server.ca_fingerprint(), "zhangsan", created["password"].as_str().unwrap()).await;

    // An admin looks at the employee's day; the employee sees that.
    team.sec.get(&format!("/api/v1/employees/{emp}/timeline")).await;
    let day = me.get("/api/v1/portal/day").await;
    assert_eq!(day["employee"]["id"], emp);
    assert_eq!(day["events"].as_array().unwrap().len(), 3);
    assert!(day["consents"].as_array().unwrap().iter().any(|c| c["category"] == "activity"));
    let views = me.get("/api/v1/portal/views").await;
    let viewed: Vec<&str> = views.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(viewed.contains(&"timeline.view"), "{views}");
    assert!(views.as_array().unwrap().iter().all(|e| e["actor"] == "sec" || e["actor"] == "admin"), "{views}");

    // Nothing beyond their own data.
    for path in [
        "/api/v1/employees",
        "/api/v1/events",
        "/api/v1/agents",
        "/api/v1/access-log",
        "/api/v1/stats?from=2026-01-01&to=2026-01-02",
    ] {
        let (s, _) = me.call(reqwest::Method::GET, path, None).await;
        assert_eq!(s, 403, "{path}");
    }
    let (s, _) = team.sec.call(reqwest::Method::GET, "/api/v1/portal/day", None).await;
    assert_eq!(s, 403, "an admin account has no portal");

    // The export holds every event, the consents and the views.
    let r = me.client.get(format!("{}/api/v1/portal/export", server.url)).bearer_auth(me.token()).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/zip");
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut read = |name: &str| {
        let mut s = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut s).unwrap();
        s
    };
    let events: serde_json::Value = serde_json::from_str(&read("events.json")).unwrap();
    assert_eq!(events.as_array().unwrap().len(), 3);
    assert!(read("consents.json").contains("activity"));
    assert!(read("access.json").contains("timeline.view"));
    assert!(read("README.txt").contains("张三"));
}
