//! `candor.toml` for the server. Every option has a default; a missing file
//! means all defaults. See docs/configuration.md.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where the database, blobs and TLS material live.
    pub data_dir: PathBuf,
    /// Address the HTTPS listener binds.
    pub listen: String,
    /// URL agents use to reach this server; goes into enrollment tokens and
    /// the certificate's names. Default: `https://<hostname>:<listen port>`.
    pub public_url: Option<String>,
    /// Extra DNS names or IPs for the server certificate.
    pub tls_extra_names: Vec<String>,
    /// The key that seals secrets in this file and in key files (see
    /// `candor secret seal`). Default: the systemd credential
    /// `candor-master-key` if present, else `master.key` in `data_dir`.
    pub master_key_file: Option<PathBuf>,
    pub ingest: IngestConfig,
    pub presence: PresenceConfig,
    pub auth: AuthConfig,
    pub console: ConsoleConfig,
    pub retention: RetentionConfig,
    pub chat: ChatConfig,
    pub alerts: AlertSinkConfig,
    pub web: WebConfig,
}

/// Web filtering on the server side: the domain lists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// How often lists fetched from a URL are looked at for their refresh
    /// period (`refresh_hours`, set per list) having passed.
    pub list_check_secs: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig { list_check_secs: 300 }
    }
}

/// Where alerts go besides the console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSinkConfig {
    /// A WeCom group robot's webhook URL (`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`); empty: off.
    pub wecom_webhook: String,
    /// SMTP server for alert e-mails: `smtps://user:pass@host:465`,
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtp://host:25`; empty: off.
    pub smtp_url: String,
    pub smtp_from: String,
    pub smtp_to: Vec<String>,
    /// Least severe alert sent to the robot and by e-mail.
    pub min_severity: crate::store::Severity,
}

impl Default for AlertSinkConfig {
    fn default() -> Self {
        AlertSinkConfig {
            wecom_webhook: String::new(),
            smtp_url: String::new(),
            smtp_from: "Candor <candor@localhost>".into(),
            smtp_to: Vec::new(),
            min_severity: crate::store::Severity::Warning,
        }
    }
}

/// Chat audit (imports and, later, the WeCom archive connector).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Largest chat import accepted in one request (bytes).
    pub max_import_bytes: usize,
    pub wecom: WecomConfig,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig { max_import_bytes: 64 << 20, wecom: WecomConfig::default() }
    }
}

/// The WeCom chat archive connector (off while `sdk_path` is empty).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WecomConfig {
    /// Path of the vendor's `libWeWorkFinanceSdk_C.so`; empty: connector off.
    pub sdk_path: String,
    pub corpid: String,
    /// The chat archive Secret (管理工具 → 聊天内容存档), not an app secret;
    /// sealed (`candor secret seal`) or, with a warning, in clear.
    pub secret: String,
    /// `publickey_ver` → PEM file of that version's RSA private key, whose
    /// content is sealed (or, with a warning, in clear).
    pub private_keys: std::collections::BTreeMap<String, PathBuf>,
    /// Pause between pulls once caught up.
    pub poll_secs: u64,
    /// Messages per pull (1–1000).
    pub batch: u32,
    /// Proxy for the SDK (e.g. `socks5://10.0.0.1:8081`) and its `user:password`.
    pub proxy: String,
    /// Sealed like `secret`.
    pub proxy_password: String,
    pub timeout_secs: i32,
    /// Download images, voice, video and files into the blob store.
    pub media: bool,
    /// Largest media file downloaded (bytes).
    pub max_media_bytes: u64,
    /// Base URL of the qyapi HTTP APIs (consent checks).
    pub api_base: String,
    /// How often contacts' archiving consent is asked of qyapi (0: never).
    pub consent_sync_secs: u64,
}

impl WecomConfig {
    /// This config with `secret` and `proxy_password` opened.
    pub fn revealed(&self, key: &crate::sealed::MasterKey) -> anyhow::Result<WecomConfig> {
        Ok(WecomConfig {
            secret: key.reveal("chat.wecom.secret", &self.secret)?,
            proxy_password: key.reveal("chat.wecom.proxy_password", &self.proxy_password)?,
            ..self.clone()
        })
    }
}

impl Default for WecomConfig {
    fn default() -> Self {
        WecomConfig {
            sdk_path: String::new(),
            corpid: String::new(),
            secret: String::new(),
            private_keys: Default::default(),
            poll_secs: 30,
            batch: 1000,
            proxy: String::new(),
            proxy_password: String::new(),
            timeout_secs: 10,
            media: true,
            max_media_bytes: 100 << 20,
            api_base: "https://qyapi.weixin.qq.com".into(),
            consent_sync_secs: 3600,
        }
    }
}

/// How long collected data is kept, per category, in days (0: kept until
/// deleted by hand). Employees under legal hold are exempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    pub activity_days: u32,
    pub process_days: u32,
    pub web_days: u32,
    pub screen_days: u32,
    pub file_days: u32,
    pub device_days: u32,
    pub chat_days: u32,
    pub system_days: u32,
    /// How often the purge runs.
    pub purge_every_minutes: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            activity_days: 180,
            process_days: 90,
            web_days: 90,
            screen_days: 30,
            file_days: 180,
            device_days: 180,
            chat_days: 365,
            system_days: 365,
            purge_every_minutes: 60,
        }
    }
}

impl RetentionConfig {
    pub fn days(&self, c: candor_proto::Category) -> u32 {
        use candor_proto::Category::*;
        match c {
            Activity => self.activity_days,
            Process => self.process_days,
            Web => self.web_days,
            Screen => self.screen_days,
            File => self.file_days,
            Device => self.device_days,
            Chat => self.chat_days,
            System => self.system_days,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest compressed batch accepted (bytes).
    pub max_batch_bytes: usize,
    /// Largest decompressed batch (bytes).
    pub max_decompressed_bytes: usize,
    pub max_events_per_batch: usize,
    /// Largest single event payload (bytes).
    pub max_payload_bytes: usize,
    /// Most events committed in one transaction by the writer.
    pub max_group_events: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// An agent silent for this long is marked offline.
    pub offline_after_secs: u64,
    /// Longest time an agent's policy long-poll is held open.
    pub policy_poll_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Admin session lifetime.
    pub session_hours: u64,
    /// Wrong passwords in a row that lock an account.
    pub max_failed_logins: u32,
    /// How long a locked account stays locked.
    pub lockout_minutes: u64,
    /// Login attempts per minute accepted from one client address.
    pub login_attempts_per_minute: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// The company's time zone (IANA name): days, dates and times in the
    /// console and in reports use it.
    pub timezone: String,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig { timezone: "Asia/Shanghai".into() }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("candor-data"),
            listen: "0.0.0.0:8443".into(),
            public_url: None,
            tls_extra_names: Vec::new(),
            master_key_file: None,
            ingest: IngestConfig::default(),
            presence: PresenceConfig::default(),
            auth: AuthConfig::default(),
            console: ConsoleConfig::default(),
            retention: RetentionConfig::default(),
            chat: ChatConfig::default(),
            alerts: AlertSinkConfig::default(),
            web: WebConfig::default(),
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        let l = candor_proto::batch::Limits::default();
        IngestConfig {
            max_batch_bytes: l.max_compressed,
            max_decompressed_bytes: l.max_decompressed,
            max_events_per_batch: l.max_events,
            max_payload_bytes: l.max_payload,
            max_group_events: 200_000,
        }
    }
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig { offline_after_secs: 90, policy_poll_secs: 25 }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { session_hours: 12, max_failed_logins: 5, lockout_minutes: 15, login_attempts_per_minute: 30 }
    }
}

impl IngestConfig {
    pub fn limits(&self) -> candor_proto::batch::Limits {
        candor_proto::batch::Limits {
            max_compressed: self.max_batch_bytes,
            max_decompressed: self.max_decompressed_bytes,
            max_events: self.max_events_per_batch,
            max_payload: self.max_payload_bytes,
        }
    }
}

impl ServerConfig {
    /// Load from a TOML file; a missing file gives the defaults.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(s) => toml::from_str(&s).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ServerConfig::default()),
            Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        }
    }

    pub fn public_url(&self) -> String {
        if let Some(u) = &self.public_url {
            return u.trim_end_matches('/').to_string();
        }
        let port = self.listen.rsplit(':').next().unwrap_or("8443");
        let host = hostname::get().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "127.0.0.1".into());
        format!("https://{host}:{port}")
    }
}
