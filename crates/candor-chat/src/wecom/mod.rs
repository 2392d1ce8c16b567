//! The WeCom chat archive (会话内容存档) through the vendor's Finance SDK:
//! pull a batch after a seq cursor, decrypt each message's random key with
//! the company's RSA private key for its `publickey_ver` (PKCS#1 v1.5),
//! decrypt the message with the SDK, normalise it; fetch media chunk by
//! chunk. A message that cannot be read becomes an error record with its
//! seq, and the pull goes on; the cursor moves past it so it is not retried
//! forever (the error keeps the raw envelope).

pub mod sdk;

use crate::message::{self, ChatMessage};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use md5::{Digest, Md5};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey};
use sdk::{Sdk, SdkError};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// Attempts per SDK call when it reports a network error (10001).
const ATTEMPTS: u32 = 4;
/// Media rounds and size bounds (a hostile index could loop forever).
const MAX_MEDIA_ROUNDS: usize = 20_000;

/// Private keys by `publickey_ver` (old versions stay: old messages use them).
#[derive(Default)]
pub struct Keys(HashMap<u32, RsaPrivateKey>);

impl Keys {
    pub fn add_pem(&mut self, version: u32, pem: &str) -> Result<(), String> {
        let key = RsaPrivateKey::from_pkcs1_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem))
            .map_err(|e| format!("private key version {version}: not a PKCS#1 or PKCS#8 PEM RSA key ({e})"))?;
        self.0.insert(version, key);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What one pull produced.
#[derive(Default)]
pub struct Pulled {
    pub messages: Vec<ChatMessage>,
    /// (position such as "seq 42", error, raw envelope).
    pub errors: Vec<(String, String, Option<String>)>,
    /// Highest seq seen (the next cursor); the input seq if none.
    pub max_seq: u64,
    /// Envelopes received (messages + errors).
    pub received: usize,
}

/// Calls `f`, retrying network errors with a short backoff.
pub fn retrying<T>(f: impl FnMut() -> Result<T, SdkError>) -> Result<T, SdkError> {
    retrying_when(SdkError::is_transient, f)
}

fn retrying_when<T>(
    transient: impl Fn(&SdkError) -> bool,
    mut f: impl FnMut() -> Result<T, SdkError>,
) -> Result<T, SdkError> {
    let mut wait = Duration::from_millis(200);
    for attempt in 1.. {
        match f() {
            Err(e) if transient(&e) && attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "chat archive: retrying");
                std::thread::sleep(wait);
                wait *= 2;
            }
            other => return other,
        }
    }
    unreachable!("the loop returns")
}

/// One `GetChatData` after `seq`, each message decrypted and normalised.
pub fn pull(sdk: &Sdk, keys: &Keys, seq: u64, limit: u32) -> Result<Pulled, SdkError> {
    let body = retrying(|| sdk.chat_data(seq, limit))?;
    let envelope = message::lenient_json(&body).map_err(|e| SdkError::Input(format!("GetChatData answer: {e}")))?;
    let errcode = envelope.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    if errcode != 0 {
        let msg = envelope.get("errmsg").and_then(Value::as_str).unwrap_or("");
        return Err(SdkError::Input(format!("GetChatData answered errcode {errcode}: {msg}")));
    }
    let mut out = Pulled { max_seq: seq, ..Default::default() };
    let Some(items) = envelope.get("chatdata").and_then(Value::as_array) else { return Ok(out) };
    for item in items {
        out.received += 1;
        let item_seq = item.get("seq").and_then(Value::as_u64).unwrap_or(0);
        out.max_seq = out.max_seq.max(item_seq);
        match open(sdk, keys, item) {
            Ok(m) => out.messages.push(m),
            Err(e) => out.errors.push((format!("seq {item_seq}"), e, Some(item.to_string()))),
        }
    }
    Ok(out)
}

fn open(sdk: &Sdk, keys: &Keys, item: &Value) -> Result<ChatMessage, String> {
    let field = |k: &str| item.get(k).and_then(Value::as_str).ok_or_else(|| format!("{k} missing"));
    let ver = item.get("publickey_ver").and_then(Value::as_u64).ok_or("publickey_ver missing")? as u32;
    let key = keys
        .0
        .get(&ver)
        .ok_or_else(|| format!("no private key for publickey_ver {ver} (add it to chat.wecom.private_keys)"))?;
    let sealed =
        B64.decode(field("encrypt_random_key")?).map_err(|e| format!("encrypt_random_key is not base64: {e}"))?;
    let random_key =
        key.decrypt(Pkcs1v15Encrypt, &sealed).map_err(|e| format!("RSA decryption with key version {ver}: {e}"))?;
    let random_key = String::from_utf8(random_key).map_err(|_| "decrypted key is not text".to_string())?;
    let plain = retrying(|| sdk.library().decrypt(&random_key, field("encrypt_chat_msg").unwrap_or("")))
        .map_err(|e| e.to_string())?;
    let m = message::parse(&plain).map_err(|e| format!("message: {e}"))?;
    let expected = field("msgid")?;
    if m.msgid != expected {
        return Err(format!("decrypted msgid {:?} differs from the envelope's {expected:?}", m.msgid));
    }
    Ok(m)
}

/// Downloads a media file chunk by chunk (a failed chunk is retried alone),
/// bounded by `max_bytes`, and checks it against the message's MD5.
pub fn download(sdk: &Sdk, fileid: &str, md5sum: Option<&str>, max_bytes: u64) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    let mut index: Vec<u8> = Vec::new();
    for _ in 0..MAX_MEDIA_ROUNDS {
        // Media chunks also fail with 10002 now and then (reported by WxJava users): retried too.
        let transient = |e: &SdkError| e.is_transient() || matches!(e, SdkError::Code { code: 10002, .. });
        let chunk = retrying_when(transient, || sdk.media_chunk(&index, fileid)).map_err(|e| e.to_string())?;
        data.extend_from_slice(&chunk.data);
        if data.len() as u64 > max_bytes {
            return Err(format!("media larger than {max_bytes} bytes"));
        }
        if chunk.finished {
            if let Some(want) = md5sum.filter(|m| !m.is_empty()) {
                let got = hex::encode(Md5::digest(&data));
                if !got.eq_ignore_ascii_case(want) {
                    return Err(format!("media MD5 {got} differs from the message's {want}"));
                }
            }
            return Ok(data);
        }
        if chunk.next_index.is_empty() {
            return Err("media download stopped: empty index before the end".into());
        }
        index = chunk.next_index;
    }
    Err(format!("media download did not finish in {MAX_MEDIA_ROUNDS} rounds"))
}
