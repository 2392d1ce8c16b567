//! Facts about one exec, read from the descriptor the kernel hands over and
//! from /proc: file identity, path, SHA-256, owning package, categories and
//! the employee behind it. Only what the current rules need is read on the
//! hot path; a hash is computed once per file version.

use super::rules::Subject;
use crate::platform::catalogue::Catalogue;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};

/// A file version: device, inode, size and ctime (which, unlike mtime, cannot
/// be set back by the file's owner after changing its content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub ctime_ns: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct FileStat {
    pub key: FileKey,
    pub owner_uid: u32,
    pub mode: u32,
}

pub fn stat(fd: BorrowedFd) -> Option<FileStat> {
    // SAFETY: fstat into a zeroed struct we own; fd is valid for the borrow.
    let st = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd.as_raw_fd(), &mut st) != 0 {
            return None;
        }
        st
    };
    Some(FileStat {
        key: FileKey {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            ctime_ns: st.st_ctime * 1_000_000_000 + st.st_ctime_nsec,
        },
        owner_uid: st.st_uid,
        mode: st.st_mode,
    })
}

/// The path of an open descriptor, as text: non-UTF-8 bytes replaced and
/// control characters (a newline in a file name) escaped, bounded.
pub fn path_of(fd: BorrowedFd) -> String {
    path_of_link(&format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The target of a /proc symlink, as text ([`clean`]ed).
pub fn path_of_link(link: &str) -> String {
    let raw = std::fs::read_link(link).unwrap_or_default();
    clean(std::os::unix::ffi::OsStrExt::as_bytes(raw.as_os_str()))
}

pub fn clean(bytes: &[u8]) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Who is behind a process: its real uid and, for system accounts, the
/// audit login uid (which survives sudo and su, so `sudo dpkg -i` is still
/// the employee's). `None` for system accounts with no employee behind them.
pub fn employee_of(pid: i32, min_uid: u32) -> Option<u32> {
    let uid = real_uid(pid)?;
    if uid >= min_uid {
        return Some(uid);
    }
    let mut b = [0u8; 32];
    read_small(&format!("/proc/{pid}/loginuid"), &mut b)
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|u| *u != u32::MAX && *u >= min_uid)
}

/// `struct pidfd_info` (linux/pidfd.h, first version: 64 bytes).
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
}
/// `_IOWR(0xFF, 11, struct pidfd_info)`.
const PIDFD_GET_INFO: libc::c_ulong = 0xC040_FF0B;
const PIDFD_INFO_CREDS: u64 = 1 << 1;

/// Real uid and parent pid: from the pidfd (Linux 6.13+, a few µs) or else
/// /proc/<pid>/status (which the kernel renders in full, tens of µs).
pub fn pid_info(pid: i32) -> Option<(u32, u32)> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static NO_PIDFD_INFO: AtomicBool = AtomicBool::new(false);
    if !NO_PIDFD_INFO.load(Ordering::Relaxed) {
        // SAFETY: plain syscall, checked.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd >= 0 {
            // SAFETY: a fresh descriptor we own.
            let pidfd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
            let mut info = PidfdInfo { mask: PIDFD_INFO_CREDS, ..Default::default() };
            // SAFETY: info is a valid, writable pidfd_info of the size the ioctl encodes.
            let r = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO, &mut info as *mut PidfdInfo) };
            if r == 0 && info.mask & PIDFD_INFO_CREDS != 0 {
                return Some((info.ruid, info.ppid));
            }
            if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH) {
                NO_PIDFD_INFO.store(true, Ordering::Relaxed);
            }
        }
    }
    let mut buf = [0u8; 2048];
    let status = read_small(&format!("/proc/{pid}/status"), &mut buf)?;
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Some((field("Uid:")?, field("PPid:")?))
}

fn real_uid(pid: i32) -> Option<u32> {
    pid_info(pid).map(|(uid, _)| uid)
}

/// Read a small /proc file into a stack buffer (no allocation on the hot path).
fn read_small<'a>(path: &str, buf: &'a mut [u8]) -> Option<&'a str> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    // status lines we need come first; a truncated tail is fine.
    Some(match std::str::from_utf8(&buf[..n]) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or(""),
    })
}

/// `DBUS_SESSION_BUS_ADDRESS` from a process's environment (bounded), to
/// reach the desktop the blocked program was started from.
pub fn session_bus_of(pid: i32) -> Option<String> {
    let mut raw = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/environ")).ok()?.take(256 * 1024).read_to_end(&mut raw).ok()?;
    raw.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"DBUS_SESSION_BUS_ADDRESS="))
        .filter(|v| v.len() < 1024)
        .and_then(|v| String::from_utf8(v.to_vec()).ok())
}

/// Which package owns which path, from dpkg's file lists, as 64-bit path
/// hashes (about 12 bytes per file instead of the path itself).
#[derive(Default)]
pub struct PackageIndex {
    by_path: HashMap<u64, u32>,
    names: Vec<String>,
}

fn path_hash(p: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.hash(&mut h);
    h.finish()
}

impl PackageIndex {
    pub fn load(info_dir: &std::path::Path) -> PackageIndex {
        let mut idx = PackageIndex::default();
        let Ok(rd) = std::fs::read_dir(info_dir) else { return idx };
        for entry in rd.flatten() {
            let p = entry.path();
            let Some(name) = p.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".list")) else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(&p) else { continue };
            let id = idx.names.len() as u32;
            idx.names.push(name.split(':').next().unwrap_or(name).to_string());
            for line in text.lines() {
                idx.by_path.entry(path_hash(line)).or_insert(id);
                // Lists predate the /usr merge: /bin/x is also /usr/bin/x.
                if ["/bin/", "/sbin/", "/lib/", "/lib64/"].iter().any(|d| line.starts_with(d)) {
                    idx.by_path.entry(path_hash(&format!("/usr{line}"))).or_insert(id);
                }
            }
        }
        idx
    }

    pub fn owner(&self, path: &str) -> Option<&str> {
        self.by_path.get(&path_hash(path)).and_then(|i| self.names.get(*i as usize)).map(String::as_str)
    }
}

/// What the rules may consult besides the file itself.
#[derive(Default)]
pub struct Lookups {
    pub packages: Option<PackageIndex>,
    pub catalogue: Option<Catalogue>,
}

impl Lookups {
    /// Fill in package and categories for `s` where they are loaded.
    pub fn describe<'a>(&'a self, s: &mut Subject<'a>) {
        if let Some(p) = &self.packages {
            s.package = p.owner(s.path);
        }
        if let Some(c) = &self.catalogue {
            if let Some(e) = c.find(s.file_name(), None) {
                s.categories = &e.categories;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_index_and_clean_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("coreutils.list"), "/.\n/bin\n/bin/sleep\n").unwrap();
        std::fs::write(dir.path().join("supertux:amd64.list"), "/usr/games/supertux2\n").unwrap();
        let idx = PackageIndex::load(dir.path());
        assert_eq!(idx.owner("/usr/bin/sleep"), Some("coreutils"));
        assert_eq!(idx.owner("/bin/sleep"), Some("coreutils"));
        assert_eq!(idx.owner("/usr/games/supertux2"), Some("supertux"));
        assert_eq!(idx.owner("/tmp/x"), None);
        assert_eq!(clean(b"/tmp/a\nb\xff"), "/tmp/a\\nb\u{fffd}");
        let me = std::process::id() as i32;
        assert_eq!(real_uid(me), Some(0));
        let login = std::fs::read_to_string("/proc/self/loginuid").unwrap().trim().parse::<u32>().unwrap();
        assert_eq!(employee_of(me, 1000), (login != u32::MAX && login >= 1000).then_some(login));
        assert_eq!(employee_of(me, 0), Some(0));
        assert_eq!(real_uid(i32::MAX), None);
    }
}
