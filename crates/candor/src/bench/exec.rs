//! `candor bench exec`: the cost of software control on every program start.
//! A tiny program is started N times as an employee (uid 1000) with
//! enforcement off and on, alternating in rounds within one run, under a
//! deny list of name, path, hash and package rules; prints the overhead
//! ratio and the agent's decision latency (p50/p99, measured from reading the
//! kernel's event to answering it). A root-owned program is skipped by the
//! kernel once allowed (ignore mark); `--employee-owned` measures the case
//! where every start is decided by the agent.

use anyhow::Context;
use candor_agent::config::SoftwareMechanism;
use candor_agent::software::Running;
use candor_proto::software::{ProgramRule, SoftwareMode, SoftwareOptions};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ExecBench {
    /// Starts per mode, in all.
    #[arg(long, default_value_t = 10_000)]
    execs: usize,
    /// Alternating off/on rounds the starts are split into.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Rules of each kind (file glob, path glob, SHA-256, package).
    #[arg(long, default_value_t = 50)]
    rules: usize,
    /// The employee uid the program runs as.
    #[arg(long, default_value_t = 1000)]
    uid: u32,
    /// Give the program to the employee: then it could change unseen, so the
    /// kernel is never told to skip it and every start is decided by the agent
    /// (the worst case); by default it is root's, as installed programs are.
    #[arg(long)]
    employee_owned: bool,
}

fn options(n: usize) -> SoftwareOptions {
    let mut rules = Vec::new();
    for i in 0..n {
        let rule = |name: String| ProgramRule { name, ..Default::default() };
        rules.push(ProgramRule { file: Some(format!("game{i}*")), ..rule(format!("file {i}")) });
        rules.push(ProgramRule { path: Some(format!("/opt/blocked{i}/**")), ..rule(format!("path {i}")) });
        rules.push(ProgramRule { sha256: Some(format!("{i:064x}")), ..rule(format!("hash {i}")) });
        rules.push(ProgramRule { package: Some(format!("blocked-package-{i}")), ..rule(format!("package {i}")) });
    }
    SoftwareOptions { mode: SoftwareMode::Deny, rules, notify: false, ..Default::default() }
}

fn starts(program: &std::path::Path, uid: u32, n: usize) -> anyhow::Result<Duration> {
    let t = Instant::now();
    for _ in 0..n {
        let st = Command::new(program)
            .uid(uid)
            .gid(uid)
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("starting {}", program.display()))?;
        anyhow::ensure!(st.success(), "{} failed: {st}", program.display());
    }
    Ok(t.elapsed())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

pub async fn run(b: ExecBench) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let program = dir.path().join("tiny");
    std::fs::copy("/usr/bin/true", &program).context("copying /usr/bin/true")?;
    if b.employee_owned {
        std::os::unix::fs::chown(&program, Some(b.uid), Some(b.uid))?;
    }
    let opts = options(b.rules);
    println!(
        "exec bench: {} starts per mode of {} ({}) as uid {}, {} rounds, {} rules",
        b.execs,
        program.display(),
        if b.employee_owned { "employee-owned: decided by the agent every time" } else { "root-owned" },
        b.uid,
        b.rounds,
        opts.rules.len()
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let per_round = (b.execs / b.rounds.max(1)).max(1);
    let (mut off, mut on) = (Duration::ZERO, Duration::ZERO);
    let mut latencies = Vec::new();
    let (mut decisions, mut timeouts) = (0, 0);
    // Warm the page cache and the dynamic loader before measuring.
    starts(&program, b.uid, 50)?;
    for round in 0..b.rounds {
        let (p, u) = (program.clone(), b.uid);
        off += tokio::task::spawn_blocking(move || starts(&p, u, per_round)).await??;
        let (o, t) = (opts.clone(), tx.clone());
        let running = tokio::task::spawn_blocking(move || Running::start(&o, SoftwareMechanism::Fanotify, t))
            .await?
            .context("starting enforcement (needs root and fanotify)")?;
        starts(&program, b.uid, 1)?; // first sight: hashed once, then cached
        if let Ok(mut l) = running.shared.stats.latencies.lock() {
            *l = Some(Vec::with_capacity(per_round * 2));
        }
        let (p, u) = (program.clone(), b.uid);
        on += tokio::task::spawn_blocking(move || starts(&p, u, per_round)).await??;
        if let Ok(mut l) = running.shared.stats.latencies.lock() {
            latencies.extend(l.take().unwrap_or_default());
        }
        decisions += running.shared.stats.decisions.load(std::sync::atomic::Ordering::Relaxed);
        timeouts += running.shared.stats.timeouts.load(std::sync::atomic::Ordering::Relaxed);
        let blocked = running.shared.stats.blocked.load(std::sync::atomic::Ordering::Relaxed);
        anyhow::ensure!(blocked == 0, "the benchmark program was blocked");
        tokio::task::spawn_blocking(move || running.stop()).await?;
        println!("round {}: off {:?}, on {:?} (cumulative)", round + 1, off, on);
    }
    latencies.sort_unstable();
    let n = (per_round * b.rounds) as f64;
    println!("starts per mode:          {}", per_round * b.rounds);
    println!("enforcement off:          {:.1} µs per start", off.as_secs_f64() * 1e6 / n);
    println!("enforcement on:           {:.1} µs per start", on.as_secs_f64() * 1e6 / n);
    println!("overhead ratio (on/off):  {:.3}  (goal ≤ 1.05)", on.as_secs_f64() / off.as_secs_f64().max(f64::EPSILON));
    println!("decisions answered:       {decisions} ({} timed, {timeouts} past the deadline)", latencies.len());
    if latencies.is_empty() {
        println!("decision latency:         none timed: once allowed, the kernel skips the program (ignore mark)");
    } else {
        println!(
            "decision latency:         p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs  (goal p99 ≤ 100 µs)",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0)
        );
    }
    Ok(())
}
