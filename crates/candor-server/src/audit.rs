//! The access log's hash chain: each entry's hash covers the previous entry's
//! hash and its own fields, so editing or deleting a stored row breaks every
//! later link.

use candor_proto::token::sha256_hex;

pub fn chain_hash(prev: &str, ts_ms: i64, actor: &str, action: &str, target: &str) -> String {
    // Length-prefixed fields so that no two different rows hash the same.
    let mut buf = Vec::new();
    for field in [prev, &ts_ms.to_string(), actor, action, target] {
        buf.extend_from_slice(&(field.len() as u64).to_le_bytes());
        buf.extend_from_slice(field.as_bytes());
    }
    sha256_hex(&buf)
}

/// Check a chain given oldest-first; returns the id of the first broken entry.
pub fn first_broken(entries: &[crate::store::AccessEntry]) -> Option<u64> {
    let mut prev = String::new();
    for e in entries {
        if e.prev_hash != prev || chain_hash(&e.prev_hash, e.ts_ms, &e.actor, &e.action, &e.target) != e.hash {
            return Some(e.id);
        }
        prev = e.hash.clone();
    }
    None
}
