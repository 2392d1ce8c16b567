//! Desktop notifications for the people at this computer. The agent runs as
//! root and does not connect to a user's session bus itself (that bus
//! belongs to the user); it starts its own binary as a short-lived helper
//! under the user's uid and gid, which sends the notification and exits.

use std::collections::HashMap;
use std::time::Duration;

/// Where the employee's desktop bus is: the blocked program's own
/// `DBUS_SESSION_BUS_ADDRESS`, else the systemd default for that uid.
pub fn bus_address(uid: u32, from_process: Option<String>) -> Option<String> {
    from_process.or_else(|| {
        let p = format!("/run/user/{uid}/bus");
        std::path::Path::new(&p).exists().then(|| format!("unix:path={p}"))
    })
}

/// The agent's own binary with `args`, to run as `uid` on the session bus at
/// `bus` with nothing else of root's environment; output discarded.
pub fn helper(uid: u32, bus: &str, args: &[&str]) -> anyhow::Result<std::process::Command> {
    use anyhow::Context;
    use std::os::unix::process::CommandExt;
    let gid = crate::platform::users::gid_of(uid).unwrap_or(uid);
    let exe = std::env::current_exe().context("finding the agent binary")?;
    let mut cmd = std::process::Command::new(exe);
    // With a uid set, the standard library also drops root's supplementary groups.
    cmd.args(args)
        .env_clear()
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .uid(uid)
        .gid(gid)
        .stdout(std::process::Stdio::null());
    Ok(cmd)
}

/// Start the helper that shows `title` and `body` on `uid`'s desktop;
/// `what` names the notification in the agent's log.
pub fn show(uid: u32, bus: &str, title: &str, body: &str, what: String) {
    let mut cmd = match helper(uid, bus, &["notify-desktop", "--title", title, "--body", body]) {
        Ok(c) => tokio::process::Command::from(c),
        Err(e) => return tracing::warn!(error = format!("{e:#}"), "cannot start the desktop notification helper"),
    };
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    match cmd.spawn() {
        Ok(mut child) => {
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                    Ok(Ok(s)) if s.success() => tracing::info!(uid, what, "desktop notified"),
                    Ok(r) => tracing::warn!(result = ?r, what, "desktop notification helper failed"),
                    Err(_) => tracing::warn!(what, "desktop notification helper timed out"),
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot start the desktop notification helper"),
    }
}

/// A notification shown for as long as this value lives (the helper holds
/// it and withdraws it when its standard input closes).
pub struct Held {
    child: Option<std::process::Child>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            reap(child);
        }
    }
}

/// Wait, off the caller's thread, for a helper whose standard input was
/// closed to finish its work and exit; kill it if it takes longer than 10 s.
pub fn reap(mut child: std::process::Child) {
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    });
}

/// Show a notification on `uid`'s desktop until the returned value is dropped.
pub fn hold(uid: u32, bus: &str, title: &str, body: &str) -> Option<Held> {
    let child = helper(uid, bus, &["notify-desktop", "--hold", "--title", title, "--body", body])
        .and_then(|mut c| Ok(c.stdin(std::process::Stdio::piped()).spawn()?));
    match child {
        Ok(child) => Some(Held { child: Some(child) }),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "cannot start the desktop notification helper");
            None
        }
    }
}

/// The helper's work: one `org.freedesktop.Notifications.Notify` call on the
/// session bus named by `DBUS_SESSION_BUS_ADDRESS`; with `hold`, the
/// notification never expires and is withdrawn (`CloseNotification`) when
/// standard input closes — when the agent ends it, or dies.
pub async fn send(title: &str, body: &str, hold: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let conn = zbus::Connection::session().await.context("connecting to the desktop session bus")?;
    let id = notify(&conn, title, body, hold).await?;
    if hold {
        tokio::task::spawn_blocking(|| {
            use std::io::Read;
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin();
            while stdin.read(&mut sink).is_ok_and(|n| n > 0) {}
        })
        .await?;
        conn.call_method(
            Some("org.freedesktop.Notifications"),
            "/org/freedesktop/Notifications",
            Some("org.freedesktop.Notifications"),
            "CloseNotification",
            &(id,),
        )
        .await
        .context("calling org.freedesktop.Notifications.CloseNotification")?;
    }
    Ok(())
}

/// One `Notify` call on `conn`; a held notification never expires. Returns its id.
pub async fn notify(conn: &zbus::Connection, title: &str, body: &str, hold: bool) -> anyhow::Result<u32> {
    use anyhow::Context;
    let urgency = zbus::zvariant::Value::U8(if hold { 2 } else { 1 });
    let mut hints: HashMap<&str, zbus::zvariant::Value> = HashMap::from([("urgency", urgency)]);
    if hold {
        hints.insert("resident", zbus::zvariant::Value::Bool(true));
    }
    let timeout = if hold { 0i32 } else { 10_000 };
    let reply = conn
        .call_method(
            Some("org.freedesktop.Notifications"),
            "/org/freedesktop/Notifications",
            Some("org.freedesktop.Notifications"),
            "Notify",
            &("Candor", 0u32, "dialog-warning", title, body, Vec::<&str>::new(), hints, timeout),
        )
        .await
        .context("calling org.freedesktop.Notifications.Notify")?;
    Ok(reply.body().deserialize()?)
}
