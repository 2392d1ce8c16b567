//! The slow side of software control, on its own thread: hashes files for
//! pending decisions and for reports, and folds repeated attempts (a program
//! retried in a loop) into one record per second with an exact count, so a
//! flood costs the agent a counter increment per attempt and the server one
//! event per second.

use super::enforcer::Hashed;
use super::facts::FileKey;
use super::rules::Verdict;
use crate::platform::fanotify::RawEvent;
use candor_proto::software::Action;
use candor_proto::{now_ms, Payload};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc as tmpsc;

const FOLD_WINDOW: Duration = Duration::from_secs(1);
/// Distinct attempts kept per window; beyond that they are still counted,
/// under the last key (a flood of distinct files is itself the finding).
const MAX_KEYS: usize = 1024;
const HASH_CACHE: usize = 8192;
/// The same program is announced to the same employee at most this often.
const QUIET: Duration = Duration::from_secs(10);

/// One decision worth reporting.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub ts_ms: i64,
    pub pid: u32,
    pub uid: Option<u32>,
    pub user: Option<String>,
    pub path: String,
    pub key: FileKey,
    pub sha256: Option<String>,
    pub package: Option<String>,
    pub verdict: Verdict,
    /// `fanotify` or `kill`.
    pub mode: &'static str,
    /// The desktop session bus of the blocked program, for the notification.
    pub bus: Option<String>,
}

impl Attempt {
    pub fn new(
        ev: &RawEvent,
        uid: Option<u32>,
        path: String,
        key: FileKey,
        sha256: Option<String>,
        package: Option<String>,
        verdict: Verdict,
    ) -> Attempt {
        Attempt {
            ts_ms: now_ms(),
            pid: ev.pid.max(0) as u32,
            uid,
            user: uid.map(|u| crate::platform::users::name_of(u).unwrap_or_else(|| u.to_string())),
            path,
            key,
            sha256,
            package,
            verdict,
            mode: "fanotify",
            bus: None,
        }
    }
}

pub enum Job {
    /// Hash for a pending decision; the answer goes back to the enforcer.
    Hash { key: FileKey, file: OwnedFd },
    /// Report (hashing first through `file` when the hash is unknown).
    Report { attempt: Attempt, file: Option<OwnedFd> },
}

/// What leaves the software-control threads for the async side.
#[derive(Debug)]
pub enum Out {
    Record {
        ts_ms: i64,
        payload: Payload,
    },
    /// Tell the employee on this desktop bus.
    Notify {
        uid: u32,
        bus: String,
        program: String,
        rule: String,
    },
}

type FoldKey = (String, Option<String>, Option<String>, &'static str, Action, Option<u32>, &'static str);

pub struct Worker {
    jobs: mpsc::Receiver<Job>,
    hashed: Option<(mpsc::Sender<Hashed>, OwnedFd)>,
    out: tmpsc::Sender<Out>,
    hashes: HashMap<FileKey, Option<String>>,
    packages: HashMap<String, Option<String>>,
    fold: HashMap<FoldKey, (Attempt, u64)>,
    announced: HashMap<(u32, String), Instant>,
}

impl Worker {
    pub fn new(
        jobs: mpsc::Receiver<Job>,
        hashed: Option<(mpsc::Sender<Hashed>, OwnedFd)>,
        out: tmpsc::Sender<Out>,
    ) -> Worker {
        Worker {
            jobs,
            hashed,
            out,
            hashes: HashMap::new(),
            packages: HashMap::new(),
            fold: HashMap::new(),
            announced: HashMap::new(),
        }
    }

    fn hash(&mut self, key: FileKey, file: &OwnedFd) -> Option<String> {
        if let Some(h) = self.hashes.get(&key) {
            return h.clone();
        }
        let h = crate::platform::procinfo::sha256_of(file.as_fd(), key.size);
        if self.hashes.len() >= HASH_CACHE {
            self.hashes.clear();
        }
        self.hashes.insert(key, h.clone());
        h
    }

    /// Runs until every sender is gone, then flushes what it folded.
    pub fn run(mut self) {
        let mut window = Instant::now() + FOLD_WINDOW;
        loop {
            match self.jobs.recv_timeout(window.saturating_duration_since(Instant::now())) {
                Ok(Job::Hash { key, file }) => {
                    let sha256 = self.hash(key, &file);
                    if let Some((tx, wake)) = &self.hashed {
                        let _ = tx.send(Hashed { key, sha256 });
                        let one = 1u64.to_ne_bytes();
                        // SAFETY: writing 8 bytes to an eventfd we hold.
                        unsafe { libc::write(wake.as_raw_fd(), one.as_ptr().cast(), 8) };
                    }
                }
                Ok(Job::Report { mut attempt, file }) => {
                    if attempt.sha256.is_none() {
                        attempt.sha256 = match &file {
                            Some(f) => self.hash(attempt.key, f),
                            None => self.hashes.get(&attempt.key).cloned().flatten(),
                        };
                    }
                    self.tally(attempt);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.flush();
                    return;
                }
            }
            if Instant::now() >= window {
                self.flush();
                window = Instant::now() + FOLD_WINDOW;
            }
        }
    }

    fn tally(&mut self, mut a: Attempt) {
        if a.package.is_none() && !a.path.starts_with("/tmp/") {
            let path = a.path.clone();
            a.package = self
                .packages
                .entry(path)
                .or_insert_with_key(|p| {
                    crate::platform::procinfo::dpkg_owner(std::path::Path::new("/var/lib/dpkg/info"), p)
                })
                .clone();
        }
        let key: FoldKey = (
            a.path.clone(),
            a.sha256.clone(),
            a.verdict.rule.clone(),
            a.verdict.reason.as_str(),
            a.verdict.action,
            a.uid,
            a.mode,
        );
        self.announce(&a);
        if let Some((_, n)) = self.fold.get_mut(&key) {
            *n += 1;
            return;
        }
        if self.fold.len() >= MAX_KEYS {
            if let Some((_, n)) = self.fold.values_mut().next() {
                *n += 1;
            }
            return;
        }
        self.fold.insert(key, (a, 1));
    }

    /// Tell the employee about a block, once per program per [`QUIET`] —
    /// counted from an announcement that could be made (a desktop bus known).
    fn announce(&mut self, a: &Attempt) {
        let (Some(uid), Action::Block) = (a.uid, a.verdict.action) else { return };
        let Some(bus) = crate::desktop_notify::bus_address(uid, a.bus.clone()) else { return };
        let program = a.path.rsplit('/').next().unwrap_or(&a.path).to_string();
        let now = Instant::now();
        if self.announced.get(&(uid, program.clone())).is_some_and(|t| now.duration_since(*t) < QUIET) {
            return;
        }
        if self.announced.len() >= MAX_KEYS {
            self.announced.retain(|_, t| now.duration_since(*t) < QUIET);
        }
        self.announced.insert((uid, program.clone()), now);
        let rule = a.verdict.rule.clone().unwrap_or_else(|| a.verdict.reason.as_str().to_string());
        let _ = self.out.try_send(Out::Notify { uid, bus, program, rule });
    }

    fn flush(&mut self) {
        for (_, (a, count)) in self.fold.drain() {
            let payload = Payload::SoftwareControl {
                outcome: if a.verdict.action == Action::Block { "blocked" } else { "alerted" }.into(),
                reason: a.verdict.reason.as_str().into(),
                rule: a.verdict.rule,
                exe: a.path,
                sha256: a.sha256,
                package: a.package,
                user: a.user,
                uid: a.uid,
                pid: a.pid,
                mode: a.mode.into(),
                count,
            };
            // Blocking here stalls only this thread; the enforcer keeps answering.
            if self.out.blocking_send(Out::Record { ts_ms: a.ts_ms, payload }).is_err() {
                return;
            }
        }
    }
}
