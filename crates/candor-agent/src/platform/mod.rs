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

/// What screen recording and live view need of a desktop, whatever draws it:
/// X11 now ([`x11_capture::Grabber`]); a Wayland or Windows port implements
/// the same. Errors are boxed: each platform has its own.
pub trait Screen: Send {
    /// The whole desktop, every monitor; its size may change between calls.
    fn grab(&mut self) -> Result<candor_screen::Image, CaptureError>;
    /// Milliseconds since the last keyboard or mouse input.
    fn idle_ms(&self) -> Result<u64, CaptureError>;
    /// The focused window.
    fn focused(&self) -> Option<WindowInfo>;
    /// Where the visible windows are of programs whose executable's file
    /// name is in `names`, or whose title matches `titles` — only owners the
    /// platform vouches for; an error when owners cannot be told (the caller
    /// then shows and stores nothing).
    fn windows_of(&self, names: &[String], titles: Option<&regex::Regex>) -> Result<Vec<Rect>, CaptureError>;
}

pub type CaptureError = Box<dyn std::error::Error + Send + Sync>;

/// The screen of a display target.
pub fn open_screen(target: &x11::Target) -> Result<Box<dyn Screen>, CaptureError> {
    Ok(Box::new(x11_capture::Grabber::connect(target)?))
}

/// A window to hide, where it is on the desktop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

/// Paint `rects` a flat grey: hidden windows' pixels never leave the machine.
pub fn blank(img: &mut candor_screen::Image, rects: &[Rect]) {
    let (w, h) = (img.width as i64, img.height as i64);
    for r in rects {
        let (x0, y0) = ((r.x as i64).clamp(0, w), (r.y as i64).clamp(0, h));
        let (x1, y1) = ((r.x as i64 + r.width as i64).clamp(0, w), (r.y as i64 + r.height as i64).clamp(0, h));
        for y in y0..y1 {
            let row = (y * w) as usize;
            img.rgb[(row + x0 as usize) * 3..(row + x1 as usize) * 3].fill(0x80);
        }
    }
}

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
