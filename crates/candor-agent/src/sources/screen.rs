//! Screen recording: one thread per display (or login session) that, while
//! the policy's trigger holds, captures every `interval_secs`, blanks the
//! windows of hidden programs, and spools only the tiles that changed.
//!
//! The trigger is looked at every second, so recording starts within about
//! a second of a listed program starting (or gaining the focus) and no frame
//! is taken once it has ended. Nothing is captured without consent, outside
//! the collection hours or while the login session is locked (logind's
//! `LockedHint`, followed as it changes); while recording, `candor status` and the heartbeat
//! say so. A capture or encode that fails is skipped and counted; the thread
//! reconnects to a display that went away and never takes the agent down.

use crate::config::X11Config;
use crate::gate::Recorder;
use crate::notices::Notices;
use crate::platform::sessions::{self, GraphicalSession};
use crate::platform::x11::Target;
use crate::platform::{blank, open_screen, Screen};
use crate::spool::Record;
use crate::Stop;
use base64::Engine as _;
use candor_proto::policy::EffectivePolicy;
use candor_proto::screen::{ScreenOptions, Trigger};
use candor_proto::{Category, Payload};
use candor_screen::{Encoder, EncoderOptions};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the trigger (and the display set) is looked at again.
const TICK: Duration = Duration::from_secs(1);

/// Frames skipped because capture, hiding or encoding failed (diagnostics).
pub static SKIPPED: AtomicU64 = AtomicU64::new(0);

/// Executable file names of running processes, for the `running` trigger.
fn running_exes() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| std::fs::read_link(e.path().join("exe")).ok())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect()
}

/// Why recording should go on now (`None`: it should not).
fn reason(opts: &ScreenOptions, grabber: &dyn Screen, title_re: Option<&regex::Regex>) -> Option<String> {
    match opts.trigger {
        Trigger::Interval => Some("interval".into()),
        Trigger::Running => {
            let running = running_exes();
            opts.apps.iter().find(|a| running.contains(a)).map(|a| format!("running: {a}"))
        }
        Trigger::Focused => {
            let w = grabber.focused()?;
            let exe = w.exe.as_deref().filter(|_| w.pid_verified).and_then(|e| e.rsplit('/').next());
            if let Some(a) = exe.and_then(|e| opts.apps.iter().find(|a| *a == e)) {
                return Some(format!("focused: {a}"));
            }
            let title = w.title.as_deref()?;
            title_re.filter(|re| re.is_match(title)).map(|_| "focused: title".into())
        }
    }
}

/// A policy regex, compiled when it changes.
#[derive(Default)]
struct Pattern {
    source: Option<String>,
    compiled: Option<Result<regex::Regex, regex::Error>>,
}

impl Pattern {
    fn update(&mut self, source: &Option<String>) {
        if self.source != *source {
            self.source = source.clone();
            self.compiled = source.as_deref().map(regex::Regex::new);
        }
    }

    fn get(&self) -> Option<&regex::Regex> {
        self.compiled.as_ref().and_then(|r| r.as_ref().ok())
    }

    /// Set but unusable (the server refuses such policies; an old server might not).
    fn broken(&self) -> bool {
        matches!(self.compiled, Some(Err(_)))
    }
}

struct Display {
    target: Target,
    name: String,
    recorder: Recorder,
    policy: watch::Receiver<Arc<EffectivePolicy>>,
    notices: Notices,
    stop: Arc<AtomicBool>,
    /// The login session is locked (set by a task following logind).
    locked: Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
}

impl Display {
    fn record(&self, ts_ms: i64, payload: Payload) -> bool {
        let r = Record {
            category: Category::Screen,
            ts_ms,
            duration_ms: None,
            payload: payload.to_json(),
            checkpoint: None,
        };
        self.runtime.block_on(self.recorder.record(r))
    }

    fn skipped(&self, what: &str, e: impl std::fmt::Display) {
        let n = SKIPPED.fetch_add(1, Ordering::Relaxed) + 1;
        self.notices.set("screen-skip", format!("{n} screen frames skipped; last: {what} on {}: {e}", self.name));
    }

    fn run(self) {
        let mut grabber: Option<Box<dyn Screen>> = None;
        let mut backoff = Duration::from_millis(500);
        let mut encoder: Option<(u8, Encoder)> = None;
        let mut title_re = Pattern::default();
        let mut hide_re = Pattern::default();
        let mut next_capture = Instant::now();
        let mut recording: Option<String> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let opts = self.policy.borrow().doc.screen.clone();
            let now_ms = candor_proto::now_ms();
            let g = match &mut grabber {
                Some(g) => g,
                None => match open_screen(&self.target) {
                    Ok(g) => {
                        backoff = Duration::from_millis(500);
                        grabber.insert(g)
                    }
                    Err(e) => {
                        tracing::debug!(display = %self.name, error = %e, "cannot capture the display yet");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                },
            };
            title_re.update(&opts.title_pattern);
            hide_re.update(&opts.hide_titles);
            let idle =
                opts.pause_idle_secs > 0 && g.idle_ms().is_ok_and(|ms| ms >= u64::from(opts.pause_idle_secs) * 1000);
            let locked = self.locked.load(Ordering::Relaxed);
            let why = (!idle && !locked && self.recorder.collecting(Category::Screen, now_ms))
                .then(|| reason(&opts, g.as_ref(), title_re.get()))
                .flatten();
            if why != recording {
                match &why {
                    Some(w) => {
                        tracing::info!(display = %self.name, reason = %w, "screen recording");
                        self.notices.set("screen", format!("screen recording on {} ({w})", self.name));
                        next_capture = Instant::now();
                    }
                    None => {
                        tracing::info!(display = %self.name, locked, idle, "screen recording paused");
                        self.notices.clear("screen");
                        // The next recording starts with a key frame.
                        if let Some((_, e)) = &mut encoder {
                            e.reset();
                        }
                    }
                }
                recording = why.clone();
            }
            let Some(why) = why else {
                std::thread::sleep(TICK);
                continue;
            };
            if Instant::now() >= next_capture {
                next_capture += Duration::from_secs(u64::from(opts.interval_secs.max(1)));
                if next_capture < Instant::now() {
                    next_capture = Instant::now() + Duration::from_secs(u64::from(opts.interval_secs.max(1)));
                }
                if hide_re.broken() {
                    self.skipped("hiding", "screen.hide_titles does not compile");
                    continue;
                }
                let mut img = match g.grab() {
                    Ok(img) => img,
                    Err(e) => {
                        self.skipped("capture", e);
                        grabber = None;
                        continue;
                    }
                };
                match g.windows_of(&opts.hide_apps, hide_re.get()) {
                    Ok(rects) => blank(&mut img, &rects),
                    Err(e) => {
                        // Not knowing what to hide means not recording.
                        self.skipped("hiding", e);
                        std::thread::sleep(TICK);
                        continue;
                    }
                }
                if encoder.as_ref().map(|(q, _)| *q) != Some(opts.quality) {
                    encoder = Some((
                        opts.quality,
                        Encoder::new(EncoderOptions { quality: opts.quality, ..Default::default() }),
                    ));
                }
                let Some((_, enc)) = &mut encoder else { continue };
                let parts = match enc.encode(&img) {
                    Ok(p) => p,
                    Err(e) => {
                        self.skipped("encoding", e);
                        continue;
                    }
                };
                for p in parts {
                    let payload = Payload::ScreenFrame {
                        display: self.name.clone(),
                        width: img.width,
                        height: img.height,
                        key: p.key,
                        tiles: p.tiles,
                        bytes: p.bytes.len() as u64,
                        reason: why.clone(),
                        data: Some(base64::engine::general_purpose::STANDARD.encode(&p.bytes)),
                        blob: None,
                    };
                    if !self.record(now_ms, payload) {
                        return;
                    }
                }
            }
            let wait = next_capture.saturating_duration_since(Instant::now()).min(TICK);
            std::thread::sleep(wait);
        }
        self.notices.clear("screen");
    }
}

/// One display's recording thread and the task following its session's lock state.
struct Running {
    target: Target,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    lock: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(l) = &self.lock {
            l.abort();
        }
    }
}

/// Record screens while the policy allows it, one thread per display.
pub async fn supervise(
    recorder: Recorder,
    mut policy: watch::Receiver<Arc<EffectivePolicy>>,
    x11: X11Config,
    notices: Notices,
    agent_stop: Stop,
) {
    loop {
        tokio::select! {
            r = policy.wait_for(|p| p.allows(Category::Screen)) => if r.is_err() { return },
            _ = agent_stop.wait() => return,
        }
        let hostname = crate::host::hostname();
        let mut running: HashMap<String, Running> = HashMap::new();
        let mut changes = policy.clone();
        let stopping = loop {
            let wanted: HashMap<String, (Target, Option<GraphicalSession>)> =
                crate::sources::activity::targets(&x11).into_iter().map(|(k, t, s)| (k, (t, s))).collect();
            running.retain(|k, r| {
                let keep = wanted.get(k).map(|(t, _)| t) == Some(&r.target);
                if !keep {
                    r.stop.store(true, Ordering::Relaxed);
                }
                keep
            });
            for (name, (target, session)) in wanted {
                if running.contains_key(&name) {
                    continue;
                }
                let stop = Arc::new(AtomicBool::new(false));
                // A login session's X server wants its cookie (read once, when recording begins).
                let auth = session.as_ref().and_then(|s| sessions::cookie(s, &hostname));
                let locked = Arc::new(AtomicBool::new(false));
                let lock = target.session.clone().map(|session| {
                    let (bus, locked) = (x11.logind_bus.clone(), locked.clone());
                    tokio::spawn(async move {
                        let set = |v| locked.store(v, Ordering::Relaxed);
                        if let Err(e) = crate::platform::logind::follow_lock(bus, session.clone(), set).await {
                            tracing::warn!(session, error = %e, "cannot follow the session's lock state (logind); recording does not pause when it is locked");
                        }
                    })
                });
                let d = Display {
                    target: Target { auth, ..target.clone() },
                    name: target.display.clone().unwrap_or_else(|| name.clone()),
                    recorder: recorder.clone(),
                    policy: policy.clone(),
                    notices: notices.clone(),
                    stop: stop.clone(),
                    locked,
                    runtime: tokio::runtime::Handle::current(),
                };
                let task = tokio::task::spawn_blocking(move || d.run());
                running.insert(name, Running { target, stop, task, lock });
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                c = changes.changed() => if c.is_err() || !policy.borrow().allows(Category::Screen) {
                    tracing::info!("screen recording stopped (policy or consent)");
                    break false;
                },
                _ = agent_stop.wait() => break true,
            }
        };
        for (_, mut r) in running.drain() {
            r.stop.store(true, Ordering::Relaxed);
            let _ = (&mut r.task).await;
        }
        notices.clear("screen");
        if stopping {
            return;
        }
    }
}
