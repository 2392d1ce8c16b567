//! Lock state of a login session: logind's `LockedHint` property on
//! `org.freedesktop.login1.Session`, read once and then followed through
//! PropertiesChanged signals (screen lockers set it through logind).

use futures_util::StreamExt;
use zbus::zvariant::OwnedObjectPath;

const SERVICE: &str = "org.freedesktop.login1";

async fn connect(bus: Option<&str>) -> zbus::Result<zbus::Connection> {
    match bus {
        Some(address) => zbus::connection::Builder::address(address)?.build().await,
        None => zbus::Connection::system().await,
    }
}

/// Report the session's LockedHint, then every change, until the session or
/// the bus goes away (then the error says why; the caller logs it).
pub async fn follow_lock(bus: Option<String>, session: String, locked: impl Fn(bool)) -> zbus::Result<()> {
    let conn = connect(bus.as_deref()).await?;
    let manager = zbus::Proxy::new(&conn, SERVICE, "/org/freedesktop/login1", "org.freedesktop.login1.Manager").await?;
    let path: OwnedObjectPath = manager.call("GetSession", &(session.as_str(),)).await?;
    let proxy = zbus::Proxy::new(&conn, SERVICE, path, "org.freedesktop.login1.Session").await?;
    let mut changes = proxy.receive_property_changed::<bool>("LockedHint").await;
    locked(proxy.get_property::<bool>("LockedHint").await?);
    while let Some(change) = changes.next().await {
        let value = change.get().await?;
        tracing::debug!(session, locked = value, "lock state changed");
        locked(value);
    }
    Ok(())
}
