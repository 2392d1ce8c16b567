//! A stand-in for `libWeWorkFinanceSdk_C.so` with the same C ABI, so the chat
//! connector is tested without the vendor library (see
//! `docs/chat-archive.md` for what it fakes and what it cannot).
//!
//! The script (JSON, path in `WECOM_FAKE_SDK_SCRIPT`) lists messages with
//! their plaintext JSON and the public-key version to use, media files, and
//! return codes to give on given calls. `GetChatData` encrypts on the fly:
//! a random printable key, RSA PKCS#1 v1.5 with that version's public key
//! (base64), and the message under the toy cipher [`toy_cipher`] (base64),
//! which `DecryptData` undoes — the real SDK's cipher is undocumented.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, c_ulonglong, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub const CHUNK: usize = 512 * 1024;

#[derive(Deserialize, Default)]
pub struct Script {
    pub corpid: String,
    pub secret: String,
    /// Public key (PKCS#1 PEM) per `publickey_ver`.
    pub public_keys: HashMap<String, String>,
    pub messages: Vec<Scripted>,
    /// sdkfileid → file whose bytes the media download serves.
    #[serde(default)]
    pub media: HashMap<String, String>,
    /// Return codes to give: `"GetChatData#2"` (the function and its call
    /// number, counted from 1) → code.
    #[serde(default)]
    pub fail_calls: HashMap<String, i32>,
}

#[derive(Deserialize, Clone)]
pub struct Scripted {
    pub seq: u64,
    pub msgid: String,
    pub key_ver: u32,
    /// The decrypted message JSON (any text: it may be deliberately bad).
    pub plaintext: String,
    /// `"base64"`: send an `encrypt_random_key` that is not base64.
    #[serde(default)]
    pub corrupt: Option<String>,
}

/// XOR with SHA-256(key ‖ block counter) as the keystream. A toy, documented
/// as such: it only has to round-trip and to fail for a wrong key.
pub fn toy_cipher(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for (n, chunk) in data.chunks(32).enumerate() {
        let mut h = Sha256::new();
        h.update(key);
        h.update((n as u64).to_le_bytes());
        let pad = h.finalize();
        out.extend(chunk.iter().zip(pad.iter()).map(|(a, b)| a ^ b));
    }
    out
}

#[repr(C)]
pub struct Slice {
    pub buf: *mut c_char,
    pub len: c_int,
}

#[repr(C)]
pub struct MediaData {
    pub outindexbuf: *mut c_char,
    pub out_len: c_int,
    pub data: *mut c_char,
    pub data_len: c_int,
    pub is_finish: c_int,
}

pub struct Sdk {
    ready: bool,
}

static CHAT_CALLS: AtomicU64 = AtomicU64::new(0);
static MEDIA_CALLS: AtomicU64 = AtomicU64::new(0);
static SCRIPT: Mutex<Option<Script>> = Mutex::new(None);

fn with_script<T>(f: impl FnOnce(&Script) -> T) -> Option<T> {
    let mut g = SCRIPT.lock().ok()?;
    if g.is_none() {
        let path = std::env::var("WECOM_FAKE_SDK_SCRIPT").ok()?;
        let text = std::fs::read_to_string(path).ok()?;
        *g = Some(serde_json::from_str(&text).ok()?);
    }
    g.as_ref().map(f)
}

/// The scripted code for this call, if any.
fn scripted_failure(name: &str, counter: &AtomicU64) -> Option<c_int> {
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    with_script(|s| s.fail_calls.get(&format!("{name}#{n}")).copied()).flatten()
}

unsafe fn text(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    CStr::from_ptr(p).to_str().ok().map(String::from)
}

/// Hands `bytes` to C as a malloc'd buffer (NUL-terminated, length kept apart).
fn c_bytes(bytes: &[u8]) -> (*mut c_char, c_int) {
    let mut v = bytes.to_vec();
    v.push(0);
    let boxed = v.into_boxed_slice();
    let len = bytes.len() as c_int;
    (Box::into_raw(boxed) as *mut c_char, len)
}

unsafe fn free_bytes(p: *mut c_char, len: c_int) {
    if !p.is_null() {
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(p as *mut u8, len as usize + 1)));
    }
}

unsafe fn set_slice(s: *mut Slice, bytes: &[u8]) {
    free_bytes((*s).buf, (*s).len);
    let (buf, len) = c_bytes(bytes);
    (*s).buf = buf;
    (*s).len = len;
}

#[no_mangle]
pub extern "C" fn NewSdk() -> *mut Sdk {
    Box::into_raw(Box::new(Sdk { ready: false }))
}

/// # Safety
/// `sdk` from `NewSdk`; strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn Init(sdk: *mut Sdk, corpid: *const c_char, secret: *const c_char) -> c_int {
    if sdk.is_null() {
        return 10000;
    }
    let ok = with_script(|s| {
        Some(s.corpid.as_str()) == text(corpid).as_deref() && Some(s.secret.as_str()) == text(secret).as_deref()
    });
    match ok {
        Some(true) => {
            (*sdk).ready = true;
            0
        }
        Some(false) => 10000,
        None => 10003,
    }
}

/// # Safety
/// `sdk` from `NewSdk`, `out` from `NewSlice`.
#[no_mangle]
pub unsafe extern "C" fn GetChatData(
    sdk: *mut Sdk,
    seq: c_ulonglong,
    limit: c_uint,
    _proxy: *const c_char,
    _passwd: *const c_char,
    _timeout: c_int,
    out: *mut Slice,
) -> c_int {
    if sdk.is_null() || out.is_null() || !(*sdk).ready || limit == 0 || limit > 1000 {
        return 10000;
    }
    if let Some(code) = scripted_failure("GetChatData", &CHAT_CALLS) {
        return code;
    }
    let body = with_script(|s| {
        let mut rng = rand::thread_rng();
        let mut items = Vec::new();
        for m in s.messages.iter().filter(|m| m.seq > seq).take(limit as usize) {
            let key: String =
                (0..32).map(|_| char::from(b"0123456789abcdef"[rand::Rng::gen_range(&mut rng, 0..16)])).collect();
            // A version the company has no key for is still sent (sealed with
            // any key): the connector must report it, not the fake.
            let pem = s.public_keys.get(&m.key_ver.to_string()).or_else(|| s.public_keys.values().next())?;
            let public = RsaPublicKey::from_pkcs1_pem(pem).ok()?;
            let sealed = public.encrypt(&mut rng, Pkcs1v15Encrypt, key.as_bytes()).ok()?;
            let random_key = match m.corrupt.as_deref() {
                Some("base64") => "%%% not base64 %%%".to_string(),
                _ => B64.encode(sealed),
            };
            items.push(serde_json::json!({
                "seq": m.seq, "msgid": m.msgid, "publickey_ver": m.key_ver,
                "encrypt_random_key": random_key,
                "encrypt_chat_msg": B64.encode(toy_cipher(key.as_bytes(), m.plaintext.as_bytes())),
            }));
        }
        Some(serde_json::json!({"errcode": 0, "errmsg": "ok", "chatdata": items}).to_string())
    })
    .flatten();
    match body {
        Some(b) => {
            set_slice(out, b.as_bytes());
            0
        }
        None => 10003,
    }
}

/// # Safety
/// Strings NUL-terminated; `out` from `NewSlice`.
#[no_mangle]
pub unsafe extern "C" fn DecryptData(key: *const c_char, msg: *const c_char, out: *mut Slice) -> c_int {
    let (Some(key), Some(msg)) = (text(key), text(msg)) else { return 10000 };
    if out.is_null() || key.len() != 32 {
        return 10008;
    }
    let Ok(sealed) = B64.decode(msg) else { return 10006 };
    set_slice(out, &toy_cipher(key.as_bytes(), &sealed));
    0
}

/// # Safety
/// `sdk` from `NewSdk`, strings NUL-terminated, `out` from `NewMediaData`.
#[no_mangle]
pub unsafe extern "C" fn GetMediaData(
    sdk: *mut Sdk,
    indexbuf: *const c_char,
    fileid: *const c_char,
    _proxy: *const c_char,
    _passwd: *const c_char,
    _timeout: c_int,
    out: *mut MediaData,
) -> c_int {
    if sdk.is_null() || out.is_null() || !(*sdk).ready {
        return 10000;
    }
    if let Some(code) = scripted_failure("GetMediaData", &MEDIA_CALLS) {
        return code;
    }
    let (Some(index), Some(fileid)) = (text(indexbuf), text(fileid)) else { return 10000 };
    let Some(Some(path)) = with_script(|s| s.media.get(&fileid).cloned()) else { return 10005 };
    let Ok(data) = std::fs::read(path) else { return 10003 };
    // "Range:bytes=START-END" as the real SDK's index looks.
    let start: usize =
        index.strip_prefix("Range:bytes=").and_then(|r| r.split('-').next()).and_then(|s| s.parse().ok()).unwrap_or(0);
    if start > data.len() {
        return 10000;
    }
    let end = (start + CHUNK).min(data.len());
    let next = format!("Range:bytes={}-{}", end, (end + CHUNK).min(data.len()).saturating_sub(1));
    let m = &mut *out;
    free_bytes(m.data, m.data_len);
    free_bytes(m.outindexbuf, m.out_len);
    (m.data, m.data_len) = c_bytes(&data[start..end]);
    (m.outindexbuf, m.out_len) = c_bytes(next.as_bytes());
    m.is_finish = (end == data.len()) as c_int;
    0
}

/// # Safety
/// `sdk` from `NewSdk` (or null).
#[no_mangle]
pub unsafe extern "C" fn DestroySdk(sdk: *mut Sdk) {
    if !sdk.is_null() {
        drop(Box::from_raw(sdk));
    }
}

#[no_mangle]
pub extern "C" fn NewSlice() -> *mut Slice {
    Box::into_raw(Box::new(Slice { buf: std::ptr::null_mut(), len: 0 }))
}

/// # Safety
/// `s` from `NewSlice` (or null).
#[no_mangle]
pub unsafe extern "C" fn FreeSlice(s: *mut Slice) {
    if !s.is_null() {
        free_bytes((*s).buf, (*s).len);
        drop(Box::from_raw(s));
    }
}

/// # Safety
/// `s` from `NewSlice`.
#[no_mangle]
pub unsafe extern "C" fn GetContentFromSlice(s: *mut Slice) -> *mut c_char {
    if s.is_null() {
        std::ptr::null_mut()
    } else {
        (*s).buf
    }
}

/// # Safety
/// `s` from `NewSlice`.
#[no_mangle]
pub unsafe extern "C" fn GetSliceLen(s: *mut Slice) -> c_int {
    if s.is_null() {
        0
    } else {
        (*s).len
    }
}

#[no_mangle]
pub extern "C" fn NewMediaData() -> *mut MediaData {
    Box::into_raw(Box::new(MediaData {
        outindexbuf: std::ptr::null_mut(),
        out_len: 0,
        data: std::ptr::null_mut(),
        data_len: 0,
        is_finish: 0,
    }))
}

/// # Safety
/// `m` from `NewMediaData` (or null).
#[no_mangle]
pub unsafe extern "C" fn FreeMediaData(m: *mut MediaData) {
    if !m.is_null() {
        free_bytes((*m).data, (*m).data_len);
        free_bytes((*m).outindexbuf, (*m).out_len);
        drop(Box::from_raw(m));
    }
}

/// # Safety
/// `m` from `NewMediaData`.
#[no_mangle]
pub unsafe extern "C" fn GetOutIndexBuf(m: *mut MediaData) -> *mut c_char {
    if m.is_null() {
        std::ptr::null_mut()
    } else {
        (*m).outindexbuf
    }
}

/// # Safety
/// `m` from `NewMediaData`.
#[no_mangle]
pub unsafe extern "C" fn GetData(m: *mut MediaData) -> *mut c_char {
    if m.is_null() {
        std::ptr::null_mut()
    } else {
        (*m).data
    }
}

/// # Safety
/// `m` from `NewMediaData`.
#[no_mangle]
pub unsafe extern "C" fn GetIndexLen(m: *mut MediaData) -> c_int {
    if m.is_null() {
        0
    } else {
        (*m).out_len
    }
}

/// # Safety
/// `m` from `NewMediaData`.
#[no_mangle]
pub unsafe extern "C" fn GetDataLen(m: *mut MediaData) -> c_int {
    if m.is_null() {
        0
    } else {
        (*m).data_len
    }
}

/// # Safety
/// `m` from `NewMediaData`.
#[no_mangle]
pub unsafe extern "C" fn IsMediaDataFinish(m: *mut MediaData) -> c_int {
    if m.is_null() {
        0
    } else {
        (*m).is_finish
    }
}
