//! Web filtering benchmarks.
//!
//! `web-rules`: a 1M-domain list compiled by `candor-webrules`: build time,
//! bytes per rule, lookup median and p99, and the memory peak while a new set
//! is built beside the one in use; against a `HashSet<String>` of the same
//! names walked suffix by suffix (what a straightforward filter does).
//!
//! `dns`: the agent's resolver loaded with that list under `dnsperf`, side by
//! side with unbound loaded with the same list (one `always_nxdomain` local
//! zone per domain); both forward to the same dnsmasq upstream on loopback.

use anyhow::{bail, Context};
use candor_agent::web::cache::Cache;
use candor_agent::web::filter::Filter;
use candor_agent::web::resolver::Resolver;
use candor_proto::web::{CategoryBlock, WebListRef, WebOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct RulesBench {
    /// Domains in the list.
    #[arg(long, default_value_t = 1_000_000)]
    rules: usize,
    /// Lookups timed (half under listed domains, half not).
    #[arg(long, default_value_t = 1_000_000)]
    lookups: usize,
}

#[derive(clap::Args)]
pub struct DnsBench {
    /// Domains in the list both resolvers load.
    #[arg(long, default_value_t = 1_000_000)]
    rules: usize,
    /// Seconds of each dnsperf run.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Runs per resolver (alternating); the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

const TLDS: [&str; 8] = ["com", "cn", "net", "org", "top", "xyz", "info", "com.cn"];

fn label(rng: &mut StdRng) -> String {
    let n = rng.gen_range(4..12);
    (0..n).map(|_| (b'a' + rng.gen_range(0..26)) as char).collect()
}

/// `n` distinct domain names shaped like blocklist entries.
fn domains(n: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut d = format!("{}.{}", label(&mut rng), TLDS[rng.gen_range(0..TLDS.len())]);
        if rng.gen_bool(0.4) {
            d = format!("{}.{d}", label(&mut rng));
        }
        if seen.insert(d.clone()) {
            out.push(d);
        }
    }
    out
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn time_lookups(names: &[String], f: impl Fn(&str) -> bool) -> (u64, u64, usize) {
    let mut ns = Vec::with_capacity(names.len());
    let mut hits = 0;
    for n in names {
        let t = Instant::now();
        hits += f(n) as usize;
        ns.push(t.elapsed().as_nanos() as u64);
    }
    ns.sort_unstable();
    (percentile(&ns, 0.5), percentile(&ns, 0.99), hits)
}

pub fn run_rules(b: RulesBench) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let list = dir.path().join("list.txt");
    let names = domains(b.rules, 11);
    let text: String = names.iter().map(|d| format!("||{d}^\n")).collect();
    std::fs::write(&list, &text)?;
    let text_bytes = text.len();
    drop(text);
    let mut rng = StdRng::seed_from_u64(12);
    let queries: Vec<String> = (0..b.lookups)
        .map(|i| {
            if i % 2 == 0 {
                format!("{}.{}", label(&mut rng), names[rng.gen_range(0..names.len())])
            } else {
                format!("{}.{}.{}", label(&mut rng), label(&mut rng), TLDS[rng.gen_range(0..TLDS.len())])
            }
        })
        .collect();

    let before = status_kib("VmRSS:");
    let t = Instant::now();
    let build = || -> anyhow::Result<candor_webrules::RuleSet> {
        let mut bad = 0;
        let set = candor_webrules::RuleSet::compile(|builder| {
            let f = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(&list)?);
            bad = builder.add_list(0, f)?.errors;
            Ok(())
        })?;
        if bad > 0 {
            bail!("generated list has {bad} bad lines");
        }
        Ok(set)
    };
    let set = build()?;
    let build_s = t.elapsed().as_secs_f64();
    let steady = status_kib("VmRSS:");
    // Peak while a second set is built beside the first (the agent's swap).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let t = Instant::now();
    let second = build()?;
    let rebuild_s = t.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:");
    drop(second);
    let (p50, p99, hits) = time_lookups(&queries, |q| set.verdict(q, |_| true).is_some());

    let t = Instant::now();
    let mut hs: HashSet<String> = HashSet::new();
    for d in &names {
        hs.insert(d.clone());
    }
    let hs_build_s = t.elapsed().as_secs_f64();
    let hs_bytes: usize =
        hs.capacity() * (std::mem::size_of::<String>() + 8) + names.iter().map(|d| d.len()).sum::<usize>();
    let walk = |q: &str| {
        let mut s = q;
        loop {
            if hs.contains(s) {
                return true;
            }
            match s.split_once('.') {
                Some((_, rest)) => s = rest,
                None => return false,
            }
        }
    };
    let (hp50, hp99, hhits) = time_lookups(&queries, walk);
    if hits != hhits {
        bail!("the rule set found {hits} matches, the hash set {hhits}: they must agree");
    }
    let bytes_per_rule = set.heap_bytes() as f64 / b.rules as f64;
    println!(
        "web rules: {} domains ({:.1} MB of list text), {} lookups ({hits} under listed domains)",
        b.rules,
        text_bytes as f64 / 1e6,
        b.lookups
    );
    println!(
        "  build:        candor-webrules {build_s:.2} s   HashSet<String> {hs_build_s:.2} s   ratio {:.2}×",
        build_s / hs_build_s
    );
    println!(
        "  bytes/rule:   candor-webrules {bytes_per_rule:.1}      HashSet<String> {:.1}      ratio {:.2}×",
        hs_bytes as f64 / b.rules as f64,
        bytes_per_rule / (hs_bytes as f64 / b.rules as f64)
    );
    println!(
        "  lookup p50:   candor-webrules {p50} ns     HashSet<String> {hp50} ns     ratio {:.2}×",
        p50 as f64 / hp50 as f64
    );
    println!(
        "  lookup p99:   candor-webrules {p99} ns     HashSet<String> {hp99} ns     ratio {:.2}×",
        p99 as f64 / hp99 as f64
    );
    println!(
        "  memory:       process RSS before {:.1} MB, with the set {:.1} MB, peak while rebuilding beside it {:.1} MB (rebuild {rebuild_s:.2} s); set alone {:.1} MB, its swap adds {:.2}× the set",
        before as f64 / 1024.0,
        steady as f64 / 1024.0,
        peak as f64 / 1024.0,
        set.heap_bytes() as f64 / 1e6 ,
        (peak.saturating_sub(before)) as f64 / (steady.saturating_sub(before)).max(1) as f64
    );
    Ok(())
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

use super::need;

/// One dnsperf run: (queries per second, average latency in ms).
fn dnsperf(server: &str, port: u16, queries: &Path, seconds: u32) -> anyhow::Result<(f64, f64)> {
    let out = Command::new("dnsperf")
        .args(["-s", server, "-p", &port.to_string(), "-d"])
        .arg(queries)
        .args(["-l", &seconds.to_string(), "-c", "4", "-q", "200", "-t", "2"])
        .output()
        .context("running dnsperf")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
    };
    let qps = field("Queries per second:").with_context(|| format!("dnsperf output: {text}"))?;
    let lat = field("Average Latency (s):").unwrap_or(0.0) * 1000.0;
    let lost = field("Queries lost:").unwrap_or(0.0);
    if lost > 0.0 {
        eprintln!("  ({server}:{port} lost {lost} queries)");
    }
    Ok((qps, lat))
}

fn wait_answers(server: &str, port: u16) -> anyhow::Result<()> {
    for _ in 0..6000 {
        let ok = Command::new("dig")
            .args(["+time=1", "+tries=1", "+short", &format!("@{server}"), "-p", &port.to_string(), "a1.bench.test"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "10.0.0.1");
        if ok {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{server}:{port} did not answer")
}

/// Both resolvers must really block: a listed name gets NXDOMAIN.
fn check_blocks(server: &str, port: u16, name: &str) -> anyhow::Result<()> {
    let out = Command::new("dig")
        .args(["+time=2", "+tries=1", &format!("@{server}"), "-p", &port.to_string(), name])
        .output()
        .context("running dig")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.contains("status: NXDOMAIN") {
        bail!("{server}:{port} does not block {name}: {text}");
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub async fn run_dns(b: DnsBench) -> anyhow::Result<()> {
    for (tool, package) in
        [("dnsperf", "dnsperf"), ("unbound", "unbound"), ("dnsmasq", "dnsmasq-base"), ("dig", "bind9-dnsutils")]
    {
        need(tool, package)?;
    }
    let dir = tempfile::tempdir()?;
    let names = domains(b.rules, 21);
    // The list, as the agent keeps it: a file named by its SHA-256.
    let text: String = names.iter().map(|d| format!("||{d}^\n")).collect();
    let sha = candor_proto::token::sha256_hex(text.as_bytes());
    std::fs::write(dir.path().join(&sha), &text)?;
    drop(text);
    // Queries: allowed names (answered upstream, then cached) and blocked ones, mixed.
    let mut rng = StdRng::seed_from_u64(22);
    let mut q = String::new();
    for i in 0..20_000 {
        if i % 2 == 0 {
            q.push_str(&format!("a{}.bench.test A\n", rng.gen_range(0..5000)));
        } else {
            q.push_str(&format!("{} A\n", names[rng.gen_range(0..names.len())]));
        }
    }
    let queries = dir.path().join("queries.txt");
    std::fs::write(&queries, q)?;

    let upstream = Killed(
        Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.62",
                "--port=5362",
                "--user=root",
                "--cache-size=10000",
                "--address=/bench.test/10.0.0.1",
                "--local-ttl=300",
            ])
            .stderr(Stdio::null())
            .spawn()
            .context("starting dnsmasq")?,
    );
    wait_answers("127.0.0.62", 5362)?;

    // Candor's resolver, in this process, on two tasks (the machine has two cores).
    let opts = WebOptions {
        filter: true,
        block_categories: vec![CategoryBlock { category: "bench".into(), schedule: None }],
        block_doh: false,
        ..Default::default()
    };
    let list = WebListRef {
        id: 1,
        name: "bench".into(),
        category: "bench".into(),
        sha256: sha,
        bytes: 0,
        rules: b.rules as u64,
    };
    let t = Instant::now();
    let (filter, warnings) = Filter::build(&opts, &[list], dir.path());
    if !warnings.is_empty() {
        bail!("building the filter: {warnings:?}");
    }
    let candor_load = t.elapsed().as_secs_f64();
    let (visits, mut visits_rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move { while visits_rx.recv().await.is_some() {} });
    let resolver = Arc::new(Resolver::new(
        Arc::new(filter),
        Cache::new(100_000, 3600, 60),
        vec!["127.0.0.62:5362".parse()?],
        0,
        Duration::from_secs(2),
        std::net::Ipv4Addr::new(127, 0, 0, 154),
        visits,
    ));
    let sock = Arc::new(tokio::net::UdpSocket::bind("127.0.0.63:5363").await?);
    for _ in 0..2 {
        tokio::spawn(resolver.clone().serve_udp(sock.clone()));
    }

    // unbound with the same list.
    let mut conf = format!(
        "server:\n  interface: 127.0.0.64@5364\n  num-threads: 2\n  do-not-query-localhost: no\n  chroot: \"\"\n  username: \"\"\n  directory: \"{}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 0\n  module-config: \"iterator\"\n  so-reuseport: yes\n  msg-cache-size: 64m\n  rrset-cache-size: 128m\n  local-zone: \"test.\" nodefault\n",
        dir.path().display()
    );
    for d in &names {
        conf.push_str(&format!("  local-zone: \"{d}.\" always_nxdomain\n"));
    }
    conf.push_str("forward-zone:\n  name: \".\"\n  forward-addr: 127.0.0.62@5362\n");
    let unbound_conf = dir.path().join("unbound.conf");
    std::fs::write(&unbound_conf, conf)?;
    let t = Instant::now();
    let unbound = Killed(
        Command::new("unbound")
            .args(["-d", "-c"])
            .arg(&unbound_conf)
            .stderr(std::fs::File::create(dir.path().join("unbound.log"))?)
            .spawn()
            .context("starting unbound")?,
    );
    let (ub_q, cd_q) = (queries.clone(), queries.clone());
    tokio::task::spawn_blocking(move || wait_answers("127.0.0.64", 5364)).await??;
    let unbound_load = t.elapsed().as_secs_f64();
    for (server, port) in [("127.0.0.63", 5363), ("127.0.0.64", 5364)] {
        check_blocks(server, port, &names[names.len() / 2])
            .with_context(|| std::fs::read_to_string(dir.path().join("unbound.log")).unwrap_or_default())?;
    }
    let unbound_rss = std::fs::read_to_string(format!("/proc/{}/status", unbound.0.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let candor_rss = status_kib("VmRSS:");

    // Warm both caches, then alternate measured runs.
    let secs = b.seconds;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        dnsperf("127.0.0.63", 5363, &cd_q, 2)?;
        dnsperf("127.0.0.64", 5364, &ub_q, 2)?;
        Ok(())
    })
    .await??;
    let (mut cq, mut cl, mut uq, mut ul) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..b.runs.max(1) {
        let qf = queries.clone();
        let (c, u) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            Ok((dnsperf("127.0.0.63", 5363, &qf, secs)?, dnsperf("127.0.0.64", 5364, &qf, secs)?))
        })
        .await??;
        cq.push(c.0);
        cl.push(c.1);
        uq.push(u.0);
        ul.push(u.1);
    }
    let (cq, cl, uq, ul) = (median(cq), median(cl), median(uq), median(ul));
    let stats = &resolver.stats;
    println!(
        "dns: {} blocked domains, 50% blocked / 50% allowed (cached) queries, dnsperf {}×{} s",
        b.rules, b.runs, b.seconds
    );
    println!("  queries/s:    candor {cq:.0}   unbound {uq:.0}   ratio {:.2}×", cq / uq);
    println!("  avg latency:  candor {cl:.3} ms   unbound {ul:.3} ms   ratio {:.2}×", cl / ul);
    println!("  load time:    candor {candor_load:.1} s   unbound {unbound_load:.1} s");
    println!(
        "  memory (RSS): candor bench process {:.0} MB   unbound {:.0} MB",
        candor_rss as f64 / 1024.0,
        unbound_rss as f64 / 1024.0
    );
    println!(
        "  candor counters: {} queries, {} blocked, {} cache hits, {} upstream failures",
        stats.queries.load(std::sync::atomic::Ordering::Relaxed),
        stats.blocked.load(std::sync::atomic::Ordering::Relaxed),
        stats.cache_hits.load(std::sync::atomic::Ordering::Relaxed),
        stats.upstream_failures.load(std::sync::atomic::Ordering::Relaxed)
    );
    drop((unbound, upstream));
    Ok(())
}

#[derive(clap::Args)]
pub struct SwapBench {
    /// Domains in the blocked category's list.
    #[arg(long, default_value_t = 1_000_000)]
    rules: usize,
}

fn rss_of(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} for process {pid}"))
}

fn blocks(port: u16, name: &str) -> bool {
    check_blocks("127.0.0.1", port, name).is_ok()
}

/// The real agent (its own process, enrolled with an in-process server)
/// filtering a 1M-domain category: its RSS with the rules loaded, then its
/// peak (`VmHWM`, reset first) while the list changes on the server and the
/// agent downloads it and builds the new set beside the one in use.
pub async fn run_swap(b: SwapBench) -> anyhow::Result<()> {
    use candor_proto::policy::PolicyDoc;
    use candor_server::store::{Scope, WebList};
    let dir = tempfile::tempdir()?;
    let mut children = super::Children(Vec::new());
    let server = super::loopback_server(dir.path()).await?;
    let state = server.state.clone();
    let names = domains(b.rules, 21);
    let put = |extra: &str| -> anyhow::Result<()> {
        let mut text: String = names.iter().map(|d| format!("||{d}^\n")).collect();
        text.push_str(extra);
        let meta = WebList {
            name: "bench".into(),
            category: "bench".into(),
            updated_by: "bench".into(),
            ..Default::default()
        };
        state.web.put(state.store.as_ref(), meta, text.as_bytes())?;
        state.bump_epoch();
        Ok(())
    };
    put("")?;
    let doc = PolicyDoc {
        web: WebOptions {
            filter: true,
            block_categories: vec![CategoryBlock { category: "bench".into(), schedule: None }],
            ..Default::default()
        },
        ..Default::default()
    };
    let store = state.store.clone();
    store.assign_policy(Scope::Global, 0, store.create_policy("bench", &doc)?)?;
    let public = format!("https://127.0.0.1:{}", server.addr.port());
    let (token, _) =
        candor_server::enrollment::create_token(store.as_ref(), &public, &server.ca_fingerprint, None, 60_000)?;
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let p = |n: &str| dir.path().join(n).display().to_string();
    std::fs::create_dir_all(dir.path().join("sessions"))?;
    // Filtering only: no redirect of the machine's DNS, no SNI filter, no desktop, no browser files.
    let agent_toml = dir.path().join("agent.toml");
    std::fs::write(
        &agent_toml,
        format!(
            "state_dir = \"{}\"\n[x11]\nsessions_dir = \"{}\"\ndisplay = \":9999\"\n[web]\nlisten = \"127.0.0.1:{port}\"\n\
             redirect = false\nweb_port = 0\nupstreams = [\"127.0.0.1:9\"]\nbrowser_socket = \"{}\"\nbrowser_host = \"{}\"\n\
             native_host_dirs = []\nextension_dir = \"{}\"\nbrowser_policy_dirs = []\n",
            p("agent"),
            p("sessions"),
            p("browser.sock"),
            p("web-host"),
            p("extension"),
        ),
    )?;
    let exe = std::env::current_exe()?;
    let out = Command::new(&exe).args(["agent", "enroll", &token, "--config"]).arg(&agent_toml).output()?;
    anyhow::ensure!(out.status.success(), "enroll: {}", String::from_utf8_lossy(&out.stderr));
    let agent = Command::new(&exe)
        .args(["agent", "run", "--config"])
        .arg(&agent_toml)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    let pid = agent.id();
    children.0.push(agent);

    let t = Instant::now();
    let listed = format!("www.{}", names[names.len() / 2]);
    while !blocks(port, &listed) {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(120), "the agent did not block {listed} within 120 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let loaded_s = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let steady = rss_of(pid, "VmRSS:")?;

    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("resetting the agent's peak RSS")?;
    let t = Instant::now();
    put("||swap-check.bench^\n")?;
    while !blocks(port, "www.swap-check.bench") {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(120), "the agent did not take the changed list within 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let swap_s = t.elapsed().as_secs_f64();
    let peak = rss_of(pid, "VmHWM:")?;
    anyhow::ensure!(blocks(port, &listed), "the swapped set lost {listed}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_of(pid, "VmRSS:")?;
    let mb = |k: u64| k as f64 / 1024.0;
    println!("web list swap in the real agent: {} domains, blocking after {loaded_s:.1} s", b.rules);
    println!(
        "  agent RSS: steady {:.1} MB, peak while the changed list is downloaded and rebuilt {:.1} MB \
         (taken in {swap_s:.1} s), after {:.1} MB",
        mb(steady),
        mb(peak),
        mb(after)
    );
    println!("  peak / steady: {:.2}× (goal ≤ 1.3×)", peak as f64 / steady as f64);
    Ok(())
}
