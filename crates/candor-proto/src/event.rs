//! The event model: every fact an agent records is an [`Event`].
//!
//! An event carries a per-agent, strictly increasing `seq` (assigned by the
//! agent's spool when the event is durably recorded), a UTC timestamp in
//! milliseconds, an optional duration (span events, merged ActivityWatch-style
//! before they reach the spool), a [`Category`] (what consent and policy gate)
//! and a typed [`Payload`]. The payload travels as JSON so that it can evolve by
//! adding optional fields without a new batch version; the server stores the
//! bytes it validated, unchanged.

use serde::{Deserialize, Serialize};

/// What kind of personal data an event is; the unit of policy and consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Activity,
    Process,
    Web,
    Screen,
    File,
    Device,
    Chat,
    /// Operational facts about the agent itself (start, spool losses). Not
    /// personal data, so it is never gated by consent.
    System,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Activity,
        Category::Process,
        Category::Web,
        Category::Screen,
        Category::File,
        Category::Device,
        Category::Chat,
        Category::System,
    ];

    /// Categories that hold personal data and therefore need policy and consent.
    pub const GATED: [Category; 7] = [
        Category::Activity,
        Category::Process,
        Category::Web,
        Category::Screen,
        Category::File,
        Category::Device,
        Category::Chat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Activity => "activity",
            Category::Process => "process",
            Category::Web => "web",
            Category::Screen => "screen",
            Category::File => "file",
            Category::Device => "device",
            Category::Chat => "chat",
            Category::System => "system",
        }
    }

    /// Stable small integer used as the storage key; never reorder.
    pub fn code(self) -> u8 {
        match self {
            Category::Activity => 1,
            Category::Process => 2,
            Category::Web => 3,
            Category::Screen => 4,
            Category::File => 5,
            Category::Device => 6,
            Category::Chat => 7,
            Category::System => 8,
        }
    }

    pub fn from_code(code: u8) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Bit for [`CategorySet`].
    pub fn bit(self) -> u16 {
        1 << self.code()
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            format!(
                "unknown category {s:?} (expected one of activity, process, web, screen, file, device, chat, system)"
            )
        })
    }
}

/// A set of categories as a bit mask; cheap to copy into hot paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategorySet(pub u16);

impl CategorySet {
    pub fn contains(self, c: Category) -> bool {
        self.0 & c.bit() != 0
    }
    pub fn insert(&mut self, c: Category) {
        self.0 |= c.bit();
    }
    pub fn iter(self) -> impl Iterator<Item = Category> {
        Category::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Category> for CategorySet {
    fn from_iter<I: IntoIterator<Item = Category>>(iter: I) -> Self {
        let mut s = CategorySet::default();
        for c in iter {
            s.insert(c);
        }
        s
    }
}

/// One recorded fact, as it sits in the spool and travels in a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub ts_ms: i64,
    pub duration_ms: Option<u64>,
    pub category: Category,
    /// JSON encoding of a [`Payload`].
    pub payload: Vec<u8>,
}

/// The typed content of an event. New variants may be added at the end; an
/// older agent never sends them, so it keeps working against a newer server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// Produced by the agent's synthetic test/bench source only.
    Synthetic {
        /// 1-based index within the synthetic run; lets tests prove that every
        /// generated event arrived exactly once.
        n: u64,
        #[serde(default)]
        note: Option<String>,
    },
    /// The spool dropped its oldest events to stay within its bounds.
    SpoolDropped { count: u64, first_seq: u64, last_seq: u64, first_ts_ms: i64, last_ts_ms: i64, reason: String },
    /// The agent process started.
    AgentStarted { version: String },
    /// A span of time in one foreground application (the event's duration),
    /// merged on the agent from focus changes and idle checks.
    Activity {
        /// Application id: executable name when verified, else WM_CLASS.
        app: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exe: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wm_class: Option<String>,
        /// Window title, when the policy says `full`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// SHA-256 of the title (first 16 hex digits), when the policy says `hashed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title_hash: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
        /// False when the window's pid could not be tied to a local process.
        #[serde(default)]
        pid_verified: bool,
        /// `active`, `idle` or `locked`.
        state: String,
        /// Login name of the session (or of the window's process owner).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    /// What the agent's application catalogue (.desktop files) knows about
    /// an application id seen in activity; sent once per id per agent run.
    AppInfo {
        app: String,
        /// Desktop file id, e.g. `org.gnome.Terminal.desktop`.
        desktop_id: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name_zh: Option<String>,
        /// freedesktop.org main and additional categories (`Development`, `Game`, …).
        #[serde(default)]
        categories: Vec<String>,
        /// A small PNG icon, base64, when the theme has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        icon_png: Option<String>,
    },
    /// A process started (netlink process connector, or a /proc scan where
    /// netlink is unavailable: `source` says which).
    ProcessStart {
        pid: u32,
        /// Parent and owner; absent (like everything but the pid) when the
        /// process ended before /proc could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ppid: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        /// Executable; absent when the process ended before it could be read
        /// (then only `comm`, the kernel's 15-character name, is known).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exe: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comm: Option<String>,
        /// SHA-256 of the executable; absent when it could not be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// Debian package that owns the executable.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        package: Option<String>,
        /// Command line, only when the policy allows it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cmdline: Option<Vec<String>>,
        /// `netlink` or `proc_scan`.
        source: String,
    },
    /// A process exited; the event's duration is its run time when known.
    ProcessExit {
        pid: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exe: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
    },
    /// Software control acted on an exec (see the policy's `software` section).
    /// Repeats of the same attempt within a second are folded into `count`.
    SoftwareControl {
        /// `blocked` (the exec was refused or the process killed) or `alerted` (let through, reported).
        outcome: String,
        /// `rule`, `not_listed` (allow-list mode), `install`, `untrusted` or `timeout`.
        reason: String,
        /// Name of the deciding rule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        /// The program (or script) as the kernel names it; control characters escaped.
        exe: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        package: Option<String>,
        /// The employee behind it (login uid through sudo).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
        pid: u32,
        /// `fanotify` (exec refused before it ran) or `kill` (the weaker mode: killed right after it started).
        mode: String,
        count: u64,
    },
    /// A package was installed, upgraded or removed (from dpkg's log).
    PackageChange {
        /// `install`, `upgrade`, `remove` or `purge`.
        action: String,
        package: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
    /// Visits to one domain, folded: lookups through the agent's resolver,
    /// connections seen by SNI/Host, or pages reported by the browser
    /// extension. A blocked attempt is an enforcement record (system), a
    /// visit is web data (consent-gated).
    WebVisit {
        domain: String,
        /// `dns`, `sni`, `http` or `browser`.
        source: String,
        #[serde(default)]
        blocked: bool,
        /// The list (or `policy`) whose rule decided a block.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        /// Occurrences folded into this record.
        count: u64,
        /// Full URL, only when the policy asks for more than domains.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// Page title (browser extension, full-URL policy only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// Words searched for on a search engine (browser extension, full-URL policy only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        search: Option<String>,
        /// Bytes sent and received (connections through the SNI/Host filter).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes_out: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes_in: Option<u64>,
    },
    /// A recorded screen frame (or one part of it: parts share `ts_ms`).
    /// The agent sends the encoded frame in `data` (base64); the server
    /// moves it to the blob store and keeps `blob` (its SHA-256) instead.
    ScreenFrame {
        /// The X display (or session) it shows.
        display: String,
        width: u32,
        height: u32,
        key: bool,
        /// Tiles carried.
        tiles: u32,
        bytes: u64,
        /// What started recording: `interval`, or the program or title that triggered it.
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blob: Option<String>,
    },
}

impl Payload {
    /// The category this payload must be filed under. `None` means the payload
    /// may appear under any category (synthetic test data).
    pub fn required_category(&self) -> Option<Category> {
        match self {
            Payload::Synthetic { .. } => None,
            // Enforcement records are the company's rule acting (the employee is
            // told at that moment), not observed behaviour: never consent-gated.
            Payload::SpoolDropped { .. }
            | Payload::WebVisit { blocked: true, .. }
            | Payload::AgentStarted { .. }
            | Payload::SoftwareControl { .. }
            | Payload::PackageChange { .. } => Some(Category::System),
            Payload::Activity { .. } | Payload::AppInfo { .. } => Some(Category::Activity),
            Payload::ProcessStart { .. } | Payload::ProcessExit { .. } => Some(Category::Process),
            Payload::WebVisit { .. } => Some(Category::Web),
            Payload::ScreenFrame { .. } => Some(Category::Screen),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a plain enum of owned data cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
