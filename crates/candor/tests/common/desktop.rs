//! A desktop session bus for tests: a real dbus-daemon any uid may use and a
//! stand-in for the desktop's notification service that keeps what it was
//! sent and what was withdrawn.

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
