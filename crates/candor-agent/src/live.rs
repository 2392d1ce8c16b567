//! Live screens for viewers. While the server says someone watches (the
//! effective policy's `live`, only ever set where screen collection is
//! allowed), one thread per display captures, blanks hidden windows and
//! sends JPEG pictures straight to the server — never through the spool:
//! live pictures are shown, not stored.
//!
//! Live view gets full pictures, at most `screen.live_fps`, one in flight at
//! a time so the rate follows the link, with the JPEG quality stepped to keep
//! pictures near a byte budget. The wall gets a reduced picture about once a
//! second, and only when it changed. The person at that display is shown a
//! notice for as long as anyone watches, unless a policy stating why turned
//! it off.

use crate::config::X11Config;
use crate::credentials::Credentials;
use crate::desktop_notify;
use crate::gate::Recorder;
use crate::notices::Notices;
use crate::platform::sessions::{self, GraphicalSession};
use crate::platform::x11::Target;
use crate::platform::{blank, open_screen, Screen};
use crate::tray::{Watched, WatchedMark};
use crate::Stop;
use candor_proto::policy::{EffectivePolicy, LiveRequest};
use candor_proto::Category;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Wall tiles are at most this wide.
pub const WALL_WIDTH: u32 = 320;
const WALL_QUALITY: u8 = 60;
const WALL_EVERY: Duration = Duration::from_secs(1);
/// Live pictures above this many bytes lower the quality, below a third of it raise it.
const BUDGET: usize = 200_000;
const QUALITY: std::ops::RangeInclusive<u8> = 30..=75;

pub struct Live {
    pub recorder: Recorder,
    pub policy: watch::Receiver<Arc<EffectivePolicy>>,
    pub x11: X11Config,
    pub client: reqwest::Client,
    pub creds: Credentials,
    pub notices: Notices,
    pub watched: Watched,
    pub stop: Stop,
}

fn wanted(p: &EffectivePolicy) -> Option<LiveRequest> {
    p.live.filter(|l| (l.view || l.wall) && p.allows(Category::Screen))
}

/// Stream every display while anyone watches.
pub async fn supervise(l: Live) {
    let mut policy = l.policy.clone();
    loop {
        tokio::select! {
            r = policy.wait_for(|p| wanted(p).is_some()) => if r.is_err() { return },
            _ = l.stop.wait() => return,
        }
        tracing::info!("live screen requested");
        let hostname = crate::host::hostname();
        let mut running: HashMap<String, (Target, Arc<AtomicBool>, tokio::task::JoinHandle<()>)> = HashMap::new();
        let stopping = loop {
            let targets = crate::sources::activity::targets(&l.x11);
            running.retain(|k, (t, stop, _)| {
                let keep = targets.iter().any(|(n, tt, _)| n == k && tt == t);
                if !keep {
                    stop.store(true, Ordering::Relaxed);
                }
                keep
            });
            for (name, target, session) in targets {
                if running.contains_key(&name) {
                    continue;
                }
                let stop = Arc::new(AtomicBool::new(false));
                // A login session's X server wants its cookie (read once, when streaming begins).
                let auth = session.as_ref().and_then(|s| crate::platform::sessions::cookie(s, &hostname));
                let s = Streamer {
                    name: target.display.clone().unwrap_or_else(|| name.clone()),
                    target: Target { auth, ..target.clone() },
                    session,
                    recorder: l.recorder.clone(),
                    policy: l.policy.clone(),
                    client: l.client.clone(),
                    creds: l.creds.clone(),
                    notices: l.notices.clone(),
                    watched: l.watched.clone(),
                    stop: stop.clone(),
                    runtime: tokio::runtime::Handle::current(),
                };
                running.insert(name, (target, stop, tokio::task::spawn_blocking(move || s.run())));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                c = policy.changed() => if c.is_err() || wanted(&policy.borrow()).is_none() { break false },
                _ = l.stop.wait() => break true,
            }
        };
        for (_, (_, stop, task)) in running.drain() {
            stop.store(true, Ordering::Relaxed);
            let _ = task.await;
        }
        tracing::info!("live screen ended");
        if stopping {
            return;
        }
    }
}

struct Streamer {
    target: Target,
    name: String,
    session: Option<GraphicalSession>,
    recorder: Recorder,
    policy: watch::Receiver<Arc<EffectivePolicy>>,
    client: reqwest::Client,
    creds: Credentials,
    notices: Notices,
    watched: Watched,
    stop: Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
}

const NOTICE_TITLE: &str = "您的屏幕正在被查看 · Your screen is being viewed";
const NOTICE_BODY: &str = "公司管理员正在实时查看本电脑的屏幕（或屏幕墙缩略图），结束后此提示自动消失。每次查看都记入访问日志，您可在员工自助门户中看到是谁、何时查看。\n\
An administrator of your company is watching this computer's screen live (or as a wall thumbnail); this notice \
disappears when they stop. Every viewing is in the access log, which you can read in the employee portal.";

impl Streamer {
    /// The notice on this display's desktop and its session marked watched
    /// (for the status icon), both until dropped.
    fn notice(&self) -> Option<(Option<desktop_notify::Held>, WatchedMark)> {
        let Some(s) = &self.session else {
            self.notices.set(
                "live-notice",
                format!("live view of {}: no login session is known, so no notice could be shown", self.name),
            );
            return None;
        };
        let mark = self.watched.mark(&s.id);
        let bus = desktop_notify::bus_address(s.uid, sessions::leader_env(s, "DBUS_SESSION_BUS_ADDRESS"));
        tracing::info!(display = %self.name, user = %s.user, "live-view notice shown");
        Some((bus.and_then(|bus| desktop_notify::hold(s.uid, &bus, NOTICE_TITLE, NOTICE_BODY)), mark))
    }

    /// Send one picture; true when someone still watches that kind.
    fn post(&self, kind: &str, captured_ms: i64, jpeg: Vec<u8>) -> bool {
        let url = format!("{}/api/v1/agent/live", self.creds.server_url);
        let req = self
            .client
            .post(url)
            .query(&[("kind", kind), ("display", self.name.as_str())])
            .header(reqwest::header::AUTHORIZATION, self.creds.bearer())
            .header("x-candor-captured-ms", captured_ms.to_string())
            .timeout(Duration::from_secs(5))
            .body(jpeg);
        match self.runtime.block_on(req.send()) {
            Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => true,
            Ok(r) => {
                tracing::debug!(status = %r.status(), kind, "live picture not taken");
                false
            }
            Err(e) => {
                tracing::debug!(error = %e, kind, "sending a live picture failed");
                false
            }
        }
    }

    fn run(self) {
        let mut grabber: Option<Box<dyn Screen>> = None;
        let mut notice = None;
        let mut hide_re: Option<(Option<String>, Option<regex::Regex>)> = None;
        let mut quality = 60u8;
        let mut last_tile: Option<(Instant, u64)> = None;
        let mut next = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            let p = self.policy.borrow().clone();
            let Some(live) = wanted(&p).filter(|_| self.recorder.collecting(Category::Screen, candor_proto::now_ms()))
            else {
                notice = None;
                std::thread::sleep(Duration::from_millis(200));
                continue;
            };
            let opts = &p.doc.screen;
            if !opts.live_notice {
                notice = None;
            } else if notice.is_none() {
                notice = self.notice();
            }
            let g = match &mut grabber {
                Some(g) => g,
                None => match open_screen(&self.target) {
                    Ok(g) => grabber.insert(g),
                    Err(e) => {
                        tracing::debug!(display = %self.name, error = %e, "cannot capture the display for live view");
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                },
            };
            if hide_re.as_ref().is_none_or(|(src, _)| *src != opts.hide_titles) {
                let re = opts.hide_titles.as_deref().and_then(|s| regex::Regex::new(s).ok());
                hide_re = Some((opts.hide_titles.clone(), re));
            }
            let mut img = match g.grab() {
                Ok(img) => img,
                Err(e) => {
                    tracing::debug!(display = %self.name, error = %e, "live capture failed");
                    grabber = None;
                    continue;
                }
            };
            // Not knowing what to hide means not showing.
            match g.windows_of(&opts.hide_apps, hide_re.as_ref().and_then(|(_, r)| r.as_ref())) {
                Ok(rects) => blank(&mut img, &rects),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            }
            let captured_ms = candor_proto::now_ms();
            if live.view {
                if let Some(jpeg) = candor_screen::picture::jpeg(&img, quality) {
                    let n = jpeg.len();
                    self.post("view", captured_ms, jpeg);
                    quality = if n > BUDGET {
                        quality.saturating_sub(10).max(*QUALITY.start())
                    } else if n < BUDGET / 3 {
                        (quality + 5).min(*QUALITY.end())
                    } else {
                        quality
                    };
                }
            }
            if live.wall && last_tile.is_none_or(|(at, _)| at.elapsed() >= WALL_EVERY) {
                let tile = candor_screen::picture::reduce(&img, WALL_WIDTH);
                let mut h = std::collections::hash_map::DefaultHasher::new();
                tile.rgb.hash(&mut h);
                let hash = h.finish();
                let changed = last_tile.is_none_or(|(_, old)| old != hash);
                let sent = changed
                    && candor_screen::picture::jpeg(&tile, WALL_QUALITY)
                        .is_some_and(|jpeg| self.post("wall", captured_ms, jpeg));
                // A tile not taken is sent again next time rather than after the next change.
                last_tile = Some((Instant::now(), if changed && !sent { !hash } else { hash }));
            }
            // Paced by deadline, so the work of each picture does not lower the
            // rate; a picture late by more than a period is not made up for.
            let period = if live.view { Duration::from_secs(1) / u32::from(opts.live_fps.max(1)) } else { WALL_EVERY };
            next += period;
            if next + period < Instant::now() {
                next = Instant::now();
            }
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        drop(notice);
    }
}
