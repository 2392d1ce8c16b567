//! What /proc says about a process, and facts about its executable: SHA-256
//! (cached by device, inode, mtime and size, so a binary run a thousand times
//! is hashed once) and the Debian package that owns it (cached by path).
//! A process may exit while we read it: every field is optional.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;

/// Files larger than this are not hashed (reported without a hash; hash rules cannot match them).
pub const MAX_HASH_BYTES: u64 = 1 << 30;
/// Cache entries; beyond this the cache starts over (simple and bounded).
const CACHE_ENTRIES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub exe: Option<String>,
    /// The kernel's short name (also readable for a process that just exited).
    pub comm: Option<String>,
    pub ppid: u32,
    pub uid: u32,
    /// Start time, UTC ms (from /proc/<pid>/stat and the boot time).
    pub start_ms: Option<i64>,
}

/// Read /proc/<pid>: `None` when the process is already gone.
pub fn read(pid: u32) -> Option<ProcInfo> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok().map(|p| p.to_string_lossy().into_owned());
    let comm = status.lines().find_map(|l| l.strip_prefix("Name:")).map(|n| n.trim().chars().take(64).collect());
    Some(ProcInfo { pid, exe, comm, ppid: field("PPid:")?, uid: field("Uid:")?, start_ms: None })
}

/// [`read`] plus the start time (one more file), for the /proc scan which
/// learns of a process only some time after it started.
pub fn read_with_start(pid: u32) -> Option<ProcInfo> {
    read(pid).map(|i| ProcInfo { start_ms: start_ms(pid), ..i })
}

fn start_ms(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(boot_ms()? + (ticks * 1000 / hz) as i64)
}

fn boot_ms() -> Option<i64> {
    static BOOT: std::sync::OnceLock<Option<i64>> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse::<i64>().ok()).map(|s| s * 1000)
    })
}

/// The command line, NUL-separated in /proc; bounded.
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let mut raw = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/cmdline")).ok()?.take(16 * 1024).read_to_end(&mut raw).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .take(256)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then_some(args)
}

/// SHA-256 of a whole open file, read with pread (the descriptor's offset is
/// left alone: it may be shared, e.g. with the kernel for an exec); `None`
/// above [`MAX_HASH_BYTES`] or on a read error.
pub fn sha256_of(fd: std::os::fd::BorrowedFd, size: u64) -> Option<String> {
    if size > MAX_HASH_BYTES {
        return None;
    }
    let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut off = 0u64;
    loop {
        match std::os::unix::fs::FileExt::read_at(&file, &mut buf, off) {
            Ok(0) => return Some(hex::encode(hasher.finalize())),
            Ok(n) => {
                hasher.update(&buf[..n]);
                off += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Hashes and package owners, cached.
#[derive(Default)]
pub struct ExeFacts {
    hashes: HashMap<(u64, u64, i64, u64), Option<String>>,
    packages: HashMap<String, Option<String>>,
    pub hashed: u64,
    pub hash_hits: u64,
}

impl ExeFacts {
    /// SHA-256 of the file the process runs, opened through /proc/<pid>/exe so
    /// that it is the very inode even if the path was replaced since.
    pub fn sha256(&mut self, pid: u32) -> Option<String> {
        let f = std::fs::File::open(format!("/proc/{pid}/exe")).ok()?;
        let m = f.metadata().ok()?;
        let key = (m.dev(), m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.size());
        if let Some(h) = self.hashes.get(&key) {
            self.hash_hits += 1;
            return h.clone();
        }
        let h = sha256_of(std::os::fd::AsFd::as_fd(&f), m.size());
        self.hashed += 1;
        if self.hashes.len() >= CACHE_ENTRIES {
            self.hashes.clear();
        }
        self.hashes.insert(key, h.clone());
        h
    }

    /// The Debian package that ships `path`, from dpkg's file lists (which
    /// predate the /usr merge, so `/usr/bin/x` is also looked up as `/bin/x`).
    pub fn package(&mut self, path: &str) -> Option<String> {
        if let Some(p) = self.packages.get(path) {
            return p.clone();
        }
        let found = dpkg_owner(std::path::Path::new("/var/lib/dpkg/info"), path);
        if self.packages.len() >= CACHE_ENTRIES {
            self.packages.clear();
        }
        self.packages.insert(path.to_string(), found.clone());
        found
    }
}

pub fn dpkg_owner(info_dir: &std::path::Path, path: &str) -> Option<String> {
    let mut wanted = vec![path.to_string()];
    if let Some(rest) = path.strip_prefix("/usr") {
        if ["/bin/", "/sbin/", "/lib/"].iter().any(|p| rest.starts_with(p)) {
            wanted.push(rest.to_string());
        }
    }
    let rd = std::fs::read_dir(info_dir).ok()?;
    for entry in rd.flatten() {
        let p = entry.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".list")) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&p) else { continue };
        if text.lines().any(|l| wanted.iter().any(|w| w == l)) {
            // Multi-arch packages are listed as name:arch.
            return Some(name.split(':').next().unwrap_or(name).to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_itself_and_hashes_once() {
        let me = read_with_start(std::process::id()).unwrap();
        assert_eq!(
            me.exe.as_deref(),
            std::env::current_exe().ok().map(|p| p.to_string_lossy().into_owned()).as_deref()
        );
        assert!(me.start_ms.unwrap() <= candor_proto::now_ms());
        assert!(candor_proto::now_ms() - me.start_ms.unwrap() < 3_600_000);
        let mut facts = ExeFacts::default();
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let expected = hex::encode(Sha256::digest(&bytes));
        assert_eq!(facts.sha256(std::process::id()).as_deref(), Some(expected.as_str()));
        assert_eq!(facts.sha256(std::process::id()).as_deref(), Some(expected.as_str()));
        assert_eq!((facts.hashed, facts.hash_hits), (1, 1));
        assert_eq!(read(u32::MAX), None);
        assert!(!cmdline(std::process::id()).unwrap().is_empty());
    }

    #[test]
    fn dpkg_owner_from_lists() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("coreutils.list"), "/.\n/bin\n/bin/sleep\n").unwrap();
        std::fs::write(dir.path().join("libfoo1:amd64.list"), "/usr/lib/x86_64-linux-gnu/libfoo.so.1\n").unwrap();
        assert_eq!(dpkg_owner(dir.path(), "/usr/bin/sleep").as_deref(), Some("coreutils"));
        assert_eq!(dpkg_owner(dir.path(), "/usr/lib/x86_64-linux-gnu/libfoo.so.1").as_deref(), Some("libfoo1"));
        assert_eq!(dpkg_owner(dir.path(), "/tmp/evil"), None);
    }
}
