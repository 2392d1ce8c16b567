//! Graphical sessions as systemd-logind records them in
//! `/run/systemd/sessions/<id>` (the files sd-login reads), and each one's
//! X authority. The agent runs as root: a cookie file is read only if it is
//! a regular file owned by the session's user, so a user cannot make root
//! read (and send to their own X server) another file.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub const DEFAULT_DIR: &str = "/run/systemd/sessions";
const MAX_FILE: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphicalSession {
    pub id: String,
    pub uid: u32,
    pub user: String,
    pub display: String,
    pub leader: Option<u32>,
}

/// An X11 session in the foreground of its seat (`ACTIVE=1`), not closing.
pub fn parse(id: &str, text: &str) -> Option<GraphicalSession> {
    let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)?.strip_prefix('='));
    if get("TYPE")? != "x11" || get("ACTIVE") != Some("1") || get("STATE") == Some("closing") {
        return None;
    }
    let display = get("DISPLAY").filter(|d| d.starts_with(':') && d.len() <= 16)?;
    Some(GraphicalSession {
        id: id.chars().take(64).collect(),
        uid: get("UID")?.parse().ok()?,
        user: get("USER")?.chars().take(64).collect(),
        display: display.to_string(),
        leader: get("LEADER").and_then(|l| l.parse().ok()),
    })
}

/// Active X11 sessions; `None` when there is no logind session directory at all.
pub fn list(dir: &Path) -> Option<Vec<GraphicalSession>> {
    let rd = std::fs::read_dir(dir).ok()?;
    let mut out: Vec<GraphicalSession> = rd
        .flatten()
        .take(1024)
        .filter_map(|e| {
            let id = e.file_name().to_str()?.to_string();
            if id.starts_with('.') || e.metadata().ok()?.len() > MAX_FILE {
                return None;
            }
            parse(&id, &std::fs::read_to_string(e.path()).ok()?)
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Some(out)
}

/// Read `path` only if it is a small regular file owned by `uid`.
pub fn read_owned(path: &Path, uid: u32) -> Option<Vec<u8>> {
    let f = std::fs::File::open(path).ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() || m.uid() != uid || m.len() > MAX_FILE {
        tracing::debug!(path = %path.display(), "not using an X authority file not owned by the session's user");
        return None;
    }
    let mut buf = Vec::new();
    f.take(MAX_FILE).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// A variable of the session leader's environment (bounded: environ is at
/// most a few pages, and only the named variable is kept).
pub fn leader_env(s: &GraphicalSession, name: &str) -> Option<String> {
    let env = std::fs::read(format!("/proc/{}/environ", s.leader?)).ok()?;
    let prefix = format!("{name}=");
    let v = env.split(|b| *b == 0).find_map(|kv| kv.strip_prefix(prefix.as_bytes()))?;
    (v.len() <= 4096).then(|| String::from_utf8_lossy(v).into_owned())
}

/// Where the session's Xauthority may be: the session leader's XAUTHORITY,
/// the display manager's per-user file, the user's home.
fn candidates(s: &GraphicalSession) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(v) = leader_env(s, "XAUTHORITY") {
        out.push(PathBuf::from(v));
    }
    out.push(PathBuf::from(format!("/run/user/{}/gdm/Xauthority", s.uid)));
    if let Some(home) = super::users::home_of(s.uid) {
        out.push(home.join(".Xauthority"));
    }
    out
}

/// The cookie for the session's display, if one of its files has it.
pub fn cookie(s: &GraphicalSession, hostname: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let number: u16 = s.display.trim_start_matches(':').split('.').next()?.parse().ok()?;
    candidates(s).iter().find_map(|p| super::xauth::cookie(&read_owned(p, s.uid)?, number, hostname))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_logind_session_files() {
        let text = "# This is private data. Do not parse.\nUID=1000\nUSER=zhang\nACTIVE=1\nIS_DISPLAY=1\nSTATE=active\nREMOTE=0\nTYPE=x11\nCLASS=user\nSEAT=seat0\nDISPLAY=:0\nLEADER=1234\n";
        let s = parse("2", text).unwrap();
        assert_eq!((s.uid, s.user.as_str(), s.display.as_str(), s.leader), (1000, "zhang", ":0", Some(1234)));
        assert!(parse("3", &text.replace("TYPE=x11", "TYPE=tty")).is_none());
        assert!(parse("4", &text.replace("ACTIVE=1", "ACTIVE=0")).is_none(), "a background session");
        assert!(parse("5", &text.replace("DISPLAY=:0", "DISPLAY=/etc/passwd")).is_none());
    }

    #[test]
    fn authority_files_must_belong_to_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("xauth");
        std::fs::write(&p, b"x").unwrap();
        let me = unsafe { libc::geteuid() };
        assert_eq!(read_owned(&p, me).as_deref(), Some(&b"x"[..]));
        assert_eq!(read_owned(&p, me + 1), None, "someone else's file");
        assert_eq!(read_owned(dir.path(), me), None, "not a regular file");
    }
}
