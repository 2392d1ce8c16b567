//! The web section of a policy: what the endpoint's DNS and SNI/Host filter
//! blocks, and how much of a visit is kept. Rule lines use the list syntax of
//! `candor_webrules`; the server checks them when an admin saves the policy.

use crate::software::Schedule;
use serde::{Deserialize, Serialize};

/// How a blocked name is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockAnswer {
    /// The name does not exist (applications fail fast).
    #[default]
    Nxdomain,
    /// The address of the agent's block page, so a browser shows why.
    BlockPage,
}

/// A category (of uploaded lists) to block, optionally only inside a weekly window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryBlock {
    pub category: String,
    /// Block only inside this window (e.g. video sites during work hours). `None`: always.
    #[serde(default)]
    pub schedule: Option<Schedule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebOptions {
    /// Run the endpoint's filter (local resolver, DNS redirect, SNI/Host
    /// filter). Off by default. Visits are recorded only when the `web`
    /// category is collected as well.
    pub filter: bool,
    pub block_answer: BlockAnswer,
    /// Rules blocking names, e.g. `||example.com^`, `*.games.example`.
    pub block: Vec<String>,
    /// Rules that override every block, e.g. `@@||intranet.example^` or `intranet.example`.
    pub allow: Vec<String>,
    pub block_categories: Vec<CategoryBlock>,
    /// Block well-known DNS-over-HTTPS names and DNS-over-TLS (port 853),
    /// so applications cannot resolve around the filter.
    pub block_doh: bool,
    /// Keep full URLs and titles from the browser extension (default: domain only).
    pub full_urls: bool,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            filter: false,
            block_answer: BlockAnswer::default(),
            block: Vec::new(),
            allow: Vec::new(),
            block_categories: Vec::new(),
            block_doh: true,
            full_urls: false,
        }
    }
}

impl WebOptions {
    /// Whether `category` is blocked at local `weekday`/`minute`.
    pub fn blocks_category(&self, category: &str, weekday: u32, minute: u32) -> bool {
        self.block_categories
            .iter()
            .any(|c| c.category == category && c.schedule.as_ref().is_none_or(|s| s.contains(weekday, minute)))
    }
}

/// An uploaded list the agent needs, fetched by content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebListRef {
    pub id: u64,
    pub name: String,
    pub category: String,
    /// SHA-256 of the list text; also its download name.
    pub sha256: String,
    pub bytes: u64,
    /// Rules the server counted in it (so the agent reserves exactly once).
    #[serde(default)]
    pub rules: u64,
}
