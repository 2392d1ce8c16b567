//! `candor bench …`: benchmarks that measure Candor and a peer in the same
//! run and print the ratio (absolute times are not stable on shared machines).

mod agent;
mod chat;
mod dlp;
mod exec;
mod ingest;
mod live;
mod screen;
mod web;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Agents → HTTPS → ingest → SQLite, against bare SQLite inserting the same rows.
    Ingest(ingest::IngestBench),
    /// The agent's CPU and RSS with activity and process collection busy, then idle, against forkstat + xprop.
    Agent(agent::AgentBench),
    /// Program starts with software control off and on: overhead ratio and decision latency.
    Exec(exec::ExecBench),
    /// Chat substring search at 1M messages: indexing, size, query latency and recall, against SQLite FTS5 (trigram).
    ChatSearch(chat::ChatBench),
    /// DLP scanning throughput with 10k keywords plus the detectors, against a plain aho-corasick pass.
    Dlp(dlp::DlpBench),
    /// A 1M-domain rule set: build time, bytes per rule, lookup p50/p99, rebuild peak, against a HashSet<String>.
    WebRules(web::RulesBench),
    /// The agent's resolver with 1M blocked domains under dnsperf, against unbound with the same list.
    Dns(web::DnsBench),
    /// The real agent with a 1M-domain category: peak RSS while a changed list is downloaded and swapped in, against its steady RSS.
    WebSwap(web::SwapBench),
    /// A scripted office session on a 1080p Xvfb: bytes per day, CPU per frame and worst-frame SSIM, against libx264 at the same gate.
    Screen(screen::ScreenBench),
    /// Live view and the wall on the scripted 1080p session with the real agent: pictures/s, capture-to-viewer latency, against ffmpeg x11grab → MJPEG.
    Live(live::LiveBench),
}

/// Kills its children when dropped, so a failed run leaves nothing behind.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Fail with the package to install when a peer tool is missing.
fn need(tool: &str, package: &str) -> anyhow::Result<()> {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(std::process::Stdio::null())
        .status()?
        .success();
    anyhow::ensure!(found, "{tool} is missing: apt-get install {package}");
    Ok(())
}

/// An X display number nobody uses.
fn free_display() -> u32 {
    (200..400)
        .find(|n| {
            !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .unwrap_or(399)
}

/// A server with embedded storage under `dir`, listening on a free loopback port.
async fn loopback_server(dir: &std::path::Path) -> anyhow::Result<candor_server::Running> {
    let config = candor_server::config::ServerConfig {
        data_dir: dir.join("server"),
        listen: "127.0.0.1:0".into(),
        public_url: Some("https://127.0.0.1".into()),
        ..Default::default()
    };
    candor_server::start(config).await
}

pub async fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Ingest(b) => ingest::run(b).await,
        BenchCmd::Agent(b) => agent::run(b).await,
        BenchCmd::Exec(b) => exec::run(b).await,
        BenchCmd::ChatSearch(b) => tokio::task::spawn_blocking(move || chat::run(b)).await?,
        BenchCmd::Dlp(b) => tokio::task::spawn_blocking(move || dlp::run(b)).await?,
        BenchCmd::WebRules(b) => tokio::task::spawn_blocking(move || web::run_rules(b)).await?,
        BenchCmd::Dns(b) => web::run_dns(b).await,
        BenchCmd::WebSwap(b) => web::run_swap(b).await,
        BenchCmd::Screen(b) => tokio::task::spawn_blocking(move || screen::run(b)).await?,
        BenchCmd::Live(b) => live::run(b).await,
    }
}
