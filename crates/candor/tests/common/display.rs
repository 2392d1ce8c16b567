//! Real X11 displays for tests: Xvfb with a window manager (openbox), X
//! clients started on it, and display numbers claimed per test process; and
//! Xephyr nested in one, whose screen grows and shrinks with its window
//! (RandR) the way a desktop does when a monitor is plugged in.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Display {
    pub name: String,
    server: Child,
    others: Vec<Child>,
    /// Xauthority file clients need, when the server checks cookies.
    pub auth: Option<std::path::PathBuf>,
}

impl Display {
    pub fn start(n: u32) -> Display {
        Display::start_with(n, None)
    }

    /// A display that admits only clients with the cookie in `auth` (made with xauth).
    pub fn start_with(n: u32, auth: Option<std::path::PathBuf>) -> Display {
        Display::start_full(n, auth, "1280x800x24")
    }

    /// A display of `geometry` (`WxHxDEPTH`), admitting only clients with the cookie in `auth` if given.
    pub fn start_full(n: u32, auth: Option<std::path::PathBuf>, geometry: &str) -> Display {
        let name = format!(":{n}");
        let mut args =
            vec![name.clone(), "-screen".into(), "0".into(), geometry.into(), "-nolisten".into(), "tcp".into()];
        if let Some(a) = &auth {
            let cookie: String = (0..16).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
            let ok = Command::new("xauth")
                .args(["-f", &a.to_string_lossy(), "add", &name, "MIT-MAGIC-COOKIE-1", &cookie])
                .status()
                .expect("xauth (apt-get install xauth)")
                .success();
            assert!(ok, "xauth add");
            args.extend(["-auth".into(), a.to_string_lossy().into_owned()]);
        }
        let server = Command::new("Xvfb")
            .args(&args)
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (apt-get install xvfb; scripts/test installs it)");
        Display::started(n, server, auth)
    }

    /// Display `n` served by Xephyr in a window on `host`, `size` (`WxH`)
    /// to begin with; [`Display::resize_nested`] changes it while clients stay connected.
    pub fn start_nested(n: u32, host: &Display, size: &str) -> Display {
        let server = host
            .command("Xephyr")
            .args([&format!(":{n}"), "-screen", size, "-resizeable", "-nolisten", "tcp"])
            .stderr(Stdio::null())
            .spawn()
            .expect("Xephyr (apt-get install xserver-xephyr; scripts/test installs it)");
        Display::started(n, server, None)
    }

    fn started(n: u32, server: Child, auth: Option<std::path::PathBuf>) -> Display {
        let socket = format!("/tmp/.X11-unix/X{n}");
        let t = Instant::now();
        while !std::path::Path::new(&socket).exists() {
            assert!(t.elapsed() < Duration::from_secs(10), "the X server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut d = Display { name: format!(":{n}"), server, others: vec![], auth };
        d.spawn("openbox", &[]);
        std::thread::sleep(Duration::from_millis(500));
        d
    }

    /// Resize the Xephyr window on this (host) display: the nested screen follows.
    pub fn resize_nested(&self, width: u32, height: u32) {
        let (w, h) = (width.to_string(), height.to_string());
        assert!(self.xdotool(&["search", "--class", "Xephyr", "windowsize", &w, &h]), "resize Xephyr");
    }

    pub fn command(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("DISPLAY", &self.name);
        if let Some(a) = &self.auth {
            c.env("XAUTHORITY", a);
        }
        c
    }

    pub fn spawn(&mut self, prog: &str, args: &[&str]) {
        let c = self.command(prog).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        self.others.push(c);
    }

    pub fn window(&mut self, title: &str) {
        self.spawn("xterm", &["-T", title, "-e", "sleep", "600"]);
        let t = Instant::now();
        while !self.xdotool(&["search", "--name", title]) {
            assert!(t.elapsed() < Duration::from_secs(10), "window {title} did not appear");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn focus(&self, title: &str) {
        assert!(self.xdotool(&["search", "--name", title, "windowactivate", "--sync"]), "focus {title}");
    }

    pub fn xdotool(&self, args: &[&str]) -> bool {
        self.command("xdotool").args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap().success()
    }

    pub fn stop(&mut self) {
        for c in self.others.iter_mut().chain(std::iter::once(&mut self.server)) {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.others.clear();
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Claim display `n` for this test process: parallel tests (separate
/// processes) must not share one, including while a test restarts its X
/// server. A claim whose process is gone is stale and taken over.
pub fn claim(n: u32) -> bool {
    let path = format!("/tmp/candor-test-display-{n}");
    if let Some(pid) = std::fs::read_to_string(&path).ok().and_then(|p| p.trim().parse::<u32>().ok()) {
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return false;
        }
        let _ = std::fs::remove_file(&path);
    }
    if std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        || std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
    {
        return false;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, std::process::id().to_string().as_bytes()))
        .is_ok()
}

pub fn free_display() -> u32 {
    let base = 100 + std::process::id() % 400;
    (base..base + 400).find(|n| claim(*n)).expect("a free X display number")
}

pub fn free_display_after(n: u32) -> u32 {
    (n + 1..n + 400).find(|k| claim(*k)).expect("a free X display number")
}

/// The root window straight from the X server (GetImage), independent of the agent.
pub fn direct_capture(display: &str) -> candor_screen::Image {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ConnectionExt, ImageFormat};
    let (conn, screen) = x11rb::connect(Some(display)).unwrap();
    let root = conn.setup().roots[screen].root;
    let g = conn.get_geometry(root).unwrap().reply().unwrap();
    let r = conn.get_image(ImageFormat::Z_PIXMAP, root, 0, 0, g.width, g.height, !0).unwrap().reply().unwrap();
    assert_eq!(r.depth, 24, "direct capture expects a 24-bit display");
    let mut img = candor_screen::Image::new(g.width as u32, g.height as u32);
    for (px, out) in r.data.chunks_exact(4).zip(img.rgb.chunks_exact_mut(3)) {
        out.copy_from_slice(&[px[2], px[1], px[0]]);
    }
    img
}

/// A JPEG as an RGB picture.
pub fn decode_jpeg(bytes: &[u8]) -> candor_screen::Image {
    let mut d = zune_jpeg::JpegDecoder::new(bytes);
    let rgb = d.decode().unwrap();
    let info = d.info().unwrap();
    candor_screen::Image { width: info.width as u32, height: info.height as u32, rgb }
}
