//! Test harness: real `candor` server and agent processes on loopback, an
//! admin API client, and read-only access to the server's database.
#![allow(dead_code)]

pub mod browser;
pub mod desktop;
pub mod display;
pub mod logind;
pub mod ws;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_candor");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Poll `f` every 100 ms until it returns true; panic with `what` after `timeout`.
pub async fn wait_until(timeout: Duration, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub struct Server {
    pub dir: PathBuf,
    pub port: u16,
    pub url: String,
    child: Option<Child>,
    starts: u32,
}

impl Server {
    /// Start a server in `dir` with extra TOML appended to its config.
    pub async fn start(dir: &Path, extra_toml: &str) -> Server {
        let port = free_port();
        let url = format!("https://127.0.0.1:{port}");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("candor.toml"),
            format!(
                "data_dir = \"{}\"\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{url}\"\n{extra_toml}",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let mut s = Server { dir: dir.to_owned(), port, url, child: None, starts: 0 };
        s.restart().await;
        s
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("candor.toml")
    }

    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "server already running");
        self.starts += 1;
        let out = std::fs::File::create(self.dir.join(format!("server-{}.out", self.starts))).unwrap();
        let err = std::fs::File::create(self.dir.join(format!("server-{}.err", self.starts))).unwrap();
        let child =
            Command::new(BIN).args(["server", "--config"]).arg(self.config()).stdout(out).stderr(err).spawn().unwrap();
        self.child = Some(child);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let health = format!("{}/healthz", self.url);
        let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
        wait_until(Duration::from_secs(20), "server health", async || {
            client.get(&health).send().await.is_ok_and(|r| r.status().is_success())
        })
        .await;
    }

    /// The first admin password printed at first start.
    pub fn admin_password(&self) -> String {
        let out = std::fs::read_to_string(self.dir.join("server-1.out")).unwrap();
        let line = out.lines().find(|l| l.starts_with("First admin login:")).expect("first admin line");
        line.split_whitespace().nth(5).unwrap().to_string()
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub fn ca_fingerprint(&self) -> String {
        let out = std::fs::read_to_string(self.dir.join("server-1.out")).unwrap();
        out.lines().find_map(|l| l.strip_prefix("CA fingerprint (SHA-256): ")).unwrap().to_string()
    }

    /// `candor token create` against this server's data directory.
    pub fn token(&self, args: &[&str]) -> String {
        let out =
            Command::new(BIN).args(["token", "create", "--config"]).arg(self.config()).args(args).output().unwrap();
        assert!(out.status.success(), "token create: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open_with_flags(
            self.dir.join("data/candor.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c
    }

    /// Synthetic `n` values stored for an agent: (rows, distinct n, max n).
    pub fn synthetic_counts(&self, agent: u64) -> (u64, u64, u64) {
        self.db()
            .query_row(
                "SELECT count(*), count(DISTINCT json_extract(payload, '$.n')), coalesce(max(json_extract(payload, '$.n')), 0)
                 FROM events WHERE agent_id = ?1 AND json_extract(payload, '$.type') = 'synthetic'",
                [agent as i64],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)),
            )
            .unwrap()
    }

    /// The first admin (system admin) plus a security admin and an auditor
    /// it creates: the three roles are separate (三员分立).
    pub async fn team(&self) -> Team {
        let fp = self.ca_fingerprint();
        let sys = AdminApi::login(&self.url, &fp, "admin", &self.admin_password()).await;
        let mut others = Vec::new();
        for (name, role) in [("sec", "security_admin"), ("aud", "auditor")] {
            let created = sys.post("/api/v1/admins", json!({"username": name, "role": role})).await;
            let pw = created["password"].as_str().unwrap().to_string();
            others.push((AdminApi::login(&self.url, &fp, name, &pw).await, pw));
        }
        let (aud, aud_password) = others.pop().unwrap();
        let (sec, sec_password) = others.pop().unwrap();
        Team { sys, sec, aud, sec_password, aud_password }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Agent {
    pub state_dir: PathBuf,
    pub id: u64,
    config: PathBuf,
    child: Option<Child>,
    runs: u32,
}

impl Agent {
    /// Enroll with `candor agent enroll` using a fresh token.
    pub fn enroll(server: &Server, name: &str, agent_toml: &str) -> Agent {
        let state_dir = server.dir.join(name);
        let config = server.dir.join(format!("{name}.toml"));
        std::fs::write(&config, format!("state_dir = \"{}\"\n{agent_toml}", state_dir.display())).unwrap();
        let token = server.token(&[]);
        let out = Command::new(BIN).args(["agent", "enroll", &token, "--config"]).arg(&config).output().unwrap();
        assert!(out.status.success(), "enroll: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let id = text.split_whitespace().nth(3).unwrap().parse().unwrap();
        Agent { state_dir, id, config, child: None, runs: 0 }
    }

    /// The agent's own credentials, as an Authorization header value.
    pub fn bearer(&self) -> String {
        let c: Value =
            serde_json::from_slice(&std::fs::read(self.state_dir.join("credentials.json")).unwrap()).unwrap();
        format!("Bearer {}.{}", self.id, c["secret"].as_str().unwrap())
    }

    /// POST a batch of `events` with this agent's credentials; returns status and answer.
    pub async fn send(&self, server: &Server, events: Vec<candor_proto::Event>) -> (u16, Value) {
        let body = candor_proto::batch::encode(&candor_proto::batch::Batch { agent_id: self.id, floor: 1, events }, 1);
        let client = candor_agent::net::pinned_client(&server.ca_fingerprint()).unwrap();
        let r = client
            .post(format!("{}/api/v1/ingest", server.url))
            .header("authorization", self.bearer())
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or_default())
    }

    pub fn start(&mut self, extra_args: &[&str]) {
        assert!(self.child.is_none(), "agent already running");
        self.runs += 1;
        let err = std::fs::File::create(self.state_dir.join(format!("agent-{}.err", self.runs))).unwrap();
        self.child = Some(
            Command::new(BIN)
                .args(["agent", "run", "--config"])
                .arg(&self.config)
                .args(extra_args)
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
                .unwrap(),
        );
    }

    pub fn log(&self) -> String {
        (1..=self.runs)
            .map(|i| std::fs::read_to_string(self.state_dir.join(format!("agent-{i}.err"))).unwrap_or_default())
            .collect()
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            c.wait().unwrap();
        }
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process has exited, with its success.
    pub fn exited(&mut self) -> Option<bool> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap()).map(|s| s.success())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct AdminApi {
    pub client: reqwest::Client,
    pub url: String,
    token: String,
}

impl AdminApi {
    pub async fn login(url: &str, fp: &str, user: &str, password: &str) -> AdminApi {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = candor_agent::net::pinned_client(fp).unwrap();
        let r: Value = client
            .post(format!("{url}/api/v1/auth/login"))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        AdminApi { client, url: url.to_string(), token: r["token"].as_str().expect("login token").to_string() }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.url)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(reqwest::Method::GET, path, None).await;
        assert!(s < 300, "GET {path}: {s} {v}");
        v
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!(s < 300, "POST {path}: {s} {v}");
        v
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.call(reqwest::Method::PUT, path, Some(body)).await;
        assert!(s < 300, "PUT {path}: {s} {v}");
        v
    }

    /// Wait until the agent reports applying the policy the server has for it.
    pub async fn wait_applied(&self, agent: u64) {
        wait_until(Duration::from_secs(20), "agent applies policy", async || {
            let v = self.get(&format!("/api/v1/agents/{agent}/effective-policy")).await;
            v["applied"] == v["current"]["etag"]
        })
        .await;
    }
}

pub struct Team {
    pub sys: AdminApi,
    pub sec: AdminApi,
    pub aud: AdminApi,
    pub sec_password: String,
    pub aud_password: String,
}

impl Team {
    /// An employee assigned to `agent` (system admin), a global policy
    /// collecting `categories` and, if `consent`, consent to each (security admin).
    pub async fn setup_collection(&self, agent: u64, categories: &[&str], consent: bool) -> u64 {
        let emp = self.sys.post("/api/v1/employees", json!({"name": "张三", "username": "zhangsan"})).await["id"]
            .as_u64()
            .unwrap();
        self.sys.put(&format!("/api/v1/agents/{agent}/assignment"), json!({"employee_id": emp})).await;
        let collect: serde_json::Map<String, Value> = categories.iter().map(|c| (c.to_string(), json!(true))).collect();
        let policy = self.sec.post("/api/v1/policies", json!({"name": "default", "doc": {"collect": collect}})).await
            ["id"]
            .as_u64()
            .unwrap();
        self.sec.put("/api/v1/assignments", json!({"scope": "global", "policy_id": policy})).await;
        if consent {
            for c in categories {
                self.consent(emp, c, true).await;
            }
        }
        emp
    }

    pub async fn consent(&self, employee: u64, category: &str, granted: bool) {
        self.sec
            .post("/api/v1/consents", json!({"employee_id": employee, "category": category, "granted": granted}))
            .await;
    }

    pub async fn wait_applied(&self, agent: u64) {
        self.sys.wait_applied(agent).await;
    }
}

/// A synthetic event in `category` with the given seq.
pub fn synthetic_event(seq: u64, category: candor_proto::Category) -> candor_proto::Event {
    candor_proto::Event {
        seq,
        ts_ms: candor_proto::now_ms(),
        duration_ms: None,
        category,
        payload: candor_proto::Payload::Synthetic { n: 0, note: None }.to_json(),
    }
}

pub fn fast_agent_toml(extra: &str) -> String {
    format!(
        "[uplink]\nbackoff_min_ms = 100\nbackoff_max_ms = 1000\nheartbeat_secs = 1\npolicy_wait_secs = 5\ndrain_rate = 100000\nlinger_ms = 100\n{extra}"
    )
}

/// A 256×128 picture filled with `shade` plus a red bar at `bar`, encoded.
pub fn screen_frame(enc: &mut candor_screen::Encoder, shade: u8, bar: usize) -> Vec<u8> {
    let mut img = candor_screen::Image::new(256, 128);
    img.rgb.fill(shade);
    for y in 0..16 {
        for x in bar..bar + 32 {
            img.rgb[(y * 256 + x) * 3] = 255;
        }
    }
    enc.encode(&img).unwrap().remove(0).bytes
}

/// A screen event carrying the encoded frame `bytes`.
pub fn screen_event(seq: u64, ts_ms: i64, display: &str, bytes: &[u8]) -> candor_proto::Event {
    use base64::Engine as _;
    let (h, _) = candor_screen::Header::parse(bytes).unwrap();
    candor_proto::Event {
        seq,
        ts_ms,
        duration_ms: None,
        category: candor_proto::Category::Screen,
        payload: candor_proto::Payload::ScreenFrame {
            display: display.into(),
            width: h.width,
            height: h.height,
            key: h.key,
            tiles: h.carried(),
            bytes: bytes.len() as u64,
            reason: "interval".into(),
            data: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            blob: None,
        }
        .to_json(),
    }
}
