//! Who owns a process: uid from /proc, login name from the system's user
//! database (NSS via getpwuid_r, so LDAP/SSSD users resolve too), cached.

use std::collections::HashMap;
use std::sync::Mutex;

/// Real uid of `pid`, from /proc/<pid>/status.
pub fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Login name of `uid`; `None` when the user database has no entry.
pub fn name_of(uid: u32) -> Option<String> {
    static CACHE: Mutex<Option<HashMap<u32, Option<String>>>> = Mutex::new(None);
    if let Some(hit) = CACHE.lock().ok().and_then(|c| c.as_ref().and_then(|m| m.get(&uid).cloned())) {
        return hit;
    }
    let name = lookup(uid);
    if let Ok(mut c) = CACHE.lock() {
        c.get_or_insert_with(HashMap::new).insert(uid, name.clone());
    }
    name
}

/// Home directory of `uid`.
pub fn home_of(uid: u32) -> Option<std::path::PathBuf> {
    passwd(uid).map(|(_, home, _)| home)
}

/// Primary group of `uid`.
pub fn gid_of(uid: u32) -> Option<u32> {
    passwd(uid).map(|(_, _, gid)| gid)
}

fn lookup(uid: u32) -> Option<String> {
    passwd(uid).map(|(name, _, _)| name)
}

fn passwd(uid: u32) -> Option<(String, std::path::PathBuf, u32)> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: zeroed passwd is a valid out-parameter; buf outlives the call
    // and its length is passed; the result pointer is checked before use.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out);
        if rc != 0 || out.is_null() || pw.pw_name.is_null() || pw.pw_dir.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pw.pw_name).to_string_lossy().into_owned();
        let home = std::ffi::CStr::from_ptr(pw.pw_dir).to_string_lossy().into_owned();
        Some((name, home.into(), pw.pw_gid))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_and_self() {
        assert_eq!(super::name_of(0).as_deref(), Some("root"));
        assert_eq!(super::uid_of(std::process::id()), Some(unsafe { libc::getuid() }));
        assert_eq!(super::uid_of(u32::MAX), None);
    }
}
