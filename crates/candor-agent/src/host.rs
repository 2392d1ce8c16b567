//! Facts about this machine for enrollment and heartbeats, and its local time.

pub fn hostname() -> String {
    hostname_raw().unwrap_or_else(|| "unknown".into())
}

fn hostname_raw() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// PRETTY_NAME from os-release, else "Linux".
pub fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| "Linux".into())
}

/// Login names with a user session, from utmp.
pub fn logged_in_users() -> Vec<String> {
    let mut users = Vec::new();
    // SAFETY: the utmpx iteration functions are used single-threadedly here
    // (heartbeats run one at a time) and each record is copied out at once.
    unsafe {
        libc::setutxent();
        loop {
            let rec = libc::getutxent();
            if rec.is_null() {
                break;
            }
            if (*rec).ut_type == libc::USER_PROCESS {
                let raw = &(*rec).ut_user;
                let bytes: Vec<u8> = raw.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
                if let Ok(u) = String::from_utf8(bytes) {
                    if !u.is_empty() && !users.contains(&u) {
                        users.push(u);
                    }
                }
            }
        }
        libc::endutxent();
    }
    users.sort();
    users
}

pub fn addresses() -> Vec<String> {
    if_addrs::get_if_addrs()
        .map(|v| v.into_iter().filter(|i| !i.is_loopback()).map(|i| i.ip().to_string()).collect())
        .unwrap_or_default()
}

/// An error with its causes, for messages a person reads.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Local weekday (0 = Monday) and minute of the day at `ts_ms` (UTC ms), in
/// the machine's time zone (schedules in policies are in the endpoint's time).
pub fn local_time(ts_ms: i64) -> (u32, u32) {
    // SAFETY: localtime_r into a zeroed struct we own.
    unsafe {
        let t: libc::time_t = ts_ms.div_euclid(1000) as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return (0, 0);
        }
        (((tm.tm_wday + 6) % 7) as u32, (tm.tm_hour * 60 + tm.tm_min) as u32)
    }
}
