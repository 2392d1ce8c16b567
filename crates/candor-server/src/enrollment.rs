//! Enrollment: single-use tokens in, per-agent credentials out.
//!
//! Token and agent secrets are 32 random bytes; only their SHA-256 is stored
//! (they are high-entropy, so a slow hash adds nothing but latency on every
//! agent request).

use crate::store::{Result, Store, StoreError};
use candor_proto::token::{sha256_hex, EnrollToken};
use candor_proto::{api, now_ms};

pub fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Parse `7d`, `12h`, `30m`, `45s` into milliseconds.
pub fn parse_duration_ms(s: &str) -> std::result::Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| format!("bad duration {s:?}: use e.g. 7d, 12h, 30m"))?;
    let mult = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" | "" => 1_000,
        _ => return Err(format!("bad duration unit in {s:?}: use d, h, m or s")),
    };
    if n <= 0 || n > 3650 * 86_400 {
        return Err(format!("duration {s:?} is out of range"));
    }
    Ok(n * mult)
}

/// Create a token; returns its encoded form (shown once) and its id.
pub fn create_token(
    store: &dyn Store,
    public_url: &str,
    ca_fingerprint: &str,
    department_id: Option<u64>,
    ttl_ms: i64,
) -> Result<(String, u64)> {
    let secret = random_secret();
    let id = store.create_token(&sha256_hex(secret.as_bytes()), department_id, now_ms() + ttl_ms)?;
    let token = EnrollToken { url: public_url.to_string(), ca: ca_fingerprint.to_string(), secret };
    Ok((token.encode(), id))
}

/// Exchange a token secret for an agent credential.
pub fn enroll(store: &dyn Store, req: &api::EnrollRequest) -> Result<api::EnrollResponse> {
    if req.secret.len() != 64 {
        return Err(StoreError::NotFound("enrollment token is not known to this server".into()));
    }
    let clip = |s: &str| s.chars().take(255).collect::<String>();
    let secret = random_secret();
    let agent_id = store.enroll(
        &sha256_hex(req.secret.as_bytes()),
        &sha256_hex(secret.as_bytes()),
        &clip(&req.hostname),
        &clip(&req.os),
        &clip(&req.agent_version),
        now_ms(),
    )?;
    Ok(api::EnrollResponse { agent_id, secret })
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::parse_duration_ms("7d").unwrap(), 7 * 86_400_000);
        assert_eq!(super::parse_duration_ms("30m").unwrap(), 1_800_000);
        assert!(super::parse_duration_ms("7w").is_err());
        assert!(super::parse_duration_ms("").is_err());
        assert!(super::parse_duration_ms("0d").is_err());
    }
}
