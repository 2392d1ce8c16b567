//! Activity: foreground application time as spans, ActivityWatch-style.
//!
//! Observations (focus changes, title changes, periodic idle checks) are
//! merged on the agent before the spool: the same application, title and
//! state within one pulse extends the current span; anything else closes it.
//! Spans are also cut every `MAX_SPAN_MS` so a crash loses at most that much.
//! What is kept of a title follows the policy (off, hashed, full).

use crate::config::X11Config;
use crate::gate::Recorder;
use crate::notices::Notices;
use crate::platform::sessions::{self, GraphicalSession};
use crate::platform::x11::{LockState, Target};
use crate::platform::{Observation, WindowInfo};
use crate::spool::Record;
use crate::Stop;
use candor_proto::policy::{EffectivePolicy, TitleMode};
use candor_proto::token::short_hash;
use candor_proto::{Category, Payload};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Longest gap between observations that still extends a span.
pub const PULSE_MS: i64 = 6_000;
/// Spans are cut at this length.
pub const MAX_SPAN_MS: i64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    app: String,
    exe: Option<String>,
    wm_class: Option<String>,
    title: Option<String>,
    title_hash: Option<String>,
    pid: Option<u32>,
    pid_verified: bool,
    user: Option<String>,
    state: &'static str,
}

#[derive(Debug, Clone)]
struct Span {
    key: Key,
    start: i64,
    last: i64,
}

/// The pure merging state machine.
#[derive(Debug, Default)]
pub struct Merger {
    current: Option<Span>,
}

fn key_of(w: &WindowInfo, state: &'static str, titles: TitleMode) -> Key {
    let exe_name = w.exe.as_deref().filter(|_| w.pid_verified).and_then(|e| e.rsplit('/').next()).map(str::to_string);
    let app = exe_name.or_else(|| w.wm_class.clone()).unwrap_or_else(|| "unknown".into());
    let clip = |s: &String| s.chars().take(1024).collect::<String>();
    Key {
        app: app.chars().take(256).collect(),
        exe: w.exe.as_ref().filter(|_| w.pid_verified).map(clip),
        wm_class: w.wm_class.as_ref().map(|c| c.chars().take(256).collect()),
        title: (titles == TitleMode::Full).then(|| w.title.as_ref().map(clip)).flatten(),
        title_hash: (titles == TitleMode::Hashed).then(|| w.title.as_ref().map(|t| short_hash(t.as_bytes()))).flatten(),
        pid: w.pid,
        pid_verified: w.pid_verified,
        user: w.user.clone(),
        state,
    }
}

fn record(span: &Span, end: i64) -> Option<Record> {
    let duration = (end - span.start).max(0) as u64;
    if duration == 0 {
        return None;
    }
    let k = span.key.clone();
    Some(Record {
        category: Category::Activity,
        ts_ms: span.start,
        duration_ms: Some(duration),
        payload: Payload::Activity {
            app: k.app,
            exe: k.exe,
            wm_class: k.wm_class,
            title: k.title,
            title_hash: k.title_hash,
            pid: k.pid,
            pid_verified: k.pid_verified,
            state: k.state.into(),
            user: k.user,
        }
        .to_json(),
        checkpoint: None,
    })
}

impl Merger {
    /// Feed one observation; returns the spans it closes.
    pub fn observe(&mut self, o: &Observation, titles: TitleMode, idle_threshold_ms: u64) -> Vec<Record> {
        if o.ended {
            return self.close(o.ts_ms).into_iter().collect();
        }
        let state = if o.locked {
            "locked"
        } else if o.idle_ms >= idle_threshold_ms {
            "idle"
        } else {
            "active"
        };
        let key = o.focus.as_ref().map(|w| key_of(w, state, titles)).unwrap_or(Key {
            app: "none".into(),
            exe: None,
            wm_class: None,
            title: None,
            title_hash: None,
            pid: None,
            pid_verified: false,
            user: None,
            state,
        });
        let mut out = Vec::new();
        match &mut self.current {
            Some(span) if span.key == key && o.ts_ms - span.last <= PULSE_MS => {
                span.last = o.ts_ms;
                if o.ts_ms - span.start >= MAX_SPAN_MS {
                    out.extend(record(span, o.ts_ms));
                    span.start = o.ts_ms;
                }
            }
            Some(span) => {
                // A change within the pulse ends the old span now; after a gap
                // (agent paused, display gone) it ended at its last sighting.
                let end = if o.ts_ms - span.last <= PULSE_MS { o.ts_ms } else { span.last };
                out.extend(record(span, end));
                self.current = Some(Span { key, start: o.ts_ms, last: o.ts_ms });
            }
            None => self.current = Some(Span { key, start: o.ts_ms, last: o.ts_ms }),
        }
        out
    }

    /// Close the current span at `now` (shutdown, display gone): it lasted
    /// until then, but no longer than one pulse past its last sighting.
    pub fn close(&mut self, now: i64) -> Option<Record> {
        self.current.take().and_then(|s| record(&s, now.clamp(s.last, s.last + PULSE_MS)))
    }
}

/// How often the set of graphical sessions is looked at again.
const SESSION_POLL: Duration = Duration::from_secs(2);

/// The displays to watch now, by key: the configured display; else every
/// active X11 login session (logind), each with its own user (and, when its
/// watcher starts, its own cookie); else `$DISPLAY` or `:0`.
pub(crate) fn targets(x11: &X11Config) -> Vec<(String, Target, Option<GraphicalSession>)> {
    if let Some(d) = &x11.display {
        return vec![(d.clone(), Target { display: Some(d.clone()), ..Default::default() }, None)];
    }
    if let Some(list) = sessions::list(&x11.sessions_dir).filter(|l| !l.is_empty()) {
        return list
            .into_iter()
            .map(|s| {
                let t = Target {
                    display: Some(s.display.clone()),
                    auth: None,
                    user: Some(s.user.clone()),
                    session: Some(s.id.clone()),
                };
                (format!("session {} ({} on {})", s.id, s.user, s.display), t, Some(s))
            })
            .collect();
    }
    x11.fallback_display()
        .map(|d| vec![(d.clone(), Target { display: Some(d), ..Default::default() }, None)])
        .unwrap_or_default()
}

/// One display being watched: the X11 thread and the merger task.
struct Watching {
    target: Target,
    stop: Arc<AtomicBool>,
    done: tokio::sync::oneshot::Sender<()>,
    merge: tokio::task::JoinHandle<()>,
    lock: Option<tokio::task::JoinHandle<()>>,
}

impl Watching {
    fn start(
        recorder: &Recorder,
        policy: &watch::Receiver<Arc<EffectivePolicy>>,
        target: Target,
        auth: Option<(Vec<u8>, Vec<u8>)>,
        logind_bus: Option<String>,
    ) -> Option<Watching> {
        let stop = Arc::new(AtomicBool::new(false));
        let locked = match LockState::new() {
            Ok(l) => Arc::new(l),
            Err(e) => {
                tracing::error!(error = %e, "cannot create an eventfd for the X11 watcher");
                return None;
            }
        };
        let (tx, rx) = mpsc::channel(64);
        let (t, s, l) = (Target { auth, ..target.clone() }, stop.clone(), locked.clone());
        let spawned = std::thread::Builder::new().name("x11-watch".into()).spawn(move || {
            crate::platform::x11::watch(t, Duration::from_secs(5), tx, s, l, |n| tracing::warn!("{n}"));
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start an X11 watcher");
            return None;
        }
        // Lock state comes from logind; setting it wakes the X11 watcher.
        let lock = target.session.clone().map(|session| {
            tokio::spawn(async move {
                let set = |v| locked.set(v);
                if let Err(e) = crate::platform::logind::follow_lock(logind_bus, session.clone(), set).await {
                    tracing::warn!(session, error = %e, "cannot follow the session's lock state (logind); spans are never marked locked");
                }
            })
        });
        let (done, done_rx) = tokio::sync::oneshot::channel();
        let merge = tokio::spawn(run(recorder.clone(), policy.clone(), rx, done_rx));
        Some(Watching { target, stop, done, merge, lock })
    }

    /// The merger records the open span, then ends with the channel.
    async fn stop(self) {
        if let Some(l) = &self.lock {
            l.abort();
        }
        let _ = self.done.send(());
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.merge.await;
    }
}

/// Run watchers only while activity may be collected (nothing is read from
/// a display without consent), one per display or login session, following
/// sessions as they appear and end.
pub async fn supervise(
    recorder: Recorder,
    mut policy: watch::Receiver<Arc<EffectivePolicy>>,
    x11: X11Config,
    notices: Notices,
    agent_stop: Stop,
) {
    let hostname = crate::host::hostname();
    loop {
        tokio::select! {
            r = policy.wait_for(|p| p.allows(Category::Activity)) => if r.is_err() { return },
            _ = agent_stop.wait() => return,
        }
        tracing::info!("activity collection started");
        let mut running: HashMap<String, Watching> = HashMap::new();
        let mut changes = policy.clone();
        let stopping = loop {
            let wanted: HashMap<String, (Target, Option<GraphicalSession>)> =
                targets(&x11).into_iter().map(|(k, t, s)| (k, (t, s))).collect();
            if wanted.is_empty() {
                notices.set(
                    "display",
                    "no X display or graphical login session found: activity collection waits for one".into(),
                );
            } else {
                notices.clear("display");
            }
            let gone: Vec<String> = running
                .iter()
                .filter(|(k, w)| wanted.get(*k).map(|(t, _)| t) != Some(&w.target))
                .map(|(k, _)| k.clone())
                .collect();
            for k in gone {
                if let Some(w) = running.remove(&k) {
                    tracing::info!(display = %k, "display or session ended; stop watching it");
                    w.stop().await;
                }
            }
            for (k, (t, session)) in wanted {
                if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(k) {
                    tracing::info!(display = %slot.key(), "watching");
                    // The cookie is read once, when watching begins.
                    let auth = session.as_ref().and_then(|s| sessions::cookie(s, &hostname));
                    if let Some(w) = Watching::start(&recorder, &policy, t, auth, x11.logind_bus.clone()) {
                        slot.insert(w);
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(SESSION_POLL) => {}
                c = changes.changed() => if c.is_err() || !policy.borrow().allows(Category::Activity) {
                    tracing::info!("activity collection stopped (policy or consent)");
                    break false;
                },
                _ = agent_stop.wait() => break true,
            }
        };
        for (_, w) in running.drain() {
            w.stop().await;
        }
        if stopping {
            return;
        }
    }
}

/// Merge observations into spans and hand them to the recorder, until the
/// watcher ends or `done` fires; the open span is then recorded up to now
/// (if collection is still allowed).
pub async fn run(
    recorder: Recorder,
    policy: watch::Receiver<Arc<EffectivePolicy>>,
    mut rx: mpsc::Receiver<Observation>,
    mut done: tokio::sync::oneshot::Receiver<()>,
) {
    let mut merger = Merger::default();
    let mut described = Described::default();
    loop {
        let o = tokio::select! {
            o = rx.recv() => match o { Some(o) => o, None => break },
            _ = &mut done => break,
        };
        let (allowed, titles, idle_ms) = {
            let p = policy.borrow();
            (p.allows(Category::Activity), p.doc.activity.titles, p.doc.activity.idle_threshold_secs * 1000)
        };
        if !allowed {
            // Collection stopped: whatever was open is not recorded.
            merger = Merger::default();
            continue;
        }
        for r in merger.observe(&o, titles, idle_ms) {
            for r in described.before(&r).into_iter().chain(std::iter::once(r)) {
                if !recorder.record(r).await {
                    return;
                }
            }
        }
    }
    if let Some(r) = merger.close(candor_proto::now_ms()) {
        for r in described.before(&r).into_iter().chain(std::iter::once(r)) {
            recorder.record(r).await;
        }
    }
}

/// Sends each application's catalogue entry once per run, ahead of its
/// first span, so the server can name and classify it.
#[derive(Default)]
struct Described {
    catalogue: Option<crate::platform::catalogue::Catalogue>,
    seen: HashSet<String>,
}

/// Distinct applications described per run; beyond this, spans still flow.
const MAX_DESCRIBED: usize = 4096;

impl Described {
    fn before(&mut self, span: &Record) -> Option<Record> {
        let Ok(Payload::Activity { app, wm_class, .. }) = serde_json::from_slice(&span.payload) else { return None };
        if self.seen.len() >= MAX_DESCRIBED || !self.seen.insert(app.clone()) {
            return None;
        }
        let catalogue = self.catalogue.get_or_insert_with(crate::platform::catalogue::Catalogue::load);
        let e = catalogue.find(&app, wm_class.as_deref())?;
        Some(Record {
            category: Category::Activity,
            ts_ms: span.ts_ms,
            duration_ms: None,
            payload: Payload::AppInfo {
                app,
                desktop_id: e.desktop_id.clone(),
                name: e.name.clone(),
                name_zh: e.name_zh.clone(),
                categories: e.categories.clone(),
                icon_png: e.icon.as_deref().and_then(crate::platform::catalogue::icon_png),
            }
            .to_json(),
            checkpoint: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(ts: i64, title: &str, idle_ms: u64) -> Observation {
        Observation {
            ts_ms: ts,
            idle_ms,
            ended: false,
            locked: false,
            focus: Some(WindowInfo {
                title: Some(title.into()),
                wm_class: Some("XTerm".into()),
                pid: Some(42),
                exe: Some("/usr/bin/xterm".into()),
                pid_verified: true,
                user: Some("zhang".into()),
            }),
        }
    }

    fn payload(r: &Record) -> Payload {
        serde_json::from_slice(&r.payload).unwrap()
    }

    #[test]
    fn merges_within_pulse_and_splits_on_change() {
        let mut m = Merger::default();
        assert!(m.observe(&obs(0, "甲", 0), TitleMode::Full, 180_000).is_empty());
        assert!(m.observe(&obs(5_000, "甲", 0), TitleMode::Full, 180_000).is_empty());
        let closed = m.observe(&obs(7_000, "乙", 0), TitleMode::Full, 180_000);
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].ts_ms, closed[0].duration_ms), (0, Some(7_000)));
        match payload(&closed[0]) {
            Payload::Activity { app, title, state, .. } => {
                assert_eq!((app.as_str(), title.as_deref(), state.as_str()), ("xterm", Some("甲"), "active"))
            }
            p => panic!("{p:?}"),
        }
        // Idle after the threshold is its own span.
        let closed = m.observe(&obs(9_000, "乙", 200_000), TitleMode::Full, 180_000);
        assert_eq!(closed[0].duration_ms, Some(2_000));
        assert!(m.close(9_000).is_none(), "closed at its start: no length");
        m.observe(&obs(10_000, "乙", 0), TitleMode::Full, 180_000);
        let gone = Observation { ts_ms: 12_500, focus: None, idle_ms: 0, ended: true, locked: false };
        assert_eq!(
            m.observe(&gone, TitleMode::Full, 180_000)[0].duration_ms,
            Some(2_500),
            "display gone ends the span"
        );
        m.observe(&obs(20_000, "乙", 0), TitleMode::Full, 180_000);
        assert_eq!(
            m.close(99_000).unwrap().duration_ms,
            Some(PULSE_MS as u64),
            "at most a pulse past the last sighting"
        );
    }

    #[test]
    fn titles_follow_policy_and_long_spans_are_cut() {
        let mut m = Merger::default();
        m.observe(&obs(0, "secret.docx", 0), TitleMode::Hashed, 180_000);
        let mut closed = Vec::new();
        for t in (5_000..=65_000).step_by(5_000) {
            closed.extend(m.observe(&obs(t, "secret.docx", 0), TitleMode::Hashed, 180_000));
        }
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].duration_ms, Some(60_000));
        match payload(&closed[0]) {
            Payload::Activity { title, title_hash, .. } => {
                assert!(title.is_none());
                assert_eq!(title_hash.as_deref(), Some(short_hash(b"secret.docx").as_str()));
            }
            p => panic!("{p:?}"),
        }
        let mut off = Merger::default();
        off.observe(&obs(0, "x", 0), TitleMode::Off, 180_000);
        let r = off.observe(&obs(1_000, "y", 0), TitleMode::Off, 180_000);
        assert!(r.is_empty(), "with titles off, a title change is not a new span");
    }

    #[test]
    fn locked_wins_over_idle_and_active() {
        let mut m = Merger::default();
        m.observe(&obs(0, "x", 0), TitleMode::Off, 180_000);
        let locked = Observation { locked: true, ..obs(5_000, "x", 999_999) };
        let closed = m.observe(&locked, TitleMode::Off, 180_000);
        assert_eq!(closed.len(), 1, "locking ends the active span");
        let r = m.close(6_000).unwrap();
        match payload(&r) {
            Payload::Activity { state, .. } => assert_eq!(state, "locked"),
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn unverified_pid_falls_back_to_wm_class() {
        let w = WindowInfo {
            wm_class: Some("Evil".into()),
            pid: Some(1),
            exe: Some("/sbin/init".into()),
            pid_verified: false,
            ..Default::default()
        };
        let k = key_of(&w, "active", TitleMode::Off);
        assert_eq!(k.app, "Evil");
        assert_eq!(k.exe, None, "an exe we cannot tie to the window is not reported");
    }
}
