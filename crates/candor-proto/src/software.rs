//! The software-control section of a policy: which programs employees may
//! start and who may install software. The agent enforces it (see
//! `candor_agent::software`); the server validates it when an admin saves it
//! so that a typo is an error in the editor, not a silently dead rule.

use serde::{Deserialize, Serialize};

/// Whether the rule list names what is forbidden or what is allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SoftwareMode {
    /// No program control (default).
    #[default]
    Off,
    /// Programs matching a `block` rule do not start; `alert` rules only report.
    Deny,
    /// Only programs matching a rule (or exempt by design) start.
    Allow,
}

/// What happens when something matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Allow,
    /// Let it run and report it.
    Alert,
    /// Refuse the exec (EPERM) and report it.
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftwareOptions {
    pub mode: SoftwareMode,
    pub rules: Vec<ProgramRule>,
    /// When no decision is reached within `decision_timeout_ms` (a huge file
    /// still being hashed): refuse the exec instead of allowing it.
    pub fail_closed: bool,
    pub decision_timeout_ms: u64,
    /// Processes of accounts below this uid (root, system services) are exempt,
    /// unless started by a logged-in employee (audit login uid), e.g. via sudo.
    pub min_uid: u32,
    /// Package managers (dpkg, apt, rpm, …) started by employees.
    pub install: InstallControl,
    /// Executables in user-writable places (home, /tmp, /dev/shm, /run/user)
    /// or owned by an employee: downloaded or built rather than installed.
    pub untrusted: Action,
    /// Tell the employee on the desktop when something is blocked.
    pub notify: bool,
}

impl Default for SoftwareOptions {
    fn default() -> Self {
        SoftwareOptions {
            mode: SoftwareMode::Off,
            rules: Vec::new(),
            fail_closed: false,
            decision_timeout_ms: 250,
            min_uid: 1000,
            install: InstallControl::default(),
            untrusted: Action::Allow,
            notify: true,
        }
    }
}

impl SoftwareOptions {
    /// Whether the agent needs to watch execs at all.
    pub fn active(&self) -> bool {
        self.mode != SoftwareMode::Off || self.install.action != Action::Allow || self.untrusted != Action::Allow
    }

    /// Check everything an agent would otherwise have to ignore.
    pub fn validate(&self) -> Result<(), String> {
        for (i, r) in self.rules.iter().enumerate() {
            r.validate().map_err(|e| format!("software.rules[{i}] ({}): {e}", r.name))?;
        }
        if self.decision_timeout_ms == 0 || self.decision_timeout_ms > 60_000 {
            return Err("software.decision_timeout_ms must be between 1 and 60000".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstallControl {
    pub action: Action,
    /// Login names that may install anyway.
    pub allowed_users: Vec<String>,
    /// Packages anyone may install with apt (`apt install NAME…`, checked as
    /// apt starts; dpkg run by an approved apt is let through).
    pub approved_packages: Vec<String>,
}

/// One rule. Every criterion given must match (an empty rule matches nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProgramRule {
    /// Shown to the employee and in reports, e.g. "游戏".
    pub name: String,
    /// Glob on the file name (`steam*`, `*.AppImage`).
    pub file: Option<String>,
    /// Glob on the full path (`/opt/games/**`).
    pub path: Option<String>,
    /// SHA-256 of the file (lower-case hex): catches copies, renames, hard links.
    pub sha256: Option<String>,
    /// Debian package owning the file.
    pub package: Option<String>,
    /// freedesktop.org category from the application's .desktop file (`Game`).
    pub category: Option<String>,
    /// Deny mode: `block` (default) or `alert`. Ignored in allow mode.
    pub action: Option<Action>,
    /// Only applies inside this window (endpoint local time).
    pub schedule: Option<Schedule>,
}

impl ProgramRule {
    pub fn is_empty(&self) -> bool {
        self.file.is_none()
            && self.path.is_none()
            && self.sha256.is_none()
            && self.package.is_none()
            && self.category.is_none()
    }

    fn validate(&self) -> Result<(), String> {
        if self.is_empty() {
            return Err("a rule needs at least one of file, path, sha256, package, category".into());
        }
        if let Some(h) = &self.sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("sha256 {h:?} is not 64 hex digits"));
            }
        }
        for g in [&self.file, &self.path].into_iter().flatten() {
            globset::Glob::new(g).map_err(|e| format!("glob {g:?}: {e}"))?;
        }
        if let Some(s) = &self.schedule {
            s.validate()?;
        }
        Ok(())
    }
}

/// A weekly window, e.g. work hours: `{ days = ["mon", …, "fri"], from = "09:00", to = "18:00" }`.
/// `from` > `to` spans midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Schedule {
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            days: ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec(),
            from: "09:00".into(),
            to: "18:00".into(),
        }
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn minute_of(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
}

impl Schedule {
    pub fn validate(&self) -> Result<(), String> {
        for d in &self.days {
            if !DAYS.contains(&d.as_str()) {
                return Err(format!("schedule day {d:?} is not one of {}", DAYS.join(", ")));
            }
        }
        for t in [&self.from, &self.to] {
            minute_of(t).ok_or_else(|| format!("schedule time {t:?} is not HH:MM"))?;
        }
        Ok(())
    }

    /// Whether the window is open on `weekday` (0 = Monday) at `minute` after local midnight.
    pub fn contains(&self, weekday: u32, minute: u32) -> bool {
        let (Some(from), Some(to)) = (minute_of(&self.from), minute_of(&self.to)) else { return false };
        let on = |d: u32| DAYS.get(d as usize % 7).is_some_and(|n| self.days.iter().any(|x| x == n));
        if from <= to {
            on(weekday) && (from..to).contains(&minute)
        } else {
            // Spans midnight: the evening belongs to the listed day, the early hours to the day before.
            (on(weekday) && minute >= from) || (on((weekday + 6) % 7) && minute < to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_bad_rule() {
        let mut o = SoftwareOptions { mode: SoftwareMode::Deny, ..Default::default() };
        o.rules.push(ProgramRule { name: "games".into(), category: Some("Game".into()), ..Default::default() });
        assert!(o.validate().is_ok());
        o.rules.push(ProgramRule { name: "bad".into(), sha256: Some("xyz".into()), ..Default::default() });
        let e = o.validate().unwrap_err();
        assert!(e.contains("rules[1] (bad)") && e.contains("64 hex"), "{e}");
        o.rules[1] = ProgramRule { name: "empty".into(), ..Default::default() };
        assert!(o.validate().unwrap_err().contains("at least one"));
        o.rules[1] = ProgramRule { name: "glob".into(), file: Some("a[".into()), ..Default::default() };
        assert!(o.validate().unwrap_err().contains("glob"));
        let sched = Schedule { days: vec!["mon".into()], from: "25:00".into(), to: "18:00".into() };
        o.rules[1] =
            ProgramRule { name: "t".into(), file: Some("x".into()), schedule: Some(sched), ..Default::default() };
        assert!(o.validate().unwrap_err().contains("HH:MM"));
    }

    #[test]
    fn schedules_including_overnight() {
        let work = Schedule::default();
        assert!(work.contains(0, 9 * 60));
        assert!(!work.contains(0, 18 * 60), "end is exclusive");
        assert!(!work.contains(5, 10 * 60), "saturday");
        let night = Schedule { days: vec!["fri".into()], from: "22:00".into(), to: "06:00".into() };
        assert!(night.contains(4, 23 * 60));
        assert!(night.contains(5, 60), "saturday 01:00 belongs to friday night");
        assert!(!night.contains(4, 60), "friday 01:00 belongs to thursday night");
    }
}
