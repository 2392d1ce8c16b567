//! Web filtering end to end in a private network namespace, with real tools:
//! dnsmasq is the upstream resolver, a local HTTP and HTTPS server stands in
//! for web sites, and `dig` and `curl` are the applications. The agent's
//! resolver and nftables redirect are the real ones: allowed names resolve,
//! blocked names get NXDOMAIN (also when a client asks another resolver
//! directly, over UDP or TCP), a category list blocks only its category,
//! DNS-over-HTTPS names are refused, an HTTPS host is reset by SNI and a
//! plain-HTTP host gets the block page; visits and blocked attempts reach the
//! server's statistics; switching the filter off removes the redirect; and
//! malformed DNS packets never stop the resolver.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

const UPSTREAM: &str = "10.9.0.1";
const SITE: &str = "10.9.0.80";
const OTHER: &str = "10.9.0.81";
/// The published list at SITE/games.txt has gained a second name.
static LIST_GREW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Move this thread (and every thread and process it starts) into a new
/// network namespace with loopback up and the test addresses on it.
fn private_network() {
    // SAFETY: unshare only changes this thread's namespaces.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "unshare(CLONE_NEWNET) needs root: {}", std::io::Error::last_os_error());
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("ip (iproute2)");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ip(&["link", "set", "lo", "up"]);
    for a in [UPSTREAM, SITE, OTHER] {
        ip(&["addr", "add", &format!("{a}/32"), "dev", "lo"]);
    }
    // A link that is up, as on a desktop: Chromium considers itself offline with loopback alone.
    ip(&["link", "add", "cdr0", "type", "veth", "peer", "name", "cdr1"]);
    ip(&["addr", "add", "10.9.1.1/24", "dev", "cdr0"]);
    ip(&["link", "set", "cdr0", "up"]);
    ip(&["link", "set", "cdr1", "up"]);
    // And a default route, so the system's resolver (whatever resolv.conf names) is reachable — to the redirect.
    ip(&["route", "add", "default", "dev", "cdr0"]);
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where Debian's Chromium reads managed policies (compiled in: a test cannot move it).
const POLICY_DIR: &str = "/etc/chromium/policies/managed";

/// A file left by the agent under test, removed even when the test fails.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn dnsmasq(dir: &std::path::Path) -> Killed {
    let conf = dir.join("dnsmasq.conf");
    std::fs::write(
        &conf,
        format!(
            "no-resolv\nno-hosts\nbind-interfaces\nlisten-address={UPSTREAM}\nuser=root\n\
             address=/allowed.test/{SITE}\naddress=/blocked.test/{OTHER}\naddress=/games.test/{SITE}\n\
             address=/sni-blocked.test/{SITE}\naddress=/dns.google/{OTHER}\naddress=/console.test/{SITE}\naddress=/fetched.test/{SITE}\naddress=/fetched2.test/{SITE}\n"
        ),
    )
    .unwrap();
    let child = Command::new("dnsmasq").args(["--keep-in-foreground", "-C"]).arg(&conf).spawn().expect("dnsmasq");
    let k = Killed(child);
    for _ in 0..50 {
        if dig(&["@10.9.0.1", "+short", "allowed.test"]).0.trim() == SITE {
            return k;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("dnsmasq did not answer");
}

/// `dig` with short timeouts: (stdout, exit ok).
fn dig(args: &[&str]) -> (String, bool) {
    let out = Command::new("dig").args(["+time=2", "+tries=1"]).args(args).output().expect("dig (bind9-dnsutils)");
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.success())
}

fn status_of(args: &[&str]) -> String {
    let (out, _) = dig(args);
    out.lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap_or_default().to_string())
        .unwrap_or_else(|| format!("no answer: {out}"))
}

fn curl(args: &[&str]) -> (String, i32) {
    let out = Command::new("curl").args(["-s", "--max-time", "5"]).args(args).output().expect("curl");
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code().unwrap_or(-1))
}

/// `/`: a plain greeting naming the host; any other path: an HTML page titled by its path.
fn respond(mut s: impl Read + Write, scheme: &str) {
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    let req = String::from_utf8_lossy(&buf[..n]).to_string();
    let host = req.lines().find_map(|l| l.strip_prefix("Host: ")).unwrap_or("?").trim().to_string();
    let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (kind, body) = if path == "/" {
        ("text/plain", format!("hello from {host} over {scheme}"))
    } else if path == "/games.txt" {
        let grown = if LIST_GREW.load(std::sync::atomic::Ordering::Relaxed) { "||fetched2.test^\n" } else { "" };
        ("text/plain", format!("# a published list\n||fetched.test^\n{grown}"))
    } else {
        ("text/html; charset=utf-8", format!("<!doctype html><title>Page {path}</title><p>{path} on {host}"))
    };
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A web site on SITE:80 and SITE:443 (TLS for any of the test names).
fn web_site() {
    let http = TcpListener::bind((SITE, 80)).unwrap();
    std::thread::spawn(move || {
        for s in http.incoming().flatten() {
            respond(s, "http");
        }
    });
    let cert = rcgen::generate_simple_self_signed(vec!["allowed.test".into(), "sni-blocked.test".into()]).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into()),
        )
        .unwrap();
    let config = Arc::new(config);
    // A DNS-over-TLS port that accepts, so a refused connection means the filter refused it.
    let dot = TcpListener::bind((SITE, 853)).unwrap();
    std::thread::spawn(move || for _conn in dot.incoming() {});
    let https = TcpListener::bind((SITE, 443)).unwrap();
    std::thread::spawn(move || {
        for s in https.incoming().flatten() {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else { continue };
            respond(rustls::StreamOwned::new(conn, s), "https");
        }
    });
}

fn redirect_installed() -> bool {
    Command::new("nft").args(["list", "table", "inet", "candor"]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn dns_and_sni_filtering_with_real_tools() {
    private_network();
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(scenario());
}

async fn scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let _upstream = dnsmasq(tmp.path());
    web_site();
    let server = Server::start(tmp.path(), "[web]\nlist_check_secs = 1\n").await;
    let team = server.team().await;
    // The browser profile the extension's native host manifest goes into.
    let profile = tmp.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut agent = Agent::enroll(
        &server,
        "desk",
        &fast_agent_toml(&format!(
            "[web]\nupstreams = [\"{UPSTREAM}:53\"]\nvisit_flush_secs = 1\nbrowser_socket = \"{}\"\nbrowser_host = \"{}\"\n\
             native_host_dirs = [\"{}\"]\nextension_dir = \"{}\"\nbrowser_policy_dirs = [\"{POLICY_DIR}\"]\n",
            tmp.path().join("browser.sock").display(),
            tmp.path().join("candor-web-host").display(),
            profile.join("NativeMessagingHosts").display(),
            tmp.path().join("extension").display(),
        )),
    );
    agent.start(&[]);
    let emp = team.setup_collection(agent.id, &["web"], true).await;

    // A category list, uploaded with one bad line that is reported and skipped.
    let saved = team
        .sec
        .post(
            "/api/v1/web/lists",
            json!({"name": "games list", "category": "games", "text": "# games\n||games.test^\nnot a domain!\n0.0.0.0 arcade.test\n"}),
        )
        .await;
    assert_eq!((saved["rules"].as_u64(), saved["errors"].as_u64()), (Some(2), Some(1)), "{saved}");
    assert_eq!(saved["first_errors"][0]["line"], 3);
    let (status, bad) = team
        .sec
        .call(
            reqwest::Method::POST,
            "/api/v1/web/lists",
            Some(json!({"name": "x", "category": "games", "text": "only garbage!\n"})),
        )
        .await;
    assert_eq!(status, 400, "{bad}");

    let policies = team.sec.get("/api/v1/policies").await;
    let id = policies[0]["id"].as_u64().unwrap();
    let (status, e) = team
        .sec
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/policies/{id}"),
            Some(json!({"doc": {"collect": {"web": true}, "web": {"filter": true, "block": ["bad rule here"]}}})),
        )
        .await;
    assert_eq!(status, 400, "a bad web rule is refused: {e}");
    team.sec
        .put(
            &format!("/api/v1/policies/{id}"),
            json!({"doc": {"collect": {"web": true}, "web": {
                "filter": true,
                "block": ["||blocked.test^", "sni-blocked.test"],
                "allow": ["ok.blocked.test"],
                "block_categories": [{"category": "games"}],
                "full_urls": true
            }}}),
        )
        .await;
    team.wait_applied(agent.id).await;
    for _ in 0..100 {
        if redirect_installed() && dig(&["@127.0.0.153", "+short", "allowed.test"]).0.trim() == SITE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(redirect_installed(), "the redirect is installed: {}", agent.log());
    assert_eq!(dig(&["@127.0.0.153", "+short", "allowed.test"]).0.trim(), SITE, "{}", agent.log());

    // DNS: allowed, blocked, allowed override, category, DoH; another resolver asked directly.
    assert_eq!(dig(&["@127.0.0.153", "+short", "allowed.test"]).0.trim(), SITE);
    assert_eq!(status_of(&["@127.0.0.153", "www.blocked.test"]), "NXDOMAIN");
    assert_eq!(status_of(&["@127.0.0.153", "ok.blocked.test"]), "NOERROR", "allow overrides block");
    assert_eq!(status_of(&["@127.0.0.153", "x.games.test"]), "NXDOMAIN", "category list");
    assert_eq!(status_of(&["@127.0.0.153", "arcade.test"]), "NXDOMAIN", "hosts line in the list");
    assert_eq!(status_of(&["@127.0.0.153", "dns.google"]), "NXDOMAIN", "DNS-over-HTTPS name");
    assert_eq!(status_of(&[&format!("@{UPSTREAM}"), "www.blocked.test"]), "NXDOMAIN", "other resolver, UDP");
    assert_eq!(status_of(&["+tcp", &format!("@{UPSTREAM}"), "www.blocked.test"]), "NXDOMAIN", "other resolver, TCP");
    assert_eq!(dig(&[&format!("@{UPSTREAM}"), "+short", "allowed.test"]).0.trim(), SITE, "other resolver, allowed");
    // A cached answer keeps the client's spelling of the name.
    let mixed = dig(&["@127.0.0.153", "AlLoWeD.test"]).0;
    assert!(mixed.contains("AlLoWeD.test."), "{mixed}");

    // SNI and Host: reset for a blocked HTTPS host, block page for plain HTTP, allowed ones pass.
    let (body, code) = curl(&["-k", "--resolve", &format!("allowed.test:443:{SITE}"), "https://allowed.test/"]);
    assert_eq!((body.as_str(), code), ("hello from allowed.test over https", 0));
    let (_, code) = curl(&["-k", "--resolve", &format!("sni-blocked.test:443:{SITE}"), "https://sni-blocked.test/"]);
    assert_ne!(code, 0, "a blocked SNI must not connect");
    let (body, code) = curl(&["--resolve", &format!("sni-blocked.test:80:{SITE}"), "http://sni-blocked.test/"]);
    assert_eq!(code, 0);
    assert!(body.contains("此网站已被公司策略拦截") && body.contains("sni-blocked.test"), "{body}");
    let (body, _) = curl(&["--resolve", &format!("allowed.test:80:{SITE}"), "http://allowed.test/"]);
    assert_eq!(body, "hello from allowed.test over http");

    let (_, code) = curl(&["http://127.0.0.1:15380/"]);
    assert_ne!(code, 0, "a connection made to the filter itself is refused, not relayed to itself");
    let (body, _) = curl(&["--resolve", &format!("allowed.test:80:{SITE}"), "http://allowed.test/"]);
    assert_eq!(body, "hello from allowed.test over http", "the filter still works");

    // Hostile packets: garbage, a truncated header, a response, a huge name count.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for junk in [
        &b""[..],
        b"\x12",
        b"\x12\x34\x01\x00\x00\x01",
        b"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00",
        &[0xff; 512],
    ] {
        sock.send_to(junk, "127.0.0.153:53").unwrap();
    }
    assert_eq!(dig(&["@127.0.0.153", "+short", "allowed.test"]).0.trim(), SITE, "the resolver survives junk");

    // Visits and blocked attempts reach the statistics, categorised.
    let date = chrono::Utc::now().date_naive();
    let (from, to) = (date.pred_opt().unwrap(), date.succ_opt().unwrap());
    let q = format!("/api/v1/web/stats?from={from}&to={to}&employee={emp}");
    let mut stats = Value::Null;
    wait_until(Duration::from_secs(20), "visits in the statistics", async || {
        stats = team.sec.get(&q).await;
        let d = |name: &str| stats["domains"].as_array().unwrap().iter().find(|x| x["domain"] == name).cloned();
        d("allowed.test").is_some_and(|x| x["visits"].as_i64() > Some(0))
            && d("www.blocked.test").is_some_and(|x| x["blocked"].as_i64() > Some(0))
            && d("x.games.test").is_some_and(|x| x["category"] == "games")
            && d("sni-blocked.test").is_some_and(|x| x["blocked"].as_i64() > Some(0))
    })
    .await;
    let allowed = stats["domains"].as_array().unwrap().iter().find(|x| x["domain"] == "allowed.test").unwrap();
    assert!(allowed["bytes"].as_i64() > Some(0), "bytes through the SNI/Host filter: {allowed}");
    assert!(stats["categories"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["key"] == "games" && c["blocked"].as_i64() > Some(0)));
    let log = team.aud.get("/api/v1/access-log").await;
    assert!(log.to_string().contains("web.employee"), "looking at one person's web use is logged");

    // The console page shows the same figures, and saves a policy's filter settings.
    let b = browser::Browser::start().await;
    let console = format!("{}/", server.url);
    b.login(&console, "sec", &team.sec_password).await;
    b.goto(&format!("{console}#/web?from={from}&to={to}&employee={emp}")).await;
    b.page_ok("web").await;
    b.wait_text("#web-domains", "www.blocked.test").await;
    assert!(b.text("#web-categories").await.contains("games"));
    assert!(b.text("#web-lists").await.contains("games list"));
    b.screenshot("web").await;
    assert_eq!(status_of(&["@127.0.0.153", "www.console.test"]), "NOERROR");
    b.fill(".web-policy textarea[name=block]", "||blocked.test^\nsni-blocked.test\n||console.test^").await;
    b.click(".web-policy form button").await;
    b.wait_text(".web-policy", "已保存").await;
    let doc = team.sec.get(&format!("/api/v1/policies/{id}")).await;
    assert_eq!(doc["doc"]["web"]["block"][2], "||console.test^", "{doc}");
    assert_eq!(doc["doc"]["web"]["block_categories"][0]["category"], "games");
    team.wait_applied(agent.id).await;
    wait_until(Duration::from_secs(10), "a rule saved in the console blocks", async || {
        status_of(&["@127.0.0.153", "www.console.test"]) == "NXDOMAIN"
    })
    .await;

    // The browser extension in real Chromium: pages in the active tab reach the server with
    // their titles (the policy asks for full URLs) and the time they were in front.
    // Nothing tells this Chromium about the extension but the managed policy the agent wrote
    // (the real folder Debian's Chromium reads): it installs the signed package from there.
    let _policy = RemoveOnDrop(Path::new(POLICY_DIR).join("candor.json"));
    let managed: Value =
        serde_json::from_slice(&std::fs::read(&_policy.0).expect("the agent's browser policy")).unwrap();
    let forced = managed["ExtensionInstallForcelist"][0].as_str().unwrap().to_string();
    let (ext_id, updates) = forced.split_once(';').unwrap();
    assert_eq!(updates, format!("file://{}/updates.xml", tmp.path().join("extension").display()));
    let chromium = browser::Browser::start_with(&[format!("--user-data-dir={}", profile.display())]).await;
    wait_until(Duration::from_secs(30), "Chromium installs the extension the policy forces", async || {
        profile.join("Default/Extensions").join(ext_id).is_dir()
    })
    .await;
    chromium.goto("http://allowed.test/first").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    chromium.goto("http://allowed.test/second").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    chromium.goto("about:blank").await;
    let browser_visits = || {
        let db = server.db();
        let mut st = db
            .prepare("SELECT duration_ms, CAST(payload AS TEXT) FROM events WHERE json_extract(payload, '$.source') = 'browser'")
            .unwrap();
        st.query_map([], |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, String>(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    };
    wait_until(Duration::from_secs(20), "the extension's page reports", async || {
        browser_visits().iter().any(|(_, p)| p.contains("/second"))
    })
    .await;
    let visits = browser_visits();
    let first = visits.iter().find(|(_, p)| p.contains("/first")).expect("the first page");
    let v: Value = serde_json::from_str(&first.1).unwrap();
    assert_eq!((v["domain"].as_str(), v["title"].as_str()), (Some("allowed.test"), Some("Page /first")), "{v}");
    assert!(first.0.unwrap_or(0) >= 2000, "dwell of the first page: {first:?}");
    let st = team.sec.get(&q).await;
    let dwell =
        st["domains"].as_array().unwrap().iter().find(|x| x["domain"] == "allowed.test").unwrap()["dwell_ms"].as_i64();
    assert!(dwell >= Some(3000), "dwell in the statistics: {st}");
    drop(chromium);

    // A list fetched from a URL (now, and every refresh_hours) joins its category.
    assert_eq!(status_of(&["@127.0.0.153", "www.fetched.test"]), "NOERROR");
    let fetched = team
        .sec
        .post(
            "/api/v1/web/lists",
            json!({"name": "published games", "category": "games", "url": format!("http://{SITE}/games.txt"), "refresh_hours": 24}),
        )
        .await;
    assert_eq!(fetched["rules"], 1, "{fetched}");
    let lists = team.sec.get("/api/v1/web/lists").await;
    let entry = lists.as_array().unwrap().iter().find(|l| l["name"] == "published games").unwrap();
    assert_eq!(entry["source_url"], format!("http://{SITE}/games.txt"));
    team.wait_applied(agent.id).await;
    wait_until(Duration::from_secs(10), "the fetched list blocks", async || {
        status_of(&["@127.0.0.153", "www.fetched.test"]) == "NXDOMAIN"
    })
    .await;
    // It is fetched again once its refresh period has passed, and what it gained blocks too.
    LIST_GREW.store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status_of(&["@127.0.0.153", "www.fetched2.test"]), "NOERROR", "not due yet");
    // (As if a day had passed: the server's record of the last fetch is moved back.)
    let db = rusqlite::Connection::open(tmp.path().join("data/candor.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute("UPDATE web_lists SET fetched_ms = fetched_ms - 25 * 3600000 WHERE name = 'published games'", [])
        .unwrap();
    wait_until(Duration::from_secs(15), "the re-fetched list blocks", async || {
        status_of(&["@127.0.0.153", "www.fetched2.test"]) == "NXDOMAIN"
    })
    .await;
    let lists = team.sec.get("/api/v1/web/lists").await;
    let entry = lists.as_array().unwrap().iter().find(|l| l["name"] == "published games").unwrap();
    assert_eq!(entry["rules"], 2, "{entry}");

    // A category's lists block only inside its schedule (the endpoint's local time).
    let hhmm = |m: i64| format!("{:02}:{:02}", m.rem_euclid(1440) / 60, m.rem_euclid(1440) % 60);
    let now = {
        use chrono::Timelike;
        let t = chrono::Local::now();
        i64::from(t.hour() * 60 + t.minute())
    };
    let window = async |from: i64, to: i64| {
        let mut doc = team.sec.get(&format!("/api/v1/policies/{id}")).await["doc"].clone();
        doc["web"]["block_categories"] = json!([{"category": "games", "schedule": {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": hhmm(from), "to": hhmm(to)
        }}]);
        team.sec.put(&format!("/api/v1/policies/{id}"), json!({ "doc": doc })).await;
        team.wait_applied(agent.id).await;
    };
    window(now + 120, now + 180).await;
    wait_until(Duration::from_secs(10), "games open outside their window", async || {
        status_of(&["@127.0.0.153", "www.fetched.test"]) == "NOERROR"
    })
    .await;
    assert_eq!(status_of(&["@127.0.0.153", "www.blocked.test"]), "NXDOMAIN", "rules without a schedule still block");
    window(now - 60, now + 60).await;
    wait_until(Duration::from_secs(10), "games blocked inside their window", async || {
        status_of(&["@127.0.0.153", "www.fetched.test"]) == "NXDOMAIN"
    })
    .await;

    // DNS-over-TLS is refused while block_doh is on; turning it off updates the running redirect.
    let dot = || {
        std::net::TcpStream::connect_timeout(
            &(SITE.parse::<std::net::IpAddr>().unwrap(), 853).into(),
            Duration::from_secs(2),
        )
        .is_ok()
    };
    assert!(!dot(), "DoT must be refused");
    let mut doc = team.sec.get(&format!("/api/v1/policies/{id}")).await["doc"].clone();
    doc["web"]["block_doh"] = json!(false);
    team.sec.put(&format!("/api/v1/policies/{id}"), json!({ "doc": doc })).await;
    team.wait_applied(agent.id).await;
    wait_until(Duration::from_secs(10), "DoT allowed after block_doh is switched off", async || dot()).await;

    // Consent withdrawn: blocking goes on and blocked attempts are still recorded (the company's
    // rule acting, a system record); allowed visits are no longer collected.
    team.consent(emp, "web", false).await;
    team.wait_applied(agent.id).await;
    assert_eq!(dig(&["@127.0.0.153", "+short", "after.allowed.test"]).0.trim(), SITE);
    assert_eq!(status_of(&["@127.0.0.153", "after.blocked.test"]), "NXDOMAIN");
    wait_until(Duration::from_secs(20), "the blocked attempt after withdrawal", async || {
        team.sec.get(&q).await["domains"].to_string().contains("after.blocked.test")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = team.sec.get(&q).await;
    assert!(!after["domains"].to_string().contains("after.allowed.test"), "no visits without consent: {after}");
    let stored: i64 = server
        .db()
        .query_row("SELECT count(*) FROM events WHERE payload LIKE '%after.allowed.test%'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0);
    assert!(!_policy.0.exists(), "the policy no longer forces the extension");

    // Filter off: the redirect goes and other resolvers answer for themselves.
    team.sec.put(&format!("/api/v1/policies/{id}"), json!({"doc": {"collect": {"web": true}}})).await;
    team.wait_applied(agent.id).await;
    wait_until(Duration::from_secs(10), "redirect removed", async || !redirect_installed()).await;
    assert_eq!(dig(&[&format!("@{UPSTREAM}"), "+short", "www.blocked.test"]).0.trim(), OTHER);
    agent.stop();
    assert!(!redirect_installed());
}
