//! Screen capture on X11: the whole root window (every monitor) through
//! MIT-SHM when the server offers it, plain GetImage otherwise; plus what
//! the recorder needs to decide and minimise — the focused window, the
//! visible windows of given programs, and the idle time.
//!
//! Pixels are converted with the visual's channel masks, so 16-, 24- and
//! 32-bit displays all work; the root's size is read on every capture, so a
//! monitor added or removed simply changes the next frame's size.

use super::x11::{connect, property, window_info, Atoms, Target};
use super::{CaptureError as Error, Rect, Screen, WindowInfo};
use candor_screen::Image;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::protocol::screensaver::ConnectionExt as _;
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, ImageFormat, MapState, Window};
use x11rb::rust_connection::RustConnection;

/// Largest root window captured (pixels); beyond it a capture is refused.
const MAX_PIXELS: usize = 16_384 * 8_192;

struct Shm {
    seg: u32,
    ptr: *mut u8,
    len: usize,
}

impl Drop for Shm {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

struct Format {
    bytes_pp: usize,
    masks: [u32; 3],
}

pub struct Grabber {
    conn: RustConnection,
    root: Window,
    atoms: Atoms,
    xres: bool,
    format: Format,
    shm: Option<Shm>,
    /// Whether MIT-SHM is usable (false after it failed once).
    shm_ok: bool,
}

fn memfd(len: usize) -> std::io::Result<(OwnedFd, *mut u8)> {
    // SAFETY: memfd_create with a static NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"candor-screen".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is fresh and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain syscalls on our descriptor.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: mapping our descriptor shared, length as truncated.
    let ptr = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.as_raw_fd(), 0)
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fd, ptr as *mut u8))
}

impl Grabber {
    pub fn connect(target: &Target) -> Result<Grabber, Error> {
        let (conn, screen) = connect(target).map_err(|e| e.to_string())?;
        let setup = conn.setup();
        let s = setup.roots.get(screen).ok_or("no such screen")?;
        let visual = s
            .allowed_depths
            .iter()
            .flat_map(|d| &d.visuals)
            .find(|v| v.visual_id == s.root_visual)
            .ok_or("the root visual is not listed")?;
        let bpp = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == s.root_depth)
            .map(|f| f.bits_per_pixel)
            .ok_or("no pixmap format for the root depth")?;
        if !matches!(bpp, 16 | 32) {
            return Err(format!("unsupported display format: {bpp} bits per pixel at depth {}", s.root_depth).into());
        }
        let format =
            Format { bytes_pp: bpp as usize / 8, masks: [visual.red_mask, visual.green_mask, visual.blue_mask] };
        let root = s.root;
        let atoms = Atoms::intern(&conn).map_err(|e| e.to_string())?;
        let xres = conn.extension_information(x11rb::protocol::res::X11_EXTENSION_NAME)?.is_some();
        let shm_ok = conn.extension_information(x11rb::protocol::shm::X11_EXTENSION_NAME)?.is_some();
        Ok(Grabber { conn, root, atoms, xres, format, shm: None, shm_ok })
    }

    fn grab_shm(&mut self, w: usize, h: usize, len: usize) -> Result<Image, Error> {
        if self.shm.as_ref().is_none_or(|s| s.len < len) {
            if let Some(old) = self.shm.take() {
                self.conn.shm_detach(old.seg)?;
            }
            let (fd, ptr) = memfd(len)?;
            let seg = self.conn.generate_id()?;
            // The server maps its own copy of the descriptor; ours is closed when sent.
            self.shm = Some(Shm { seg, ptr, len });
            self.conn.shm_attach_fd(seg, fd, false)?.check()?;
        }
        let shm = self.shm.as_ref().ok_or("no segment")?;
        let reply = self
            .conn
            .shm_get_image(self.root, 0, 0, w as u16, h as u16, !0, ImageFormat::Z_PIXMAP.into(), shm.seg, 0)?
            .reply()?;
        if (reply.size as usize) < len {
            return Err(format!("short MIT-SHM image: {} of {len} bytes", reply.size).into());
        }
        // SAFETY: the segment is `shm.len >= len` bytes, mapped for our lifetime,
        // and the server finished writing it before replying.
        let data = unsafe { std::slice::from_raw_parts(shm.ptr, len) };
        self.convert(data, w, h)
    }

    fn convert(&self, data: &[u8], w: usize, h: usize) -> Result<Image, Error> {
        let bpp = self.format.bytes_pp;
        if data.len() < w * h * bpp {
            return Err(format!("short image: {} bytes for {w}x{h}", data.len()).into());
        }
        let mut img = Image::new(w as u32, h as u32);
        let [rm, gm, bm] = self.format.masks;
        let channel = |px: u32, mask: u32| -> u8 {
            if mask == 0 {
                return 0;
            }
            let v = (px & mask) >> mask.trailing_zeros();
            let max = mask >> mask.trailing_zeros();
            (v * 255 / max) as u8
        };
        for (px, out) in data.chunks_exact(bpp).zip(img.rgb.chunks_exact_mut(3)) {
            let p = if bpp == 4 {
                u32::from_le_bytes([px[0], px[1], px[2], px[3]])
            } else {
                u16::from_le_bytes([px[0], px[1]]) as u32
            };
            out.copy_from_slice(&[channel(p, rm), channel(p, gm), channel(p, bm)]);
        }
        Ok(img)
    }
}

impl Screen for Grabber {
    /// Capture the whole root window.
    fn grab(&mut self) -> Result<Image, Error> {
        let g = self.conn.get_geometry(self.root)?.reply()?;
        let (w, h) = (g.width as usize, g.height as usize);
        if w == 0 || h == 0 || w * h > MAX_PIXELS {
            return Err(format!("unsupported screen size {w}x{h}").into());
        }
        let len = w * h * self.format.bytes_pp;
        if self.shm_ok {
            match self.grab_shm(w, h, len) {
                Ok(img) => return Ok(img),
                Err(e) => {
                    tracing::info!(error = %e, "MIT-SHM capture unavailable; using GetImage");
                    self.shm_ok = false;
                    self.shm = None;
                }
            }
        }
        let reply = self.conn.get_image(ImageFormat::Z_PIXMAP, self.root, 0, 0, w as u16, h as u16, !0)?.reply()?;
        self.convert(&reply.data, w, h)
    }

    /// Milliseconds since the last input.
    fn idle_ms(&self) -> Result<u64, Error> {
        Ok(self.conn.screensaver_query_info(self.root)?.reply()?.ms_since_user_input as u64)
    }

    /// The focused window, as the activity watcher describes it.
    fn focused(&self) -> Option<WindowInfo> {
        let active = property(&self.conn, self.root, self.atoms.active, AtomEnum::WINDOW.into())
            .filter(|v| v.len() >= 4)
            .map(|v| u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
            .filter(|w| *w != 0)?;
        Some(window_info(&self.conn, &self.atoms, active, self.xres))
    }

    /// Only owners the server vouches for (X-Resource) count: a window
    /// cannot escape hiding by lying about its pid.
    fn windows_of(&self, names: &[String], titles: Option<&regex::Regex>) -> Result<Vec<Rect>, Error> {
        let mut out = Vec::new();
        if names.is_empty() && titles.is_none() {
            return Ok(out);
        }
        if !self.xres && !names.is_empty() {
            return Err("the X server lacks X-Resource: windows to hide cannot be identified".into());
        }
        let tree = self.conn.query_tree(self.root)?.reply()?;
        for top in tree.children {
            let Ok(attrs) = self.conn.get_window_attributes(top)?.reply() else { continue };
            if attrs.map_state != MapState::VIEWABLE {
                continue;
            }
            // A top-level window is usually the window manager's frame; the
            // program's own windows are inside it.
            let mut owned = vec![top];
            if let Ok(t) = self.conn.query_tree(top)?.reply() {
                owned.extend(t.children.iter().take(64));
            }
            let hidden = owned.iter().any(|&w| {
                let info = window_info(&self.conn, &self.atoms, w, self.xres);
                let by_app = info.pid_verified
                    && info
                        .exe
                        .as_deref()
                        .and_then(|e| e.rsplit('/').next())
                        .is_some_and(|n| names.iter().any(|a| a == n));
                by_app || titles.zip(info.title.as_deref()).is_some_and(|(re, t)| re.is_match(t))
            });
            if !hidden {
                continue;
            }
            let Ok(g) = self.conn.get_geometry(top)?.reply() else { continue };
            let b = g.border_width as i32;
            out.push(Rect {
                x: g.x as i32,
                y: g.y as i32,
                width: (g.width as i32 + 2 * b) as u32,
                height: (g.height as i32 + 2 * b) as u32,
            });
        }
        Ok(out)
    }
}

// SAFETY: the mapping is owned by the grabber and used from one thread at a time.
unsafe impl Send for Shm {}

#[cfg(test)]
mod tests {
    use super::super::blank;
    use super::*;

    #[test]
    fn blank_clips_to_the_picture() {
        let mut img = Image::new(10, 10);
        img.rgb.fill(9);
        blank(&mut img, &[Rect { x: -5, y: 8, width: 7, height: 100 }, Rect { x: 50, y: 0, width: 5, height: 5 }]);
        let grey = |x: usize, y: usize| img.rgb[(y * 10 + x) * 3] == 0x80;
        assert!(grey(0, 8) && grey(1, 9) && !grey(2, 9) && !grey(0, 7));
    }
}
