//! Platform specifics behind small interfaces, so a Windows or Wayland port
//! adds a module here without touching sources or the gate.

pub mod catalogue;
pub mod ctext;
pub mod fanotify;
pub mod logind;
pub mod nft;
pub mod proc_connector;
pub mod procinfo;
pub mod sessions;
pub mod users;
pub mod x11;
pub mod x11_capture;
pub mod xauth;

/// The focused window as the display server describes it. Everything here
/// comes from other programs' window properties: untrusted, bounded, and
/// marked when it cannot be verified.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WindowInfo {
    pub title: Option<String>,
    /// The class part of WM_CLASS (e.g. "XTerm", "firefox").
    pub wm_class: Option<String>,
    pub pid: Option<u32>,
    /// Executable of `pid`, from /proc.
    pub exe: Option<String>,
    /// True only when the X server vouches for the pid (X-Resource reports
    /// the connecting client's pid from the kernel) and the process is alive.
    /// A `_NET_WM_PID` the server does not confirm is never trusted.
    pub pid_verified: bool,
    /// Login name owning the verified process.
    pub user: Option<String>,
}

/// One look at the desktop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub ts_ms: i64,
    pub focus: Option<WindowInfo>,
    /// Milliseconds since the last keyboard or mouse input.
    pub idle_ms: u64,
    /// The display went away (X server stopped): whatever was open ends here.
    pub ended: bool,
    /// The session is locked (logind's LockedHint).
    pub locked: bool,
}
