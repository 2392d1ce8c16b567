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
