//! X11 foreground and idle watcher (x11rb).
//!
//! Event-driven: PropertyNotify on the root window's `_NET_ACTIVE_WINDOW`
//! and on the focused window's `_NET_WM_NAME`/`WM_NAME` wake us; between
//! events we block in poll(2) on the connection, waking only every
//! `idle_every` to read the ScreenSaver idle counter. If the X server goes
//! away we reconnect with backoff. Property reads are bounded and every
//! value is treated as hostile (any bytes, any length, windows that vanish
//! mid-query).

use super::{Observation, WindowInfo};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::protocol::res::{ClientIdMask, ClientIdSpec, ConnectionExt as _};
use x11rb::protocol::screensaver::ConnectionExt as _;
use x11rb::protocol::xproto::{Atom, AtomEnum, ChangeWindowAttributesAux, ConnectionExt as _, EventMask, Window};
use x11rb::protocol::Event;
use x11rb::rust_connection::{DefaultStream, RustConnection};

/// Longest property value read, in bytes (titles longer than this are cut).
const MAX_PROPERTY: u32 = 4096;

pub(crate) struct Atoms {
    pub(crate) active: Atom,
    net_wm_name: Atom,
    utf8: Atom,
    compound_text: Atom,
    wm_pid: Atom,
}

impl Atoms {
    pub(crate) fn intern(conn: &RustConnection) -> Result<Atoms, Box<dyn std::error::Error>> {
        Ok(Atoms {
            active: atom(conn, "_NET_ACTIVE_WINDOW")?,
            net_wm_name: atom(conn, "_NET_WM_NAME")?,
            utf8: atom(conn, "UTF8_STRING")?,
            compound_text: atom(conn, "COMPOUND_TEXT")?,
            wm_pid: atom(conn, "_NET_WM_PID")?,
        })
    }
}

pub(crate) fn atom(conn: &RustConnection, name: &str) -> Result<Atom, Box<dyn std::error::Error>> {
    Ok(conn.intern_atom(false, name.as_bytes())?.reply()?.atom)
}

fn raw_property(conn: &RustConnection, win: Window, prop: Atom, kind: Atom) -> Option<(Atom, Vec<u8>)> {
    let reply = conn.get_property(false, win, prop, kind, 0, MAX_PROPERTY / 4).ok()?.reply().ok()?;
    (reply.format == 8 || reply.format == 32).then_some((reply.type_, reply.value))
}

pub(crate) fn property(conn: &RustConnection, win: Window, prop: Atom, kind: Atom) -> Option<Vec<u8>> {
    raw_property(conn, win, prop, kind).map(|(_, v)| v)
}

fn text(bytes: Vec<u8>) -> Option<String> {
    let s = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    let s = s.trim_end_matches('\0').to_string();
    (!s.is_empty()).then_some(s)
}

/// A text property in whichever encoding its type names.
fn text_property(conn: &RustConnection, atoms: &Atoms, win: Window, prop: Atom) -> Option<String> {
    let (kind, bytes) = raw_property(conn, win, prop, AtomEnum::ANY.into())?;
    let s = if kind == atoms.utf8 {
        return text(bytes);
    } else if kind == atoms.compound_text {
        super::ctext::compound_text(&bytes)
    } else {
        super::ctext::latin1(&bytes)
    };
    let s = s.trim_end_matches('\0').to_string();
    (!s.is_empty()).then_some(s)
}

/// The pid of the client that owns `win`, as the X server knows it from
/// the socket's peer credentials; `None` for remote clients or without XRes.
fn server_pid(conn: &RustConnection, win: Window) -> Option<u32> {
    let spec = ClientIdSpec { client: win, mask: ClientIdMask::LOCAL_CLIENT_PID };
    let reply = conn.res_query_client_ids(&[spec]).ok()?.reply().ok()?;
    reply.ids.iter().find(|id| id.spec.mask == ClientIdMask::LOCAL_CLIENT_PID)?.value.first().copied()
}

pub(crate) fn window_info(conn: &RustConnection, atoms: &Atoms, win: Window, xres: bool) -> WindowInfo {
    let title = property(conn, win, atoms.net_wm_name, atoms.utf8)
        .and_then(text)
        .or_else(|| text_property(conn, atoms, win, AtomEnum::WM_NAME.into()));
    let wm_class = property(conn, win, AtomEnum::WM_CLASS.into(), AtomEnum::STRING.into())
        .and_then(|v| v.split(|b| *b == 0).filter(|p| !p.is_empty()).nth(1).map(|p| p.to_vec()))
        .and_then(text);
    let claimed = property(conn, win, atoms.wm_pid, AtomEnum::CARDINAL.into())
        .filter(|v| v.len() >= 4)
        .map(|v| u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
        .filter(|p| *p > 0);
    // _NET_WM_PID is whatever the client wrote; only the server's view of
    // the connection is evidence. A claim it contradicts is dropped.
    let vouched = if xres { server_pid(conn, win).filter(|p| *p > 0) } else { None };
    if let (Some(c), Some(v)) = (claimed, vouched) {
        if c != v {
            tracing::debug!(claimed = c, actual = v, "window claims another process's pid");
        }
    }
    let exe = vouched
        .and_then(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok())
        .map(|p| p.to_string_lossy().into_owned());
    let user = vouched.filter(|_| exe.is_some()).and_then(super::users::uid_of).and_then(super::users::name_of);
    WindowInfo { title, wm_class, pid: vouched.or(claimed), pid_verified: exe.is_some(), exe, user }
}

/// The session's lock state, set from another thread; setting it wakes the
/// watcher (an eventfd in its poll set) so the change is observed at once.
pub struct LockState {
    locked: AtomicBool,
    wake: std::os::fd::OwnedFd,
}

impl LockState {
    pub fn new() -> std::io::Result<LockState> {
        // SAFETY: eventfd(2) returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(LockState { locked: AtomicBool::new(false), wake: unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) } })
    }

    pub fn set(&self, locked: bool) {
        self.locked.store(locked, Ordering::Relaxed);
        let one = 1u64.to_ne_bytes();
        // SAFETY: writing 8 bytes from a live buffer to our eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr() as *const libc::c_void, 8) };
    }

    fn get(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }

    /// Consume pending wake-ups; true if there were any.
    fn woken(&self) -> bool {
        let mut buf = [0u8; 8];
        // SAFETY: reading at most 8 bytes into a live buffer from our eventfd.
        unsafe { libc::read(self.wake.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, 8) == 8 }
    }
}

/// Which display to watch and how to get in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// `None`: `$DISPLAY`.
    pub display: Option<String>,
    /// (name, data) of an X authority cookie; `None`: from `$XAUTHORITY`.
    pub auth: Option<(Vec<u8>, Vec<u8>)>,
    /// The session's user, when a login session is being watched: whose time this is.
    pub user: Option<String>,
    /// The logind session id, whose lock state is followed.
    pub session: Option<String>,
}

pub(crate) fn connect(t: &Target) -> Result<(RustConnection, usize), Box<dyn std::error::Error>> {
    let Some((name, data)) = &t.auth else {
        return Ok(x11rb::connect(t.display.as_deref())?);
    };
    let parsed = x11rb_protocol::parse_display::parse_display(t.display.as_deref())?;
    let mut last = None;
    for addr in parsed.connect_instruction() {
        match DefaultStream::connect(&addr) {
            Ok((stream, _)) => {
                let screen = parsed.screen as usize;
                return Ok((
                    RustConnection::connect_to_stream_with_auth_info(stream, screen, name.clone(), data.clone())?,
                    screen,
                ));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| "no address for the display".into(), |e| e.into()))
}

/// Follow the display until `stop`; sends an observation on every focus or
/// title change and every `idle_every`.
pub fn watch(
    target: Target,
    idle_every: Duration,
    tx: tokio::sync::mpsc::Sender<Observation>,
    stop: Arc<AtomicBool>,
    locked: Arc<LockState>,
    notice: impl Fn(String),
) {
    let mut backoff = Duration::from_millis(500);
    let mut said = false;
    while !stop.load(Ordering::Relaxed) {
        match session(&target, idle_every, &tx, &stop, &locked) {
            Ok(()) => return,
            Err(e) => {
                let gone =
                    Observation { ts_ms: candor_proto::now_ms(), focus: None, idle_ms: 0, ended: true, locked: false };
                if tx.blocking_send(gone).is_err() {
                    return;
                }
                if !said {
                    notice(format!("X display unavailable ({e}); activity collection waits for it"));
                    said = true;
                }
                tracing::debug!(error = %e, "X11 session ended; reconnecting");
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Handle every queued event; returns whether there were any.
fn drain(conn: &RustConnection, atoms: &Atoms, dirty: &mut bool) -> Result<bool, Box<dyn std::error::Error>> {
    let mut any = false;
    while let Some(event) = conn.poll_for_event()? {
        any = true;
        if let Event::PropertyNotify(e) = event {
            if e.atom == atoms.active || e.atom == atoms.net_wm_name || e.atom == u32::from(AtomEnum::WM_NAME) {
                *dirty = true;
            }
        }
    }
    Ok(any)
}

fn session(
    target: &Target,
    idle_every: Duration,
    tx: &tokio::sync::mpsc::Sender<Observation>,
    stop: &AtomicBool,
    locked: &LockState,
) -> Result<(), Box<dyn std::error::Error>> {
    let (conn, screen) = connect(target)?;
    let root = conn.setup().roots.get(screen).ok_or("no such screen")?.root;
    let atoms = Atoms::intern(&conn)?;
    let xres = conn.extension_information(x11rb::protocol::res::X11_EXTENSION_NAME)?.is_some();
    if !xres {
        tracing::warn!("the X server lacks X-Resource: window pids cannot be verified, applications go by WM_CLASS");
    }
    let props = ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE);
    conn.change_window_attributes(root, &props)?.check()?;
    let shown = target.display.as_deref().unwrap_or("$DISPLAY");
    tracing::info!(x_display = shown, "watching X11 focus");
    let mut focused: Option<Window> = None;
    let mut dirty = true;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if dirty {
            let active = property(&conn, root, atoms.active, AtomEnum::WINDOW.into())
                .filter(|v| v.len() >= 4)
                .map(|v| u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
                .filter(|w| *w != 0);
            if active != focused {
                if let Some(w) = active {
                    // The window may already be gone; then we see its successor next.
                    let _ = conn.change_window_attributes(w, &props);
                }
                focused = active;
            }
        }
        let idle_ms = conn.screensaver_query_info(root)?.reply()?.ms_since_user_input as u64;
        let focus = focused.map(|w| {
            let mut info = window_info(&conn, &atoms, w, xres);
            if target.user.is_some() {
                info.user = target.user.clone();
            }
            info
        });
        conn.flush()?;
        let ts_ms = candor_proto::now_ms();
        if tx.blocking_send(Observation { ts_ms, focus, idle_ms, ended: false, locked: locked.get() }).is_err() {
            return Ok(());
        }
        dirty = false;
        // Replies read while querying may have queued events already; only
        // sleep when none are waiting.
        if !drain(&conn, &atoms, &mut dirty)? {
            let mut fds = [
                libc::pollfd { fd: conn.stream().as_raw_fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: locked.wake.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: two valid pollfds for the lifetime of the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, idle_every.as_millis() as i32) };
            if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return Err("poll failed".into());
            }
            locked.woken();
            drain(&conn, &atoms, &mut dirty)?;
        }
    }
}
