//! The vendor's `libWeWorkFinanceSdk_C.so`, loaded at run time with
//! libloading. All 17 symbols are bound with their exact C signatures when
//! the library is loaded (a missing one fails then, naming it); slices and
//! media buffers are owned by the library and freed by guards; buffers are
//! read by length, never as C strings.

use std::ffi::{c_char, c_int, c_uint, c_ulonglong, c_void, CString};
use std::path::Path;
use std::sync::Arc;

#[repr(C)]
struct Slice {
    buf: *mut c_char,
    len: c_int,
}

#[repr(C)]
struct MediaData {
    outindexbuf: *mut c_char,
    out_len: c_int,
    data: *mut c_char,
    data_len: c_int,
    is_finish: c_int,
}

type SdkPtr = *mut c_void;

/// The SDK's return codes (header table), with what each means.
pub fn meaning(code: i32) -> &'static str {
    match code {
        10000 => "bad request parameters",
        10001 => "network error",
        10002 => "data parse failure",
        10003 => "system failure",
        10004 => "key error caused encryption failure",
        10005 => "bad sdkfileid",
        10006 => "decryption failed",
        10007 => "no private key for the message's encryption version",
        10008 => "error parsing encrypt_key",
        10009 => "IP not allowed",
        10010 => "data expired",
        10011 => "certificate error",
        _ => "unknown error",
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SdkError {
    #[error("loading {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("{call} returned {code} ({})", meaning(*code))]
    Code { call: &'static str, code: i32 },
    #[error("{0}")]
    Input(String),
}

impl SdkError {
    /// Transient: worth retrying (10001, network).
    pub fn is_transient(&self) -> bool {
        matches!(self, SdkError::Code { code: 10001, .. })
    }
}

struct Fns {
    new_sdk: unsafe extern "C" fn() -> SdkPtr,
    init: unsafe extern "C" fn(SdkPtr, *const c_char, *const c_char) -> c_int,
    get_chat_data:
        unsafe extern "C" fn(SdkPtr, c_ulonglong, c_uint, *const c_char, *const c_char, c_int, *mut Slice) -> c_int,
    decrypt_data: unsafe extern "C" fn(*const c_char, *const c_char, *mut Slice) -> c_int,
    get_media_data: unsafe extern "C" fn(
        SdkPtr,
        *const c_char,
        *const c_char,
        *const c_char,
        *const c_char,
        c_int,
        *mut MediaData,
    ) -> c_int,
    destroy_sdk: unsafe extern "C" fn(SdkPtr),
    new_slice: unsafe extern "C" fn() -> *mut Slice,
    free_slice: unsafe extern "C" fn(*mut Slice),
    get_content_from_slice: unsafe extern "C" fn(*mut Slice) -> *mut c_char,
    get_slice_len: unsafe extern "C" fn(*mut Slice) -> c_int,
    new_media_data: unsafe extern "C" fn() -> *mut MediaData,
    free_media_data: unsafe extern "C" fn(*mut MediaData),
    get_out_index_buf: unsafe extern "C" fn(*mut MediaData) -> *mut c_char,
    get_data: unsafe extern "C" fn(*mut MediaData) -> *mut c_char,
    get_index_len: unsafe extern "C" fn(*mut MediaData) -> c_int,
    get_data_len: unsafe extern "C" fn(*mut MediaData) -> c_int,
    is_media_data_finish: unsafe extern "C" fn(*mut MediaData) -> c_int,
}

/// The loaded library. The function pointers are valid while `_lib` lives.
pub struct Library {
    f: Fns,
    _lib: libloading::Library,
}

// The pointers are plain code addresses; the SDK's own state lives in `Sdk`.
unsafe impl Send for Library {}
unsafe impl Sync for Library {}

/// Copies `len` bytes from a library buffer (null or negative: empty).
unsafe fn bytes(p: *const c_char, len: c_int) -> Vec<u8> {
    if p.is_null() || len <= 0 {
        return Vec::new();
    }
    std::slice::from_raw_parts(p as *const u8, len as usize).to_vec()
}

fn cstr(what: &str, s: &str) -> Result<CString, SdkError> {
    CString::new(s).map_err(|_| SdkError::Input(format!("{what} contains a NUL byte")))
}

impl Library {
    pub fn load(path: &Path) -> Result<Arc<Library>, SdkError> {
        let load_err = |reason: String| SdkError::Load { path: path.display().to_string(), reason };
        // SAFETY: loading runs the library's initialisers; the path is the
        // operator's configured vendor SDK.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| load_err(e.to_string()))?;
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the types are the header's signatures (see module doc).
                *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| load_err(format!("symbol {} missing: {e}", $name)))?
            };
        }
        let f = Fns {
            new_sdk: sym!("NewSdk"),
            init: sym!("Init"),
            get_chat_data: sym!("GetChatData"),
            decrypt_data: sym!("DecryptData"),
            get_media_data: sym!("GetMediaData"),
            destroy_sdk: sym!("DestroySdk"),
            new_slice: sym!("NewSlice"),
            free_slice: sym!("FreeSlice"),
            get_content_from_slice: sym!("GetContentFromSlice"),
            get_slice_len: sym!("GetSliceLen"),
            new_media_data: sym!("NewMediaData"),
            free_media_data: sym!("FreeMediaData"),
            get_out_index_buf: sym!("GetOutIndexBuf"),
            get_data: sym!("GetData"),
            get_index_len: sym!("GetIndexLen"),
            get_data_len: sym!("GetDataLen"),
            is_media_data_finish: sym!("IsMediaDataFinish"),
        };
        Ok(Arc::new(Library { f, _lib: lib }))
    }

    fn slice(&self) -> Result<SliceGuard<'_>, SdkError> {
        // SAFETY: NewSlice takes nothing and returns an owned slice or null.
        let p = unsafe { (self.f.new_slice)() };
        if p.is_null() {
            return Err(SdkError::Code { call: "NewSlice", code: 10003 });
        }
        Ok(SliceGuard { lib: self, p })
    }

    /// `DecryptData`: the message JSON for a decrypted random key.
    pub fn decrypt(&self, key: &str, msg: &str) -> Result<Vec<u8>, SdkError> {
        let (k, m) = (cstr("key", key)?, cstr("message", msg)?);
        let out = self.slice()?;
        // SAFETY: NUL-terminated inputs; `out` is a live slice of this library.
        let rc = unsafe { (self.f.decrypt_data)(k.as_ptr(), m.as_ptr(), out.p) };
        if rc != 0 {
            return Err(SdkError::Code { call: "DecryptData", code: rc });
        }
        Ok(out.read())
    }
}

struct SliceGuard<'a> {
    lib: &'a Library,
    p: *mut Slice,
}

impl SliceGuard<'_> {
    fn read(&self) -> Vec<u8> {
        // SAFETY: the accessors take the slice this library allocated.
        unsafe { bytes((self.lib.f.get_content_from_slice)(self.p), (self.lib.f.get_slice_len)(self.p)) }
    }
}

impl Drop for SliceGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: allocated by NewSlice of the same library, freed once.
        unsafe { (self.lib.f.free_slice)(self.p) }
    }
}

/// Where to reach qyapi from (the SDK's own proxy settings).
#[derive(Debug, Clone, Default)]
pub struct Net {
    pub proxy: String,
    pub proxy_password: String,
    pub timeout_secs: i32,
}

/// One chunk of a media file.
pub struct Chunk {
    pub data: Vec<u8>,
    pub next_index: Vec<u8>,
    pub finished: bool,
}

/// An initialised SDK instance. The vendor advises one per thread; `Sdk` is
/// `Send` but not `Sync`, so the type system keeps it that way.
pub struct Sdk {
    lib: Arc<Library>,
    p: *mut c_void,
    net: (CString, CString, c_int),
}

unsafe impl Send for Sdk {}

impl Sdk {
    pub fn new(lib: Arc<Library>, corpid: &str, secret: &str, net: &Net) -> Result<Sdk, SdkError> {
        let (c, s) = (cstr("corpid", corpid)?, cstr("secret", secret)?);
        let net = (cstr("proxy", &net.proxy)?, cstr("proxy password", &net.proxy_password)?, net.timeout_secs.max(1));
        // SAFETY: NewSdk takes nothing; the pointer is destroyed in Drop (also when Init fails).
        let p = unsafe { (lib.f.new_sdk)() };
        if p.is_null() {
            return Err(SdkError::Code { call: "NewSdk", code: 10003 });
        }
        let sdk = Sdk { lib, p, net };
        // SAFETY: a live SDK pointer and NUL-terminated strings.
        let rc = unsafe { (sdk.lib.f.init)(sdk.p, c.as_ptr(), s.as_ptr()) };
        if rc != 0 {
            return Err(SdkError::Code { call: "Init", code: rc });
        }
        Ok(sdk)
    }

    pub fn library(&self) -> &Arc<Library> {
        &self.lib
    }

    /// `GetChatData`: the JSON envelope of messages after `seq` (limit 1–1000).
    pub fn chat_data(&self, seq: u64, limit: u32) -> Result<Vec<u8>, SdkError> {
        if !(1..=1000).contains(&limit) {
            return Err(SdkError::Input(format!("limit {limit} outside 1–1000")));
        }
        let out = self.lib.slice()?;
        // SAFETY: live SDK and slice; strings NUL-terminated ("" when unused).
        let rc = unsafe {
            (self.lib.f.get_chat_data)(self.p, seq, limit, self.net.0.as_ptr(), self.net.1.as_ptr(), self.net.2, out.p)
        };
        if rc != 0 {
            return Err(SdkError::Code { call: "GetChatData", code: rc });
        }
        Ok(out.read())
    }

    /// `GetMediaData`: one chunk (≤ 512 KB) of a media file, from `index` ("" first).
    pub fn media_chunk(&self, index: &[u8], fileid: &str) -> Result<Chunk, SdkError> {
        let index = CString::new(index).map_err(|_| SdkError::Input("media index contains a NUL byte".into()))?;
        let fileid = cstr("sdkfileid", fileid)?;
        // SAFETY: NewMediaData takes nothing; freed below on every path.
        let md = unsafe { (self.lib.f.new_media_data)() };
        if md.is_null() {
            return Err(SdkError::Code { call: "NewMediaData", code: 10003 });
        }
        struct Guard<'a>(&'a Library, *mut MediaData);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                // SAFETY: allocated by NewMediaData of the same library, freed once.
                unsafe { (self.0.f.free_media_data)(self.1) }
            }
        }
        let g = Guard(&self.lib, md);
        let f = &self.lib.f;
        // SAFETY: live SDK and media data; strings NUL-terminated. Argument
        // order per the header: index first, then the file id.
        let rc = unsafe {
            (f.get_media_data)(
                self.p,
                index.as_ptr(),
                fileid.as_ptr(),
                self.net.0.as_ptr(),
                self.net.1.as_ptr(),
                self.net.2,
                g.1,
            )
        };
        if rc != 0 {
            return Err(SdkError::Code { call: "GetMediaData", code: rc });
        }
        // SAFETY: accessors on the media data this library filled.
        unsafe {
            Ok(Chunk {
                data: bytes((f.get_data)(g.1), (f.get_data_len)(g.1)),
                next_index: bytes((f.get_out_index_buf)(g.1), (f.get_index_len)(g.1)),
                finished: (f.is_media_data_finish)(g.1) == 1,
            })
        }
    }
}

impl Drop for Sdk {
    fn drop(&mut self) {
        // SAFETY: from NewSdk of this library, destroyed once.
        unsafe { (self.lib.f.destroy_sdk)(self.p) }
    }
}
