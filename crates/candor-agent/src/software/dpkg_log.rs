//! Installs, upgrades and removals, from dpkg's log (`/var/log/dpkg.log`):
//! whatever front end was used (apt, a GUI store, `dpkg -i`), dpkg writes one
//! line per package action. Followed from its end when software control
//! starts; a rotated or truncated log is read again from its start.

use candor_proto::Payload;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

pub const DEFAULT_PATH: &str = "/var/log/dpkg.log";
/// Read at most this much per poll (a bulk upgrade writes a lot).
const MAX_READ: u64 = 1 << 20;

/// One line, e.g. `2026-11-29 21:00:00 install foo:amd64 <none> 1.0`.
pub fn parse_line(line: &str) -> Option<Payload> {
    let mut it = line.split_ascii_whitespace();
    let (_date, _time, action, pkg, old, new) =
        (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    let version = match action {
        "install" | "upgrade" => new,
        "remove" | "purge" => old,
        _ => return None,
    };
    let package = pkg.split(':').next().filter(|p| !p.is_empty() && p.len() <= 128)?;
    Some(Payload::PackageChange {
        action: action.into(),
        package: package.into(),
        version: (version != "<none>").then(|| version.chars().take(128).collect()),
    })
}

pub struct DpkgLog {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl DpkgLog {
    /// Start at the current end: history before the agent watched is not news.
    pub fn open(path: PathBuf) -> DpkgLog {
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        DpkgLog { path, offset, partial: Vec::new() }
    }

    /// New package actions since the last call.
    pub fn poll(&mut self) -> Vec<Payload> {
        let Ok(mut f) = std::fs::File::open(&self.path) else { return Vec::new() };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        let n = f.take(MAX_READ).read_to_end(&mut buf).unwrap_or(0);
        self.offset += n as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            if self.partial.len() > 64 * 1024 {
                self.partial.clear(); // a "line" this long is not dpkg's
            }
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&complete).lines().filter_map(parse_line).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_follows() {
        let p = |l| parse_line(l);
        assert_eq!(
            p("2026-11-29 21:00:00 install foo:amd64 <none> 1.0-1"),
            Some(Payload::PackageChange {
                action: "install".into(),
                package: "foo".into(),
                version: Some("1.0-1".into())
            })
        );
        assert!(matches!(p("2026-11-29 21:00:01 remove foo:amd64 1.0-1 <none>"),
            Some(Payload::PackageChange { ref version, .. }) if version.as_deref() == Some("1.0-1")));
        assert_eq!(p("2026-11-29 21:00:01 status installed foo:amd64 1.0-1"), None);
        assert_eq!(p("2026-11-29 21:00:01 startup packages configure"), None);
        assert_eq!(p("garbage"), None);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dpkg.log");
        std::fs::write(&path, "2026-11-29 20:00:00 install old:all <none> 1\n").unwrap();
        let mut log = DpkgLog::open(path.clone());
        assert!(log.poll().is_empty(), "history is skipped");
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, b"2026-11-29 21:00:00 install a:all <none> 2\n2026-11-29 21:00:00 rem")
            .unwrap();
        assert_eq!(log.poll().len(), 1, "the half-written line waits");
        std::io::Write::write_all(&mut f, b"ove a:all 2 <none>\n").unwrap();
        assert_eq!(log.poll().len(), 1);
        std::fs::write(&path, "2026-11-29 22:00:00 purge b:all 3 <none>\n").unwrap();
        assert_eq!(log.poll().len(), 1, "rotated: read from the start");
    }
}
