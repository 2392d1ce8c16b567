//! Agent resource benchmark: a real `candor agent run` child process with
//! activity and process collection on, against a real server, on a virtual
//! X display. Busy phase: focus changes 10 times a second and 100 processes
//! start per second; idle phase: nothing happens. The agent's CPU and RSS
//! come from /proc; the peer, measured over the same phases, is forkstat
//! (the same netlink process connector, printing each event) plus
//! `xprop -root -spy _NET_ACTIVE_WINDOW` (event-driven focus watching).

use anyhow::{bail, Context};
use candor_proto::policy::{ActivityOptions, Collect, PolicyDoc, TitleMode};
use candor_proto::Category;
use candor_server::store::{NewConsent, Scope};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ClientMessageEvent, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, WindowClass,
};
use x11rb::wrapper::ConnectionExt as _;

#[derive(clap::Args)]
pub struct AgentBench {
    /// Seconds of the busy phase.
    #[arg(long, default_value_t = 60)]
    busy_secs: u64,
    /// Seconds of the idle phase.
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
    /// Focus changes per second in the busy phase.
    #[arg(long, default_value_t = 10)]
    focus_rate: u64,
    /// Process starts per second in the busy phase.
    #[arg(long, default_value_t = 100)]
    spawn_rate: u64,
}

fn spawn(cmd: &mut Command) -> anyhow::Result<Child> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().with_context(|| {
        format!("starting {name} (the agent bench needs: apt-get install xvfb openbox forkstat x11-utils)")
    })
}

/// CPU ticks (user + system) and RSS in KiB of a process.
fn usage(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    Some((ticks, rss))
}

#[derive(Default, Clone, Copy)]
struct Phase {
    cpu_pct: f64,
    rss_max_kib: u64,
    rss_end_kib: u64,
}

/// Sample `pids` (summed) every second for `secs` while `work` runs on other threads.
fn measure(pids: &[u32], secs: u64) -> anyhow::Result<Phase> {
    let sum = |pids: &[u32]| -> anyhow::Result<(u64, u64)> {
        pids.iter().try_fold((0, 0), |(t, r), p| {
            let (pt, pr) = usage(*p).with_context(|| format!("process {p} is gone"))?;
            Ok((t + pt, r + pr))
        })
    };
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let (t0, mut rss_max) = sum(pids)?;
    let started = Instant::now();
    let mut rss_end = rss_max;
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        let (_, r) = sum(pids)?;
        rss_max = rss_max.max(r);
        rss_end = r;
    }
    let (t1, _) = sum(pids)?;
    let wall = started.elapsed().as_secs_f64();
    Ok(Phase { cpu_pct: (t1 - t0) as f64 / hz / wall * 100.0, rss_max_kib: rss_max, rss_end_kib: rss_end })
}

/// The agent and the peers over the same `secs`, side by side.
async fn measure_both(agent: u32, peers: &[u32], secs: u64) -> anyhow::Result<(Phase, Phase)> {
    let peers = peers.to_vec();
    let a = tokio::task::spawn_blocking(move || measure(&[agent], secs));
    let p = tokio::task::spawn_blocking(move || measure(&peers, secs));
    Ok((a.await??, p.await??))
}

pub async fn run(b: AgentBench) -> anyhow::Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("the agent bench runs the agent as root (the process connector needs CAP_NET_ADMIN)");
    }
    let dir = tempfile::tempdir()?;
    let mut children = super::Children(Vec::new());
    let n = super::free_display();
    let display = format!(":{n}");
    children.0.push(spawn(Command::new("Xvfb").args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"]))?);
    let t = Instant::now();
    while !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(10), "Xvfb did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    children.0.push(spawn(Command::new("openbox").env("DISPLAY", &display))?);
    std::thread::sleep(Duration::from_millis(500));

    // Two windows of our own; focus is switched by EWMH requests, as a pager does.
    let (conn, screen) = x11rb::connect(Some(&display)).context("connecting to Xvfb")?;
    let root = conn.setup().roots[screen].root;
    let atom = |name: &str| -> anyhow::Result<u32> { Ok(conn.intern_atom(false, name.as_bytes())?.reply()?.atom) };
    let (active, net_wm_name, utf8) = (atom("_NET_ACTIVE_WINDOW")?, atom("_NET_WM_NAME")?, atom("UTF8_STRING")?);
    let mut windows = Vec::new();
    for title in ["Bench 甲 报价单.xlsx", "Bench 乙 客户合同.docx"] {
        let w = conn.generate_id()?;
        conn.create_window(0, w, root, 0, 0, 400, 300, 0, WindowClass::INPUT_OUTPUT, 0, &CreateWindowAux::new())?;
        conn.change_property8(PropMode::REPLACE, w, net_wm_name, utf8, title.as_bytes())?;
        conn.map_window(w)?;
        windows.push(w);
    }
    conn.sync()?;

    // Server in this process; the agent as its own process, enrolled by token.
    let server = super::loopback_server(dir.path()).await?;
    let store = server.state.store.clone();
    let doc = PolicyDoc {
        collect: Collect { activity: true, process: true, ..Default::default() },
        activity: ActivityOptions { titles: TitleMode::Full, ..Default::default() },
        ..Default::default()
    };
    store.assign_policy(Scope::Global, 0, store.create_policy("bench", &doc)?)?;
    let public = format!("https://127.0.0.1:{}", server.addr.port());
    let (token, _) =
        candor_server::enrollment::create_token(store.as_ref(), &public, &server.ca_fingerprint, None, 60_000)?;
    let agent_toml = dir.path().join("agent.toml");
    std::fs::write(
        &agent_toml,
        format!("state_dir = \"{}\"\n[x11]\ndisplay = \"{display}\"\n", dir.path().join("agent").display()),
    )?;
    let exe = std::env::current_exe()?;
    let out = Command::new(&exe).args(["agent", "enroll", &token, "--config"]).arg(&agent_toml).output()?;
    anyhow::ensure!(out.status.success(), "enroll: {}", String::from_utf8_lossy(&out.stderr));
    let agent_id = store.agents()?.first().map(|a| a.id).context("no agent enrolled")?;
    let emp = store.create_employee("Bench", None, None)?;
    store.assign_agent(agent_id, Some(emp), None)?;
    for category in [Category::Activity, Category::Process] {
        store.record_consent(&NewConsent {
            employee_id: emp,
            category,
            granted: true,
            method: "api".into(),
            note: None,
            recorded_by: "bench".into(),
            notice_version: None,
            scan: None,
        })?;
    }
    server.state.bump_epoch();
    let agent = spawn(Command::new(&exe).args(["agent", "run", "--config"]).arg(&agent_toml).env("RUST_LOG", "warn"))?;
    let agent_pid = agent.id();
    children.0.push(agent);
    let t = Instant::now();
    // A span is recorded when it closes: alternate focus until one arrives.
    let mut i = 0;
    while count(store.as_ref())?.0 == 0 {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "the agent recorded no activity within 30 s");
        i += 1;
        let mask = EventMask::SUBSTRUCTURE_REDIRECT | EventMask::SUBSTRUCTURE_NOTIFY;
        conn.send_event(false, root, mask, focus(active, windows[i % 2]))?;
        conn.flush()?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let peers = vec![
        spawn(Command::new("forkstat").args(["-e", "exec,exit"]))?,
        spawn(Command::new("xprop").args(["-root", "-spy", "_NET_ACTIVE_WINDOW"]).env("DISPLAY", &display))?,
    ];
    let peer_pids: Vec<u32> = peers.iter().map(Child::id).collect();
    children.0.extend(peers);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = count(store.as_ref())?;
    println!(
        "agent bench: busy {} s ({} focus changes/s, {} process starts/s), then idle {} s",
        b.busy_secs, b.focus_rate, b.spawn_rate, b.idle_secs
    );

    // Busy: the drivers run on their own threads while this one samples.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drivers = {
        let (stop1, stop2) = (stop.clone(), stop.clone());
        let (focus_rate, spawn_rate) = (b.focus_rate.max(1), b.spawn_rate.max(1));
        let focuser = std::thread::spawn(move || -> anyhow::Result<()> {
            let mut i = 0usize;
            while !stop1.load(std::sync::atomic::Ordering::Relaxed) {
                let mask = EventMask::SUBSTRUCTURE_REDIRECT | EventMask::SUBSTRUCTURE_NOTIFY;
                conn.send_event(false, root, mask, focus(active, windows[i % 2]))?;
                conn.flush()?;
                i += 1;
                std::thread::sleep(Duration::from_micros(1_000_000 / focus_rate));
            }
            Ok(())
        });
        let spawner = std::thread::spawn(move || {
            let every = Duration::from_micros(1_000_000 / spawn_rate);
            let mut next = Instant::now();
            let mut spawned = 0u64;
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(mut c) = Command::new("/bin/true").spawn() {
                    let _ = c.wait();
                    spawned += 1;
                }
                next += every;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            spawned
        });
        (focuser, spawner)
    };
    let (busy, peer_busy) = measure_both(agent_pid, &peer_pids, b.busy_secs).await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drivers.0.join().map_err(|_| anyhow::anyhow!("focus driver panicked"))??;
    let spawned = drivers.1.join().map_err(|_| anyhow::anyhow!("spawn driver panicked"))?;
    // Let the agent finish uploading the busy phase before the idle one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_busy = count(store.as_ref())?;
    let (idle, peer_idle) = measure_both(agent_pid, &peer_pids, b.idle_secs).await?;
    drop(children);
    server.shutdown().await;

    let (acts, procs) = (after_busy.0 - before.0, after_busy.1 - before.1);
    println!(
        "busy phase: {spawned} processes started; the agent stored {procs} process events and {acts} activity spans"
    );
    println!(
        "{:<6} {:>16} {:>16} {:>16} {:>12} {:>12}",
        "phase", "agent CPU %", "agent RSS max", "peer CPU %", "peer RSS", "CPU ratio"
    );
    for (name, a, p) in [("busy", busy, peer_busy), ("idle", idle, peer_idle)] {
        println!(
            "{name:<6} {:>15.3}% {:>12.1} MiB {:>15.3}% {:>8.1} MiB {:>12}",
            a.cpu_pct,
            a.rss_max_kib as f64 / 1024.0,
            p.cpu_pct,
            p.rss_max_kib as f64 / 1024.0,
            if p.cpu_pct > 0.0 { format!("{:.2}", a.cpu_pct / p.cpu_pct) } else { "peer 0".into() }
        );
    }
    println!(
        "agent RSS at the end of the idle phase: {:.1} MiB (goal ≤ 15 MiB); idle CPU {:.3}% (goal ≤ 0.3%)",
        idle.rss_end_kib as f64 / 1024.0,
        idle.cpu_pct
    );
    Ok(())
}

fn focus(active: u32, window: u32) -> ClientMessageEvent {
    // data: source 2 (pager), timestamp 0, no currently active window.
    ClientMessageEvent::new(32, window, active, [2u32, 0, 0, 0, 0])
}

/// (activity events, process events) stored so far.
fn count(store: &dyn candor_server::store::Store) -> anyhow::Result<(u64, u64)> {
    let totals = store.category_totals(0, i64::MAX, None)?;
    let of = |c: Category| totals.iter().find(|t| t.category == c).map_or(0, |t| t.events);
    Ok((of(Category::Activity), of(Category::Process)))
}
