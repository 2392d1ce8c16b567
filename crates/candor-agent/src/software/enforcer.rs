//! The exec gate: answers every fanotify permission event. The hot path is
//! a few /proc reads and a rule match on one thread; anything slow (hashing
//! a file not seen before) goes to the [`worker`](super::worker) while the
//! event waits, with a deadline after which the policy's fail-open or
//! fail-closed answer is given. Nothing here ever blocks on the rest of the
//! agent: reports are handed to the worker over an unbounded channel and
//! folded there.

use super::after_exec::{self, AfterExec};
use super::facts::{self, FileKey};
use super::rules::{Reason, Verdict};
use super::worker::{Attempt, Job};
use super::Snapshot;
use crate::platform::fanotify::{program_filesystems, Fanotify, RawEvent};
use candor_proto::software::Action;
use std::collections::{HashMap, HashSet};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Events waiting for a hash beyond this many are answered at once with the
/// policy's timeout answer (each holds a kernel descriptor).
const MAX_PENDING: usize = 4096;
const HASH_CACHE: usize = 8192;
const REMARK_EVERY: Duration = Duration::from_secs(10);
/// Files the kernel is told to stop asking about; beyond this all are
/// forgotten (each mark pins an inode in memory).
const MAX_IGNORED: usize = 4096;
/// Scripts judged on this thread are hashed only up to this size (a larger
/// one is judged by name and path; hashing it here would hold every exec).
const MAX_SCRIPT_HASH: u64 = 16 << 20;

/// Counters (and, for the benchmark, decision latencies).
#[derive(Default)]
pub struct Stats {
    pub decisions: AtomicU64,
    pub blocked: AtomicU64,
    pub timeouts: AtomicU64,
    /// Nanoseconds per decision, when enabled (bench); bounded.
    pub latencies: Mutex<Option<Vec<u32>>>,
}

pub struct Shared {
    pub snapshot: Mutex<Arc<Snapshot>>,
    pub stats: Stats,
}

impl Shared {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.lock().map(|s| s.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }
}

struct Pending {
    ev: RawEvent,
    key: FileKey,
    deadline: Instant,
    started: Instant,
}

enum Judged {
    Exempt,
    /// The attempt is there when it is to be reported (anything but a plain allow).
    Decided {
        verdict: Verdict,
        attempt: Option<Box<Attempt>>,
        then: Then,
    },
    NeedHash,
}

/// What follows an answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    Nothing,
    /// Check again once started: an interpreter's script, the packages an apt command line names.
    AfterStart,
    /// Tell the kernel to stop asking about this file (see [`Enforcer::ignore`]).
    Ignore,
}

/// An interpreter or apt an employee started, until its exec completes and its
/// script or command line is judged.
struct Starting {
    pid: u32,
    pidfd: OwnedFd,
    program: (u64, u64),
    until: Instant,
}

/// Whether the apt process `pid` installs only approved packages (or changes nothing).
fn apt_run_approved(pid: u32, approved: &[String]) -> Result<(), String> {
    if !super::rules::is_apt(&facts::path_of_link(&format!("/proc/{pid}/exe"))) {
        return Err("not started by apt".into());
    }
    let args: Vec<String> = after_exec::cmdline(pid).iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    super::rules::apt_approved(&args, approved)
}

/// Sent back by the worker when a hash is known.
pub struct Hashed {
    pub key: FileKey,
    pub sha256: Option<String>,
}

pub struct Enforcer {
    fan: Fanotify,
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    hashed_rx: mpsc::Receiver<Hashed>,
    /// eventfd the worker writes to after sending a [`Hashed`].
    wake: OwnedFd,
    hashes: HashMap<FileKey, Option<String>>,
    hashing: HashSet<FileKey>,
    pending: HashMap<RawFd, Pending>,
    own_pid: i32,
    own_exe: Option<(u64, u64)>,
    /// The rules the kernel-side ignore marks were decided under.
    marked_under: Option<Arc<Snapshot>>,
    ignored: usize,
    scripts: AfterExec,
    starting: Vec<Starting>,
}

pub fn eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall, checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Mark every filesystem that can hold programs; returns how many were marked.
pub fn mark_all(fan: &Fanotify) -> usize {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    program_filesystems(&info)
        .into_iter()
        .filter(|m| match fan.mark_filesystem(m) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(mount = %m.display(), error = %e, "filesystem not marked");
                false
            }
        })
        .count()
}

impl Enforcer {
    pub fn new(
        fan: Fanotify,
        shared: Arc<Shared>,
        jobs: mpsc::Sender<Job>,
        hashed_rx: mpsc::Receiver<Hashed>,
        wake: OwnedFd,
    ) -> Enforcer {
        let own_exe = std::fs::metadata("/proc/self/exe").ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        });
        Enforcer {
            fan,
            scripts: AfterExec::new(shared.clone(), jobs.clone(), false, MAX_SCRIPT_HASH),
            shared,
            jobs,
            hashed_rx,
            wake,
            hashes: HashMap::new(),
            hashing: HashSet::new(),
            pending: HashMap::new(),
            own_pid: std::process::id() as i32,
            own_exe,
            marked_under: None,
            ignored: 0,
            starting: Vec::new(),
        }
    }

    /// Answer events until `stop`; returning closes the group, and the kernel
    /// then allows whatever is still waiting.
    pub fn run(mut self, stop: Arc<AtomicBool>) {
        // Every exec on the machine waits for this thread: run it ahead of
        // ordinary work (lowest real-time priority; its work per wake-up is
        // bounded and it sleeps in poll), so a busy desktop does not stretch
        // each program start. Without the privilege it stays as it is.
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: sets the calling thread's policy; param is a valid struct.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
            tracing::debug!("exec gate runs without real-time priority");
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut remarked = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let wait = self
                .pending
                .values()
                .map(|p| p.deadline.saturating_duration_since(now))
                .min()
                .unwrap_or(Duration::from_millis(200))
                .min(if self.starting.is_empty() { Duration::from_millis(200) } else { Duration::from_millis(1) });
            let mut fds = [
                libc::pollfd { fd: self.fan.raw(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&self.wake), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: fds is a valid array of two pollfd structs.
            unsafe { libc::poll(fds.as_mut_ptr(), 2, wait.as_millis().max(1) as i32) };
            if fds[1].revents != 0 {
                let mut v = [0u8; 8];
                // SAFETY: reading 8 bytes into v resets the eventfd counter.
                unsafe { libc::read(fds[1].fd, v.as_mut_ptr().cast(), 8) };
            }
            let snap = self.shared.snapshot();
            self.follow_rules(&snap);
            while let Ok(h) = self.hashed_rx.try_recv() {
                self.hashing.remove(&h.key);
                if self.hashes.len() >= HASH_CACHE {
                    self.hashes.clear();
                }
                self.hashes.insert(h.key, h.sha256);
                let ready: Vec<RawFd> =
                    self.pending.iter().filter(|(_, p)| p.key == h.key).map(|(fd, _)| *fd).collect();
                for fd in ready {
                    if let Some(p) = self.pending.remove(&fd) {
                        self.handle(p.ev, p.started);
                    }
                }
            }
            if fds[0].revents != 0 {
                match self.fan.read(&mut buf) {
                    Ok(events) => {
                        for ev in events {
                            if ev.is_exec_perm() {
                                self.handle(ev, Instant::now());
                            } else if ev.fd >= 0 {
                                // SAFETY: the kernel gave us this descriptor; close it.
                                drop(unsafe { OwnedFd::from_raw_fd(ev.fd) });
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reading fanotify events failed");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
            self.expire(Instant::now());
            self.check_started();
            if remarked.elapsed() >= REMARK_EVERY {
                // Filesystems mounted since (a USB stick) get marked too.
                mark_all(&self.fan);
                remarked = Instant::now();
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        let expired: Vec<RawFd> = self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(fd, _)| *fd).collect();
        for fd in expired {
            if let Some(p) = self.pending.remove(&fd) {
                self.timeout(p);
            }
        }
    }

    fn timeout(&mut self, p: Pending) {
        let snap = self.shared.snapshot();
        let closed = snap.rules.opts.fail_closed;
        self.shared.stats.timeouts.fetch_add(1, Ordering::Relaxed);
        let verdict =
            Verdict { action: if closed { Action::Block } else { Action::Alert }, reason: Reason::Timeout, rule: None };
        // SAFETY: the descriptor is the event's, still open (owned by us until now).
        let fd = unsafe { BorrowedFd::borrow_raw(p.ev.fd) };
        let uid = facts::employee_of(p.ev.pid, snap.rules.opts.min_uid);
        let attempt = Attempt::new(&p.ev, uid, facts::path_of(fd), p.key, None, None, verdict.clone());
        self.answer(p.ev, !closed, p.started, Some(attempt));
    }

    fn handle(&mut self, ev: RawEvent, started: Instant) {
        let snap = self.shared.snapshot();
        self.follow_rules(&snap);
        let judged = self.judge(&ev, &snap);
        match judged {
            Judged::Exempt => self.answer(ev, true, started, None),
            Judged::Decided { verdict, attempt, then } => {
                let allow = verdict.action != Action::Block;
                match then {
                    Then::AfterStart if allow => self.watch_start(&ev),
                    Then::Ignore => self.ignore(&ev),
                    _ => {}
                }
                self.answer(ev, allow, started, attempt.map(|a| *a))
            }
            Judged::NeedHash => {
                // SAFETY: the event's descriptor is open until we answer.
                let fd = unsafe { BorrowedFd::borrow_raw(ev.fd) };
                let Some(st) = facts::stat(fd) else { return self.answer(ev, true, started, None) };
                if self.pending.len() >= MAX_PENDING {
                    return self.timeout(Pending { ev, key: st.key, deadline: started, started });
                }
                if self.hashing.insert(st.key) {
                    match fd.try_clone_to_owned() {
                        Ok(file) => {
                            let _ = self.jobs.send(Job::Hash { key: st.key, file });
                        }
                        Err(_) => {
                            self.hashing.remove(&st.key);
                            self.hashes.insert(st.key, None);
                            return self.handle(ev, started);
                        }
                    }
                }
                let deadline = started + Duration::from_millis(snap.rules.opts.decision_timeout_ms);
                self.pending.insert(ev.fd, Pending { ev, key: st.key, deadline, started });
            }
        }
    }

    /// New rules: what the kernel was told to skip may now be denied, so the
    /// ignore marks go (checked on every wake-up, at most 200 ms apart, since
    /// an ignored file raises no event that could tell us).
    fn follow_rules(&mut self, snap: &Arc<Snapshot>) {
        if self.marked_under.as_ref().is_some_and(|m| Arc::ptr_eq(m, snap)) {
            return;
        }
        if self.ignored > 0 {
            if let Err(e) = self.fan.flush_ignores() {
                tracing::warn!(error = %e, "flushing ignore marks failed");
            }
        }
        self.ignored = 0;
        self.marked_under = Some(snap.clone());
    }

    /// Remember an interpreter or apt being started, to judge it once the exec is done.
    fn watch_start(&mut self, ev: &RawEvent) {
        // SAFETY: the event's descriptor is open until we answer.
        let fd = unsafe { BorrowedFd::borrow_raw(ev.fd) };
        let (Some(st), Some(pidfd)) = (facts::stat(fd), after_exec::pidfd_open(ev.pid.max(0) as u32)) else { return };
        if self.starting.len() < MAX_PENDING {
            self.starting.push(Starting {
                pid: ev.pid as u32,
                pidfd,
                program: (st.key.dev, st.key.ino),
                until: Instant::now() + Duration::from_secs(2),
            });
        }
    }

    /// Judge the interpreters and apt runs whose exec has completed.
    fn check_started(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let now = Instant::now();
        let mut i = 0;
        let mut again = Vec::new();
        while i < self.starting.len() {
            let s = &self.starting[i];
            let exe = std::fs::metadata(format!("/proc/{}/exe", s.pid)).ok().map(|m| (m.dev(), m.ino()));
            let running = exe == Some(s.program);
            if running || exe.is_none() || now >= s.until {
                let s = self.starting.swap_remove(i);
                if running {
                    again.extend(self.started(s).filter(|s| now < s.until));
                }
            } else {
                i += 1;
            }
        }
        self.starting.extend(again);
    }

    /// An interpreter or apt has finished starting: judge its script, or its
    /// packages. Given back while its arguments are not there yet: the kernel
    /// switches `/proc/PID/exe` to the new program before it copies the
    /// arguments in, and an empty command line names no script.
    fn started(&mut self, s: Starting) -> Option<Starting> {
        if after_exec::cmdline(s.pid).iter().all(Vec::is_empty) {
            return Some(s);
        }
        let exe = facts::path_of_link(&format!("/proc/{}/exe", s.pid));
        if !super::rules::is_apt(&exe) {
            self.scripts.check(s.pid, &s.pidfd);
            return None;
        }
        let snap = self.shared.snapshot();
        let Err(why) = apt_run_approved(s.pid, &snap.rules.opts.install.approved_packages) else { return None };
        if !after_exec::kill(&s.pidfd) {
            return None;
        }
        let uid = facts::employee_of(s.pid as i32, snap.rules.opts.min_uid);
        let verdict = Verdict { action: Action::Block, reason: Reason::Install, rule: Some(why) };
        let ev = RawEvent { mask: 0, fd: -1, pid: s.pid as i32 };
        let key = facts::FileKey { dev: s.program.0, ino: s.program.1, size: 0, ctime_ns: 0 };
        let mut attempt = Attempt::new(&ev, uid, exe, key, None, None, verdict);
        attempt.mode = "kill";
        let _ = self.jobs.send(Job::Report { attempt, file: None });
        None
    }

    /// Let the kernel skip future execs of a file (an ignore mark; the kernel
    /// drops it when the file is modified, new rules flush them all).
    fn ignore(&mut self, ev: &RawEvent) {
        if self.ignored >= MAX_IGNORED {
            let _ = self.fan.flush_ignores();
            self.ignored = 0;
        }
        if self.fan.ignore_file(ev.fd).is_ok() {
            self.ignored += 1;
        }
    }

    fn judge(&self, ev: &RawEvent, snap: &Snapshot) -> Judged {
        let rules = &snap.rules;
        if ev.pid == self.own_pid {
            return Judged::Exempt;
        }
        // SAFETY: the event's descriptor is open until we answer.
        let fd = unsafe { BorrowedFd::borrow_raw(ev.fd) };
        let Some(st) = facts::stat(fd) else { return Judged::Exempt };
        if self.own_exe == Some((st.key.dev, st.key.ino)) {
            // The agent's own binary (e.g. its notification helper).
            return Judged::Exempt;
        }
        let Some(uid) = facts::employee_of(ev.pid, rules.opts.min_uid) else { return Judged::Exempt };
        let sha256 = if rules.needs_hash {
            match self.hashes.get(&st.key) {
                Some(h) => h.clone(),
                None => return Judged::NeedHash,
            }
        } else {
            self.hashes.get(&st.key).cloned().flatten()
        };
        let path = facts::path_of(fd);
        let name = path.rsplit('/').next().unwrap_or(&path);
        // dpkg started by an apt whose command line names approved packages only
        // (read from the parent itself: no race with the after-start check of apt).
        let approved = &rules.opts.install.approved_packages;
        let approved_parent = name == "dpkg"
            && !approved.is_empty()
            && facts::pid_info(ev.pid).is_some_and(|(_, ppid)| apt_run_approved(ppid, approved).is_ok());
        let (verdict, package) = snap.decide(&path, sha256.as_deref(), st.owner_uid, uid, approved_parent);
        let apt_check = super::rules::is_apt(&path) && {
            let user = crate::platform::users::name_of(uid).unwrap_or_else(|| uid.to_string());
            rules.apt_check_needed(&path, &user)
        };
        let then = if after_exec::is_interpreter(name) || apt_check {
            Then::AfterStart
        } else if verdict.action == Action::Allow
            && rules.kernel_cacheable
            // Employees could change a file they can write (through mmap, without an event).
            && st.owner_uid < rules.opts.min_uid
            && st.mode & 0o022 == 0
            && !super::rules::is_package_manager(&path)
        {
            Then::Ignore
        } else {
            Then::Nothing
        };
        if verdict.action == Action::Allow {
            return Judged::Decided { verdict, attempt: None, then };
        }
        let mut attempt = Attempt::new(ev, Some(uid), path, st.key, sha256, package, verdict.clone());
        if verdict.action == Action::Block && rules.opts.notify {
            attempt.bus = facts::session_bus_of(ev.pid);
        }
        Judged::Decided { verdict, attempt: Some(Box::new(attempt)), then }
    }

    fn answer(&mut self, ev: RawEvent, allow: bool, started: Instant, report: Option<Attempt>) {
        if let Err(e) = self.fan.respond(ev.fd, allow) {
            tracing::warn!(error = %e, "answering a permission event failed");
        }
        let stats = &self.shared.stats;
        stats.decisions.fetch_add(1, Ordering::Relaxed);
        if !allow {
            stats.blocked.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut l) = stats.latencies.lock() {
            if let Some(v) = l.as_mut().filter(|v| v.len() < 10_000_000) {
                v.push(started.elapsed().as_nanos().min(u32::MAX as u128) as u32);
            }
        }
        if let Some(mut attempt) = report {
            // The worker hashes for the report if we do not know the hash yet.
            let file = if attempt.sha256.is_none() && !self.hashes.contains_key(&attempt.key) {
                // SAFETY: still open; we close our copy below.
                unsafe { BorrowedFd::borrow_raw(ev.fd) }.try_clone_to_owned().ok()
            } else {
                None
            };
            if attempt.sha256.is_none() {
                attempt.sha256 = self.hashes.get(&attempt.key).cloned().flatten();
            }
            let _ = self.jobs.send(Job::Report { attempt, file });
        }
        // SAFETY: the kernel's descriptor for this event, ours to close once answered.
        drop(unsafe { OwnedFd::from_raw_fd(ev.fd) });
    }
}
