//! The agent never hides: the person at each graphical session of this
//! computer is told on their desktop what is collected about them — the
//! first time, and whenever that changes — and, while the company's
//! monitoring notice awaits their answer, where to read and answer it in the
//! portal. What each person was last told is kept in the state folder, so a
//! restart does not repeat it and a change made while the agent was down is
//! still told. Each session also has a status icon (`tray`) that shows what
//! is collected now, and whether the screen is watched live, all along.

use crate::desktop_notify;
use crate::platform::sessions;
use crate::tray::{Tray, TrayState, Watched};
use crate::Stop;
use candor_proto::policy::EffectivePolicy;
use candor_proto::Category;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const FILE: &str = "told.json";
/// How often login sessions are looked at (as the activity source does).
const POLL: Duration = Duration::from_secs(2);
/// A status icon helper that ended is started again after this long.
const TRAY_RETRY: Duration = Duration::from_secs(30);

pub struct Visibility {
    pub policy: watch::Receiver<Arc<EffectivePolicy>>,
    pub watched: Watched,
    pub sessions_dir: PathBuf,
    pub state_dir: PathBuf,
    pub server_url: String,
    pub stop: Stop,
}

/// What one person was last told.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Told {
    collecting: Vec<Category>,
    notice: Option<u64>,
}

/// Where the employee answers the notice.
pub fn portal_url(server_url: &str) -> String {
    format!("{}/#/notice", server_url.trim_end_matches('/'))
}

/// Where the employee sees what is collected about them.
fn my_data_url(server_url: &str) -> String {
    format!("{}/#/mydata", server_url.trim_end_matches('/'))
}

/// One session's status icon, and when its helper was last started.
struct Icon {
    tray: Option<Tray>,
    started: Option<std::time::Instant>,
}

impl Icon {
    /// Show `state`, starting the helper when there is none (at most every `TRAY_RETRY`).
    fn show(&mut self, uid: u32, bus: &str, user: &str, state: &TrayState) {
        if let Some(t) = &mut self.tray {
            if t.show(state) {
                return;
            }
            tracing::warn!(user, "the status icon helper ended");
            self.tray = None;
        }
        if self.started.is_some_and(|t| t.elapsed() < TRAY_RETRY) {
            return;
        }
        self.started = Some(std::time::Instant::now());
        match Tray::start(uid, bus) {
            Ok(mut t) => {
                if t.show(state) {
                    tracing::info!(user, "status icon shown");
                }
                self.tray = Some(t);
            }
            Err(e) => tracing::warn!(user, error = format!("{e:#}"), "cannot show the status icon"),
        }
    }
}

fn names(cats: &[Category], zh: bool) -> String {
    let name = |c: &Category| match (c, zh) {
        (Category::Activity, true) => "应用与窗口使用时间",
        (Category::Process, true) => "程序启动",
        (Category::Web, true) => "网站访问",
        (Category::Screen, true) => "屏幕画面",
        (Category::File, true) => "文件操作",
        (Category::Device, true) => "移动存储设备",
        (Category::Chat, true) => "聊天存档",
        (c, _) => c.as_str(),
    };
    cats.iter().map(name).collect::<Vec<_>>().join(if zh { "、" } else { ", " })
}

/// The notification telling what is collected now.
fn collection_text(collecting: &[Category]) -> (String, String) {
    if collecting.is_empty() {
        return (
            "Candor 未记录个人数据 · Candor records nothing personal".into(),
            "本电脑上的 Candor 代理目前不记录您的任何个人数据。详情：candor agent status\n\
             The Candor agent on this computer records none of your personal data now. Details: candor agent status"
                .into(),
        );
    }
    let not: Vec<Category> = Category::GATED.into_iter().filter(|c| !collecting.contains(c)).collect();
    let (not_zh, not_en) =
        if not.is_empty() { ("—".to_string(), "—".to_string()) } else { (names(&not, true), names(&not, false)) };
    (
        "Candor 正在记录 · Candor is recording".into(),
        format!(
            "按公司策略并经您同意，本电脑记录：{}。不记录：{}。不记录按键和密码。详情：candor agent status\n\
             Under the company's policy and with your consent this computer records: {}. Not recorded: {}. \
             Keystrokes and passwords are never recorded. Details: candor agent status",
            names(collecting, true),
            not_zh,
            names(collecting, false),
            not_en,
        ),
    )
}

fn notice_text(version: u64, url: &str) -> (String, String) {
    (
        "请阅读监控告知书 · Please read the monitoring notice".into(),
        format!(
            "公司发布了第 {version} 版员工监控告知书，请逐项选择同意或不同意：{url}\n\
             Your company published version {version} of its monitoring notice; please read it and accept or \
             decline each category: {url}"
        ),
    )
}

fn load(path: &std::path::Path) -> BTreeMap<String, Told> {
    std::fs::read(path).ok().and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or_default()
}

pub async fn run(mut v: Visibility) {
    let path = v.state_dir.join(FILE);
    let mut told = load(&path);
    let nothing = EffectivePolicy::nothing().etag;
    let url = portal_url(&v.server_url);
    let mut watched = v.watched.subscribe();
    let mut icons: HashMap<String, Icon> = HashMap::new();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = v.policy.changed() => if r.is_err() { return },
            _ = watched.changed() => {}
            _ = v.stop.wait() => return,
        }
        let p = v.policy.borrow().clone();
        // Until the server's first answer the agent collects nothing and knows no notice.
        if p.etag == nothing {
            continue;
        }
        let dir = v.sessions_dir.clone();
        let Ok(Some(sessions)) = tokio::task::spawn_blocking(move || sessions::list(&dir)).await else { continue };
        let collecting: Vec<Category> = Category::GATED.into_iter().filter(|c| p.allows(*c)).collect();
        let (title, body) = collection_text(&collecting);
        let watched_now = watched.borrow_and_update().clone();
        icons.retain(|id, _| sessions.iter().any(|s| &s.id == id));
        let mut changed = false;
        for s in sessions {
            let Some(bus) = desktop_notify::bus_address(s.uid, sessions::leader_env(&s, "DBUS_SESSION_BUS_ADDRESS"))
            else {
                continue;
            };
            let state = TrayState {
                title: title.clone(),
                body: body.clone(),
                recording: !collecting.is_empty(),
                watched: watched_now.contains_key(&s.id),
                portal: my_data_url(&v.server_url),
            };
            icons.entry(s.id.clone()).or_insert(Icon { tray: None, started: None }).show(s.uid, &bus, &s.user, &state);
            let before = told.get(&s.user).cloned();
            let mut now = before.clone().unwrap_or_default();
            if before.as_ref().is_none_or(|b| b.collecting != collecting) {
                desktop_notify::show(s.uid, &bus, &title, &body, format!("collection told to {}", s.user));
                now.collecting = collecting.clone();
            }
            if let Some(n) = p.notice.as_ref().filter(|n| n.pending.contains(&s.user)) {
                if now.notice != Some(n.version) {
                    let (title, body) = notice_text(n.version, &url);
                    desktop_notify::show(
                        s.uid,
                        &bus,
                        &title,
                        &body,
                        format!("notice v{} told to {}", n.version, s.user),
                    );
                    now.notice = Some(n.version);
                }
            }
            if before.as_ref() != Some(&now) {
                told.insert(s.user.clone(), now);
                changed = true;
            }
        }
        if changed {
            let (path, data) = (path.clone(), serde_json::to_vec_pretty(&told).unwrap_or_default());
            match tokio::task::spawn_blocking(move || std::fs::write(&path, data)).await {
                Ok(Ok(())) => {}
                r => tracing::warn!(result = ?r, "cannot record what the desktop was told"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_name_what_is_and_is_not_recorded() {
        let (_, body) = collection_text(&[Category::Activity, Category::Web]);
        assert!(body.contains("本电脑记录：应用与窗口使用时间、网站访问。不记录：程序启动、屏幕画面"));
        assert!(body.contains("records: activity, web. Not recorded: process, screen, file, device, chat"));
        assert!(collection_text(&[]).0.contains("records nothing"));
        let (_, body) = notice_text(3, &portal_url("https://candor.example:8443/"));
        assert!(body.contains("第 3 版") && body.contains("https://candor.example:8443/#/notice"));
    }
}
