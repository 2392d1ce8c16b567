//! Processes: exec and exit, enriched from /proc with the executable, its
//! SHA-256 and Debian package, parent, uid and user; command lines only when
//! the policy says so. Events come from the netlink process connector; where
//! it cannot be opened (no CAP_NET_ADMIN, a kernel without it) a /proc scan
//! takes over and a heartbeat notice says that short-lived processes may be
//! missed. Runs only while the policy and consent allow `process`.

use crate::config::{ProcessConfig, ProcessSource};
use crate::gate::Recorder;
use crate::notices::Notices;
use crate::platform::proc_connector::{Connector, ProcEvent};
use crate::platform::procinfo::{self, ExeFacts};
use crate::spool::Record;
use crate::Stop;
use candor_proto::policy::EffectivePolicy;
use candor_proto::{now_ms, Category, Payload};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Processes whose start we recorded, so an exit can name its executable
/// and run time; bounded (oldest forgotten first is not worth the cost:
/// past the bound, exits of unknown processes are simply not recorded).
const MAX_TRACKED: usize = 65_536;

struct Tracked {
    exe: Option<String>,
    start_ms: i64,
}

/// Turns kernel notifications into records, reading /proc while the process
/// is still there. Blocking: runs on its own thread.
struct Collector {
    facts: ExeFacts,
    tracked: HashMap<u32, Tracked>,
    own_pid: u32,
    source: &'static str,
}

impl Collector {
    fn start(&mut self, pid: u32, cmdline: bool, ts_ms: i64) -> Option<Record> {
        if pid == self.own_pid {
            return None;
        }
        let scan = self.source == "proc_scan";
        let info = match if scan { procinfo::read_with_start(pid) } else { procinfo::read(pid) } {
            Some(i) => i,
            // The scan only knows what it saw; the connector knows a process
            // started even if it ended before it could be read.
            None if scan => return None,
            None => procinfo::ProcInfo { pid, exe: None, comm: None, ppid: 0, uid: 0, start_ms: None },
        };
        let known = info.comm.is_some();
        // A process that is already gone keeps only its short name: recorded
        // as such, without guessing an executable or hash.
        let sha256 = info.exe.as_ref().and_then(|_| self.facts.sha256(pid));
        let package = info.exe.as_deref().and_then(|e| self.facts.package(e));
        let ts = info.start_ms.unwrap_or(ts_ms);
        if self.tracked.len() < MAX_TRACKED {
            self.tracked.insert(pid, Tracked { exe: info.exe.clone(), start_ms: ts });
        }
        Some(Record {
            category: Category::Process,
            ts_ms: ts,
            duration_ms: None,
            payload: Payload::ProcessStart {
                pid,
                ppid: known.then_some(info.ppid),
                uid: known.then_some(info.uid),
                user: if known { crate::platform::users::name_of(info.uid) } else { None },
                exe: info.exe,
                comm: info.comm,
                sha256,
                package,
                cmdline: if cmdline { procinfo::cmdline(pid) } else { None },
                source: self.source.into(),
            }
            .to_json(),
            checkpoint: None,
        })
    }

    fn exit(&mut self, pid: u32, exit_code: Option<i32>, ts_ms: i64) -> Option<Record> {
        let t = self.tracked.remove(&pid)?;
        Some(Record {
            category: Category::Process,
            ts_ms,
            duration_ms: Some((ts_ms - t.start_ms).max(0) as u64),
            payload: Payload::ProcessExit { pid, exe: t.exe, exit_code }.to_json(),
            checkpoint: None,
        })
    }
}

/// Decode the kernel's wait status into an exit code (or 128 + signal, as shells do).
fn exit_code(code: u32, signal: u32) -> i32 {
    if signal != 0 && code & 0x7f != 0 {
        128 + (code & 0x7f) as i32
    } else {
        ((code >> 8) & 0xff) as i32
    }
}

fn cmdline_allowed(policy: &watch::Receiver<Arc<EffectivePolicy>>) -> bool {
    policy.borrow().doc.process.cmdline
}

fn netlink_loop(
    conn: Connector,
    mut c: Collector,
    policy: watch::Receiver<Arc<EffectivePolicy>>,
    tx: mpsc::Sender<Record>,
    stop: Arc<AtomicBool>,
    notices: Notices,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut lost = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match conn.recv(&mut buf, Duration::from_millis(500)) {
            Ok(Some(events)) => {
                let cmdline = cmdline_allowed(&policy);
                for e in events {
                    let now = now_ms();
                    let r = match e {
                        ProcEvent::Exec { pid } => c.start(pid, cmdline, now),
                        ProcEvent::Exit { pid, exit_code: code, exit_signal } => {
                            c.exit(pid, Some(exit_code(code, exit_signal)), now)
                        }
                    };
                    if let Some(r) = r {
                        if tx.blocking_send(r).is_err() {
                            return;
                        }
                    }
                }
            }
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                lost += 1;
                notices.set(
                    "process_overflow",
                    format!("process events were lost {lost} time(s): the kernel queue overflowed"),
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "process connector failed");
                return;
            }
        }
    }
}

fn scan_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

fn scan_loop(
    mut c: Collector,
    every: Duration,
    policy: watch::Receiver<Arc<EffectivePolicy>>,
    tx: mpsc::Sender<Record>,
    stop: Arc<AtomicBool>,
) {
    // Processes running when collection starts are the baseline, not starts.
    let mut known: std::collections::HashSet<u32> = scan_pids().into_iter().collect();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(every);
        let now_pids: std::collections::HashSet<u32> = scan_pids().into_iter().collect();
        let cmdline = cmdline_allowed(&policy);
        let now = now_ms();
        let mut out: Vec<Record> = now_pids.difference(&known).filter_map(|p| c.start(*p, cmdline, now)).collect();
        out.extend(known.difference(&now_pids).filter_map(|p| c.exit(*p, None, now)));
        known = now_pids;
        for r in out {
            if tx.blocking_send(r).is_err() {
                return;
            }
        }
    }
}

/// Run the collector only while `process` is allowed.
pub async fn supervise(
    recorder: Recorder,
    mut policy: watch::Receiver<Arc<EffectivePolicy>>,
    config: ProcessConfig,
    notices: Notices,
    agent_stop: Stop,
) {
    loop {
        tokio::select! {
            r = policy.wait_for(|p| p.allows(Category::Process)) => if r.is_err() { return },
            _ = agent_stop.wait() => return,
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = mpsc::channel::<Record>(1024);
        let connector = match config.source {
            ProcessSource::ProcScan => None,
            _ => match Connector::open() {
                Ok(c) => Some(c),
                Err(e) if config.source == ProcessSource::Netlink => {
                    tracing::error!(error = %e, "the process connector is required by configuration but cannot be opened");
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "process connector unavailable");
                    None
                }
            },
        };
        let source = if connector.is_some() { "netlink" } else { "proc_scan" };
        if connector.is_some() {
            notices.clear("process_source");
        } else {
            notices.set(
                "process_source",
                "process events come from a /proc scan (netlink process connector unavailable): short-lived processes may be missed".into(),
            );
        }
        let collector =
            Collector { facts: ExeFacts::default(), tracked: HashMap::new(), own_pid: std::process::id(), source };
        let (p, s, n, every) =
            (policy.clone(), stop.clone(), notices.clone(), Duration::from_millis(config.scan_interval_ms.max(100)));
        let spawned = std::thread::Builder::new().name("process-watch".into()).spawn(move || match connector {
            Some(conn) => netlink_loop(conn, collector, p, tx, s, n),
            None => scan_loop(collector, every, p, tx, s),
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the process watcher");
            return;
        }
        tracing::info!(source, "process collection started");
        let mut changes = policy.clone();
        let stopping = loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => if !recorder.record(r).await { break true },
                    None => {
                        // The watcher gave up (logged); try again later rather than spin.
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        break false;
                    }
                },
                c = changes.changed() => if c.is_err() || !policy.borrow().allows(Category::Process) {
                    tracing::info!("process collection stopped (policy or consent)");
                    break false;
                },
                _ = agent_stop.wait() => break true,
            }
        };
        stop.store(true, Ordering::Relaxed);
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::exit_code;

    #[test]
    fn wait_status_decoding() {
        assert_eq!(exit_code(0, 0), 0);
        assert_eq!(exit_code(3 << 8, 17), 3);
        assert_eq!(exit_code(9, 9), 137, "killed by SIGKILL");
    }
}
