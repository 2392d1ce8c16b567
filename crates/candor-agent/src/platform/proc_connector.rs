//! Exec and exit notifications from the kernel's netlink process connector
//! (`NETLINK_CONNECTOR`, `CN_IDX_PROC`; needs CAP_NET_ADMIN). Messages are
//! parsed with bounds checks only ([`parse`] is a fuzz target): a short or
//! inconsistent message ends the parse, it never reads past the buffer.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const NETLINK_CONNECTOR: i32 = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
const NLMSG_HDR: usize = 16;
const CN_MSG: usize = 20;
const EVENT_HDR: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    /// A thread group leader replaced its image.
    Exec { pid: u32 },
    /// A process (thread group) ended.
    Exit { pid: u32, exit_code: u32, exit_signal: u32 },
}

/// The kernel's multicast of process events, subscribed.
pub struct Connector {
    fd: OwnedFd,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]))
}

/// Every process event in one datagram. Thread exec/exit (pid ≠ tgid) are skipped.
pub fn parse(buf: &[u8]) -> Vec<ProcEvent> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(len) = u32_at(buf, at).map(|l| l as usize) {
        if len < NLMSG_HDR || len > buf.len() - at {
            break;
        }
        let msg = &buf[at + NLMSG_HDR..at + len];
        if let (Some(CN_IDX_PROC), Some(CN_VAL_PROC), Some(data_len)) =
            (u32_at(msg, 0), u32_at(msg, 4), u16_at(msg, 16))
        {
            if let Some(ev) = msg.get(CN_MSG..CN_MSG + data_len as usize) {
                let data = ev.get(EVENT_HDR..).unwrap_or_default();
                let (pid, tgid) = (u32_at(data, 0), u32_at(data, 4));
                match (u32_at(ev, 0), pid, tgid) {
                    (Some(PROC_EVENT_EXEC), Some(pid), Some(tgid)) if pid == tgid => out.push(ProcEvent::Exec { pid }),
                    (Some(PROC_EVENT_EXIT), Some(pid), Some(tgid)) if pid == tgid => {
                        if let (Some(exit_code), Some(exit_signal)) = (u32_at(data, 8), u32_at(data, 12)) {
                            out.push(ProcEvent::Exit { pid, exit_code, exit_signal });
                        }
                    }
                    _ => {}
                }
            }
        }
        at += (len + 3) & !3;
    }
    out
}

impl Connector {
    pub fn open() -> io::Result<Connector> {
        // SAFETY: plain socket(2); the result is checked and owned at once.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, NETLINK_CONNECTOR) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: a zeroed sockaddr_nl is valid; its size is passed.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_groups = CN_IDX_PROC;
        let rc = unsafe {
            libc::bind(raw, &addr as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_nl>() as u32)
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // Bursts of process starts must not overflow the queue while we hash a new binary.
        let size: libc::c_int = 4 << 20;
        // SAFETY: setsockopt with a c_int value and its size.
        unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &size as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        let mut msg = Vec::with_capacity(NLMSG_HDR + CN_MSG + 4);
        msg.extend_from_slice(&((NLMSG_HDR + CN_MSG + 4) as u32).to_ne_bytes());
        msg.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&std::process::id().to_ne_bytes());
        for v in [CN_IDX_PROC, CN_VAL_PROC, 0, 0] {
            msg.extend_from_slice(&v.to_ne_bytes());
        }
        msg.extend_from_slice(&4u16.to_ne_bytes()); // len
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
        // SAFETY: sending an initialised buffer of the given length.
        let n = unsafe { libc::send(raw, msg.as_ptr() as *const libc::c_void, msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Connector { fd })
    }

    /// Wait up to `timeout` for one datagram. `Ok(None)` on timeout;
    /// `Err` with ENOBUFS means the kernel dropped events (we were too slow).
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<Vec<ProcEvent>>> {
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis().min(i32::MAX as u128) as i32) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(None) } else { Err(e) };
        }
        if n == 0 {
            return Ok(None);
        }
        // SAFETY: buf is valid for buf.len() bytes.
        let got = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some(parse(&buf[..got as usize])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, data: &[u32]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&0u32.to_ne_bytes());
        ev.extend_from_slice(&0u64.to_ne_bytes());
        for d in data {
            ev.extend_from_slice(&d.to_ne_bytes());
        }
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDR + CN_MSG + ev.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&[0u8; 12]);
        for v in [CN_IDX_PROC, CN_VAL_PROC, 0, 0] {
            m.extend_from_slice(&v.to_ne_bytes());
        }
        m.extend_from_slice(&(ev.len() as u16).to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&ev);
        m
    }

    #[test]
    fn parses_exec_and_exit_skips_threads_and_garbage() {
        let mut buf = message(PROC_EVENT_EXEC, &[42, 42]);
        buf.extend(message(PROC_EVENT_EXEC, &[43, 42])); // a thread
        buf.extend(message(PROC_EVENT_EXIT, &[42, 42, 256, 0]));
        assert_eq!(
            parse(&buf),
            vec![ProcEvent::Exec { pid: 42 }, ProcEvent::Exit { pid: 42, exit_code: 256, exit_signal: 0 }]
        );
        for cut in 0..buf.len() {
            let _ = parse(&buf[..cut]);
        }
        let mut lying = message(PROC_EVENT_EXIT, &[1, 1, 0, 0]);
        lying[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse(&lying).is_empty());
        let mut short_data = message(PROC_EVENT_EXIT, &[1, 1]);
        short_data[NLMSG_HDR + 16..NLMSG_HDR + 18].copy_from_slice(&500u16.to_ne_bytes());
        assert!(parse(&short_data).is_empty());
    }

    #[test]
    fn sees_a_real_exec_when_root() {
        let Ok(c) = Connector::open() else {
            assert_ne!(unsafe { libc::geteuid() }, 0, "root must be able to open the process connector");
            return;
        };
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut buf = vec![0u8; 8192];
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut seen = (false, false);
        while std::time::Instant::now() < deadline && !(seen.0 && seen.1) {
            for e in c.recv(&mut buf, Duration::from_millis(200)).unwrap().unwrap_or_default() {
                match e {
                    ProcEvent::Exec { pid: p } if p == pid => seen.0 = true,
                    ProcEvent::Exit { pid: p, .. } if p == pid => seen.1 = true,
                    _ => {}
                }
            }
        }
        assert_eq!(seen, (true, true), "exec and exit of pid {pid}");
    }
}
