//! Software control (policy section `software`): listed programs are refused
//! at exec — fanotify `FAN_OPEN_EXEC_PERM`, decided on the descriptor the
//! kernel hands over — or, where fanotify is unavailable, killed right after
//! they start (the weaker mode, reported as an endpoint notice). Package
//! installs by employees are refused or reported, installs and removals are
//! recorded, and the employee is told on the desktop what was blocked and why.
//!
//! Threads: [`enforcer`] answers the kernel (and has [`after_exec`] judge
//! interpreters' scripts once they start); [`worker`] hashes and folds
//! reports; in the weaker mode an [`after_exec`] thread judges every exec the
//! process connector reports. This task owns them, swaps in new rules when the policy
//! changes, and turns their output into records and notifications.

pub mod after_exec;
pub mod dpkg_log;
pub mod enforcer;
pub mod facts;
pub mod notify;
pub mod rules;
pub mod worker;

use crate::config::{SoftwareConfig, SoftwareMechanism};
use crate::gate::Recorder;
use crate::notices::Notices;
use crate::platform::catalogue::Catalogue;
use crate::platform::fanotify::Fanotify;
use crate::platform::proc_connector::Connector;
use crate::spool::Record;
use crate::Stop;
use candor_proto::policy::EffectivePolicy;
use candor_proto::software::SoftwareOptions;
use candor_proto::Category;
use enforcer::{Enforcer, Shared, Stats};
use facts::{Lookups, PackageIndex};
use rules::Rules;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc as tmpsc, watch};
use worker::{Out, Worker};

const DPKG_INFO: &str = "/var/lib/dpkg/info";

/// Compiled rules plus the lookups they need; swapped whole.
pub struct Snapshot {
    pub rules: Rules,
    pub lookups: Lookups,
}

impl Snapshot {
    /// Compile `opts`, loading the package index and catalogue only if a rule needs them.
    pub fn build(opts: &SoftwareOptions) -> Snapshot {
        let rules = Rules::compile(opts);
        let lookups = Lookups {
            packages: rules.needs_package.then(|| PackageIndex::load(std::path::Path::new(DPKG_INFO))),
            catalogue: rules.needs_category.then(Catalogue::load),
        };
        Snapshot { rules, lookups }
    }
}

impl Snapshot {
    /// Decide one exec of the file at `path` by employee `uid`; also returns
    /// the owning package when the lookups know it (for the report).
    pub fn decide(
        &self,
        path: &str,
        sha256: Option<&str>,
        owner_uid: u32,
        uid: u32,
        approved_parent: bool,
    ) -> (rules::Verdict, Option<String>) {
        let user = crate::platform::users::name_of(uid).unwrap_or_else(|| uid.to_string());
        let (weekday, minute) = crate::host::local_time(candor_proto::now_ms());
        let mut s = rules::Subject {
            path,
            sha256,
            owner_uid,
            user: Some(&user),
            approved_parent,
            weekday,
            minute,
            ..Default::default()
        };
        self.lookups.describe(&mut s);
        (self.rules.decide(&s), s.package.map(str::to_string))
    }
}

/// The running threads of one enforcement period.
pub struct Running {
    pub shared: Arc<Shared>,
    pub mode: &'static str,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Start enforcing `opts`; `out` receives records and notifications.
    pub fn start(
        opts: &SoftwareOptions,
        mechanism: SoftwareMechanism,
        out: tmpsc::Sender<Out>,
    ) -> std::io::Result<Running> {
        let shared =
            Arc::new(Shared { snapshot: Mutex::new(Arc::new(Snapshot::build(opts))), stats: Stats::default() });
        let stop = Arc::new(AtomicBool::new(false));
        let (jobs_tx, jobs_rx) = mpsc::channel();
        let fan = match mechanism {
            SoftwareMechanism::Kill => None,
            SoftwareMechanism::Auto => Fanotify::open()
                .map_err(|e| tracing::warn!(error = %e, "fanotify unavailable; software control kills after start"))
                .ok(),
            SoftwareMechanism::Fanotify => Some(Fanotify::open()?),
        };
        let mut threads = Vec::new();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| std::thread::Builder::new().name(name.into()).spawn(f);
        let mode = if let Some(fan) = fan {
            let marked = enforcer::mark_all(&fan);
            if marked == 0 {
                return Err(std::io::Error::other("no filesystem could be marked for exec permission events"));
            }
            let (hashed_tx, hashed_rx) = mpsc::channel();
            let wake = enforcer::eventfd()?;
            let wake2 = wake.try_clone()?;
            let w = Worker::new(jobs_rx, Some((hashed_tx, wake2)), out);
            threads.push(spawn("software-worker", Box::new(move || w.run()))?);
            let e = Enforcer::new(fan, shared.clone(), jobs_tx.clone(), hashed_rx, wake);
            let s = stop.clone();
            threads.push(spawn("software-enforce", Box::new(move || e.run(s)))?);
            tracing::info!(filesystems = marked, "software control enforcing with fanotify");
            "fanotify"
        } else {
            let w = Worker::new(jobs_rx, None, out);
            threads.push(spawn("software-worker", Box::new(move || w.run()))?);
            "kill"
        };
        if mode == "kill" {
            // Without fanotify, the process connector reports every exec after the fact.
            let conn = Connector::open()?;
            let a =
                after_exec::AfterExec::new(shared.clone(), jobs_tx, true, crate::platform::procinfo::MAX_HASH_BYTES);
            let s = stop.clone();
            threads.push(spawn("software-after-exec", Box::new(move || a.run(conn, s)))?);
        }
        Ok(Running { shared, mode, stop, threads })
    }

    /// Swap in new rules. Compiled right here, not on a blocking thread: the
    /// heartbeat that reports the policy applied runs on this runtime too, and
    /// must not overtake the gate (loading a package index takes ~0.1 s, once
    /// per policy change, only when a rule names a package).
    pub fn update(&self, opts: &SoftwareOptions) {
        let snap = Arc::new(Snapshot::build(opts));
        if let Ok(mut s) = self.shared.snapshot.lock() {
            *s = snap;
        }
    }

    /// Swap in new rules compiled off the runtime (dpkg's lists changed: no
    /// policy is being reported, so nothing waits for it).
    pub async fn refresh(&self, opts: &SoftwareOptions) {
        let o = opts.clone();
        let Ok(snap) = tokio::task::spawn_blocking(move || Snapshot::build(&o)).await else { return };
        if let Ok(mut s) = self.shared.snapshot.lock() {
            *s = Arc::new(snap);
        }
    }

    /// Stop the threads; the kernel allows whatever was still waiting.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn system_record(ts_ms: i64, payload: &candor_proto::Payload) -> Record {
    Record { category: Category::System, ts_ms, duration_ms: None, payload: payload.to_json(), checkpoint: None }
}

fn wanted(p: &EffectivePolicy) -> Option<SoftwareOptions> {
    // A personal device is not the company's to control.
    (!p.personal && p.doc.software.active()).then(|| p.doc.software.clone())
}

/// Enforce while the policy asks for it; record what happens.
pub async fn supervise(
    recorder: Recorder,
    mut policy: watch::Receiver<Arc<EffectivePolicy>>,
    config: SoftwareConfig,
    notices: Notices,
    agent_stop: Stop,
) {
    loop {
        tokio::select! {
            r = policy.wait_for(|p| wanted(p).is_some()) => if r.is_err() { return },
            _ = agent_stop.wait() => return,
        }
        let Some(mut opts) = wanted(&policy.borrow()) else { continue };
        let (out_tx, mut out_rx) = tmpsc::channel::<Out>(4096);
        let mechanism = config.mechanism;
        let started = {
            let (o, t) = (opts.clone(), out_tx.clone());
            tokio::task::spawn_blocking(move || Running::start(&o, mechanism, t)).await
        };
        let running = match started {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "software control cannot start");
                notices.set("software_control", format!("software control is not enforced: {e}"));
                tokio::time::sleep(Duration::from_secs(30)).await;
                continue;
            }
            Err(e) => return tracing::error!(error = %e, "software control start failed"),
        };
        if running.mode == "kill" {
            let why = if mechanism == SoftwareMechanism::Kill { "configured" } else { "fanotify is unavailable" };
            notices.set(
                "software_control",
                format!(
                    "software control in the weaker mode ({why}): blocked programs are killed right after they start"
                ),
            );
        } else {
            notices.clear("software_control");
        }
        let mut dpkg = dpkg_log::DpkgLog::open(config.dpkg_log.clone());
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        let mut dpkg_info = std::fs::metadata(DPKG_INFO).and_then(|m| m.modified()).ok();
        let stopping = loop {
            tokio::select! {
                o = out_rx.recv() => match o {
                    Some(Out::Record { ts_ms, payload }) => {
                        if !recorder.record(system_record(ts_ms, &payload)).await { break true }
                    }
                    Some(Out::Notify { uid, bus, program, rule }) => notify::notify(uid, &bus, &program, &rule),
                    None => break false,
                },
                _ = tick.tick() => {
                    for payload in dpkg.poll() {
                        recorder.record(system_record(candor_proto::now_ms(), &payload)).await;
                    }
                    // Packages changed: package rules need the new file lists.
                    let now = std::fs::metadata(DPKG_INFO).and_then(|m| m.modified()).ok();
                    if now != dpkg_info && opts.rules.iter().any(|r| r.package.is_some()) {
                        dpkg_info = now;
                        running.refresh(&opts).await;
                    }
                },
                c = policy.changed() => {
                    if c.is_err() { break true }
                    let next = wanted(&policy.borrow());
                    match next {
                        Some(o) if o == opts => {}
                        Some(o) => {
                            tracing::info!("software control rules updated");
                            running.update(&o);
                            opts = o;
                        }
                        None => break false,
                    }
                },
                _ = agent_stop.wait() => break true,
            }
        };
        drop(out_tx);
        let _ = tokio::task::spawn_blocking(move || running.stop()).await;
        // What the worker folded in its last window.
        while let Ok(Out::Record { ts_ms, payload }) = out_rx.try_recv() {
            recorder.record(system_record(ts_ms, &payload)).await;
        }
        tracing::info!("software control stopped");
        if stopping {
            return;
        }
    }
}
