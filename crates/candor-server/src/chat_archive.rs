//! The WeCom chat-archive connector: a thread of its own (the SDK wants one
//! instance per thread) pulls after the stored cursor, hands messages and
//! errors to [`crate::chat::Chat::take_in`], downloads media of newly stored
//! messages into the blob store, then advances the cursor. Delivery is
//! at-least-once: a crash before the cursor moves re-pulls messages that
//! are then skipped by msgid.

use crate::chat::Chat;
use crate::config::WecomConfig;
use crate::sealed::MasterKey;
use crate::store::blob::{BlobStore, FolderBlobStore};
use crate::store::Store;
use candor_chat::wecom::sdk::{Library, Net, Sdk};
use candor_chat::wecom::{self, Keys};
use candor_proto::now_ms;
use std::sync::Arc;
use std::time::Duration;

const SOURCE: &str = "wecom";

struct Connector {
    config: WecomConfig,
    master: Arc<MasterKey>,
    store: Arc<dyn Store>,
    chat: Arc<Chat>,
    blobs: FolderBlobStore,
}

/// Starts the connector (`chat.wecom.sdk_path` is set). `config` has its
/// secrets opened already; `master` opens the sealed private key files.
pub fn spawn(
    config: &WecomConfig,
    master: Arc<MasterKey>,
    store: Arc<dyn Store>,
    chat: Arc<Chat>,
    blobs: FolderBlobStore,
) -> anyhow::Result<()> {
    let c = Connector { config: config.clone(), master, store, chat, blobs };
    std::thread::Builder::new().name("wecom-archive".into()).spawn(move || c.run())?;
    Ok(())
}

impl Connector {
    fn record_error(&self, position: &str, error: String) {
        tracing::warn!(%position, %error, "chat archive");
        let _ = self.store.add_chat_errors(SOURCE, &[(position.to_string(), error, None)], now_ms());
    }

    fn setup(&self) -> Result<Sdk, String> {
        let lib = Library::load(std::path::Path::new(&self.config.sdk_path)).map_err(|e| e.to_string())?;
        let net = Net {
            proxy: self.config.proxy.clone(),
            proxy_password: self.config.proxy_password.clone(),
            timeout_secs: self.config.timeout_secs,
        };
        Sdk::new(lib, &self.config.corpid, &self.config.secret, &net).map_err(|e| e.to_string())
    }

    fn keys(&self) -> Result<Keys, String> {
        let mut keys = Keys::default();
        for (ver, path) in &self.config.private_keys {
            let v: u32 = ver.parse().map_err(|_| format!("private key version {ver:?} is not a number"))?;
            let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            let pem =
                self.master.reveal(&format!("private key {}", path.display()), &text).map_err(|e| format!("{e:#}"))?;
            keys.add_pem(v, &pem)?;
        }
        if keys.is_empty() {
            return Err("chat.wecom.private_keys names no key".into());
        }
        Ok(keys)
    }

    fn run(self) {
        let pause = Duration::from_secs(self.config.poll_secs.max(1));
        loop {
            let ready = self.keys().and_then(|k| self.setup().map(|s| (k, s)));
            let (keys, sdk) = match ready {
                Ok(v) => v,
                Err(e) => {
                    self.record_error("setup", e);
                    std::thread::sleep(pause);
                    continue;
                }
            };
            tracing::info!(sdk = %self.config.sdk_path, "chat archive connector started");
            loop {
                match self.pull_once(&sdk, &keys) {
                    Ok(true) => continue,
                    Ok(false) => std::thread::sleep(pause),
                    Err(e) => {
                        self.record_error("pull", e);
                        std::thread::sleep(pause);
                    }
                }
            }
        }
    }

    /// One batch; true if the batch was full (more may be waiting).
    fn pull_once(&self, sdk: &Sdk, keys: &Keys) -> Result<bool, String> {
        let cursor = self.store.chat_cursor(SOURCE).map_err(|e| e.to_string())?;
        let limit = self.config.batch.clamp(1, 1000);
        let pulled = wecom::pull(sdk, keys, cursor, limit).map_err(|e| e.to_string())?;
        let report = self
            .chat
            .take_in(self.store.as_ref(), SOURCE, &pulled.messages, pulled.errors)
            .map_err(|e| e.to_string())?;
        if self.config.media {
            for &(k, id) in &report.insert.new_ids {
                self.fetch_media(sdk, id, &pulled.messages[k]);
            }
        }
        self.store.set_chat_cursor(SOURCE, pulled.max_seq, now_ms()).map_err(|e| e.to_string())?;
        if pulled.received > 0 {
            tracing::info!(
                received = pulled.received,
                stored = report.insert.stored,
                errors = report.errors,
                seq = pulled.max_seq,
                "chat archive pulled"
            );
        }
        Ok(pulled.received as u32 >= limit)
    }

    fn fetch_media(&self, sdk: &Sdk, id: u64, m: &candor_chat::message::ChatMessage) {
        if m.media.is_empty() {
            return;
        }
        let mut list = Vec::new();
        for r in &m.media {
            let mut entry = serde_json::to_value(r).unwrap_or_default();
            match wecom::download(sdk, &r.sdkfileid, r.md5sum.as_deref(), self.config.max_media_bytes) {
                Ok(bytes) => match self.blobs.put(&bytes) {
                    Ok(key) => entry["blob"] = serde_json::json!(key),
                    Err(e) => self.record_error(&format!("media of {}", m.msgid), format!("storing: {e}")),
                },
                Err(e) => self.record_error(&format!("media of {}", m.msgid), e),
            }
            list.push(entry);
        }
        if let Err(e) = self.store.set_chat_media(id, &serde_json::Value::Array(list)) {
            self.record_error(&format!("media of {}", m.msgid), e.to_string());
        }
    }
}
