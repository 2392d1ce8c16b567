//! `candor-agent.toml`. Every option has a default; see docs/configuration.md.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Credentials, spool and last applied policy live here.
    pub state_dir: PathBuf,
    pub spool: SpoolConfig,
    pub uplink: UplinkConfig,
    pub x11: X11Config,
    pub process: ProcessConfig,
    pub software: SoftwareConfig,
    pub web: WebConfig,
}

/// The endpoint's web filter (runs while the policy's `web.filter` is on).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Where the local resolver listens (UDP and TCP).
    pub listen: std::net::SocketAddrV4,
    /// Resolvers to forward to, e.g. `["10.0.0.1:53"]`. Empty: the
    /// nameservers of `/etc/resolv.conf` at filter start (except this one).
    pub upstreams: Vec<std::net::SocketAddr>,
    /// Install the nftables redirect so every application's DNS reaches the
    /// filter. Off only for a resolver you point clients at yourself.
    pub redirect: bool,
    /// Firewall mark of the filter's own traffic (exempt from the redirect).
    pub mark: u32,
    /// Where the block page is served (HTTP, port 80); blocked A queries get
    /// this address when the policy's `block_answer` is `block_page`.
    pub block_page: std::net::Ipv4Addr,
    /// Port on 127.0.0.1 and ::1 of the SNI/Host filter (0: no SNI/Host filter).
    pub web_port: u16,
    pub cache_entries: usize,
    /// Longest time an answer is cached, whatever its TTL.
    pub cache_max_ttl_secs: u32,
    pub upstream_timeout_ms: u64,
    /// How long visits to the same domain are folded into one record.
    pub visit_flush_secs: u64,
    /// Unix socket where the browser extension's native host reports pages
    /// (world-writable: the agent learns each reporter's uid from the kernel).
    pub browser_socket: PathBuf,
    /// The native host launcher the agent writes (an executable script calling
    /// `candor agent web-host`), named in the native messaging manifests.
    pub browser_host: PathBuf,
    /// Where browsers look for native messaging hosts; the agent writes its
    /// manifest (`com.candor.agent.json`) into each.
    pub native_host_dirs: Vec<PathBuf>,
    /// Where the agent writes its browser extension (a signed `candor.crx`
    /// and the `updates.xml` the policy names), readable by every user.
    pub extension_dir: PathBuf,
    /// Managed policy folders of Chromium-based browsers; the agent writes
    /// `candor.json` (`ExtensionInstallForcelist`) into each whose browser
    /// folder (two levels up) exists, and removes it when web data is no
    /// longer collected.
    pub browser_policy_dirs: Vec<PathBuf>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(127, 0, 0, 153), 53),
            upstreams: Vec::new(),
            redirect: true,
            mark: 0x4344_4e53,
            block_page: std::net::Ipv4Addr::new(127, 0, 0, 154),
            web_port: 15380,
            cache_entries: 10_000,
            cache_max_ttl_secs: 3600,
            upstream_timeout_ms: 2000,
            visit_flush_secs: 60,
            browser_socket: PathBuf::from("/run/candor-agent/browser.sock"),
            browser_host: PathBuf::from("/usr/local/lib/candor/candor-web-host"),
            native_host_dirs: vec![
                PathBuf::from("/etc/chromium/native-messaging-hosts"),
                PathBuf::from("/etc/opt/chrome/native-messaging-hosts"),
            ],
            extension_dir: PathBuf::from("/usr/local/lib/candor/extension"),
            browser_policy_dirs: vec![
                PathBuf::from("/etc/chromium/policies/managed"),
                PathBuf::from("/etc/opt/chrome/policies/managed"),
            ],
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoftwareMechanism {
    /// fanotify exec permission events, else killing right after start.
    #[default]
    Auto,
    Fanotify,
    /// Kill blocked programs right after they start (weaker; for kernels
    /// without fanotify permission events, and to test that mode).
    Kill,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftwareConfig {
    pub mechanism: SoftwareMechanism,
    /// dpkg's log, followed for installs and removals.
    pub dpkg_log: PathBuf,
}

impl Default for SoftwareConfig {
    fn default() -> Self {
        SoftwareConfig {
            mechanism: SoftwareMechanism::Auto,
            dpkg_log: PathBuf::from(crate::software::dpkg_log::DEFAULT_PATH),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessSource {
    /// The netlink process connector, else a /proc scan.
    #[default]
    Auto,
    Netlink,
    /// Poll /proc (misses processes shorter than the interval); for hosts
    /// without the connector, and to test the fallback.
    ProcScan,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessConfig {
    pub source: ProcessSource,
    /// Interval of the /proc scan fallback.
    pub scan_interval_ms: u64,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig { source: ProcessSource::Auto, scan_interval_ms: 2000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct X11Config {
    /// X display to watch, e.g. ":0" (then only that one, with `$XAUTHORITY`).
    /// Default: every active X11 login session logind lists, each with its
    /// own cookie; without logind, `$DISPLAY`, else `:0` when its socket exists.
    pub display: Option<String>,
    /// Where logind keeps its session records.
    pub sessions_dir: PathBuf,
    /// D-Bus address where logind answers (lock state); default: the system bus.
    pub logind_bus: Option<String>,
}

impl Default for X11Config {
    fn default() -> Self {
        X11Config {
            display: None,
            sessions_dir: PathBuf::from(crate::platform::sessions::DEFAULT_DIR),
            logind_bus: None,
        }
    }
}

impl X11Config {
    /// The display to watch without logind.
    pub fn fallback_display(&self) -> Option<String> {
        std::env::var("DISPLAY")
            .ok()
            .or_else(|| std::path::Path::new("/tmp/.X11-unix/X0").exists().then(|| ":0".to_string()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Upper bound of payload bytes kept while the server is away; past it the
    /// oldest events are dropped (and the loss reported).
    pub max_bytes: u64,
    /// Events older than this are dropped (and the loss reported).
    pub max_age_hours: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UplinkConfig {
    /// Most events in one batch.
    pub batch_max_events: usize,
    /// Upload pace in events per second, so a reconnect after a long outage
    /// drains the spool without flooding the server.
    pub drain_rate: u64,
    /// zstd level for batches.
    pub zstd_level: i32,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    pub heartbeat_secs: u64,
    /// How long a policy long-poll may wait on the server.
    pub policy_wait_secs: u64,
    /// How long a part-full batch waits for more events before it is sent.
    pub linger_ms: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            state_dir: PathBuf::from("/var/lib/candor-agent"),
            spool: SpoolConfig::default(),
            uplink: UplinkConfig::default(),
            x11: X11Config::default(),
            process: ProcessConfig::default(),
            software: SoftwareConfig::default(),
            web: WebConfig::default(),
        }
    }
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig { max_bytes: 256 << 20, max_age_hours: 14 * 24 }
    }
}

impl Default for UplinkConfig {
    fn default() -> Self {
        UplinkConfig {
            batch_max_events: 2000,
            drain_rate: 20_000,
            zstd_level: 3,
            backoff_min_ms: 250,
            backoff_max_ms: 60_000,
            heartbeat_secs: 30,
            policy_wait_secs: 25,
            linger_ms: 1000,
        }
    }
}

impl AgentConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(s) => toml::from_str(&s).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AgentConfig::default()),
            Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        }
    }
}
