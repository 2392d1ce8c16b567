//! A desktop session bus for tests: a real dbus-daemon any uid may use, a
//! stand-in for the desktop's notification service that keeps what it was
//! sent and what was withdrawn, the tray protocol's real registry, and a
//! reader of the status icons' properties.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct FakeNotifications {
    pub calls: Arc<Mutex<Vec<(String, String)>>>,
    /// Ids of the notifications withdrawn (`CloseNotification`).
    pub closed: Arc<Mutex<Vec<u32>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl FakeNotifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app: String,
        _replaces: u32,
        _icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, zbus::zvariant::OwnedValue>,
        _timeout: i32,
    ) -> u32 {
        let mut c = self.calls.lock().unwrap();
        c.push((summary, body));
        c.len() as u32
    }

    fn close_notification(&self, id: u32) {
        self.closed.lock().unwrap().push(id);
    }
}

/// A session bus any uid may use (the employee's helper connects as uid 1000).
pub fn bus_daemon(dir: &Path) -> (std::process::Child, String) {
    let sock = dir.join("bus");
    let conf = dir.join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow send_destination="*"/><allow own="*"/><allow receive_sender="*"/></policy></busconfig>"#,
            sock.display()
        ),
    )
    .unwrap();
    let child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--nopidfile"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon (apt-get install dbus-daemon)");
    (child, format!("unix:path={}", sock.display()))
}

/// A session bus in `dir` with the stand-in notification service on it: the
/// daemon (kill it when done), its address, what the service receives, and
/// its connection (keep it alive while notifications are expected).
pub async fn notifications(dir: &Path) -> (std::process::Child, String, FakeNotifications, zbus::Connection) {
    let (daemon, bus) = bus_daemon(dir);
    let sock = dir.join("bus");
    let t = std::time::Instant::now();
    while !sock.exists() {
        assert!(t.elapsed() < std::time::Duration::from_secs(10), "dbus-daemon did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let notes = FakeNotifications::default();
    let conn = zbus::connection::Builder::address(bus.as_str())
        .unwrap()
        .name("org.freedesktop.Notifications")
        .unwrap()
        .serve_at("/org/freedesktop/Notifications", notes.clone())
        .unwrap()
        .build()
        .await
        .unwrap();
    (daemon, bus, notes, conn)
}

/// The tray protocol's registry on `bus`: Debian's `status-notifier-watcher`
/// (kill it when done).
pub async fn tray_host(bus: &str) -> std::process::Child {
    Command::new("status-notifier-watcher")
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("status-notifier-watcher (apt-get install haskell-status-notifier-item-utils)")
}

/// The items the tray host has registered.
pub async fn registered_icons(conn: &zbus::Connection) -> Vec<String> {
    let reply = conn
        .call_method(
            Some("org.kde.StatusNotifierWatcher"),
            "/StatusNotifierWatcher",
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.kde.StatusNotifierWatcher", "RegisteredStatusNotifierItems"),
        )
        .await;
    match reply {
        Ok(r) => Vec::<String>::try_from(r.body().deserialize::<zbus::zvariant::OwnedValue>().unwrap()).unwrap(),
        Err(_) => Vec::new(), // not up yet
    }
}

/// The bus names of the status icons on `conn`'s bus.
pub async fn status_icons(conn: &zbus::Connection) -> Vec<String> {
    let dbus = zbus::fdo::DBusProxy::new(conn).await.unwrap();
    let names = dbus.list_names().await.unwrap();
    names.into_iter().map(|n| n.to_string()).filter(|n| n.starts_with("org.kde.StatusNotifierItem-")).collect()
}

/// One property of the icon at bus name `icon`, read afresh (the protocol
/// announces changes with its own signals, so nothing may be cached).
pub async fn icon_property<T>(conn: &zbus::Connection, icon: &str, name: &str) -> T
where
    T: TryFrom<zbus::zvariant::OwnedValue>,
    T::Error: std::fmt::Debug,
{
    let reply = conn
        .call_method(
            Some(icon),
            "/StatusNotifierItem",
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.kde.StatusNotifierItem", name),
        )
        .await
        .unwrap();
    let v: zbus::zvariant::OwnedValue = reply.body().deserialize().unwrap();
    T::try_from(v).unwrap()
}

/// The icon's tooltip: its heading and text.
pub async fn icon_tooltip(conn: &zbus::Connection, icon: &str) -> (String, String) {
    let (_, _, title, text): candor_agent::tray::ToolTip = icon_property(conn, icon, "ToolTip").await;
    (title, text)
}
