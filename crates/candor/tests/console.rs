//! The console in real headless Chromium against a real server and agent,
//! seeded through the real APIs: every page renders without errors for each
//! role, language switching, org import and token creation through the UI,
//! event filters, the auditor's access log, department scoping by URL and
//! API, and lock-out after repeated wrong passwords. Screenshots of the main
//! pages land in test-output/console/.

mod common;

use common::browser::Browser;
use common::*;
use serde_json::json;
use std::time::Duration;

struct Seed {
    zhangsan: u64,
    sales: u64,
    rnd: u64,
    lisi: u64,
    agent_rnd: u64,
}

async fn seed(server: &Server, team: &Team, agent: &mut Agent, other: &Agent) -> Seed {
    let csv = "department,name,username\n总部/销售部,张三,zhangsan\n总部/研发部,李四,lisi\n";
    let r = team
        .sys
        .client
        .post(format!("{}/api/v1/org/import", server.url))
        .bearer_auth(team.sys.token())
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let depts = team.sys.get("/api/v1/departments").await;
    let id_of =
        |name: &str| depts.as_array().unwrap().iter().find(|d| d["name"] == name).unwrap()["id"].as_u64().unwrap();
    let (sales, rnd) = (id_of("销售部"), id_of("研发部"));
    let emps = team.sys.get("/api/v1/employees").await;
    let emp = |u: &str| emps.as_array().unwrap().iter().find(|e| e["username"] == u).unwrap()["id"].as_u64().unwrap();
    let (zhangsan, lisi) = (emp("zhangsan"), emp("lisi"));
    team.sys
        .put(
            &format!("/api/v1/agents/{}/assignment", agent.id),
            json!({"employee_id": zhangsan, "department_id": sales}),
        )
        .await;
    team.sys
        .put(&format!("/api/v1/agents/{}/assignment", other.id), json!({"employee_id": lisi, "department_id": rnd}))
        .await;
    let policy =
        team.sec.post("/api/v1/policies", json!({"name": "办公", "doc": {"collect": {"activity": true}}})).await;
    team.sec.put("/api/v1/assignments", json!({"scope": "global", "policy_id": policy["id"]})).await;
    team.consent(zhangsan, "activity", true).await;
    agent.start(&["--synthetic-rate", "200", "--synthetic-total", "300"]);
    wait_until(Duration::from_secs(20), "events stored", async || server.synthetic_counts(agent.id).0 == 300).await;
    // A morning of activity spans as the X11 collector sends them, with the
    // catalogue entry that names and suggests a class for WPS.
    let tz = chrono_tz::Asia::Shanghai;
    let (day_start, _) =
        candor_server::company_time::day_bounds(tz, candor_server::company_time::date_at(tz, candor_proto::now_ms()));
    let span = |seq: u64, start_min: i64, minutes: u64, app: &str, state: &str| candor_proto::Event {
        seq,
        ts_ms: day_start + start_min * 60_000,
        duration_ms: Some(minutes * 60_000),
        category: candor_proto::Category::Activity,
        payload: candor_proto::Payload::Activity {
            app: app.into(),
            exe: None,
            wm_class: None,
            title: Some(format!("{app} 窗口")),
            title_hash: None,
            pid: None,
            pid_verified: false,
            state: state.into(),
            user: Some("zhangsan".into()),
        }
        .to_json(),
    };
    let wps = candor_proto::Event {
        seq: 2_000_000,
        ts_ms: day_start,
        duration_ms: None,
        category: candor_proto::Category::Activity,
        payload: candor_proto::Payload::AppInfo {
            app: "wps".into(),
            desktop_id: "wps-office-wps.desktop".into(),
            name: "WPS Writer".into(),
            name_zh: Some("WPS 文字".into()),
            categories: vec!["Office".into(), "WordProcessor".into()],
            icon_png: None,
        }
        .to_json(),
    };
    let spans = vec![
        wps,
        span(2_000_001, 1, 30, "wps", "active"),
        span(2_000_002, 31, 20, "chromium", "active"),
        span(2_000_003, 51, 10, "chromium", "idle"),
    ];
    let (status, _) = agent.send(server, spans).await;
    assert_eq!(status, 200);
    // A web event without consent: refused at ingest, which raises an alert.
    let (status, _) = agent.send(server, vec![synthetic_event(1_000_000, candor_proto::Category::Web)]).await;
    assert_eq!(status, 200);
    Seed { sales, rnd, lisi, zhangsan, agent_rnd: other.id }
}

#[tokio::test]
async fn console_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "[auth]\nmax_failed_logins = 5\nlockout_minutes = 15\n").await;
    let mut agent = Agent::enroll(&server, "agent", &fast_agent_toml(""));
    let other = Agent::enroll(&server, "other", "");
    let team = server.team().await;
    let seed = seed(&server, &team, &mut agent, &other).await;
    let mgr = team
        .sys
        .post("/api/v1/admins", json!({"username": "mgr", "role": "department_manager", "departments": [seed.sales]}))
        .await;
    let mgr_pw = mgr["password"].as_str().unwrap().to_string();
    let console = format!("{}/", server.url);
    let b = Browser::start().await;

    // System admin: every page in their menu renders, in Chinese by default.
    b.login(&console, "admin", &server.admin_password()).await;
    assert_eq!(b.text("#card-agents_total .num").await, "2");
    assert!(b.text("nav").await.contains("终端"));
    b.page_ok("dashboard").await;
    b.screenshot("dashboard-zh").await;
    for page in ["agents", "org", "policies", "consent", "apps", "retention", "admins", "account"] {
        b.click(&format!("#nav-{page}")).await;
        b.page_ok(page).await;
        b.screenshot(&format!("{page}-system-admin")).await;
    }
    // The system admin reads no collected data and not the access log.
    let nav = b.text("nav").await;
    assert!(!nav.contains("事件") && !nav.contains("访问日志"), "{nav}");

    // Language switch, remembered for the account.
    let lang = b.client.find(fantoccini::Locator::Css("#lang")).await.unwrap();
    lang.select_by_value("en").await.unwrap();
    b.wait_text("nav", "Endpoints").await;
    b.click("#nav-dashboard").await;
    b.page_ok("dashboard").await;
    b.screenshot("dashboard-en").await;
    b.goto(&console).await;
    b.wait_text("nav", "Endpoints").await;

    // Org import and token creation through the UI.
    b.click("#nav-org").await;
    b.page_ok("org").await;
    b.fill("#org-csv", "department,name,username\n总部/财务部,王五,wangwu\n").await;
    b.click("#page-org .panel:last-child button").await;
    b.wait_text("#page-org", "1 departments, 1 employees created").await;
    b.click("#nav-agents").await;
    b.page_ok("agents").await;
    b.click("#page-agents form button").await;
    let token = b.find("#new-token").await.prop("value").await.unwrap();
    assert!(token.unwrap_or_default().starts_with("CANDOR1."));
    // An endpoint's detail page.
    b.goto(&format!("{console}#/agents/{}", agent.id)).await;
    b.page_ok("agents").await;
    b.wait_text("#page-agents", "up to date").await;
    b.screenshot("agent-detail").await;
    b.logout().await;

    // Security admin: events with filters that change the numbers.
    b.login(&console, "sec", &team.sec_password).await;
    b.click("#nav-events").await;
    b.page_ok("events").await;
    b.click("#page-events form button").await;
    b.wait_text("#page-events table", "synthetic").await;
    let rows_all = b.count("#page-events tbody tr").await;
    assert_eq!(rows_all, 50, "first page of 300");
    let cat = b.client.find(fantoccini::Locator::Css("#page-events select[name=category]")).await.unwrap();
    cat.select_by_value("system").await.unwrap();
    b.click("#page-events form button").await;
    b.wait_text("#page-events table", "agent_started").await;
    let rows_system = b.count("#page-events tbody tr").await;
    assert!(rows_system < rows_all && rows_system >= 1, "category filter narrows: {rows_system}");
    // A date range before any event: nothing.
    b.client
        .execute("document.querySelector('#page-events input[name=to]').value = '2001-01-01T00:00'", vec![])
        .await
        .unwrap();
    b.click("#page-events form button").await;
    b.wait_text("#page-events", "暂无数据").await;
    b.screenshot("events").await;
    for page in ["dashboard", "policies", "consent"] {
        b.click(&format!("#nav-{page}")).await;
        b.page_ok(page).await;
    }

    // The monitoring notice is published from the consent page, and a paper
    // consent is recorded with the scan of the signed form.
    b.click("#nav-consent").await;
    b.page_ok("consent").await;
    b.wait_text("#notice-panel", "尚未发布").await;
    b.client
        .execute(
            "document.querySelector('#notice-panel details').open = true;
             const f = document.querySelector('#notice-panel form');
             const set = (n, v) => { f.querySelector(`[name=${n}]`).value = v; };
             set('notice_title_zh', '员工监控告知书'); set('notice_title_en', 'Employee monitoring notice');
             set('notice_text_zh', '公司依法记录以下工作数据。'); set('notice_text_en', 'The company records the work data below.');
             set('p_activity_zh', '统计工作时间'); set('p_activity_en', 'working-time statistics');
             set('p_web_zh', '防范违法网站'); set('p_web_en', 'blocking unlawful sites');
             f.requestSubmit();",
            vec![],
        )
        .await
        .unwrap();
    b.wait_text("#notice-panel", "已发布第 1 版").await;
    b.goto(&format!("{console}#/consent/{}", seed.zhangsan)).await;
    b.page_ok("consent").await;
    b.wait_text("#notice-panel", "第 1 版").await;
    let form = "#page-consent .panel:last-child form";
    b.click(&format!("{form} button")).await;
    b.wait_text("#page-consent .panel:last-child", "请选择签字表的扫描件").await;
    let scan = tmp.path().join("signed.png");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[1u8; 64]);
    std::fs::write(&scan, &png).unwrap();
    b.client
        .find(fantoccini::Locator::Css(&format!("{form} input[name=scan]")))
        .await
        .unwrap()
        .send_keys(scan.to_str().unwrap())
        .await
        .unwrap();
    b.client
        .find(fantoccini::Locator::Css(&format!("{form} select[name=category]")))
        .await
        .unwrap()
        .select_by_value("web")
        .await
        .unwrap();
    b.click(&format!("{form} button")).await;
    b.wait_text("#consent-records", "纸质签字 · 签字表扫描件").await;
    b.screenshot("consent-paper").await;
    let records = team.sec.get(&format!("/api/v1/consents?employee_id={}", seed.zhangsan)).await;
    let paper = records.as_array().unwrap().iter().find(|c| c["method"] == "paper").expect("the paper record");
    assert_eq!((paper["category"].as_str(), paper["granted"].as_bool()), (Some("web"), Some(true)));
    let key = paper["scan"].as_str().unwrap();
    let r = team.sec.client.get(format!("{}/api/v1/consents/scans/{key}", server.url)).bearer_auth(team.sec.token());
    assert_eq!(r.send().await.unwrap().bytes().await.unwrap().to_vec(), png, "the uploaded file, unchanged");

    // Timeline of one employee's day.
    b.goto(&format!("{console}#/timeline/{}", seed.zhangsan)).await;
    b.page_ok("timeline").await;
    // 300 synthetic events and the agent's start.
    assert!(b.wait_text("#page-timeline", "(305)").await.contains("张三"));
    assert_eq!(b.count("#timeline-chart rect[data-state=active]").await, 2, "two active spans on the day strip");
    assert_eq!(b.count("#timeline-chart rect[data-state=idle]").await, 1);
    b.wait_text("#timeline-active_time", "50 min").await;
    b.wait_text("#timeline-idle_time", "10 min").await;
    b.wait_text("#timeline-apps", "WPS 文字").await;
    b.screenshot("timeline").await;

    // Statistics: a department filter changes the numbers; exports are valid files.
    b.click("#nav-stats").await;
    b.page_ok("stats").await;
    b.wait_text("#stats-total", "304").await;
    b.wait_text("#stats-active_time", "50 min").await;
    let split = b.text("#stats-activity .panel").await;
    assert!(split.contains("生产 30 min (60%)") && split.contains("中性 20 min (40%)"), "{split}");
    b.screenshot("stats").await;
    b.goto(&format!("{console}#/stats?from=2026-01-01&to=2030-12-31&department={}", seed.rnd)).await;
    b.wait_text("#page-stats", "不超过 366 天").await;
    let from = candor_server::company_time::date_at(chrono_tz::Asia::Shanghai, candor_proto::now_ms()).to_string();
    b.goto(&format!("{console}#/stats?from={from}&to={from}&department={}", seed.rnd)).await;
    b.page_ok("stats").await;
    let rnd_text = b.text("#stats-total").await;
    assert!(!rnd_text.contains("300"), "R&D has no events: {rnd_text}");
    b.wait_text("#stats-active_time", "0 min").await;
    b.goto(&format!("{console}#/stats?from={from}&to={from}&department={}", seed.sales)).await;
    b.wait_text("#stats-total", "304").await;
    let csv_href = b.attr("#export-csv", "href").await;
    let xlsx_href = b.attr("#export-xlsx", "href").await;
    // Download with the browser's own cookie session.
    let csv = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(r => r.text()).then(done);",
            vec![json!(csv_href)],
        )
        .await
        .unwrap();
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with("date,application,name,class,active_minutes,idle_minutes,locked_minutes\n"), "{csv}");
    assert!(csv.contains(&format!("{from},wps,WPS Writer,productive,30,0,0\n")), "{csv}");
    assert!(csv.contains(&format!("{from},chromium,,neutral,20,10,0\n")), "{csv}");
    let xlsx =
        team.sec.client.get(format!("{}{}", server.url, xlsx_href)).bearer_auth(team.sec.token()).send().await.unwrap();
    assert!(xlsx.headers()["content-type"].to_str().unwrap().contains("spreadsheetml"));
    let bytes = xlsx.bytes().await.unwrap();
    assert_eq!(&bytes[..2], b"PK", "XLSX is a zip");
    assert!(bytes.windows(15).any(|w| w == &b"xl/workbook.xml"[..]), "XLSX has a workbook part");

    // Applications: the security admin classifies chromium as unproductive
    // for the sales department; the statistics follow at once.
    b.click("#nav-apps").await;
    b.page_ok("apps").await;
    b.wait_text("#apps-table", "WPS 文字").await;
    b.client
        .execute(
            "const row = document.querySelector('#class-chromium').closest('tr');
             row.querySelector('select[name=department]').value = arguments[0];
             row.querySelector('select[name=department]').dispatchEvent(new Event('change'));
             row.querySelector('select[name=class]').value = 'unproductive';",
            vec![json!(seed.sales.to_string())],
        )
        .await
        .unwrap();
    b.click("#class-chromium").await;
    b.wait_text("#apps-table", "销售部: 非生产").await;
    b.screenshot("apps").await;
    b.goto(&format!("{console}#/stats?from={from}&to={from}&department={}", seed.sales)).await;
    let split = b.wait_text("#stats-activity .panel", "非生产 20 min").await;
    assert!(split.contains("生产 30 min"), "{split}");

    // Alerts inbox: the refused web event raised one; acknowledge, assign, comment.
    b.click("#nav-alerts").await;
    b.page_ok("alerts").await;
    b.wait_text("#page-alerts", "已拒收 1 个事件：类别 web").await;
    b.click("#page-alerts tbody tr").await;
    b.page_ok("alerts").await;
    b.click("#alert-acknowledged").await;
    b.wait_text("#page-alerts", "已确认").await;
    b.click("#alert-assign-me").await;
    b.wait_text("#page-alerts", "处理人: sec").await;
    b.fill("#alert-comment", "已联系员工，确认为误操作").await;
    b.click("#page-alerts form button").await;
    b.wait_text("#page-alerts table", "已联系员工").await;
    b.screenshot("alert").await;
    b.click("#nav-alerts").await;
    b.page_ok("alerts").await;
    assert!(b.text("#page-alerts").await.contains("暂无数据"), "no open alerts remain");

    // Software control: an attempt the endpoint blocked and a package install are listed;
    // a rule added through the page lands in the policy.
    let blocked = candor_proto::Payload::SoftwareControl {
        outcome: "blocked".into(),
        reason: "rule".into(),
        rule: Some("游戏".into()),
        exe: "/home/zhangsan/supergame".into(),
        sha256: Some("ab".repeat(32)),
        package: None,
        user: Some("zhangsan".into()),
        uid: Some(1000),
        pid: 4242,
        mode: "fanotify".into(),
        count: 7,
    };
    let installed =
        candor_proto::Payload::PackageChange { action: "install".into(), package: "supertux".into(), version: None };
    let system = |seq: u64, p: candor_proto::Payload| candor_proto::Event {
        seq,
        ts_ms: candor_proto::now_ms(),
        duration_ms: None,
        category: candor_proto::Category::System,
        payload: p.to_json(),
    };
    let (status, _) = agent.send(&server, vec![system(3_000_000, blocked), system(3_000_001, installed)]).await;
    assert_eq!(status, 200);
    b.click("#nav-software").await;
    b.page_ok("software").await;
    let row = b.wait_text("#software-attempts", "supergame").await;
    assert!(row.contains("游戏") && row.contains("已阻止") && row.contains("7"), "{row}");
    b.wait_text("#software-packages", "supertux").await;
    b.client
        .execute(
            "const f = document.querySelectorAll('.software-policy form')[1];
             f.querySelector('[name=name]').value = '游戏平台';
             f.querySelector('[name=kind]').value = 'file';
             f.querySelector('[name=value]').value = 'steam*';
             f.querySelector('[name=work_hours]').checked = true;
             f.requestSubmit();",
            vec![],
        )
        .await
        .unwrap();
    b.wait_text(".software-policy", "steam*").await;
    b.screenshot("software").await;
    let policy = &team.sec.get("/api/v1/policies").await[0]["doc"];
    let rule = &policy["software"]["rules"][0];
    assert_eq!((rule["name"].as_str(), rule["file"].as_str()), (Some("游戏平台"), Some("steam*")), "{policy}");
    assert_eq!(rule["schedule"]["from"], "09:00");
    assert!(policy["collect"].is_object(), "the rest of the policy is kept: {policy}");
    b.logout().await;

    // Auditor: the access log shows the security admin's reads.
    b.login(&console, "aud", &team.aud_password).await;
    b.click("#nav-access").await;
    b.page_ok("access").await;
    b.wait_text("#page-access", "events.query").await;
    b.wait_text("#page-access", "timeline.view").await;
    b.screenshot("access-log").await;
    b.logout().await;

    // Department manager: sees only their department, by page, URL and API.
    b.login(&console, "mgr", &mgr_pw).await;
    b.click("#nav-agents").await;
    b.page_ok("agents").await;
    let rows = b.count("#page-agents tbody tr").await;
    assert_eq!(rows, 1, "only the sales endpoint");
    b.goto(&format!("{console}#/agents/{}", seed.agent_rnd)).await;
    b.wait_text("#page-agents", "未找到").await;
    b.screenshot("manager-denied").await;
    let mgr_api = AdminApi::login(&server.url, &server.ca_fingerprint(), "mgr", &mgr_pw).await;
    for path in [format!("/api/v1/employees/{}", seed.lisi), format!("/api/v1/agents/{}", seed.agent_rnd)] {
        let (s, _) = mgr_api.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(s, 404, "{path}");
    }
    let (s, _) = mgr_api.call(reqwest::Method::GET, &format!("/api/v1/events?agent={}", seed.agent_rnd), None).await;
    assert_eq!(s, 404);
    let depts = mgr_api.get("/api/v1/departments").await;
    assert!(depts.as_array().unwrap().iter().all(|d| d["id"] != seed.rnd));
    let (s, _) = mgr_api.call(reqwest::Method::GET, "/api/v1/access-log", None).await;
    assert_eq!(s, 403);
    b.logout().await;

    // Five wrong passwords lock the account; the right one is then refused too.
    for _ in 0..5 {
        b.fill("#login-form input[name=username]", "mgr").await;
        b.fill("#login-form input[name=password]", "wrong").await;
        b.click("#login-form button").await;
        b.wait_text("#login-form", "用户名或密码错误").await;
    }
    b.fill("#login-form input[name=password]", &mgr_pw).await;
    b.click("#login-form button").await;
    b.wait_text("#login-form", "已锁定").await;
    b.screenshot("locked").await;

    // A screen picture of the employee's day, collected under policy and consent.
    agent.stop();
    let policy = team.sec.get("/api/v1/policies").await[0].clone();
    let mut doc = policy["doc"].clone();
    doc["collect"]["screen"] = json!(true);
    team.sec.put(&format!("/api/v1/policies/{}", policy["id"]), json!({"doc": doc})).await;
    team.consent(seed.zhangsan, "screen", true).await;
    let mut enc = candor_screen::Encoder::new(Default::default());
    let frame = screen_event(2_100_000, candor_proto::now_ms(), ":0", &screen_frame(&mut enc, 90, 0));
    let (_, ack) = agent.send(&server, vec![frame]).await;
    assert_eq!(ack["stored"], 1, "{ack}");

    // The employee's own portal: their day, who viewed it (the security admin did, above).
    let account = team.sys.post("/api/v1/admins", json!({"username": "zhangsan", "role": "employee"})).await;
    b.login(&console, "zhangsan", account["password"].as_str().unwrap()).await;
    b.page_ok("mydata").await;
    b.wait_text("#mydata-active_time", "50 min").await;
    b.wait_text("#mydata-apps", "WPS 文字").await;
    let nav = b.text("nav").await;
    assert!(!nav.contains("终端") && !nav.contains("统计"), "an employee sees only the portal: {nav}");
    b.wait_text("#mydata-alerts", "拒收事件").await;
    wait_until(Duration::from_secs(10), "their screen picture shown", async || {
        b.client.execute("return document.querySelector('#mydata-picture').naturalWidth", vec![]).await.unwrap() == 256
    })
    .await;
    assert_eq!(b.count("#mydata-alerts tr.clickable").await, 0, "no alert page to open from the portal");
    b.screenshot("portal-mydata").await;
    b.click("#nav-views").await;
    b.page_ok("views").await;
    b.wait_text("#views-table", "timeline.view").await;
    b.screenshot("portal-views").await;
    // The employee answers the notice per category in the portal.
    b.click("#nav-notice").await;
    b.page_ok("notice").await;
    b.wait_text("#notice-state", "请阅读告知书").await;
    assert!(b.text("#notice-activity").await.contains("统计工作时间"));
    b.click("#notice-activity input[value=true]").await;
    b.click("#notice-web input[value=false]").await;
    b.click("#page-notice form button").await;
    b.wait_text("#notice-state", "您已答复此版本").await;
    b.screenshot("portal-notice").await;
    let records = team.sec.get(&format!("/api/v1/consents?employee_id={}", seed.zhangsan)).await;
    let answered: Vec<(&str, bool)> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["method"] == "portal" && c["notice_version"] == 1)
        .map(|c| (c["category"].as_str().unwrap(), c["granted"].as_bool().unwrap()))
        .collect();
    assert_eq!(answered, [("activity", true), ("web", false)]);
    agent.stop();
}
