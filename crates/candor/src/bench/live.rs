//! `candor bench live`: live view and the screen wall on the scripted 1080p
//! office session of `bench screen`, with the real agent (a child process)
//! and a real server on loopback, watched over a WebSocket as the console
//! does: pictures per second, capture-to-viewer latency, bytes and agent CPU
//! per picture; then the wall's bytes per second per tile. The peer is
//! ffmpeg capturing the same display (x11grab) into MJPEG at the same rate,
//! measured in the same run: the CPU per picture and bytes per picture ratios.

use super::screen::Session;
use anyhow::Context;
use candor_proto::policy::{Collect, PolicyDoc};
use candor_proto::Category;
use candor_server::store::{NewConsent, Scope};
use futures_util::StreamExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

#[derive(clap::Args)]
pub struct LiveBench {
    /// Seconds of live view measured.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds of the wall measured.
    #[arg(long, default_value_t = 60)]
    wall_seconds: u64,
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn connect(port: u16, fp: &str, path: &str, token: &str) -> anyhow::Result<Socket> {
    let tls = candor_agent::net::pinned_tls(fp)?;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls)).connect(name, tcp).await?;
    let mut req = format!("wss://127.0.0.1:{port}{path}").into_client_request()?;
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    Ok(tokio_tungstenite::client_async(req, stream).await.with_context(|| format!("opening {path}"))?.0)
}

/// (captured_ms, JPEG bytes) of the next picture.
async fn picture(ws: &mut Socket) -> anyhow::Result<(i64, usize)> {
    loop {
        match ws.next().await.context("the viewer's socket closed")?? {
            Message::Binary(b) => {
                anyhow::ensure!(b.len() >= 4, "short picture message");
                let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let head: serde_json::Value = serde_json::from_slice(b.get(4..4 + n).context("short header")?)?;
                return Ok((head["captured_ms"].as_i64().unwrap_or(0), b.len() - 4 - n));
            }
            _ => continue,
        }
    }
}

/// CPU seconds a process has used (user + system).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

/// A security admin's API token (the first admin may not watch screens).
async fn watcher_token(url: &str, fp: &str, password: &str) -> anyhow::Result<String> {
    let c = candor_agent::net::pinned_client(fp)?;
    let login = async |user: &str, pw: &str| -> anyhow::Result<String> {
        let r: serde_json::Value = c
            .post(format!("{url}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": user, "password": pw}))
            .send()
            .await?
            .json()
            .await?;
        r["token"].as_str().map(str::to_string).context("login token")
    };
    let admin = login("admin", password).await?;
    let created: serde_json::Value = c
        .post(format!("{url}/api/v1/admins"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"username": "bench-sec", "role": "security_admin"}))
        .send()
        .await?
        .json()
        .await?;
    login("bench-sec", created["password"].as_str().context("new admin's password")?).await
}

/// Drive the office session while `f` runs.
async fn with_activity<T>(session: &Arc<Session>, f: impl std::future::Future<Output = T>) -> T {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s, st) = (session.clone(), stop.clone());
    let driver = tokio::task::spawn_blocking(move || {
        let mut i = 0;
        while !st.load(std::sync::atomic::Ordering::Relaxed) {
            s.act(i);
            i += 1;
            std::thread::sleep(Duration::from_millis(700));
        }
    });
    let out = f.await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = driver.await;
    out
}

/// ffmpeg grabbing `display` for `seconds` at `fps` into MJPEG: (pictures, CPU s, bytes).
fn ffmpeg(display: &str, dir: &Path, seconds: u64, fps: u32) -> anyhow::Result<(u64, f64, u64)> {
    let out = dir.join("peer.mjpeg");
    let before = super::screen::children_cpu_secs();
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "x11grab", "-framerate", &fps.to_string()])
        .args(["-video_size", "1920x1080", "-i", display, "-t", &seconds.to_string()])
        .args(["-c:v", "mjpeg", "-q:v", "5", "-f", "mjpeg"])
        .arg(&out)
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "ffmpeg failed");
    let cpu = super::screen::children_cpu_secs() - before;
    let data = std::fs::read(&out)?;
    let pictures = data.windows(2).filter(|w| w == b"\xff\xd8").count() as u64;
    Ok((pictures, cpu, data.len() as u64))
}

pub async fn run(b: LiveBench) -> anyhow::Result<()> {
    super::need("ffmpeg", "ffmpeg")?;
    let dir = tempfile::tempdir()?;
    let d = dir.path().to_path_buf();
    let session = Arc::new(tokio::task::spawn_blocking(move || Session::start(&d)).await??);
    let server = super::loopback_server(dir.path()).await?;
    let store = server.state.store.clone();
    let fp = server.ca_fingerprint.clone();
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let token = watcher_token(&url, &fp, server.first_admin_password.as_deref().context("first admin")?).await?;

    // The real agent, enrolled, on the session's display, with screen consent.
    let policy = store.create_policy(
        "bench",
        &PolicyDoc {
            collect: Collect { screen: true, ..Default::default() },
            screen: candor_proto::screen::ScreenOptions { interval_secs: 3600, ..Default::default() },
            ..Default::default()
        },
    )?;
    store.assign_policy(Scope::Global, 0, policy)?;
    let (enroll, _) = candor_server::enrollment::create_token(store.as_ref(), &url, &fp, None, 600_000)?;
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("state_dir = \"{}\"\n[x11]\ndisplay = \"{}\"\n", dir.path().join("agent").display(), session.display),
    )?;
    let exe = std::env::current_exe()?;
    let out = Command::new(&exe).args(["agent", "enroll", &enroll, "--config"]).arg(&config).output()?;
    anyhow::ensure!(out.status.success(), "enroll: {}", String::from_utf8_lossy(&out.stderr));
    let agent_id = store.agents()?.first().context("the enrolled agent")?.id;
    let emp = store.create_employee("Bench", Some("bench"), None)?;
    store.assign_agent(agent_id, Some(emp), None)?;
    store.record_consent(&NewConsent {
        employee_id: emp,
        category: Category::Screen,
        granted: true,
        method: "api".into(),
        note: None,
        recorded_by: "bench".into(),
        notice_version: None,
        scan: None,
    })?;
    server.state.bump_epoch();
    let child = Command::new(&exe)
        .args(["agent", "run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let _agent = super::Children(vec![child]);

    // Live view.
    let mut ws = connect(server.addr.port(), &fp, &format!("/api/v1/screen/live/{agent_id}"), &token).await?;
    tokio::time::timeout(Duration::from_secs(30), picture(&mut ws)).await.context("no live picture in 30 s")??;
    let (cpu0, t0) = (cpu_secs(pid), Instant::now());
    let (mut lat, mut bytes, mut span) = (Vec::new(), 0usize, (0i64, 0i64));
    with_activity(&session, async {
        while t0.elapsed() < Duration::from_secs(b.seconds) {
            let Ok((captured, n)) = picture(&mut ws).await else { break };
            lat.push(candor_proto::now_ms() - captured);
            bytes += n;
            span = (if span.0 == 0 { captured } else { span.0 }, captured);
        }
    })
    .await;
    let cpu = cpu_secs(pid) - cpu0;
    drop(ws);
    anyhow::ensure!(!lat.is_empty(), "no live pictures");
    lat.sort();
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    let n = lat.len() as f64;
    // The rate between the first and the last capture seen.
    let fps = (n - 1.0) * 1000.0 / (span.1 - span.0).max(1) as f64;
    let (ms_per, kb) = (cpu * 1000.0 / n, bytes as f64 / n / 1000.0);
    println!(
        "candor live 1920x1080: {fps:.1} pictures/s, capture-to-viewer p50 {} ms p95 {} ms p99 {} ms, {kb:.0} KB/picture, agent CPU {ms_per:.1} ms/picture",
        pct(0.5),
        pct(0.95),
        pct(0.99)
    );

    // The peer, on the same display and activity, at the same rate.
    let (display, d, secs_peer) = (session.display.clone(), dir.path().to_path_buf(), b.seconds.min(30));
    let rate = fps.round().max(1.0) as u32;
    let (pn, pcpu, pbytes) =
        with_activity(&session, tokio::task::spawn_blocking(move || ffmpeg(&display, &d, secs_peer, rate))).await??;
    let (peer_ms, peer_kb) = (pcpu * 1000.0 / pn.max(1) as f64, pbytes as f64 / pn.max(1) as f64 / 1000.0);
    println!(
        "ffmpeg x11grab → MJPEG (q 5) at {rate}/s: {pn} pictures, CPU {peer_ms:.1} ms/picture, {peer_kb:.0} KB/picture"
    );
    println!(
        "ratios (candor / ffmpeg): CPU per picture {:.2}, bytes per picture {:.2}",
        ms_per / peer_ms,
        kb / peer_kb
    );

    // The wall.
    let mut ws = connect(server.addr.port(), &fp, "/api/v1/screen/wall", &token).await?;
    tokio::time::timeout(Duration::from_secs(30), picture(&mut ws)).await.context("no wall tile in 30 s")??;
    let t0 = Instant::now();
    let (mut tiles, mut bytes) = (0u64, 0usize);
    with_activity(&session, async {
        while t0.elapsed() < Duration::from_secs(b.wall_seconds) {
            match tokio::time::timeout(Duration::from_secs(2), picture(&mut ws)).await {
                Ok(Ok((_, n))) => {
                    tiles += 1;
                    bytes += n;
                }
                Ok(Err(_)) => break,
                Err(_) => {}
            }
        }
    })
    .await;
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "wall tile (320 px): {:.2} tiles/s, {:.1} KB/s per tile (goal ≤ 20), {:.1} KB/tile",
        tiles as f64 / secs,
        bytes as f64 / secs / 1000.0,
        bytes as f64 / tiles.max(1) as f64 / 1000.0
    );
    println!(
        "goals: live ≥ 10 pictures/s at ≤ 150 ms capture-to-viewer: {} ({fps:.1}/s, p50 {} ms)",
        if fps >= 10.0 && pct(0.5) <= 150 { "met" } else { "not met" },
        pct(0.5)
    );
    Ok(())
}
