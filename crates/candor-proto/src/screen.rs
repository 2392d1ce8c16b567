//! The policy's screen section: when frames are captured, what is hidden
//! from them, and how they are encoded.

use serde::{Deserialize, Serialize};

/// When to record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Every `interval_secs` (unchanged screens add nothing).
    #[default]
    Interval,
    /// Only while one of `apps` runs.
    Running,
    /// Only while one of `apps` has the focus (or a focused title matches `title_pattern`).
    Focused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScreenOptions {
    pub trigger: Trigger,
    /// Executable names (e.g. `libreoffice`, `wps`) for the app triggers.
    pub apps: Vec<String>,
    /// For `focused`: a regex on the focused window's title that also triggers.
    pub title_pattern: Option<String>,
    /// Seconds between captures while recording.
    pub interval_secs: u32,
    /// No input for this long pauses recording (0: never); a locked
    /// session is never recorded.
    pub pause_idle_secs: u32,
    /// Windows of these executables are blanked out of every frame
    /// (banking, health, personal messengers).
    pub hide_apps: Vec<String>,
    /// Windows whose title matches this regex are blanked too — sites and
    /// documents by name (`网上银行|Online banking|医院`): browsers put the page title in theirs.
    pub hide_titles: Option<String>,
    /// WebP quality of the stored tiles, 0–100 (decision 0015: 10 keeps
    /// every frame's SSIM about 0.98 on office screens; 1 still meets the
    /// 0.95 gate).
    pub quality: u8,
    /// Pictures per second of live view at most (the agent sends fewer when
    /// the link is slower).
    pub live_fps: u8,
    /// While anyone watches live (or on the wall) the employee sees a notice
    /// on their desktop. Only a policy stating why may turn it off.
    pub live_notice: bool,
    /// Why the live-view notice is off (required when `live_notice` is false;
    /// saving such a policy is written to the access log).
    pub live_notice_off_reason: Option<String>,
}

impl Default for ScreenOptions {
    fn default() -> Self {
        ScreenOptions {
            trigger: Trigger::Interval,
            apps: Vec::new(),
            title_pattern: None,
            interval_secs: 10,
            pause_idle_secs: 300,
            hide_apps: Vec::new(),
            hide_titles: None,
            quality: 10,
            live_fps: 10,
            live_notice: true,
            live_notice_off_reason: None,
        }
    }
}

impl ScreenOptions {
    /// Why the options are unusable, if they are.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_secs == 0 || self.interval_secs > 3600 {
            return Err(format!("screen.interval_secs must be 1..=3600, not {}", self.interval_secs));
        }
        if self.quality > 100 {
            return Err(format!("screen.quality must be 0..=100, not {}", self.quality));
        }
        if !(1..=30).contains(&self.live_fps) {
            return Err(format!("screen.live_fps must be 1..=30, not {}", self.live_fps));
        }
        let reason = self.live_notice_off_reason.as_deref().map(str::trim).unwrap_or("");
        if !self.live_notice && reason.is_empty() {
            return Err("screen.live_notice is off: say why in screen.live_notice_off_reason".into());
        }
        if reason.chars().count() > 500 {
            return Err("screen.live_notice_off_reason is longer than 500 characters".into());
        }
        if self.trigger != Trigger::Interval && self.apps.is_empty() && self.title_pattern.is_none() {
            return Err("screen.trigger names programs, but screen.apps is empty".into());
        }
        for (name, p) in [("title_pattern", &self.title_pattern), ("hide_titles", &self.hide_titles)] {
            if p.as_ref().is_some_and(|p| p.len() > 1024) {
                return Err(format!("screen.{name} is longer than 1024 bytes"));
            }
        }
        for a in self.apps.iter().chain(&self.hide_apps) {
            if a.is_empty() || a.len() > 255 || a.contains('/') {
                return Err(format!("screen app {a:?} must be an executable's file name"));
            }
        }
        Ok(())
    }
}
