//! fanotify permission events for exec: the kernel holds every `execve` of a
//! file on a marked filesystem until we answer allow or deny, and hands us an
//! open descriptor of the very file being executed (decisions are made on that
//! descriptor, never on a path looked up again, so a file swapped after the
//! check cannot slip through). If our descriptor closes — the agent exits or
//! is killed — the kernel allows everything still waiting.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `struct fanotify_event_metadata` (linux/fanotify.h), 24 bytes.
const METADATA_LEN: usize = 24;
const METADATA_VERSION: u8 = 3;

/// Filesystems that never hold programs (or cannot be marked).
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "binfmt_misc",
    "autofs",
    "efivarfs",
    "nsfs",
    "rpc_pipefs",
    "devtmpfs",
];

/// One event as the kernel describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent {
    pub mask: u64,
    /// Descriptor of the file, owned by us until answered and closed; -1 for queue overflow.
    pub fd: RawFd,
    pub pid: i32,
}

impl RawEvent {
    pub fn is_exec_perm(&self) -> bool {
        self.mask & libc::FAN_OPEN_EXEC_PERM != 0 && self.fd >= 0
    }
}

/// Split what `read(2)` returned into events. Input is trusted kernel output,
/// but parsed defensively anyway: a short or inconsistent record ends parsing.
pub fn parse(buf: &[u8]) -> Vec<RawEvent> {
    let mut out = Vec::new();
    let mut off = 0;
    while buf.len() - off >= METADATA_LEN {
        let b = &buf[off..];
        let event_len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let vers = b[4];
        let metadata_len = u16::from_ne_bytes([b[6], b[7]]) as usize;
        if vers != METADATA_VERSION || event_len < METADATA_LEN || metadata_len < METADATA_LEN || event_len > b.len() {
            break;
        }
        let mut mask = [0u8; 8];
        mask.copy_from_slice(&b[8..16]);
        let fd = i32::from_ne_bytes([b[16], b[17], b[18], b[19]]);
        let pid = i32::from_ne_bytes([b[20], b[21], b[22], b[23]]);
        out.push(RawEvent { mask: u64::from_ne_bytes(mask), fd, pid });
        off += event_len;
    }
    out
}

pub struct Fanotify {
    fd: OwnedFd,
}

impl Fanotify {
    /// A content-class group (permission events) with an unlimited queue.
    pub fn open() -> io::Result<Fanotify> {
        let flags = libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK | libc::FAN_UNLIMITED_QUEUE;
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe { libc::fanotify_init(flags, (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Fanotify { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Ask for exec permission events on the whole filesystem holding `path`.
    pub fn mark_filesystem(&self, path: &std::path::Path) -> io::Result<()> {
        let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: c is a valid NUL-terminated path for the duration of the call.
        let r = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
                libc::FAN_OPEN_EXEC_PERM,
                libc::AT_FDCWD,
                c.as_ptr(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stop exec events for the file behind `fd` until it is next written to
    /// (the kernel drops an ignore mark on modification) or [`flush_ignores`](Self::flush_ignores).
    pub fn ignore_file(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: marking the inode of an open descriptor (dirfd = fd, no path).
        let r = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                libc::FAN_MARK_ADD | libc::FAN_MARK_IGNORED_MASK,
                libc::FAN_OPEN_EXEC_PERM,
                fd,
                std::ptr::null(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Remove every inode mark (the ignore marks), keeping the filesystem marks.
    pub fn flush_ignores(&self) -> io::Result<()> {
        // SAFETY: plain syscall; the path is unused with FAN_MARK_FLUSH.
        let r =
            unsafe { libc::fanotify_mark(self.fd.as_raw_fd(), libc::FAN_MARK_FLUSH, 0, libc::AT_FDCWD, c"/".as_ptr()) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Read whatever events are queued (non-blocking; empty when none).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<Vec<RawEvent>> {
        // SAFETY: buf is valid for writes of buf.len() bytes.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock { Ok(Vec::new()) } else { Err(e) };
        }
        Ok(parse(&buf[..n as usize]))
    }

    /// Answer the event whose descriptor is `fd` (the caller closes it after).
    pub fn respond(&self, fd: RawFd, allow: bool) -> io::Result<()> {
        let resp = libc::fanotify_response { fd, response: if allow { libc::FAN_ALLOW } else { libc::FAN_DENY } };
        let size = std::mem::size_of::<libc::fanotify_response>();
        // SAFETY: resp is a valid, initialised struct of `size` bytes.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), (&resp as *const libc::fanotify_response).cast(), size) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Mount points of filesystems that can hold programs, one per filesystem
/// (from /proc/self/mountinfo; mount points are octal-escaped there).
pub fn program_filesystems(mountinfo: &str) -> Vec<std::path::PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let fields: Vec<&str> = left.split(' ').collect();
        let (Some(dev), Some(mnt)) = (fields.get(2), fields.get(4)) else { continue };
        let Some(fstype) = right.split(' ').next() else { continue };
        if PSEUDO_FS.contains(&fstype) || !seen.insert(dev.to_string()) {
            continue;
        }
        let raw: std::ffi::OsString = std::os::unix::ffi::OsStringExt::from_vec(unescape_octal(mnt));
        out.push(std::path::PathBuf::from(raw));
    }
    out
}

fn unescape_octal(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = (i + 3 < b.len() && b[i] == b'\\' && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)))
            .then(|| b[i + 1..i + 4].iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0')))
            .and_then(|v| u8::try_from(v).ok());
        if let Some(v) = octal {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(len: u32, vers: u8, mask: u64, fd: i32, pid: i32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.push(vers);
        v.push(0);
        v.extend_from_slice(&(METADATA_LEN as u16).to_ne_bytes());
        v.extend_from_slice(&mask.to_ne_bytes());
        v.extend_from_slice(&fd.to_ne_bytes());
        v.extend_from_slice(&pid.to_ne_bytes());
        v.resize(len as usize, 0);
        v
    }

    #[test]
    fn parses_records_and_stops_at_garbage() {
        let mut buf = record(24, 3, libc::FAN_OPEN_EXEC_PERM, 7, 42);
        buf.extend(record(32, 3, libc::FAN_Q_OVERFLOW, -1, 0));
        buf.extend(record(24, 2, libc::FAN_OPEN_EXEC_PERM, 8, 1));
        let ev = parse(&buf);
        assert_eq!(ev.len(), 2, "the wrong-version record ends parsing");
        assert!(ev[0].is_exec_perm() && (ev[0].fd, ev[0].pid) == (7, 42));
        assert!(!ev[1].is_exec_perm());
        assert!(parse(&record(100, 3, 0, 1, 1)[..50]).is_empty(), "length beyond the buffer");
        assert!(parse(&record(8, 3, 0, 1, 1)).is_empty());
        assert_eq!(unescape_octal("a\\777b\\101"), b"a\\777bA", "escapes beyond a byte stay as they are");
    }

    #[test]
    fn hostile_input_never_panics() {
        // Every octal escape, and pseudo-random records (a fixed xorshift: the same cases each run).
        for v in 0..512u32 {
            let line = format!("1 1 0:{v} / /m\\{:03o}x rw - ext4 d rw", v);
            let _ = program_filesystems(&line);
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let buf: Vec<u8> = (0..64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8 % 8
                })
                .collect();
            let _ = parse(&buf);
        }
    }

    #[test]
    fn one_mount_per_filesystem_without_pseudo_fs() {
        let info = "22 1 0:21 / /proc rw - proc proc rw\n\
                    30 1 254:0 / / rw - ext4 /dev/vda rw\n\
                    31 30 254:0 /home /srv/home\\040x rw - ext4 /dev/vda rw\n\
                    32 30 0:30 / /dev/shm rw,nosuid shared:2 - tmpfs tmpfs rw\n\
                    33 30 0:31 / /media/usb\\040stick rw - vfat /dev/sdb1 rw\n\
                    garbage line";
        let got = program_filesystems(info);
        assert_eq!(
            got,
            ["/", "/dev/shm", "/media/usb stick"].map(std::path::PathBuf::from).to_vec(),
            "bind mounts of one filesystem are marked once"
        );
    }
}
