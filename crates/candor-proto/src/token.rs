//! Enrollment tokens and hashing helpers.
//!
//! A token is `CANDOR1.` followed by base64url(JSON {url, ca, secret}): it
//! carries everything an agent needs to reach and trust the server (the
//! server URL and the SHA-256 fingerprint of the server's CA) plus a random
//! single-use secret. The server stores only the secret's SHA-256.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const PREFIX: &str = "CANDOR1.";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollToken {
    /// Base URL of the server, e.g. `https://10.0.0.5:8443`.
    pub url: String,
    /// Hex SHA-256 of the server CA certificate (DER).
    pub ca: String,
    /// Random secret, hex.
    pub secret: String,
}

impl EnrollToken {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    pub fn decode(s: &str) -> Result<Self, String> {
        let body =
            s.trim().strip_prefix(PREFIX).ok_or("not a Candor enrollment token (it should start with CANDOR1.)")?;
        if body.len() > 4096 {
            return Err("enrollment token is too long".into());
        }
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| "enrollment token is damaged (bad base64); copy it again")?;
        let t: EnrollToken =
            serde_json::from_slice(&json).map_err(|_| "enrollment token is damaged (bad content); copy it again")?;
        if t.ca.len() != 64 || !t.ca.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("enrollment token has no valid CA fingerprint".into());
        }
        if !t.url.starts_with("https://") {
            return Err("enrollment token's server URL must be https://".into());
        }
        Ok(t)
    }
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// First 16 hex digits of SHA-256: a compact version tag.
pub fn short_hash(data: &[u8]) -> String {
    let mut h = sha256_hex(data);
    h.truncate(16);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_and_errors() {
        let t = EnrollToken { url: "https://127.0.0.1:8443".into(), ca: "ab".repeat(32), secret: "00ff".into() };
        assert_eq!(EnrollToken::decode(&t.encode()).unwrap(), t);
        assert!(EnrollToken::decode("hello").is_err());
        assert!(EnrollToken::decode("CANDOR1.!!!").is_err());
        let bad = EnrollToken { ca: "zz".into(), ..t };
        assert!(EnrollToken::decode(&bad.encode()).is_err());
    }
}
