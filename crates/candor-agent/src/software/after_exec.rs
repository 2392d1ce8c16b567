//! Decisions after a program has started, ending it with SIGKILL through a
//! pidfd (so a recycled pid can never be hit). Two uses:
//! - **scripts run through an interpreter** (`python3 game.py`, `bash x.sh`):
//!   the exec the kernel gates is the interpreter's; the script is only read.
//!   The script named on the command line is judged like a program once the
//!   interpreter has started (the enforcer hands over each interpreter it
//!   lets through) — it may run for the millisecond or so this takes;
//! - **the weaker mode** where fanotify is unavailable: every exec reported by
//!   the netlink process connector is judged this way, and the server is told
//!   (endpoint notice).

use super::enforcer::Shared;
use super::facts::{self, FileKey};
use super::worker::{Attempt, Job};
use crate::platform::fanotify::RawEvent;
use crate::platform::proc_connector::{Connector, ProcEvent};
use candor_proto::software::Action;
use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "fish", "node", "nodejs", "tclsh"];
const PREFIXES: &[&str] = &["python", "perl", "ruby", "php", "lua"];

pub fn is_interpreter(file_name: &str) -> bool {
    SHELLS.contains(&file_name) || PREFIXES.iter().any(|p| file_name.starts_with(p))
}

/// The script an interpreter was asked to run: the first argument that is not
/// an option — unless code comes from the command line (`-c`, `-ec`) or a
/// module is named (`-m`), when there is no script file.
pub fn script_arg(args: &[Vec<u8>]) -> Option<&[u8]> {
    for a in args.iter().skip(1).map(Vec::as_slice) {
        match a {
            [] => {}
            [b'-', b'-', ..] => {}
            [b'-', flags @ ..] if flags.iter().any(|f| *f == b'c' || *f == b'm') => return None,
            [b'-', ..] => {}
            script => return Some(script),
        }
    }
    None
}

pub fn cmdline(pid: u32) -> Vec<Vec<u8>> {
    let mut raw = Vec::new();
    if let Ok(f) = std::fs::File::open(format!("/proc/{pid}/cmdline")) {
        let _ = f.take(16 * 1024).read_to_end(&mut raw);
    }
    raw.split(|b| *b == 0).take(64).map(<[u8]>::to_vec).collect()
}

pub fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: plain syscall, checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    // SAFETY: a fresh descriptor we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

pub fn kill(pidfd: &OwnedFd) -> bool {
    // SAFETY: plain syscall on a pidfd we hold.
    unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), libc::SIGKILL, 0usize, 0u32) == 0 }
}

/// Open a file named by an untrusted process without following it into a
/// FIFO or device (which could block or never end).
fn open_regular(path: &std::path::Path) -> Option<std::fs::File> {
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path).ok()?;
    f.metadata().ok()?.is_file().then_some(f)
}

pub struct AfterExec {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    /// Judge every program (fanotify unavailable), not only interpreters' scripts.
    all: bool,
    max_hash: u64,
    hashes: HashMap<FileKey, Option<String>>,
}

impl AfterExec {
    /// `max_hash`: largest file hashed here. The exec gate's own instance keeps
    /// it small — every exec on the machine waits while that thread works.
    pub fn new(shared: Arc<Shared>, jobs: mpsc::Sender<Job>, all: bool, max_hash: u64) -> AfterExec {
        AfterExec { shared, jobs, all, max_hash, hashes: HashMap::new() }
    }

    pub fn run(mut self, conn: Connector, stop: Arc<AtomicBool>) {
        let mut buf = vec![0u8; 64 * 1024];
        let own = std::process::id();
        while !stop.load(Ordering::Relaxed) {
            match conn.recv(&mut buf, Duration::from_millis(300)) {
                Ok(Some(events)) => {
                    for e in events {
                        if let ProcEvent::Exec { pid } = e {
                            if pid != own {
                                self.exec(pid);
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    tracing::warn!("process events lost (kernel queue overflow); some execs were not checked");
                }
                Err(e) => {
                    tracing::error!(error = %e, "process connector failed; after-exec checks stop");
                    return;
                }
            }
        }
    }

    fn exec(&mut self, pid: u32) {
        if let Some(pidfd) = pidfd_open(pid) {
            self.check(pid, &pidfd);
        }
    }

    /// Judge a process that has started (its program, if `all`, and the
    /// script it runs if it is an interpreter); kill it through `pidfd` if blocked.
    pub fn check(&mut self, pid: u32, pidfd: &OwnedFd) {
        let snap = self.shared.snapshot();
        let Some(uid) = facts::employee_of(pid as i32, snap.rules.opts.min_uid) else { return };
        let Some(exe) = open_regular(std::path::Path::new(&format!("/proc/{pid}/exe"))) else { return };
        let exe_path = facts::path_of(exe.as_fd());
        let mut targets = Vec::new();
        if is_interpreter(exe_path.rsplit('/').next().unwrap_or("")) {
            let args = cmdline(pid);
            if let Some(arg) = script_arg(&args) {
                let rel = std::ffi::OsStr::from_bytes(arg);
                let base = std::path::PathBuf::from(format!("/proc/{pid}/cwd"));
                if let Some(f) = open_regular(&base.join(rel)) {
                    targets.push(f);
                }
            }
        }
        if self.all {
            targets.insert(0, exe);
        }
        for file in targets {
            let fd = file.as_fd();
            let Some(st) = facts::stat(fd) else { continue };
            let sha256 = if snap.rules.needs_hash && st.key.size <= self.max_hash {
                self.hashes
                    .entry(st.key)
                    .or_insert_with(|| crate::platform::procinfo::sha256_of(fd, st.key.size))
                    .clone()
            } else {
                None
            };
            if self.hashes.len() > 8192 {
                self.hashes.clear();
            }
            let path = facts::path_of(fd);
            let (verdict, package) = snap.decide(&path, sha256.as_deref(), st.owner_uid, uid, false);
            if verdict.action == Action::Allow {
                continue;
            }
            let blocked = verdict.action == Action::Block;
            let bus = (blocked && snap.rules.opts.notify).then(|| facts::session_bus_of(pid as i32)).flatten();
            if blocked && !kill(pidfd) {
                continue; // already gone
            }
            let ev = RawEvent { mask: 0, fd: -1, pid: pid as i32 };
            let mut attempt = Attempt::new(&ev, Some(uid), path, st.key, sha256, package, verdict);
            attempt.mode = "kill";
            attempt.bus = bus;
            let file = attempt.sha256.is_none().then(|| OwnedFd::from(file));
            let _ = self.jobs.send(Job::Report { attempt, file });
            if blocked {
                break;
            }
        }
    }
}

use std::os::unix::ffi::OsStrExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreters_and_their_scripts() {
        assert!(is_interpreter("python3.11") && is_interpreter("bash") && !is_interpreter("vim"));
        let args = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(script_arg(&args(&["python3", "-u", "game.py", "x"])), Some(&b"game.py"[..]));
        assert_eq!(script_arg(&args(&["bash"])), None);
        assert_eq!(script_arg(&args(&["python3", "-c", "print(1)"])), None);
        assert_eq!(script_arg(&args(&["sh", "-ec", "/tmp/x"])), None);
        assert_eq!(script_arg(&args(&["python3", "-m", "http.server"])), None);
        assert_eq!(script_arg(&args(&["bash", "--norc", "x.sh"])), Some(&b"x.sh"[..]));
    }
}
