//! A stand-in for logind on a real D-Bus daemon: one login session whose
//! `LockedHint` the test sets, as a screen locker would, with the
//! PropertiesChanged signal the agent follows.

use super::wait_until;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct FakeManager;

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl FakeManager {
    fn get_session(&self, id: String) -> zbus::zvariant::OwnedObjectPath {
        zbus::zvariant::OwnedObjectPath::try_from(format!("/org/freedesktop/login1/session/{id}")).unwrap()
    }
}

struct FakeSession {
    locked: bool,
}

#[zbus::interface(name = "org.freedesktop.login1.Session")]
impl FakeSession {
    #[zbus(property)]
    fn locked_hint(&self) -> bool {
        self.locked
    }
}

pub struct Logind {
    /// The bus address, for the agent's `x11.logind_bus`.
    pub address: String,
    daemon: Child,
    conn: zbus::Connection,
    path: String,
}

impl Logind {
    /// A bus daemon in `dir` serving session `session` (unlocked).
    pub async fn start(dir: &Path, session: &str) -> Logind {
        let bus_path = dir.join("logind-bus");
        let address = format!("unix:path={}", bus_path.display());
        let daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", &format!("--address={address}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (apt-get install dbus-daemon)");
        wait_until(Duration::from_secs(10), "dbus-daemon listening", async || bus_path.exists()).await;
        let path = format!("/org/freedesktop/login1/session/{session}");
        let conn = zbus::connection::Builder::address(address.as_str())
            .unwrap()
            .name("org.freedesktop.login1")
            .unwrap()
            .serve_at("/org/freedesktop/login1", FakeManager)
            .unwrap()
            .serve_at(path.as_str(), FakeSession { locked: false })
            .unwrap()
            .build()
            .await
            .unwrap();
        Logind { address, daemon, conn, path }
    }

    pub async fn set_locked(&self, locked: bool) {
        let iface = self.conn.object_server().interface::<_, FakeSession>(self.path.as_str()).await.unwrap();
        iface.get_mut().await.locked = locked;
        iface.get().await.locked_hint_changed(iface.signal_emitter()).await.unwrap();
    }
}

impl Drop for Logind {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}
