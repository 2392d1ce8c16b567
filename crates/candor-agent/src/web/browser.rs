//! Pages reported by the browser extension (`crates/candor-agent/extension`):
//! the browser starts the native host (`candor agent web-host`, run as the
//! user), which passes each message to the agent's Unix socket; the agent
//! keeps the domain and the time the page was in front (as the event's
//! duration), and the URL, title and search words only when
//! the policy asks for full URLs. Every message is hostile input: bounded,
//! parsed, checked.

use super::crx;
use crate::gate::Recorder;
use crate::spool::Record;
use candor_proto::{now_ms, Category, Payload};
use serde::Deserialize;
use std::io::{Read, Write};
use std::path::Path;
use tokio::io::AsyncBufReadExt;
use tokio::net::UnixListener;

/// Name of the native messaging host the extension connects to.
pub const HOST_NAME: &str = "com.candor.agent";
/// Largest message accepted (Chrome allows 1 MB to the host; a page report is small).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Longest time one report may claim (the extension reports at least every minute).
const MAX_DWELL_MS: u64 = 3_600_000;

#[derive(Debug, Deserialize)]
struct PageReport {
    url: String,
    #[serde(default)]
    title: String,
    ts_ms: i64,
    dwell_ms: u64,
    #[serde(default)]
    search: Option<String>,
}

fn clip(s: &str, chars: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(chars).collect()
}

/// A report as the event to record, or why it is refused.
pub fn to_payload(line: &[u8], full_urls: bool, now: i64) -> Result<(i64, u64, Payload), String> {
    let r: PageReport = serde_json::from_slice(line).map_err(|e| format!("bad report: {e}"))?;
    let url = reqwest::Url::parse(&r.url).map_err(|e| format!("bad url: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("not a web page".into());
    }
    let domain = candor_webrules::normalise(url.host_str().unwrap_or_default()).map_err(|e| e.to_string())?;
    let dwell = r.dwell_ms.min(MAX_DWELL_MS);
    // The browser's clock is the machine's; a report from the future or the far past is clamped.
    let ts = r.ts_ms.clamp(now - MAX_DWELL_MS as i64 - 60_000, now);
    Ok((
        ts,
        dwell,
        Payload::WebVisit {
            domain,
            source: "browser".into(),
            blocked: false,
            rule: None,
            count: 1,
            url: full_urls.then(|| clip(url.as_str(), 2048)),
            title: full_urls.then(|| clip(&r.title, 512)).filter(|t| !t.is_empty()),
            search: if full_urls { r.search.map(|s| clip(&s, 256)).filter(|s| !s.is_empty()) } else { None },
            bytes_out: None,
            bytes_in: None,
        },
    ))
}

/// The extension, shipped inside the agent.
const EXTENSION_FILES: [(&str, &str); 2] = [
    ("manifest.json", include_str!("../../extension/manifest.json")),
    ("background.js", include_str!("../../extension/background.js")),
];
/// The policy file the agent writes into each browser's managed policy folder.
const POLICY_FILE: &str = "candor.json";

/// Write the extension as a package signed with this computer's key
/// (`state_dir/extension-key.pem`) and its update manifest into
/// `extension_dir`, and a managed policy that makes Chromium and Chrome
/// install it for every user. Returns the extension's id. The extension is
/// visible in the browser's extension list, marked as installed by the
/// company; users cannot remove it while the policy stands.
pub fn install_extension(c: &crate::config::WebConfig, state_dir: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let key = crx::signing_key(&state_dir.join("extension-key.pem"))?;
    let id = crx::extension_id(&crx::public_key(&key)?);
    std::fs::create_dir_all(&c.extension_dir).with_context(|| format!("creating {}", c.extension_dir.display()))?;
    let file_url = |name: &str| {
        reqwest::Url::from_file_path(c.extension_dir.join(name))
            .map_err(|()| anyhow::anyhow!("extension_dir {} is not an absolute path", c.extension_dir.display()))
    };
    let (crx_url, updates_url) = (file_url("candor.crx")?, file_url("updates.xml")?);
    // The packed manifest names the update manifest, so later versions of the agent update it.
    let mut manifest: serde_json::Value =
        serde_json::from_str(EXTENSION_FILES[0].1).context("the extension's manifest")?;
    manifest["update_url"] = updates_url.as_str().into();
    let version = manifest["version"].as_str().unwrap_or("1.0").to_string();
    let manifest = serde_json::to_vec_pretty(&manifest)?;
    let crx = crx::pack(&[("manifest.json", &manifest), ("background.js", EXTENSION_FILES[1].1.as_bytes())], &key)?;
    write_public(&c.extension_dir.join("candor.crx"), &crx)?;
    write_public(
        &c.extension_dir.join("updates.xml"),
        crx::update_manifest(&id, &version, crx_url.as_str()).as_bytes(),
    )?;
    let policy = serde_json::json!({ "ExtensionInstallForcelist": [format!("{id};{updates_url}")] });
    for dir in &c.browser_policy_dirs {
        // Only for browsers that are there (their folder, two levels up, exists).
        if dir.ancestors().nth(2).is_some_and(|p| p.exists()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            write_public(&dir.join(POLICY_FILE), &serde_json::to_vec_pretty(&policy)?)?;
        }
    }
    Ok(id)
}

/// Write via a temporary file and rename, readable by everyone (the browser runs as the user).
fn write_public(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Withdraw `install_extension`'s policy: the browsers then uninstall the extension.
pub fn remove_extension(c: &crate::config::WebConfig) {
    for dir in &c.browser_policy_dirs {
        let _ = std::fs::remove_file(dir.join(POLICY_FILE));
    }
}

/// Write the native messaging manifest into each directory (skipping those
/// whose browser is not installed) and the launcher script it names.
pub fn install_host(
    launcher: &Path,
    socket: &Path,
    dirs: &[std::path::PathBuf],
    extension_id: &str,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    let exe = std::env::current_exe().context("the agent's own path")?;
    if let Some(parent) = launcher.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let script = format!(
        "#!/bin/sh\n# Written by the Candor agent: the native messaging host of its browser extension.\nexec '{}' agent web-host --socket '{}' \"$@\"\n",
        exe.display(),
        socket.display()
    );
    std::fs::write(launcher, script).with_context(|| format!("writing {}", launcher.display()))?;
    std::fs::set_permissions(launcher, std::fs::Permissions::from_mode(0o755))?;
    let manifest = serde_json::json!({
        "name": HOST_NAME,
        "description": "Candor agent (reports the active tab's site to the agent on this computer)",
        "path": launcher,
        "type": "stdio",
        "allowed_origins": [format!("chrome-extension://{extension_id}/")],
    });
    for dir in dirs {
        // Only for browsers that are there (their configuration folder's parent exists).
        if dir.parent().is_some_and(|p| p.exists()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(dir.join(format!("{HOST_NAME}.json")), serde_json::to_vec_pretty(&manifest)?)
                .with_context(|| format!("writing the native host manifest in {}", dir.display()))?;
        }
    }
    Ok(())
}

/// Accept reports on `socket` until the task is dropped.
pub async fn serve(
    socket: &Path,
    recorder: Recorder,
    full_urls: impl Fn() -> bool + Send + Sync + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent)?;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))?;
    }
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))?;
    let full_urls = std::sync::Arc::new(full_urls);
    loop {
        let (conn, _) = listener.accept().await?;
        let (recorder, full_urls) = (recorder.clone(), full_urls.clone());
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(conn);
            let mut line = Vec::new();
            loop {
                line.clear();
                let mut limited = tokio::io::AsyncReadExt::take(&mut lines, MAX_MESSAGE as u64 + 1);
                match limited.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) if n > MAX_MESSAGE => return,
                    Ok(_) => {}
                }
                match to_payload(line.trim_ascii(), full_urls(), now_ms()) {
                    Ok((ts_ms, dwell, payload)) => {
                        let r = Record {
                            category: Category::Web,
                            ts_ms,
                            duration_ms: Some(dwell),
                            payload: payload.to_json(),
                            checkpoint: None,
                        };
                        if !recorder.record(r).await {
                            return;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "browser report refused"),
                }
            }
        });
    }
}

/// The native host: read Chrome's length-prefixed messages from stdin and
/// pass each, as one JSON line, to the agent's socket. Runs as the user.
pub fn native_host(socket: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut agent = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("connecting to the Candor agent at {}", socket.display()))?;
    let mut stdin = std::io::stdin().lock();
    let mut len = [0u8; 4];
    loop {
        if stdin.read_exact(&mut len).is_err() {
            return Ok(()); // the browser closed the port
        }
        let n = u32::from_ne_bytes(len) as usize;
        if n > MAX_MESSAGE {
            anyhow::bail!("message of {n} bytes from the browser is too large");
        }
        let mut msg = vec![0u8; n];
        stdin.read_exact(&mut msg)?;
        let value: serde_json::Value = serde_json::from_slice(&msg).context("message from the browser is not JSON")?;
        let mut line = serde_json::to_vec(&value)?;
        line.push(b'\n');
        agent.write_all(&line).context("writing to the agent")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_keep_the_domain_unless_full_urls() {
        let now = 1_800_000_000_000;
        let line = r#"{"url":"https://WWW.Baidu.com/s?wd=%E6%8A%A5%E4%BB%B7","title":"t\u0007itle","ts_ms":1800000000500,"dwell_ms":99999999,"search":"报价"}"#.as_bytes();
        let (ts, dwell, p) = to_payload(line, false, now).unwrap();
        assert_eq!((ts, dwell), (now, MAX_DWELL_MS), "clamped");
        let Payload::WebVisit { domain, url, title, search, .. } = p else { panic!() };
        assert_eq!((domain.as_str(), url, title, search), ("www.baidu.com", None, None, None));
        let (_, _, p) = to_payload(line, true, now).unwrap();
        let Payload::WebVisit { url, title, search, .. } = p else { panic!() };
        assert_eq!(title.as_deref(), Some("title"));
        assert_eq!(search.as_deref(), Some("报价"));
        assert!(url.unwrap().starts_with("https://www.baidu.com/s?wd="));
        for bad in [
            &b"{}"[..],
            br#"{"url":"file:///etc/passwd","ts_ms":0,"dwell_ms":1}"#,
            b"\xff",
            br#"{"url":"https://a b/","ts_ms":0,"dwell_ms":1}"#,
        ] {
            assert!(to_payload(bad, true, now).is_err());
        }
    }
}
