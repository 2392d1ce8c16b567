//! Telling the employee: a freedesktop.org notification on their desktop
//! naming the program and the rule. The agent runs as root and does not
//! connect to a user's session bus itself (that bus belongs to the user);
//! it starts its own binary as a short-lived helper under the employee's
//! uid and gid, which sends the notification and exits.

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

/// Start the helper that shows the notification (rate-limited by the caller).
pub fn notify(uid: u32, bus: &str, program: &str, rule: &str) {
    // Both languages: the agent does not know the desktop's locale.
    let title = "程序已被阻止 · Program blocked";
    let body = format!(
        "“{program}” 未能启动：公司软件管控策略（{rule}）不允许运行它。\n\
         “{program}” was not started: the company's software policy ({rule}) does not allow it."
    );
    let gid = crate::platform::users::gid_of(uid).unwrap_or(uid);
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return tracing::warn!(error = %e, "cannot find the agent binary for notifications"),
    };
    // With a uid set, the standard library also drops root's supplementary groups.
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(["notify-desktop", "--title", title, "--body", &body])
        .env_clear()
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .uid(uid)
        .gid(gid)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    match cmd.spawn() {
        Ok(mut child) => {
            let program = program.to_string();
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                    Ok(Ok(s)) if s.success() => tracing::info!(uid, program, "employee notified"),
                    Ok(r) => tracing::warn!(result = ?r, "desktop notification helper failed"),
                    Err(_) => tracing::warn!("desktop notification helper timed out"),
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
