//! Secrets at rest: the chat-archive secret, the SDK proxy password and the
//! archive's RSA private keys are kept sealed (AES-256-GCM) under a master
//! key that lives apart from the configuration — a systemd credential
//! (`LoadCredentialEncrypted=candor-master-key`, which can be bound to the
//! TPM), a file named by `master_key_file`, or else `master.key` in the data
//! directory, created on first use. `candor secret seal` produces the sealed
//! text; config files and key files then hold only that.
//!
//! A sealed value is `candor-sealed:v1:` followed by base64 of a random
//! 96-bit nonce, the ciphertext and the 128-bit tag; any change to it fails
//! the tag check and is reported, never used.

use anyhow::{bail, Context};
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};

pub const PREFIX: &str = "candor-sealed:v1:";
/// The systemd credential name looked up in `$CREDENTIALS_DIRECTORY`.
pub const CREDENTIAL: &str = "candor-master-key";
/// Largest sealed value accepted (an RSA-4096 PEM is about 3.3 KB).
const MAX_SEALED: usize = 64 << 10;

pub struct MasterKey {
    key: LessSafeKey,
    /// Where it came from, for messages.
    pub source: PathBuf,
}

pub fn is_sealed(text: &str) -> bool {
    text.trim_start().starts_with(PREFIX)
}

impl MasterKey {
    /// The key named by `configured`, else the systemd credential, else
    /// `data_dir/master.key` (created, mode 0600, if missing).
    pub fn load_or_create(configured: Option<&Path>, data_dir: &Path) -> anyhow::Result<MasterKey> {
        if let Some(p) = configured {
            return Self::read(p);
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let p = Path::new(&dir).join(CREDENTIAL);
            if p.exists() {
                return Self::read(&p);
            }
        }
        let p = data_dir.join("master.key");
        if !p.exists() {
            std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
            let mut raw = [0u8; 32];
            SystemRandom::new().fill(&mut raw).map_err(|_| anyhow::anyhow!("no system randomness"))?;
            crate::tls::write_private(&p, format!("{}\n", hex::encode(raw)).as_bytes())?;
            tracing::info!(path = %p.display(), "created the master key for sealed secrets");
        }
        Self::read(&p)
    }

    fn read(path: &Path) -> anyhow::Result<MasterKey> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading the master key {}", path.display()))?;
        let raw = hex::decode(text.trim())
            .ok()
            .filter(|r| r.len() == 32)
            .with_context(|| format!("master key {}: expected 64 hex digits", path.display()))?;
        let key = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| anyhow::anyhow!("master key rejected"))?;
        Ok(MasterKey { key: LessSafeKey::new(key), source: path.to_path_buf() })
    }

    pub fn seal(&self, plain: &[u8]) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| anyhow::anyhow!("no system randomness"))?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(out)))
    }

    /// The plaintext of a sealed value.
    pub fn open(&self, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let body = sealed.trim().strip_prefix(PREFIX).context("not a sealed value")?;
        if body.len() > MAX_SEALED {
            bail!("sealed value longer than {MAX_SEALED} bytes");
        }
        let raw = base64::engine::general_purpose::STANDARD.decode(body).context("sealed value is not base64")?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            bail!("sealed value too short");
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let mut buf = rest.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::empty(), &mut buf).map_err(|_| {
            anyhow::anyhow!(
                "sealed value fails its check: altered, or sealed under another master key than {}",
                self.source.display()
            )
        })?;
        Ok(plain.to_vec())
    }

    /// A configured secret as text: opened if sealed; plain text is used as
    /// it is, with a warning naming `what`.
    pub fn reveal(&self, what: &str, value: &str) -> anyhow::Result<String> {
        if value.is_empty() {
            return Ok(String::new());
        }
        if !is_sealed(value) {
            tracing::warn!("{what} is stored in clear; seal it with `candor secret seal`");
            return Ok(value.to_string());
        }
        let plain = self.open(value).with_context(|| format!("opening {what}"))?;
        String::from_utf8(plain).with_context(|| format!("{what}: sealed value is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_round_trip_and_any_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::load_or_create(None, dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("master.key")).unwrap();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
        let sealed = key.seal(b"archive-secret").unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("archive-secret"));
        assert_ne!(sealed, key.seal(b"archive-secret").unwrap(), "a fresh nonce each time");
        assert_eq!(key.open(&sealed).unwrap(), b"archive-secret");
        assert_eq!(key.reveal("x", &sealed).unwrap(), "archive-secret");
        assert_eq!(key.reveal("x", "plain").unwrap(), "plain");

        // The same key is found again; a flipped character or another key fails.
        let again = MasterKey::load_or_create(None, dir.path()).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"archive-secret");
        let mut bytes = sealed.clone().into_bytes();
        let i = PREFIX.len() + 20;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let err = key.open(std::str::from_utf8(&bytes).unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains("fails its check"), "{err:#}");
        let other = tempfile::tempdir().unwrap();
        let other = MasterKey::load_or_create(None, other.path()).unwrap();
        assert!(other.open(&sealed).is_err());
        for bad in ["candor-sealed:v1:", "candor-sealed:v1:!!!", "candor-sealed:v1:AAAA", "plain"] {
            assert!(key.open(bad).is_err(), "{bad}");
        }

        // A configured file must hold 64 hex digits.
        let f = dir.path().join("short.key");
        std::fs::write(&f, "abcd").unwrap();
        let err = MasterKey::load_or_create(Some(&f), dir.path()).err().unwrap();
        assert!(format!("{err:#}").contains("64 hex digits"), "{err:#}");
    }
}
