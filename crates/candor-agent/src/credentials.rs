//! The agent's identity after enrollment, kept in `<state_dir>/credentials.json`
//! with mode 0600; and the revocation marker that keeps a revoked agent down.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub server_url: String,
    pub ca_fingerprint: String,
    pub agent_id: u64,
    pub secret: String,
}

impl Credentials {
    pub fn bearer(&self) -> String {
        format!("Bearer {}.{}", self.agent_id, self.secret)
    }

    pub fn load(state_dir: &Path) -> anyhow::Result<Credentials> {
        let path = state_dir.join("credentials.json");
        let data = std::fs::read(&path)
            .with_context(|| format!("reading {} (enroll first: candor agent enroll TOKEN)", path.display()))?;
        serde_json::from_slice(&data).with_context(|| format!("{} is damaged; enroll again", path.display()))
    }

    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        let data = serde_json::to_vec_pretty(self)?;
        write_atomic_private(&state_dir.join("credentials.json"), &data)
    }
}

/// Write via a temporary file and rename, mode 0600, synced.
pub fn write_atomic_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

pub fn revoked_reason(state_dir: &Path) -> Option<String> {
    std::fs::read_to_string(state_dir.join("revoked")).ok()
}

pub fn mark_revoked(state_dir: &Path, reason: &str) {
    if let Err(e) = write_atomic_private(&state_dir.join("revoked"), reason.as_bytes()) {
        tracing::error!(error = %e, "could not record revocation");
    }
}
