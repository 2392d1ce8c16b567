//! Screen recording on real X11 (Xvfb, openbox, xterm windows): recording
//! starts when a listed program starts and stops when it ends, an unchanged
//! screen adds no frames, a hidden program's pixels never reach the server,
//! playback at an instant matches a direct capture (SSIM), a display that
//! comes back at another size and depth is recorded again, and a corrupted
//! stored frame is reported as corrupt, never shown.

mod common;

use candor_screen::{ssim::ssim, Image};
use common::display::*;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Pixels close to `rgb`.
fn count_colour(img: &Image, rgb: [u8; 3]) -> usize {
    img.rgb.chunks_exact(3).filter(|p| (0..3).all(|i| (p[i] as i32 - rgb[i] as i32).abs() < 40)).count()
}

/// (seq, ts_ms, key, tiles, width, height, reason) of every indexed frame.
fn frames(server: &Server, agent: u64) -> Vec<(u64, i64, bool, u32, u32, u32, String)> {
    let db = server.db();
    let mut st = db
        .prepare(
            "SELECT seq, ts_ms, key, tiles, width, height, reason FROM screen_frames WHERE agent_id = ?1 ORDER BY seq",
        )
        .unwrap();
    st.query_map([agent as i64], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// A copy of xterm under another name: a "program" the policy can name.
fn program(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::copy("/usr/bin/xterm", &path).unwrap();
    path.to_string_lossy().into_owned()
}

async fn image(api: &AdminApi, agent: u64, display: &str, at: i64) -> (u16, Option<i64>, Vec<u8>) {
    let r = api
        .client
        .get(format!("{}/api/v1/screen/image?agent={agent}&display={display}&at_ms={at}", api.url))
        .bearer_auth(api.token())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ts = r.headers().get("x-candor-frame-ts").and_then(|v| v.to_str().ok()?.parse().ok());
    (status, ts, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn screen_recording_on_real_x11() {
    let n = free_display();
    let mut x = Display::start_full(n, None, "1024x768x24");
    let tmp = tempfile::tempdir().unwrap();
    let ledger = program(tmp.path(), "ledger");
    let secret = program(tmp.path(), "secretapp");

    let server = Server::start(tmp.path(), "").await;
    let mut agent = Agent::enroll(&server, "agent", &fast_agent_toml(&format!("[x11]\ndisplay = \":{n}\"\n")));
    let team = server.team().await;
    let emp = team.sys.post("/api/v1/employees", json!({"name": "张三", "username": "zhangsan"})).await["id"]
        .as_u64()
        .unwrap();
    team.sys.put(&format!("/api/v1/agents/{}/assignment", agent.id), json!({"employee_id": emp})).await;
    let screen = json!({"trigger": "running", "apps": ["ledger"], "interval_secs": 1, "pause_idle_secs": 0,
                        "hide_apps": ["secretapp"], "hide_titles": "网上银行|Online banking"});
    // A bad policy is refused with the reason.
    let (s, v) = team
        .sec
        .call(
            reqwest::Method::POST,
            "/api/v1/policies",
            Some(json!({"name": "bad", "doc": {"screen": {"trigger": "running", "apps": []}}})),
        )
        .await;
    assert_eq!((s, v["error"].as_str().unwrap_or("").contains("screen.apps")), (400, true), "{v}");
    let policy = team
        .sec
        .post("/api/v1/policies", json!({"name": "p", "doc": {"collect": {"screen": true}, "screen": screen}}))
        .await;
    team.sec.put("/api/v1/assignments", json!({"scope": "global", "policy_id": policy["id"]})).await;
    team.consent(emp, "screen", true).await;
    agent.start(&[]);
    team.wait_applied(agent.id).await;

    // Nothing listed runs: nothing is recorded.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(frames(&server, agent.id).is_empty(), "no frames while no listed program runs");

    // The listed program starts: recording starts with a key frame.
    x.spawn(&ledger, &["-T", "Ledger", "-bg", "#2050c0", "-geometry", "60x20+40+40"]);
    wait_until(Duration::from_secs(15), "recording after the program starts", async || {
        !frames(&server, agent.id).is_empty()
    })
    .await;
    let first = frames(&server, agent.id);
    assert!(first[0].2, "the first frame is a key frame");
    assert_eq!((first[0].4, first[0].5), (1024, 768));
    assert_eq!(first[0].6, "running: ledger");

    // An unchanged screen adds no frames.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = frames(&server, agent.id).len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(frames(&server, agent.id).len(), settled, "an unchanged screen adds no frames (interval 1 s)");

    // A change adds a delta of a few tiles.
    assert!(x.xdotool(&[
        "search",
        "--name",
        "Ledger",
        "windowactivate",
        "--sync",
        "type",
        "--delay",
        "20",
        "echo 报价单 42"
    ]));
    wait_until(Duration::from_secs(10), "a delta frame", async || frames(&server, agent.id).len() > settled).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = frames(&server, agent.id);
    let delta = &all[settled];
    assert!(!delta.2, "a change is a delta frame");
    assert!(delta.3 < 16 * 12 / 4, "a typed line changes few tiles, not {}", delta.3);

    // Playback at now matches a direct capture of the screen.
    let now = candor_proto::now_ms();
    let direct = direct_capture(&x.name);
    let (s, ts, jpeg) = image(&team.sec, agent.id, &x.name, now).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&jpeg));
    assert_eq!(ts, Some(all.last().unwrap().1), "the newest frame at or before the instant");
    let shown = decode_jpeg(&jpeg);
    let q = ssim(&shown, &direct);
    assert!(q >= 0.95, "playback vs direct capture SSIM {q:.4}");
    println!("playback vs direct capture: SSIM {q:.4}");

    // An instant between two frames shows the earlier one.
    let (_, ts, _) = image(&team.sec, agent.id, &x.name, delta.1 - 1).await;
    assert_eq!(ts, Some(all[settled - 1].1));
    let (s, _, _) = image(&team.sec, agent.id, &x.name, first[0].1 - 1).await;
    assert_eq!(s, 404, "nothing before the first frame");

    // A hidden program's window, and a window whose title names a hidden site, are blanked
    // out of every stored frame.
    let (magenta, green, grey) = ([255, 0, 255], [0, 255, 0], [0x80, 0x80, 0x80]);
    let before = frames(&server, agent.id).len();
    x.spawn(&secret, &["-T", "Secret", "-bg", "#ff00ff", "-geometry", "40x10+500+400"]);
    x.spawn("xterm", &["-T", "招商银行 网上银行 - Chromium", "-bg", "#00ff00", "-geometry", "30x8+80+500"]);
    wait_until(Duration::from_secs(10), "the hidden windows on screen", async || {
        let d = direct_capture(&x.name);
        count_colour(&d, magenta) > 1000 && count_colour(&d, green) > 1000
    })
    .await;
    // The agent may have stored the change before the test saw it on screen:
    // wait for a stored frame whose grey covers both windows.
    let on_screen = {
        let d = direct_capture(&x.name);
        count_colour(&d, magenta) + count_colour(&d, green)
    };
    wait_until(Duration::from_secs(15), "a stored frame with both windows blanked", async || {
        let (s, _, jpeg) = image(&team.sec, agent.id, &x.name, candor_proto::now_ms()).await;
        s == 200 && count_colour(&decode_jpeg(&jpeg), grey) >= on_screen
    })
    .await;
    assert!(frames(&server, agent.id).len() > before);
    let (s, _, jpeg) = image(&team.sec, agent.id, &x.name, candor_proto::now_ms()).await;
    assert_eq!(s, 200);
    let shown = decode_jpeg(&jpeg);
    assert!(count_colour(&direct_capture(&x.name), magenta) > 1000, "the window is on the screen");
    assert_eq!(count_colour(&shown, magenta), 0, "none of its pixels in the stored frames");
    assert!(count_colour(&direct_capture(&x.name), green) > 1000);
    assert_eq!(count_colour(&shown, green), 0, "a window titled like a hidden site is blanked too");

    // The frames list (employee view) is there and is access-logged.
    let list = team
        .sec
        .get(&format!("/api/v1/screen/frames?employee={emp}&from_ms={}&to_ms={}", now - 3_600_000, now + 60_000))
        .await;
    assert_eq!(list["frames"].as_array().unwrap().len(), frames(&server, agent.id).len());
    assert_eq!(list["frames"][0]["key"], json!(true));
    let log = team.aud.get("/api/v1/access-log").await.to_string();
    assert!(log.contains("screen.frames") && log.contains("screen.view"), "screen views are in the access log");
    let (s, _) = team
        .sys
        .call(reqwest::Method::GET, &format!("/api/v1/screen/frames?employee={emp}&from_ms=0&to_ms=1"), None)
        .await;
    assert_eq!(s, 403, "the system admin sees no screens");

    // The console page plays the day back.
    let b = common::browser::Browser::start().await;
    let console = format!("{}/", server.url);
    b.login(&console, "sec", &team.sec_password).await;
    let recorded = {
        let mut ts: Vec<i64> = frames(&server, agent.id).iter().map(|f| f.1).collect();
        ts.dedup();
        ts.len()
    };
    b.goto(&format!("{console}#/screen/{emp}")).await;
    b.page_ok("screen").await;
    let first = b.wait_text("#screen-time", "(1/").await;
    let n_instants: usize = first.rsplit('/').next().unwrap().trim_end_matches(')').parse().unwrap();
    assert!(n_instants >= recorded, "{first}: every recorded instant is on the scrubber");
    let loaded = "const i = document.querySelector('#screen-image'); return i.complete ? i.naturalWidth : 0";
    wait_until(Duration::from_secs(10), "the first picture shown", async || {
        b.client.execute(loaded, vec![]).await.unwrap() == json!(1024)
    })
    .await;
    b.client.execute("document.querySelector('#screen-speed').value = '60'", vec![]).await.unwrap();
    b.click("#screen-play").await;
    b.wait_text("#screen-time", &format!("({n_instants}/{n_instants})")).await;
    b.screenshot("screen").await;
    drop(b);

    // The focused trigger: changes are recorded only while the listed program has the focus.
    let mut doc: Value = team.sec.get(&format!("/api/v1/policies/{}", policy["id"])).await["doc"].clone();
    doc["screen"]["trigger"] = json!("focused");
    team.sec.put(&format!("/api/v1/policies/{}", policy["id"]), json!({"doc": doc})).await;
    team.wait_applied(agent.id).await;
    x.window("Notes");
    x.focus("Notes");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unfocused = frames(&server, agent.id).len();
    assert!(x.xdotool(&["search", "--name", "Notes", "windowactivate", "--sync", "type", "--delay", "20", "ls"]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(frames(&server, agent.id).len(), unfocused, "nothing recorded while another program has the focus");
    x.focus("Ledger");
    wait_until(Duration::from_secs(10), "recording once the program has the focus", async || {
        frames(&server, agent.id).last().is_some_and(|f| f.6 == "focused: ledger")
    })
    .await;
    // Or a window whose title matches (a document or a site by name).
    doc["screen"]["title_pattern"] = json!("^Notes$");
    team.sec.put(&format!("/api/v1/policies/{}", policy["id"]), json!({"doc": doc})).await;
    team.wait_applied(agent.id).await;
    assert!(x.xdotool(&["search", "--name", "Notes", "windowactivate", "--sync", "type", "--delay", "20", "pwd"]));
    wait_until(Duration::from_secs(10), "recording while a window of that title has the focus", async || {
        frames(&server, agent.id).last().is_some_and(|f| f.6 == "focused: title")
    })
    .await;
    doc["screen"]["title_pattern"] = Value::Null;
    team.sec.put(&format!("/api/v1/policies/{}", policy["id"]), json!({"doc": doc})).await;
    team.wait_applied(agent.id).await;

    // The program ends: recording stops.
    x.xdotool(&["search", "--name", "Ledger", "windowkill"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopped = frames(&server, agent.id).len();
    x.spawn("xterm", &["-T", "Other", "-geometry", "30x5+0+0"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(frames(&server, agent.id).len(), stopped, "no frames once the listed program has ended");

    // The display comes back at another size and depth: recorded again
    // (interval trigger now), starting with a key frame of the new size.
    let mut doc: Value = team.sec.get(&format!("/api/v1/policies/{}", policy["id"])).await["doc"].clone();
    doc["screen"]["trigger"] = json!("interval");
    team.sec.put(&format!("/api/v1/policies/{}", policy["id"]), json!({"doc": doc})).await;
    team.wait_applied(agent.id).await;
    x.stop();
    drop(x);
    // First a display the codec cannot take (wider than 16,384 pixels):
    // each frame is skipped and counted, said in `candor agent status`, and
    // the agent goes on recording once the display can be encoded again.
    let mut wide = Display::start_full(n, None, "16400x8x24");
    let status = || {
        let out =
            std::process::Command::new(BIN).args(["agent", "status", "--config"]).arg(agent.config_path()).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default()
    };
    wait_until(Duration::from_secs(60), "frames skipped as unencodable, in the agent's status", async || {
        let s = status();
        s.contains("screen frames skipped") && s.contains("encoding") && s.contains("16400x8")
    })
    .await;
    assert_eq!(agent.exited(), None, "the agent is still running");
    wide.stop();
    drop(wide);
    let mut y = Display::start_full(n, None, "1000x700x16");
    y.spawn("xterm", &["-T", "Sixteen", "-bg", "#30a030"]);
    wait_until(Duration::from_secs(20), "a key frame of the new display", async || {
        frames(&server, agent.id).iter().any(|f| f.2 && (f.4, f.5) == (1000, 700))
    })
    .await;

    // A monitor added while recording: the same X server's screen grows (RandR;
    // Xephyr resized on a host display), and the next frame is a key frame of
    // the new size — no reconnection needed.
    y.stop();
    drop(y);
    let host = Display::start_full(free_display_after(n), None, "2000x1200x24");
    let mut y = Display::start_nested(n, &host, "1280x800");
    y.spawn("xterm", &["-T", "Nested", "-bg", "#3030a0"]);
    let key_of = |w: u32, h: u32| {
        let server = &server;
        async move || frames(server, agent.id).iter().any(|f| f.2 && (f.4, f.5) == (w, h))
    };
    wait_until(Duration::from_secs(20), "a key frame of the nested display", key_of(1280, 800)).await;
    host.resize_nested(1600, 900);
    wait_until(Duration::from_secs(20), "a key frame once a monitor is added", key_of(1600, 900)).await;
    host.resize_nested(1024, 700);
    wait_until(Duration::from_secs(20), "a key frame once it is removed", key_of(1024, 700)).await;

    // A corrupted stored frame is reported as corrupt, never shown.
    let latest = frames(&server, agent.id).into_iter().rfind(|f| f.2).unwrap();
    let blob: String = server
        .db()
        .query_row(
            "SELECT blob FROM screen_frames WHERE agent_id = ?1 AND seq = ?2",
            [agent.id as i64, latest.0 as i64],
            |r| r.get(0),
        )
        .unwrap();
    let path = tmp.path().join("data/blobs").join(&blob[..2]).join(&blob[2..4]).join(&blob);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let (s, _, body) = image(&team.sec, agent.id, &y.name, latest.1).await;
    assert_eq!(s, 422, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("corrupt"));

    // Stored events carry the blob's key, not the picture.
    let inline: i64 = server
        .db()
        .query_row(
            "SELECT count(*) FROM events WHERE category = 4 AND CAST(payload AS TEXT) LIKE '%\"data\"%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(inline, 0);
    let log = agent.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("screen recording"), "the agent says when it records: {log}");
    assert!(!log.contains("MIT-SHM capture unavailable"), "Xvfb offers MIT-SHM; the agent uses it: {log}");
    y.stop();
}

/// A locked login session is never recorded: the agent follows logind's
/// `LockedHint` (a stand-in on a real D-Bus daemon) and records again once the
/// session is unlocked. The session's X server wants its cookie, which the agent
/// reads from the session as it would on a real desktop.
#[tokio::test]
async fn screen_recording_pauses_while_the_session_is_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let logind = common::logind::Logind::start(tmp.path(), "c7").await;
    let n = free_display();
    let mut x = Display::start_with(n, Some(tmp.path().join("xauth")));
    x.window("Desk 桌面");
    let mut leader = x.command("sleep").arg("600").spawn().unwrap();
    let sessions = tmp.path().join("sessions");
    std::fs::create_dir(&sessions).unwrap();
    std::fs::write(
        sessions.join("c7"),
        format!("UID=0\nUSER=root\nACTIVE=1\nSTATE=active\nTYPE=x11\nDISPLAY={}\nLEADER={}\n", x.name, leader.id()),
    )
    .unwrap();
    let server = Server::start(tmp.path(), "").await;
    let x11 = format!("[x11]\nsessions_dir = \"{}\"\nlogind_bus = \"{}\"\n", sessions.display(), logind.address);
    let mut agent = Agent::enroll(&server, "agent", &fast_agent_toml(&x11));
    let team = server.team().await;
    let emp = team.setup_collection(agent.id, &[], true).await;
    let doc = json!({"collect": {"screen": true}, "screen": {"interval_secs": 1, "pause_idle_secs": 0}});
    let policy = team.sec.get("/api/v1/policies").await[0]["id"].as_u64().unwrap();
    team.sec.put(&format!("/api/v1/policies/{policy}"), json!({"doc": doc})).await;
    team.consent(emp, "screen", true).await;
    agent.start(&[]);
    team.wait_applied(agent.id).await;
    wait_until(Duration::from_secs(20), "a first frame of the session's display", async || {
        !frames(&server, agent.id).is_empty()
    })
    .await;

    logind.set_locked(true).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let locked_at = frames(&server, agent.id).len();
    x.window("锁屏时 — while locked");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(frames(&server, agent.id).len(), locked_at, "nothing recorded while the session is locked");
    logind.set_locked(false).await;
    wait_until(Duration::from_secs(10), "recording again once unlocked", async || {
        frames(&server, agent.id).len() > locked_at
    })
    .await;
    // The log may be coloured: drop escape sequences before looking.
    let log: String = agent.log().split('\x1b').map(|p| p.split_once('m').map_or(p, |(_, rest)| rest)).collect();
    assert!(
        log.contains("screen recording paused display=:") && log.contains("locked=true"),
        "the pause is logged with its cause\n{log}"
    );
    agent.stop();
    let _ = leader.kill();
    let _ = leader.wait();
}
