//! The status icon on each employee's desktop (a StatusNotifierItem, the
//! tray protocol of KDE, GNOME's AppIndicator extension, UKUI on Kylin and
//! DDE on UOS/Deepin): it shows what is collected right now and whether
//! anyone watches the screen live, for as long as the session lasts.
//!
//! As with notifications, the agent does not join the user's session bus
//! itself: it keeps one helper per session running under the user's uid and
//! writes the icon's state to the helper's standard input, one JSON line per
//! change. When the agent ends, or dies, standard input closes and the icon
//! goes away with the helper. Where no tray host runs, the helper waits for
//! one to appear; the notifications the agent shows are the fallback.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// What the icon shows; the agent sends a new one whenever it changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrayState {
    /// The tooltip's heading, e.g. "Candor is recording".
    pub title: String,
    /// What is and is not collected, in both languages.
    pub body: String,
    /// Something personal is collected now.
    pub recording: bool,
    /// Someone watches this session's screen live now.
    pub watched: bool,
    /// Where the employee sees everything collected about them.
    pub portal: String,
}

/// The login sessions whose screen is watched live now with the notice on:
/// live view marks them, the status icons show it.
#[derive(Clone, Default)]
pub struct Watched(Arc<tokio::sync::watch::Sender<BTreeMap<String, usize>>>);

impl Watched {
    /// Mark `session` watched until the returned value is dropped.
    pub fn mark(&self, session: &str) -> WatchedMark {
        self.0.send_modify(|m| *m.entry(session.to_string()).or_default() += 1);
        WatchedMark { watched: self.clone(), session: session.to_string() }
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<BTreeMap<String, usize>> {
        self.0.subscribe()
    }
}

pub struct WatchedMark {
    watched: Watched,
    session: String,
}

impl Drop for WatchedMark {
    fn drop(&mut self) {
        self.watched.0.send_modify(|m| {
            if let Some(n) = m.get_mut(&self.session) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.session);
                }
            }
        });
    }
}

/// The longest state line the helper accepts.
const MAX_LINE: u64 = 64 * 1024;
const ITEM_PATH: &str = "/StatusNotifierItem";
const WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// A running helper; the icon disappears when this is dropped.
pub struct Tray {
    child: Option<std::process::Child>,
    shown: Option<TrayState>,
}

impl Tray {
    /// Start the helper on `uid`'s session bus at `bus`.
    pub fn start(uid: u32, bus: &str) -> anyhow::Result<Tray> {
        let child = crate::desktop_notify::helper(uid, bus, &["status-icon"])?
            .stdin(std::process::Stdio::piped())
            .spawn()
            .context("starting the status icon helper")?;
        Ok(Tray { child: Some(child), shown: None })
    }

    /// Show `state` unless it is already shown; false once the helper is gone.
    pub fn show(&mut self, state: &TrayState) -> bool {
        if !self.running() {
            return false;
        }
        if self.shown.as_ref() == Some(state) {
            return true;
        }
        let Some(stdin) = self.child.as_mut().and_then(|c| c.stdin.as_mut()) else { return false };
        let mut line = serde_json::to_vec(state).unwrap_or_default();
        line.push(b'\n');
        if stdin.write_all(&line).and_then(|_| stdin.flush()).is_err() {
            return false;
        }
        self.shown = Some(state.clone());
        true
    }

    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Tray {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            crate::desktop_notify::reap(child);
        }
    }
}

/// A small round icon in ARGB32 (network byte order), for hosts that lack
/// the icon theme's `security-*` icons: blue while recording, green when
/// nothing is, red while the screen is watched.
fn pixmap(state: &TrayState) -> Vec<(i32, i32, Vec<u8>)> {
    const SIDE: i32 = 22;
    let (r, g, b) = if state.watched {
        (0xd0, 0x30, 0x30)
    } else if !state.recording {
        (0x2e, 0x9e, 0x4f)
    } else {
        (0x2f, 0x6f, 0xd0)
    };
    let mut px = Vec::with_capacity((SIDE * SIDE * 4) as usize);
    let c = (SIDE as f32 - 1.0) / 2.0;
    for y in 0..SIDE {
        for x in 0..SIDE {
            let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
            let alpha = (c + 0.5 - d).clamp(0.0, 1.0);
            px.extend_from_slice(&[(alpha * 255.0) as u8, r, g, b]);
        }
    }
    vec![(SIDE, SIDE, px)]
}

/// The exported `org.kde.StatusNotifierItem` object.
struct Item {
    state: Arc<Mutex<TrayState>>,
}

impl Item {
    fn now(&self) -> TrayState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Tooltip as the protocol types it: icon name, pixmaps, title, text.
pub type ToolTip = (String, Vec<(i32, i32, Vec<u8>)>, String, String);

fn icon_name(s: &TrayState) -> &'static str {
    if s.watched {
        "security-low"
    } else if !s.recording {
        "security-high"
    } else {
        "security-medium"
    }
}

fn watched_line(s: &TrayState) -> &'static str {
    if s.watched {
        "【现在有人实时查看您的屏幕 · Someone is watching your screen live now】\n"
    } else {
        ""
    }
}

#[zbus::interface(name = "org.kde.StatusNotifierItem")]
impl Item {
    #[zbus(property)]
    fn category(&self) -> &str {
        "ApplicationStatus"
    }
    #[zbus(property)]
    fn id(&self) -> &str {
        "candor-agent"
    }
    #[zbus(property)]
    fn title(&self) -> &str {
        "Candor"
    }
    /// Never `Passive`: hosts may hide passive items, and the agent never hides.
    #[zbus(property)]
    fn status(&self) -> &str {
        if self.now().watched {
            "NeedsAttention"
        } else {
            "Active"
        }
    }
    #[zbus(property)]
    fn window_id(&self) -> i32 {
        0
    }
    #[zbus(property)]
    fn icon_name(&self) -> &str {
        icon_name(&self.now())
    }
    #[zbus(property)]
    fn icon_pixmap(&self) -> Vec<(i32, i32, Vec<u8>)> {
        pixmap(&self.now())
    }
    #[zbus(property)]
    fn attention_icon_name(&self) -> &str {
        "security-low"
    }
    #[zbus(property)]
    fn attention_icon_pixmap(&self) -> Vec<(i32, i32, Vec<u8>)> {
        pixmap(&self.now())
    }
    #[zbus(property)]
    fn overlay_icon_name(&self) -> &str {
        ""
    }
    #[zbus(property)]
    fn tool_tip(&self) -> ToolTip {
        let s = self.now();
        (icon_name(&s).into(), Vec::new(), s.title.clone(), format!("{}{}", watched_line(&s), s.body))
    }
    #[zbus(property)]
    fn item_is_menu(&self) -> bool {
        false
    }

    /// A click shows the details as a notification, with the portal's address.
    async fn activate(&self, _x: i32, _y: i32, #[zbus(connection)] conn: &zbus::Connection) {
        let s = self.now();
        let body = format!(
            "{}{}\n您可在员工自助门户查看收集到的关于您的全部数据及查看记录 · See everything collected about you, \
             and who looked at it, in the employee portal: {}",
            watched_line(&s),
            s.body,
            s.portal
        );
        if let Err(e) = crate::desktop_notify::notify(conn, &s.title, &body, false).await {
            eprintln!("candor status icon: {e:#}");
        }
    }
    async fn secondary_activate(&self, x: i32, y: i32, #[zbus(connection)] conn: &zbus::Connection) {
        self.activate(x, y, conn).await
    }
    async fn context_menu(&self, x: i32, y: i32, #[zbus(connection)] conn: &zbus::Connection) {
        self.activate(x, y, conn).await
    }
    fn scroll(&self, _delta: i32, _orientation: String) {}

    #[zbus(signal)]
    async fn new_tool_tip(emitter: &zbus::object_server::SignalEmitter<'_>) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn new_icon(emitter: &zbus::object_server::SignalEmitter<'_>) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn new_status(emitter: &zbus::object_server::SignalEmitter<'_>, status: &str) -> zbus::Result<()>;
}

async fn register(conn: &zbus::Connection, name: &str) -> zbus::Result<()> {
    conn.call_method(Some(WATCHER), "/StatusNotifierWatcher", Some(WATCHER), "RegisterStatusNotifierItem", &(name,))
        .await
        .map(|_| ())
}

/// The helper's work (`candor status-icon`): export the item on the session
/// bus named by `DBUS_SESSION_BUS_ADDRESS`, register it with the tray host
/// (again whenever a host appears), and follow the states read from standard
/// input until it closes.
pub async fn serve() -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let state = Arc::new(Mutex::new(TrayState::default()));
    let conn = zbus::connection::Builder::session()
        .context("connecting to the desktop session bus")?
        .serve_at(ITEM_PATH, Item { state: state.clone() })?
        .build()
        .await
        .context("connecting to the desktop session bus")?;
    let name = format!("org.kde.StatusNotifierItem-{}-1", std::process::id());
    conn.request_name(name.as_str()).await.context("taking the status icon's bus name")?;

    let (tx, mut lines) = tokio::sync::mpsc::channel::<anyhow::Result<TrayState>>(4);
    std::thread::spawn(move || {
        use std::io::{BufRead, Read};
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match (&mut stdin).take(MAX_LINE).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let parsed = serde_json::from_slice(&line).context("reading the icon's state");
            if tx.blocking_send(parsed).is_err() {
                return;
            }
        }
    });

    let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
    let mut hosts = dbus.receive_name_owner_changed_with_args(&[(0, WATCHER)]).await?;
    if let Err(e) = register(&conn, &name).await {
        eprintln!("candor status icon: no tray host yet ({e}); waiting for one");
    }
    let iface = conn.object_server().interface::<_, Item>(ITEM_PATH).await?;
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { return Ok(()) };
                let new = line?;
                if let Ok(mut s) = state.lock() {
                    *s = new;
                }
                let emitter = iface.signal_emitter();
                let status = iface.get().await.status().to_string();
                Item::new_tool_tip(emitter).await?;
                Item::new_icon(emitter).await?;
                Item::new_status(emitter, &status).await?;
            }
            change = hosts.next() => {
                let Some(change) = change else { return Ok(()) };
                if change.args().is_ok_and(|a| a.new_owner().is_some()) {
                    // A host may take its name before it serves its object: try for a while.
                    let mut tries = 0;
                    while let Err(e) = register(&conn, &name).await {
                        tries += 1;
                        if tries == 25 {
                            eprintln!("candor status icon: registering with the new tray host: {e}");
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_is_round_and_coloured_by_state() {
        let mut s = TrayState { recording: true, ..Default::default() };
        let (w, h, px) = pixmap(&s).remove(0);
        assert_eq!((w, h, px.len()), (22, 22, 22 * 22 * 4));
        assert_eq!(px[0], 0, "corners are transparent");
        let centre = ((11 * 22 + 11) * 4) as usize;
        assert_eq!(&px[centre..centre + 4], &[255, 0x2f, 0x6f, 0xd0]);
        s.watched = true;
        assert_eq!(pixmap(&s)[0].2[centre + 1], 0xd0);
        assert_eq!(icon_name(&s), "security-low");
    }
}
