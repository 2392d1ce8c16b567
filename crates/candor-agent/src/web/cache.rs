//! Answers from upstream, kept for their TTL (bounded by `max_ttl`, at most
//! `capacity` entries) and served as stored bytes with the client's ID and
//! question spelling patched in and the TTLs aged.

use super::wire::{age, layout};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Lower-case name with its trailing dot.
    pub name: Box<str>,
    pub qtype: u16,
    pub qclass: u16,
    /// The EDNS DO bit: answers with and without signatures differ.
    pub dnssec_ok: bool,
}

struct Entry {
    wire: Box<[u8]>,
    ttls: Box<[u16]>,
    question_end: usize,
    stored: Instant,
    expires: Instant,
}

pub struct Cache {
    map: Mutex<HashMap<Key, Entry>>,
    capacity: usize,
    max_ttl: u32,
    negative_ttl: u32,
}

impl Cache {
    pub fn new(capacity: usize, max_ttl: u32, negative_ttl: u32) -> Self {
        Cache { map: Mutex::new(HashMap::new()), capacity, max_ttl, negative_ttl }
    }

    /// The cached answer for `key`, made the reply to `request`.
    pub fn get(&self, key: &Key, request: &[u8]) -> Option<Vec<u8>> {
        let now = Instant::now();
        let (mut wire, ttls, question_end, elapsed) = {
            let map = self.map.lock().ok()?;
            let e = map.get(key).filter(|e| e.expires > now)?;
            (e.wire.to_vec(), e.ttls.clone(), e.question_end, now.duration_since(e.stored).as_secs())
        };
        // Same name, so the same length; the client's spelling (0x20 case randomisation) is kept.
        let question = request.get(12..question_end)?;
        wire[..2].copy_from_slice(&request[..2]);
        wire[12..question_end].copy_from_slice(question);
        age(&mut wire, &ttls, elapsed as u32);
        Some(wire)
    }

    /// Keep `response` (already checked to answer `key`) if it can be reused:
    /// NOERROR or NXDOMAIN, not truncated.
    pub fn put(&self, key: Key, response: &[u8]) {
        let rcode = response.get(3).map(|b| b & 0x0F);
        let truncated = response.get(2).is_some_and(|b| b & 0x02 != 0);
        if truncated || !matches!(rcode, Some(0) | Some(3)) {
            return;
        }
        let Some(l) = layout(response) else { return };
        let ttl = l.min_ttl.unwrap_or(self.negative_ttl).min(self.max_ttl);
        if ttl == 0 {
            return;
        }
        let now = Instant::now();
        let Ok(mut map) = self.map.lock() else { return };
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, e| e.expires > now);
            if map.len() >= self.capacity {
                // Still full of live answers: drop an arbitrary tenth rather than scan per insert.
                let drop: Vec<Key> = map.keys().take(self.capacity / 10 + 1).cloned().collect();
                for k in drop {
                    map.remove(&k);
                }
            }
        }
        map.insert(
            key,
            Entry {
                wire: response.into(),
                ttls: l.ttls.into(),
                question_end: l.question_end,
                stored: now,
                expires: now + Duration::from_secs(u64::from(ttl)),
            },
        );
    }
}
