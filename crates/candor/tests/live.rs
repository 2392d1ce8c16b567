//! Live view and the screen wall on real X11 (Xvfb, openbox, xterm), with
//! the real agent and server: WebSocket viewers receive pictures that match
//! a direct capture, within a latency bound; two viewers share one upstream;
//! the employee sees a notice on their desktop (a real session bus) while
//! anyone watches and it is withdrawn after; the wall sends thumbnails only
//! when the screen changed; every opening is in the access log; nothing can
//! be watched without screen consent, from another origin, or with the
//! notice off unless a policy says why.

mod common;

use candor_screen::ssim::ssim;
use common::desktop::{icon_property, icon_tooltip, notifications, status_icons};
use common::display::*;
use common::ws::{connect, next_picture, next_text};
use common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test]
async fn live_view_and_wall_with_the_employee_told() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let n = free_display();
    let mut x = Display::start_full(n, None, "1280x720x24");
    x.window("报表 — ledger");

    // The employee's login session on that display, with its desktop bus.
    let (mut daemon, bus, notes, desk) = notifications(tmp.path()).await;
    let watched_told = || notes.calls.lock().unwrap().iter().filter(|(t, _)| t.contains("正在被查看")).count();
    let mut leader =
        std::process::Command::new("sleep").arg("600").env("DBUS_SESSION_BUS_ADDRESS", &bus).spawn().unwrap();
    let sessions = tmp.path().join("sessions");
    std::fs::create_dir(&sessions).unwrap();
    std::fs::write(
        sessions.join("c1"),
        format!("UID=1000\nUSER=zhangsan\nACTIVE=1\nSTATE=active\nTYPE=x11\nDISPLAY=:{n}\nLEADER={}\n", leader.id()),
    )
    .unwrap();

    let server = Server::start(&tmp.path().join("server"), "").await;
    let mut agent = Agent::enroll(
        &server,
        "agent",
        &fast_agent_toml(&format!("[x11]\nsessions_dir = \"{}\"\n", sessions.display())),
    );
    let team = server.team().await;
    let emp = team.setup_collection(agent.id, &["activity"], true).await;
    agent.start(&[]);
    team.wait_applied(agent.id).await;
    let live_path = format!("/api/v1/screen/live/{}", agent.id);

    // Without screen consent nothing can be watched.
    assert_eq!(connect(&server, &live_path, team.sec.token(), None).await.err(), Some(409));
    let policy = team.sec.get("/api/v1/policies").await[0]["id"].as_u64().unwrap();
    let screen = |extra: serde_json::Value| {
        let mut s = json!({"interval_secs": 3600, "live_fps": 10});
        s.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"doc": {"collect": {"activity": true, "screen": true}, "screen": s}})
    };
    team.sec.put(&format!("/api/v1/policies/{policy}"), screen(json!({}))).await;
    assert_eq!(connect(&server, &live_path, team.sec.token(), None).await.err(), Some(409), "policy but no consent");
    team.consent(emp, "screen", true).await;
    team.wait_applied(agent.id).await;
    // Not from another site's page, and not for an auditor or a stranger.
    let evil = Some("https://evil.example");
    assert_eq!(connect(&server, &live_path, team.sec.token(), evil).await.err(), Some(403));
    assert_eq!(connect(&server, &live_path, team.aud.token(), None).await.err(), Some(403));
    assert_eq!(connect(&server, "/api/v1/screen/live/999", team.sec.token(), None).await.err(), Some(404));
    // Agents' pictures are checked too.
    let post = |body: Vec<u8>| {
        let client = candor_agent::net::pinned_client(&server.ca_fingerprint()).unwrap();
        let req = client
            .post(format!("{}/api/v1/agent/live?kind=view&display=:{n}", server.url))
            .header("authorization", agent.bearer())
            .body(body);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(b"not a jpeg".to_vec()).await, 400);
    assert_eq!(post(b"\xff\xd8\xff\xe0 nobody watches".to_vec()).await, 410);

    // One viewer: pictures within the latency bound, showing the screen.
    let origin = server.url.clone();
    let mut a = connect(&server, &live_path, team.sec.token(), Some(&origin)).await.unwrap();
    let opened = Instant::now();
    let first = tokio::time::timeout(Duration::from_secs(15), next_picture(&mut a)).await.unwrap().unwrap();
    println!("first live picture {:?} after opening", opened.elapsed());
    assert_eq!(first.head["agent"], agent.id);
    assert_eq!(first.head["display"], format!(":{n}"));
    wait_until(Duration::from_secs(10), "the employee is told", async || watched_told() == 1).await;
    // The status icon says so too, for as long as anyone watches.
    let icon = status_icons(&desk).await.pop().expect("a status icon");
    let status = async || icon_property::<String>(&desk, &icon, "Status").await;
    wait_until(Duration::from_secs(10), "the icon asking attention", async || status().await == "NeedsAttention").await;
    assert!(icon_tooltip(&desk, &icon).await.1.contains("Someone is watching your screen live now"));
    let shown = decode_jpeg(&first.jpeg);
    assert_eq!((shown.width, shown.height), (1280, 720));
    let q = ssim(&shown, &direct_capture(&x.name));
    println!("live picture vs direct capture: SSIM {q:.4}");
    assert!(q >= 0.9, "SSIM {q:.4}");
    let mut latencies = Vec::new();
    let t = Instant::now();
    let mut bytes = 0;
    while latencies.len() < 40 {
        let p = next_picture(&mut a).await.unwrap();
        latencies.push(candor_proto::now_ms() - p.head["captured_ms"].as_i64().unwrap());
        bytes += p.jpeg.len();
    }
    let fps = latencies.len() as f64 / t.elapsed().as_secs_f64();
    latencies.sort();
    let (p50, p95) = (percentile(&latencies, 0.5), percentile(&latencies, 0.95));
    println!(
        "live view 1280x720, debug build: {fps:.1} pictures/s, capture-to-viewer p50 {p50} ms p95 {p95} ms, {} KB/picture",
        bytes / latencies.len() / 1000
    );
    // The goals (10/s, 150 ms at 1080p) are measured by `candor bench live` in a
    // release build; here a debug build under test load must still stream.
    assert!(fps >= 2.0, "{fps:.1} pictures/s");
    assert!(p50 <= 1000, "p50 latency {p50} ms");

    // A second viewer shares the same upstream: both see the same pictures.
    let mut b = connect(&server, &live_path, team.sec.token(), None).await.unwrap();
    let from_b: Vec<i64> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(next_picture(&mut b).await.unwrap().head["captured_ms"].as_i64().unwrap());
        }
        v
    };
    let mut from_a = Vec::new();
    while from_a.last().is_none_or(|l| l < from_b.last().unwrap()) {
        from_a.push(next_picture(&mut a).await.unwrap().head["captured_ms"].as_i64().unwrap());
    }
    assert!(from_b.iter().all(|c| from_a.contains(c)), "one capture, fanned out: {from_a:?} vs {from_b:?}");
    assert_eq!(watched_told(), 1, "one notice however many watch");

    // The last viewer leaves: the stream stops and the notice is withdrawn.
    drop(a);
    drop(b);
    wait_until(Duration::from_secs(10), "the notice withdrawn", async || notes.closed.lock().unwrap().len() == 1).await;
    wait_until(Duration::from_secs(10), "the icon calm again", async || status().await == "Active").await;
    assert!(!icon_tooltip(&desk, &icon).await.1.contains("watching"));
    wait_until(Duration::from_secs(10), "no live request", async || {
        team.sys.get(&format!("/api/v1/agents/{}/effective-policy", agent.id)).await["current"]["live"].is_null()
    })
    .await;
    let log = team.aud.get("/api/v1/access-log").await;
    let lives = log.as_array().unwrap().iter().filter(|e| e["action"] == "screen.live").count();
    assert_eq!(lives, 2, "each viewer is in the access log");
    let account = team.sys.post("/api/v1/admins", json!({"username": "zhangsan", "role": "employee"})).await;
    let me =
        AdminApi::login(&server.url, &server.ca_fingerprint(), "zhangsan", account["password"].as_str().unwrap()).await;
    let views = me.get("/api/v1/portal/views").await;
    assert!(views.as_array().unwrap().iter().any(|e| e["action"] == "screen.live"), "the employee sees it: {views}");

    // The wall: thumbnails, only when the screen changed.
    let mut w = connect(&server, "/api/v1/screen/wall", team.sec.token(), None).await.unwrap();
    let tiles: serde_json::Value = serde_json::from_str(&next_text(&mut w).await).unwrap();
    assert_eq!(tiles[0]["agent"], agent.id, "{tiles}");
    let tile = tokio::time::timeout(Duration::from_secs(15), next_picture(&mut w)).await.unwrap().unwrap();
    let thumb = decode_jpeg(&tile.jpeg);
    assert_eq!((thumb.width, thumb.height), (320, 180));
    wait_until(Duration::from_secs(10), "the wall is told too", async || watched_told() == 2).await;
    let quiet = Instant::now();
    let mut idle_bytes = 0;
    while let Ok(Some(p)) = tokio::time::timeout(Duration::from_secs(4), next_picture(&mut w)).await {
        idle_bytes += p.jpeg.len();
        assert!(quiet.elapsed() < Duration::from_secs(4), "tiles keep coming on an unchanged screen");
    }
    x.window("第二个窗口 — second");
    let changed = tokio::time::timeout(Duration::from_secs(10), next_picture(&mut w)).await.unwrap().unwrap();
    let per_s = (tile.jpeg.len() + idle_bytes + changed.jpeg.len()) as f64 / quiet.elapsed().as_secs_f64();
    println!(
        "wall tile {} bytes; {idle_bytes} bytes while unchanged for 4 s; {:.0} B/s over {:.1} s with one change",
        tile.jpeg.len(),
        per_s,
        quiet.elapsed().as_secs_f64()
    );
    assert!(per_s <= 20_000.0, "wall bandwidth {per_s:.0} B/s per tile");
    drop(w);
    wait_until(Duration::from_secs(10), "the wall's notice withdrawn", async || {
        notes.closed.lock().unwrap().len() == 2
    })
    .await;
    let log = team.aud.get("/api/v1/access-log").await;
    assert!(log.as_array().unwrap().iter().any(
        |e| e["action"] == "screen.wall" && e["target"].as_str().unwrap().contains(&format!("agent:{}", agent.id))
    ));

    // The same in Chromium, as the console does it (cookie session, same origin):
    // leaving a page closes its socket, so the stream and the notice end.
    let browser = common::browser::Browser::start().await;
    browser.login(&format!("{}/", server.url), "sec", &team.sec_password).await;
    browser.goto(&format!("{}/#/live/{}", server.url, agent.id)).await;
    browser.page_ok("live").await;
    let width = async |css: &str| {
        let js = format!("const i = document.querySelector('{css}'); return i ? i.naturalWidth : 0");
        browser.client.execute(&js, vec![]).await.unwrap().as_f64().unwrap_or(0.0) as u64
    };
    wait_until(Duration::from_secs(15), "the live picture in Chromium", async || width("#live-picture").await == 1280)
        .await;
    browser.wait_text("#live-state", "幅").await;
    browser.screenshot("live").await;
    wait_until(Duration::from_secs(10), "told again", async || watched_told() == 3).await;
    browser.click("#nav-wall").await;
    browser.page_ok("wall").await;
    wait_until(Duration::from_secs(15), "the wall tile in Chromium", async || {
        width(&format!("#wall-{} img", agent.id)).await == 320
    })
    .await;
    browser.screenshot("wall").await;
    // Live page to wall page may hand over without a gap, keeping one notice up.
    browser.click("#nav-dashboard").await;
    wait_until(Duration::from_secs(10), "every notice withdrawn", async || {
        notes.closed.lock().unwrap().len() == watched_told()
    })
    .await;
    drop(browser);
    let told = watched_told();

    // The notice may be turned off only by a policy saying why, which is logged.
    let (s, v) = team
        .sec
        .call(reqwest::Method::PUT, &format!("/api/v1/policies/{policy}"), Some(screen(json!({"live_notice": false}))))
        .await;
    assert_eq!(s, 400, "{v}");
    let reason = "事故调查 2026-118，经工会同意";
    team.sec
        .put(
            &format!("/api/v1/policies/{policy}"),
            screen(json!({"live_notice": false, "live_notice_off_reason": reason})),
        )
        .await;
    let log = team.aud.get("/api/v1/access-log").await;
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "policy.live_notice_off" && e["target"].as_str().unwrap().contains(reason)));
    team.wait_applied(agent.id).await;
    let mut c = connect(&server, &live_path, team.sec.token(), None).await.unwrap();
    tokio::time::timeout(Duration::from_secs(15), next_picture(&mut c)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(watched_told(), told, "no notice under the policy that turned it off");
    assert_eq!(status().await, "Active", "nor on the icon");
    drop(c);

    // Consent withdrawn: live view ends, and an open wall drops the tile.
    let mut d = connect(&server, &live_path, team.sec.token(), None).await.unwrap();
    next_picture(&mut d).await.unwrap();
    let mut w = connect(&server, "/api/v1/screen/wall", team.sec.token(), None).await.unwrap();
    let tiles: serde_json::Value = serde_json::from_str(&next_text(&mut w).await).unwrap();
    assert_eq!(tiles[0]["agent"], agent.id, "{tiles}");
    team.consent(emp, "screen", false).await;
    let withdrawn = Instant::now();
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(3), next_picture(&mut d)).await {
        assert!(withdrawn.elapsed() < Duration::from_secs(20), "pictures keep coming after the withdrawal");
    }
    println!("no picture for 3 s, {:?} after consent was withdrawn", withdrawn.elapsed());
    let tiles = tokio::time::timeout(Duration::from_secs(15), next_text(&mut w)).await.unwrap();
    assert_eq!(tiles, "[]", "the open wall drops the endpoint");
    // Consent given again: the endpoint joins the wall that is still open, logged as it joins.
    let walls_logged = async || {
        let log = team.aud.get("/api/v1/access-log").await;
        let tag = format!("agent:{}", agent.id);
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "screen.wall" && e["target"].as_str().unwrap().contains(&tag))
            .count()
    };
    let before = walls_logged().await;
    team.consent(emp, "screen", true).await;
    let tiles: serde_json::Value =
        serde_json::from_str(&tokio::time::timeout(Duration::from_secs(30), next_text(&mut w)).await.unwrap()).unwrap();
    assert_eq!(tiles[0]["agent"], agent.id, "{tiles}");
    x.window("第三个窗口 — third");
    tokio::time::timeout(Duration::from_secs(15), next_picture(&mut w)).await.unwrap().unwrap();
    assert_eq!(walls_logged().await, before + 1, "joining the open wall is logged");
    drop(w);
    agent.stop();
    leader.kill().unwrap();
    let _ = leader.wait();
    daemon.kill().unwrap();
    let _ = daemon.wait();
}
