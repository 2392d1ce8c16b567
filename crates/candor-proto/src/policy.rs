//! Policy documents and the effective policy an agent applies.
//!
//! A [`PolicyDoc`] is what admins write and assign at global, department or
//! agent scope (the most specific assignment wins, whole document). The server
//! combines it with the consent recorded for the employee using the desktop
//! into an [`EffectivePolicy`]: a category is collected only when the policy
//! enables it AND consent is on record. Gating lives in the model, not in each
//! collector.

use crate::event::{Category, CategorySet};
use serde::{Deserialize, Serialize};

/// Which categories a policy switches on. Everything defaults to off: collect less.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Collect {
    pub activity: bool,
    pub process: bool,
    pub web: bool,
    pub screen: bool,
    pub file: bool,
    pub device: bool,
    pub chat: bool,
}

impl Collect {
    pub fn enabled(&self) -> CategorySet {
        let mut s = CategorySet::default();
        for (c, on) in [
            (Category::Activity, self.activity),
            (Category::Process, self.process),
            (Category::Web, self.web),
            (Category::Screen, self.screen),
            (Category::File, self.file),
            (Category::Device, self.device),
            (Category::Chat, self.chat),
        ] {
            if on {
                s.insert(c);
            }
        }
        s
    }
}

/// The document admins edit. Later capabilities add their own sections here,
/// each with defaults, so an older stored document stays valid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyDoc {
    pub collect: Collect,
    pub activity: ActivityOptions,
    pub process: ProcessOptions,
    pub software: crate::software::SoftwareOptions,
    /// Collect only inside this weekly window (endpoint local time), e.g.
    /// work hours; nothing personal is recorded outside it. `None`: always.
    pub collect_hours: Option<crate::software::Schedule>,
    pub web: crate::web::WebOptions,
    pub screen: crate::screen::ScreenOptions,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessOptions {
    /// Record command lines (off by default: arguments often hold file names,
    /// URLs, sometimes secrets).
    pub cmdline: bool,
}

/// How much of a window title is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TitleMode {
    /// No title (default: collect less).
    #[default]
    Off,
    /// A hash: equal titles can be told apart from different ones, not read.
    Hashed,
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivityOptions {
    pub titles: TitleMode,
    /// No input for this long marks time as idle.
    pub idle_threshold_secs: u64,
}

impl Default for ActivityOptions {
    fn default() -> Self {
        ActivityOptions { titles: TitleMode::Off, idle_threshold_secs: 180 }
    }
}

/// What the server hands an agent; the agent applies it atomically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectivePolicy {
    /// Changes whenever anything below changes; the agent reports it back as
    /// its applied version and long-polls with it.
    pub etag: String,
    /// Name and revision of the policy that applied (`None`: no policy assigned).
    pub policy: Option<PolicyRef>,
    pub doc: PolicyDoc,
    /// Employees whose consent counted (the desktop's assigned employee, or the
    /// employees logged in to it).
    pub employees: Vec<u64>,
    /// Categories with consent on record for all of those employees.
    pub consented: CategorySet,
    /// enabled ∩ consented, plus `system`: what the agent may collect.
    pub allowed: CategorySet,
    /// The endpoint is a personal device: only `system` is allowed.
    #[serde(default)]
    pub personal: bool,
    /// The uploaded lists the web filter needs (those of blocked categories).
    #[serde(default)]
    pub web_lists: Vec<crate::web::WebListRef>,
    /// A monitoring notice some employees of this desktop have not answered
    /// yet: the agent tells them on their desktop where to read and answer it.
    #[serde(default)]
    pub notice: Option<NoticeDue>,
    /// Someone is watching this desktop's screen now: the agent streams it.
    #[serde(default)]
    pub live: Option<LiveRequest>,
}

/// What viewers want of this desktop's screen, live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRequest {
    /// Full pictures, for admins watching this endpoint.
    pub view: bool,
    /// Thumbnails, for the screen wall.
    pub wall: bool,
}

/// The company's monitoring notice in force and who still owes an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeDue {
    pub version: u64,
    /// Login names of this desktop's employees without an answer to `version`.
    pub pending: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    pub id: u64,
    pub name: String,
    pub revision: u64,
    pub scope: String,
}

impl EffectivePolicy {
    /// Build the effective policy and its etag from its inputs.
    pub fn compose(policy: Option<PolicyRef>, doc: PolicyDoc, employees: Vec<u64>, consented: CategorySet) -> Self {
        let mut allowed = CategorySet(doc.collect.enabled().0 & consented.0);
        allowed.insert(Category::System);
        EffectivePolicy {
            etag: String::new(),
            policy,
            doc,
            employees,
            consented,
            allowed,
            personal: false,
            web_lists: Vec::new(),
            notice: None,
            live: None,
        }
        .sealed()
    }

    /// Personal-device mode: whatever the policy and consent, nothing but system events.
    pub fn personal_device(mut self) -> Self {
        self.personal = true;
        self.allowed = [Category::System].into_iter().collect();
        self.sealed()
    }

    /// Name the lists the web filter must fetch.
    pub fn with_web_lists(mut self, lists: Vec<crate::web::WebListRef>) -> Self {
        self.web_lists = lists;
        self.sealed()
    }

    fn sealed(mut self) -> Self {
        self.etag = String::new();
        let json = serde_json::to_vec(&self).unwrap_or_default();
        self.etag = crate::token::short_hash(&json);
        self
    }

    /// Name the notice some of this desktop's employees have yet to answer.
    pub fn with_notice(mut self, notice: Option<NoticeDue>) -> Self {
        self.notice = notice;
        self.sealed()
    }

    /// Ask for the screen live; only where screen collection is allowed
    /// (policy and consent), so nobody is watched without it.
    pub fn with_live(mut self, live: Option<LiveRequest>) -> Self {
        self.live = live.filter(|l| (l.view || l.wall) && self.allows(Category::Screen));
        self.sealed()
    }

    /// Before the first policy arrives an agent collects only system events.
    pub fn nothing() -> Self {
        Self::compose(None, PolicyDoc::default(), Vec::new(), CategorySet::default())
    }

    pub fn allows(&self, c: Category) -> bool {
        self.allowed.contains(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_needs_policy_and_consent() {
        let doc =
            PolicyDoc { collect: Collect { activity: true, web: true, ..Default::default() }, ..Default::default() };
        let consent: CategorySet = [Category::Activity, Category::Screen].into_iter().collect();
        let p = EffectivePolicy::compose(None, doc.clone(), vec![1], consent);
        assert!(p.allows(Category::Activity));
        assert!(!p.allows(Category::Web), "enabled but no consent");
        assert!(!p.allows(Category::Screen), "consent but not enabled");
        assert!(p.allows(Category::System));
        let q = EffectivePolicy::compose(None, doc, vec![1], CategorySet::default());
        assert_ne!(p.etag, q.etag);
        assert!(!q.allows(Category::Activity));
    }

    #[test]
    fn unknown_policy_fields_are_rejected() {
        assert!(serde_json::from_str::<PolicyDoc>(r#"{"collect":{"activty":true}}"#).is_err());
        assert!(serde_json::from_str::<PolicyDoc>(r#"{}"#).is_ok());
    }
}
