//! Privacy end to end with the real agent and server: the consent matrix
//! (every category × policy on/off × consent yes/no/withdrawn, on the agent
//! and again at ingest), the monitoring notice from publication to the
//! employee's desktop and their answer in the portal, paper consent with
//! its scan, and an export that holds every category collected.

mod common;

use candor_proto::Category;
use common::desktop::{icon_property, icon_tooltip, notifications, registered_icons, status_icons, tray_host};
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// Agent settings that keep every side effect inside `dir`: no real login
/// sessions, and the browser extension's files in the test's folder.
fn contained_agent_toml(dir: &Path, sessions: &Path) -> String {
    let p = |n: &str| dir.join(n).display().to_string();
    fast_agent_toml(&format!(
        "[x11]\nsessions_dir = \"{}\"\n[web]\nbrowser_socket = \"{}\"\nbrowser_host = \"{}\"\nnative_host_dirs = [\"{}\"]\n\
         extension_dir = \"{}\"\nbrowser_policy_dirs = [\"{}\"]\n",
        sessions.display(),
        p("browser.sock"),
        p("browser-host"),
        p("native-hosts"),
        p("extension"),
        p("chromium/policies/managed"),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consent {
    Yes,
    /// Never asked: no record at all.
    No,
    /// Granted, then withdrawn (a second record).
    Withdrawn,
}

/// The six cells each category passes through, one per phase.
const CELLS: [(bool, Consent); 6] = [
    (true, Consent::Yes),
    (true, Consent::No),
    (true, Consent::Withdrawn),
    (false, Consent::Yes),
    (false, Consent::No),
    (false, Consent::Withdrawn),
];

/// Events of each category stored for `agent` with `ts_ms >= from`.
fn stored_since(server: &Server, agent: u64, from: i64) -> std::collections::BTreeMap<Category, i64> {
    let db = server.db();
    let mut st = db
        .prepare("SELECT category, count(*) FROM events WHERE agent_id = ?1 AND ts_ms >= ?2 AND seq < 1000000000 GROUP BY category")
        .unwrap();
    st.query_map(rusqlite::params![agent as i64, from], |r| Ok((r.get::<_, u8>(0)?, r.get::<_, i64>(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .filter_map(|(c, n)| Some((Category::from_code(c)?, n)))
        .collect()
}

/// Each phase gives the agent a new employee (so "no consent" is truly no
/// record) and puts every category in a different cell; after the agent
/// applies it, only the allowed cells collect, and a batch carrying every
/// category straight to ingest is stored only for the allowed ones.
#[tokio::test]
async fn consent_matrix_on_the_agent_and_at_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = tmp.path().join("sessions");
    std::fs::create_dir(&sessions).unwrap();
    let server = Server::start(&tmp.path().join("server"), "").await;
    let mut agent = Agent::enroll(&server, "agent", &contained_agent_toml(tmp.path(), &sessions));
    let team = server.team().await;
    let policy = team.sec.post("/api/v1/policies", json!({"name": "matrix", "doc": {}})).await["id"].as_u64().unwrap();
    team.sec.put("/api/v1/assignments", json!({"scope": "global", "policy_id": policy})).await;
    let all: Vec<&str> = Category::GATED.iter().map(|c| c.as_str()).collect();
    agent.start(&["--synthetic-rate", "1400", "--synthetic-category", &all.join(",")]);

    let mut seen = vec![Vec::new(); CELLS.len()];
    for phase in 0..CELLS.len() {
        let emp = team
            .sys
            .post("/api/v1/employees", json!({"name": format!("员工{phase}"), "username": format!("emp{phase}")}))
            .await["id"]
            .as_u64()
            .unwrap();
        let mut collect = serde_json::Map::new();
        let mut allowed = BTreeSet::new();
        for (i, cat) in Category::GATED.into_iter().enumerate() {
            let (on, consent) = CELLS[(phase + i) % CELLS.len()];
            collect.insert(cat.as_str().into(), json!(on));
            match consent {
                Consent::Yes => team.consent(emp, cat.as_str(), true).await,
                Consent::No => {}
                Consent::Withdrawn => {
                    team.consent(emp, cat.as_str(), true).await;
                    team.consent(emp, cat.as_str(), false).await;
                }
            }
            if on && consent == Consent::Yes {
                allowed.insert(cat);
            }
        }
        team.sec.put(&format!("/api/v1/policies/{policy}"), json!({"doc": {"collect": collect}})).await;
        team.sys.put(&format!("/api/v1/agents/{}/assignment", agent.id), json!({"employee_id": emp})).await;
        team.wait_applied(agent.id).await;
        let from = candor_proto::now_ms();

        // At ingest: one event per category from the agent's own credentials.
        let base = 1_000_000_000 + phase as u64 * 100;
        let batch: Vec<_> =
            Category::GATED.into_iter().enumerate().map(|(i, c)| synthetic_event(base + i as u64, c)).collect();
        let (status, ack) = agent.send(&server, batch).await;
        assert_eq!(status, 200, "{ack}");
        let stored_direct: BTreeSet<Category> = {
            let db = server.db();
            let mut st =
                db.prepare("SELECT category FROM events WHERE agent_id = ?1 AND seq >= ?2 AND seq < ?3").unwrap();
            st.query_map(rusqlite::params![agent.id as i64, base as i64, base as i64 + 100], |r| r.get::<_, u8>(0))
                .unwrap()
                .map(|c| Category::from_code(c.unwrap()).unwrap())
                .collect()
        };
        assert_eq!(stored_direct, allowed, "phase {phase}: ingest stores exactly the allowed categories");
        assert_eq!(ack["refused"], (Category::GATED.len() - allowed.len()) as u64, "{ack}");

        // On the agent: the allowed cells fill, the others stay empty.
        wait_until(Duration::from_secs(20), "every allowed category collects", async || {
            let got = stored_since(&server, agent.id, from);
            allowed.iter().all(|c| got.get(c).copied().unwrap_or(0) >= 5)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await; // what was in flight lands
        let got = stored_since(&server, agent.id, from);
        for (i, cat) in Category::GATED.into_iter().enumerate() {
            let n = got.get(&cat).copied().unwrap_or(0);
            let cell = CELLS[(phase + i) % CELLS.len()];
            assert_eq!(n > 0, allowed.contains(&cat), "phase {phase}: {cat} in cell {cell:?} stored {n} events");
            seen[phase].push((cat, cell, n));
        }
    }
    println!("category  policy consent    events");
    for (cat, (on, consent), n) in seen.iter().flatten() {
        println!("{:<9} {:<6} {:<10} {n}", cat.as_str(), if *on { "on" } else { "off" }, format!("{consent:?}"));
    }
    let refused = team.sys.get(&format!("/api/v1/agents/{}", agent.id)).await["agent"]["refused_events"].as_u64();
    assert!(refused.unwrap() >= 6 * 5, "refusals at ingest are counted: {refused:?}");
    agent.stop();
}

fn notice(version_note: &str) -> Value {
    let t = |zh: &str, en: &str| json!({"zh": zh, "en": en});
    json!({
        "title": t(&format!("员工监控告知书 {version_note}"), &format!("Employee monitoring notice {version_note}")),
        "text": t("公司依据《个人信息保护法》记录以下工作数据，保存期限见各类别。", "Under PIPL the company records the work data below."),
        "purposes": {
            "activity": t("统计工作时间", "working-time statistics"),
            "web": t("防范违法网站", "blocking unlawful sites"),
            "screen": t("事故调查", "incident investigation"),
        }
    })
}

/// A desktop session like logind's, whose leader carries the session bus address.
fn fake_session(sessions: &Path, bus: &str) -> std::process::Child {
    let leader = std::process::Command::new("sleep").arg("600").env("DBUS_SESSION_BUS_ADDRESS", bus).spawn().unwrap();
    std::fs::write(
        sessions.join("c1"),
        format!(
            "UID=1000\nUSER=zhangsan\nACTIVE=1\nSTATE=active\nTYPE=x11\nCLASS=user\nDISPLAY=:87\nLEADER={}\n",
            leader.id()
        ),
    )
    .unwrap();
    leader
}

/// The notice goes from publication to the employee's desktop (a real
/// session bus, the agent's own helper under the employee's uid), is answered
/// in the portal per category, and is told again only when a new version
/// appears; what is collected is told too, and again when it changes.
#[tokio::test]
async fn monitoring_notice_reaches_the_desktop_and_is_answered_in_the_portal() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (mut daemon, bus, notes, desk) = notifications(tmp.path()).await;
    let told =
        |what: &str| notes.calls.lock().unwrap().iter().filter(|(t, b)| t.contains(what) || b.contains(what)).count();

    let sessions = tmp.path().join("sessions");
    std::fs::create_dir(&sessions).unwrap();
    let mut leader = fake_session(&sessions, &bus);
    let server = Server::start(&tmp.path().join("server"), "").await;
    let mut agent = Agent::enroll(&server, "agent", &contained_agent_toml(tmp.path(), &sessions));
    let team = server.team().await;
    let emp = team.setup_collection(agent.id, &["activity", "web"], false).await; // zhangsan
    agent.start(&[]);
    team.wait_applied(agent.id).await;
    wait_until(Duration::from_secs(15), "told that nothing is recorded", async || {
        told("Candor records nothing personal") == 1
    })
    .await;

    // The status icon runs as the employee before any tray host does, and
    // registers when one appears.
    wait_until(Duration::from_secs(15), "the status icon", async || status_icons(&desk).await.len() == 1).await;
    let icon = status_icons(&desk).await.remove(0);
    let dbus = zbus::fdo::DBusProxy::new(&desk).await.unwrap();
    let owner = zbus::names::BusName::try_from(icon.as_str()).unwrap();
    assert_eq!(dbus.get_connection_unix_user(owner).await.unwrap(), 1000);
    assert_eq!(icon_property::<String>(&desk, &icon, "Status").await, "Active", "never hidden");
    assert_eq!(icon_property::<String>(&desk, &icon, "IconName").await, "security-high");
    assert!(icon_tooltip(&desk, &icon).await.0.contains("records nothing"));
    let mut host = tray_host(&bus).await;
    let registered = async |icon: &str| registered_icons(&desk).await.iter().any(|r| r.starts_with(icon));
    wait_until(Duration::from_secs(10), "the icon registered with the tray host", async || registered(&icon).await)
        .await;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.kde.StatusNotifierItem")
        .unwrap()
        .member("NewToolTip")
        .unwrap()
        .build();
    let mut new_tips = zbus::MessageStream::for_match_rule(rule, &desk, None).await.unwrap();

    // A notice must be complete in both languages and name real categories.
    let mut bad = notice("v1");
    bad["purposes"]["web"]["en"] = json!(" ");
    let (s, v) = team.sec.call(reqwest::Method::POST, "/api/v1/notices", Some(bad)).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("purpose of web is empty in en"), "{v}");
    let mut bad = notice("v1");
    bad["purposes"]["keystrokes"] = json!({"zh": "按键", "en": "keys"});
    let (s, v) = team.sec.call(reqwest::Method::POST, "/api/v1/notices", Some(bad)).await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = team.aud.call(reqwest::Method::POST, "/api/v1/notices", Some(notice("v1"))).await;
    assert_eq!(s, 403, "an auditor publishes nothing");
    assert_eq!(team.sec.post("/api/v1/notices", notice("v1")).await["version"], 1);

    let url = format!("{}/#/notice", server.url);
    wait_until(Duration::from_secs(15), "the notice on the desktop", async || told("第 1 版") == 1).await;
    assert!(notes.calls.lock().unwrap().iter().any(|(_, b)| b.contains(&url)), "the notification links to the portal");

    // The employee answers in the portal.
    let created = team.sys.post("/api/v1/admins", json!({"username": "zhangsan", "role": "employee"})).await;
    let me =
        AdminApi::login(&server.url, &server.ca_fingerprint(), "zhangsan", created["password"].as_str().unwrap()).await;
    let mine = me.get("/api/v1/portal/notice").await;
    assert_eq!(mine["notice"]["version"], 1);
    assert_eq!(mine["notice"]["body"]["purposes"]["screen"]["zh"], "事故调查");
    assert!(mine["answered"].is_null());
    let answer = |version: u64, decisions: Value| json!({"version": version, "decisions": decisions});
    let (s, v) = me
        .call(
            reqwest::Method::POST,
            "/api/v1/portal/notice",
            Some(answer(2, json!({"activity": true, "web": false, "screen": true}))),
        )
        .await;
    assert_eq!(s, 409, "a version that is not in force: {v}");
    let (s, v) = me
        .call(reqwest::Method::POST, "/api/v1/portal/notice", Some(answer(1, json!({"activity": true, "web": false}))))
        .await;
    assert_eq!(s, 400, "every category must be answered: {v}");
    let (s, v) = me
        .call(
            reqwest::Method::POST,
            "/api/v1/portal/notice",
            Some(answer(1, json!({"activity": true, "web": false, "screen": true, "chat": true}))),
        )
        .await;
    assert_eq!(s, 400, "only what the notice asks: {v}");
    let r = me.post("/api/v1/portal/notice", answer(1, json!({"activity": true, "web": false, "screen": true}))).await;
    assert_eq!(r["recorded"], 3);
    let records = team.sec.get(&format!("/api/v1/consents?employee_id={emp}")).await;
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert!(records
        .iter()
        .all(|c| c["method"] == "portal" && c["notice_version"] == 1 && c["recorded_by"] == "zhangsan"));
    assert_eq!(me.get("/api/v1/portal/notice").await["answered"], 1);
    // Admins cannot answer for the employee under the portal's name.
    let (s, _) = team
        .sec
        .call(
            reqwest::Method::POST,
            "/api/v1/consents",
            Some(json!({"employee_id": emp, "category": "web", "granted": true, "method": "portal"})),
        )
        .await;
    assert_eq!(s, 400);

    // The answer takes effect: activity is now recorded (web was declined,
    // screen is not in the policy), and the desktop is told so.
    wait_until(Duration::from_secs(15), "told that activity is recorded", async || told("Candor is recording") == 1)
        .await;
    let body = notes.calls.lock().unwrap().iter().find(|(t, _)| t.contains("Candor is recording")).unwrap().1.clone();
    assert!(body.contains("应用与窗口使用时间") && body.contains("Not recorded: process, web"), "{body}");
    // The icon follows, announces it, and a click shows the details with the portal's address.
    wait_until(Duration::from_secs(10), "the icon showing activity recorded", async || {
        icon_tooltip(&desk, &icon).await.1.contains("records: activity. Not recorded: process, web")
    })
    .await;
    assert_eq!(icon_tooltip(&desk, &icon).await.0, "Candor 正在记录 · Candor is recording");
    assert_eq!(icon_property::<String>(&desk, &icon, "IconName").await, "security-medium");
    tokio::time::timeout(Duration::from_secs(10), new_tips.next()).await.expect("NewToolTip announced");
    desk.call_method(
        Some(icon.as_str()),
        "/StatusNotifierItem",
        Some("org.kde.StatusNotifierItem"),
        "Activate",
        &(0i32, 0i32),
    )
    .await
    .unwrap();
    let mydata = format!("{}/#/mydata", server.url);
    wait_until(Duration::from_secs(10), "the details on a click", async || told(&mydata) == 1).await;

    // Nothing is repeated, not even across an agent restart.
    let calls = notes.calls.lock().unwrap().len();
    agent.stop();
    agent.start(&[]);
    team.wait_applied(agent.id).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(notes.calls.lock().unwrap().len(), calls, "{:?}", notes.calls.lock().unwrap());
    // The stopped agent's icon went with it; the new one registered.
    let icons = status_icons(&desk).await;
    assert!(icons.len() == 1 && icons[0] != icon, "{icons:?}");
    wait_until(Duration::from_secs(10), "the new icon registered", async || {
        registered(&icons[0]).await && !registered(&icon).await
    })
    .await;

    // A new version is told again, and the old one can no longer be answered.
    assert_eq!(team.sec.post("/api/v1/notices", notice("v2")).await["version"], 2);
    wait_until(Duration::from_secs(15), "version 2 on the desktop", async || told("第 2 版") == 1).await;
    let (s, _) = me
        .call(
            reqwest::Method::POST,
            "/api/v1/portal/notice",
            Some(answer(1, json!({"activity": true, "web": false, "screen": true}))),
        )
        .await;
    assert_eq!(s, 409);
    me.post("/api/v1/portal/notice", answer(2, json!({"activity": false, "web": false, "screen": false}))).await;
    wait_until(Duration::from_secs(15), "told that nothing is recorded again", async || {
        told("Candor records nothing personal") == 2
    })
    .await;
    let notices = team.aud.get("/api/v1/notices").await;
    assert_eq!(notices.as_array().unwrap().iter().map(|n| n["version"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 1]);
    assert!(agent.log().contains("notice v2 told to zhangsan"), "{}", agent.log());
    // The icon ends with the login session.
    std::fs::remove_file(sessions.join("c1")).unwrap();
    wait_until(Duration::from_secs(10), "no icon after logout", async || {
        status_icons(&desk).await.is_empty() && registered_icons(&desk).await.is_empty()
    })
    .await;
    host.kill().unwrap();
    let _ = host.wait();
    agent.stop();
    leader.kill().unwrap();
    let _ = leader.wait();
    daemon.kill().unwrap();
    let _ = daemon.wait();
}

/// What an employee downloads holds every category collected about them:
/// events of each kind, screen pictures, chat messages, alerts, consents
/// and the scan of the paper form they signed.
#[tokio::test]
async fn paper_consent_and_an_export_with_every_category() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "").await;
    let agent = Agent::enroll(&server, "a", &fast_agent_toml(""));
    let other = Agent::enroll(&server, "b", &fast_agent_toml(""));
    let team = server.team().await;
    let all: Vec<&str> = Category::GATED.iter().map(|c| c.as_str()).collect();
    let emp = team.setup_collection(agent.id, &all, true).await;

    // Paper consent needs the scan of a real picture or PDF.
    let upload = async |bytes: Vec<u8>| {
        let r = team
            .sec
            .client
            .post(format!("{}/api/v1/consents/scans", server.url))
            .bearer_auth(team.sec.token())
            .body(bytes)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or_default())
    };
    let (s, v) = upload(b"just some text, not a scan".to_vec()).await;
    assert_eq!(s, 400, "{v}");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[7u8; 300]);
    let (s, stored) = upload(png.clone()).await;
    assert_eq!(s, 200, "{stored}");
    assert_eq!(stored["content_type"], "image/png");
    let key = stored["scan"].as_str().unwrap().to_string();
    let paper = |scan: Option<&str>| {
        json!({"employee_id": emp, "category": "file", "granted": true, "method": "paper", "scan": scan,
               "note": "签字版告知书"})
    };
    let (s, v) = team.sec.call(reqwest::Method::POST, "/api/v1/consents", Some(paper(None))).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = team.sec.call(reqwest::Method::POST, "/api/v1/consents", Some(paper(Some(&"0".repeat(64))))).await;
    assert_eq!(s, 400, "an unknown scan: {v}");
    team.sec.post("/api/v1/consents", paper(Some(&key))).await;
    let r = team
        .sec
        .client
        .get(format!("{}/api/v1/consents/scans/{key}", server.url))
        .bearer_auth(team.sec.token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().to_vec(), png);
    let log = team.aud.get("/api/v1/access-log").await;
    assert!(
        log.as_array().unwrap().iter().any(|e| e["action"] == "consents.scan"
            && e["target"].as_str().unwrap().contains(&format!("consents:employee:{emp}"))),
        "opening a scan is logged"
    );

    // Data in every category: agent events, a screen frame, chat, an alert.
    let mut events: Vec<_> = Category::GATED.into_iter().zip(1..).map(|(c, seq)| synthetic_event(seq, c)).collect();
    let mut enc = candor_screen::Encoder::new(Default::default());
    events.push(screen_event(20, candor_proto::now_ms(), ":0", &screen_frame(&mut enc, 90, 0)));
    let (s, ack) = agent.send(&server, events).await;
    assert_eq!((s, ack["stored"].as_u64()), (200, Some(8)), "{ack}");
    team.consent(emp, "device", false).await;
    let (_, ack) = agent.send(&server, vec![synthetic_event(21, Category::Device)]).await;
    assert_eq!(ack["refused"], 1, "withdrawn: refused, and an alert says so");
    let (s, ack) = other.send(&server, vec![synthetic_event(1, Category::Activity)]).await;
    assert_eq!(s, 200, "{ack}");
    let line = |id: &str, from: &str, to: &str, text: &str| {
        json!({"msgid": id, "action": "send", "from": from, "tolist": [to], "roomid": "", "msgtime": candor_proto::now_ms(),
               "msgtype": "text", "text": {"content": text}})
        .to_string()
    };
    let chat = [line("m1", "zhangsan", "wmCustomer1", "报价单已发送"), line("m2", "lisi", "wmCustomer2", "别人的消息")];
    let r = team
        .sec
        .client
        .post(format!("{}/api/v1/chat/import?format=jsonl", server.url))
        .bearer_auth(team.sec.token())
        .body(chat.join("\n"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let created = team.sys.post("/api/v1/admins", json!({"username": "zhangsan", "role": "employee"})).await;
    let me =
        AdminApi::login(&server.url, &server.ca_fingerprint(), "zhangsan", created["password"].as_str().unwrap()).await;
    let r = me.client.get(format!("{}/api/v1/portal/export", server.url)).bearer_auth(me.token()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap().to_vec();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let mut read = |name: &str| {
        let mut s = Vec::new();
        zip.by_name(name).unwrap_or_else(|_| panic!("{name} in {names:?}")).read_to_end(&mut s).unwrap();
        s
    };
    let events: Value = serde_json::from_slice(&read("events.json")).unwrap();
    let cats: BTreeSet<&str> = events.as_array().unwrap().iter().filter_map(|e| e["category"].as_str()).collect();
    for c in &all {
        assert!(cats.contains(c), "events.json has {c}: {cats:?}");
    }
    assert!(events.as_array().unwrap().iter().all(|e| e["agent_id"] == agent.id), "only their own endpoint");
    let frames: Value = serde_json::from_slice(&read("screen/frames.json")).unwrap();
    assert_eq!(frames.as_array().unwrap().len(), 1);
    let at = frames[0]["ts_ms"].as_i64().unwrap();
    // The display is made safe as a file name.
    let jpeg = read(&format!("screen/{}-_0-{at}.jpg", agent.id));
    assert_eq!(&jpeg[..2], b"\xff\xd8", "the picture is a JPEG");
    let chats: Value = serde_json::from_slice(&read("chat.json")).unwrap();
    let ids: Vec<&str> = chats.as_array().unwrap().iter().filter_map(|m| m["msgid"].as_str()).collect();
    assert_eq!(ids, ["m1"], "their messages only");
    let alerts = String::from_utf8(read("alerts.json")).unwrap();
    assert!(alerts.contains("device"), "{alerts}");
    let consents: Value = serde_json::from_slice(&read("consents.json")).unwrap();
    assert!(consents.as_array().unwrap().iter().any(|c| c["method"] == "paper" && c["scan"] == key.as_str()));
    assert_eq!(read(&format!("consents/{key}")), png);
    let readme = String::from_utf8(read("README.txt")).unwrap();
    assert!(readme.contains("张三") && readme.contains("chat.json"), "{readme}");
}
