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

/// Start the helper that shows `title` and `body` on `uid`'s desktop;
/// `what` names the notification in the agent's log.
pub fn show(uid: u32, bus: &str, title: &str, body: &str, what: String) {
    let gid = crate::platform::users::gid_of(uid).unwrap_or(uid);
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return tracing::warn!(error = %e, "cannot find the agent binary for notifications"),
    };
    // With a uid set, the standard library also drops root's supplementary groups.
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(["notify-desktop", "--title", title, "--body", body])
        .env_clear()
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .uid(uid)
        .gid(gid)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
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

/// The helper's work: one `org.freedesktop.Notifications.Notify` call on the
/// session bus named by `DBUS_SESSION_BUS_ADDRESS`.
pub async fn send(title: &str, body: &str) -> anyhow::Result<u32> {
    use anyhow::Context;
    let conn = zbus::Connection::session().await.context("connecting to the desktop session bus")?;
    let hints: HashMap<&str, zbus::zvariant::Value> = HashMap::from([("urgency", zbus::zvariant::Value::U8(1))]);
    let reply = conn
        .call_method(
            Some("org.freedesktop.Notifications"),
            "/org/freedesktop/Notifications",
            Some("org.freedesktop.Notifications"),
            "Notify",
            &("Candor", 0u32, "dialog-warning", title, body, Vec::<&str>::new(), hints, 10_000i32),
        )
        .await
        .context("calling org.freedesktop.Notifications.Notify")?;
    Ok(reply.body().deserialize::<u32>()?)
}
