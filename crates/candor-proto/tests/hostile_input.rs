//! Deterministic mutation testing of every parser that takes untrusted input
//! (the coverage-guided versions live in fuzz/): random bit flips, truncations
//! and splices of valid inputs must give errors, never panics or hangs.

use candor_proto::batch::{self, Batch, Limits};
use candor_proto::token::EnrollToken;
use candor_proto::{Category, Event, Payload};
use std::time::Instant;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.truncate(rng.below(v.len() + 1)),
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.insert(i, rng.next() as u8);
            }
            _ => {
                let i = rng.below(v.len() + 1);
                let junk: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                v.splice(i..i, junk);
            }
        }
    }
    v
}

fn sample_batch() -> Vec<u8> {
    let events = (1..=20)
        .map(|seq| Event {
            seq,
            ts_ms: 1_700_000_000_000 + seq as i64,
            duration_ms: Some(seq * 10),
            category: if seq % 2 == 0 { Category::System } else { Category::Activity },
            payload: if seq % 2 == 0 {
                Payload::AgentStarted { version: "1".into() }.to_json()
            } else {
                Payload::Synthetic { n: seq, note: Some("窗口标题".into()) }.to_json()
            },
        })
        .collect();
    batch::encode(&Batch { agent_id: 1, floor: 1, events }, 1)
}

#[test]
fn mutated_batches_never_panic() {
    let good = sample_batch();
    // Also mutate the decompressed body, so postcard sees hostile bytes past zstd.
    let body = zstd::stream::decode_all(&good[6..]).unwrap();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let limits = Limits::default();
    let start = Instant::now();
    let mut ok = 0;
    for i in 0..20_000 {
        let input = if i % 2 == 0 {
            mutate(&mut rng, &good)
        } else {
            let mut wire = good[..6].to_vec();
            wire.extend(zstd::stream::encode_all(&mutate(&mut rng, &body)[..], 1).unwrap());
            wire
        };
        if batch::decode(&input, &limits).is_ok() {
            ok += 1;
        }
    }
    println!("20000 mutated batches in {:?}; {ok} still decoded validly", start.elapsed());
}

#[test]
fn mutated_tokens_never_panic() {
    let t = EnrollToken { url: "https://127.0.0.1:8443".into(), ca: "ab".repeat(32), secret: "cd".repeat(32) }.encode();
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let m = mutate(&mut rng, t.as_bytes());
        let _ = EnrollToken::decode(&String::from_utf8_lossy(&m));
    }
}

#[test]
fn mutated_payloads_and_policies_never_panic() {
    let inputs = [
        Payload::SpoolDropped {
            count: 3,
            first_seq: 1,
            last_seq: 3,
            first_ts_ms: 0,
            last_ts_ms: 9,
            reason: "x".into(),
        }
        .to_json(),
        br#"{"collect":{"activity":true,"web":false}}"#.to_vec(),
    ];
    let mut rng = Rng(7);
    for input in inputs {
        for _ in 0..10_000 {
            let m = mutate(&mut rng, &input);
            let _ = serde_json::from_slice::<Payload>(&m);
            let _ = serde_json::from_slice::<candor_proto::policy::PolicyDoc>(&m);
        }
    }
}
