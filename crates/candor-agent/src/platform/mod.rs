//! Platform specifics behind small interfaces, so a Windows or Wayland port
//! adds a module here without touching sources or the gate.

pub mod ctext;
pub mod x11;

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
    /// True only when the pid is local (WM_CLIENT_MACHINE is this host) and alive.
    pub pid_verified: bool,
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
}
