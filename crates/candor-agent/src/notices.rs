//! Conditions the admin should know about (no display, a weaker collection
//! mode), set and cleared by whichever part of the agent finds them and sent
//! with every heartbeat.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Notices(Arc<Mutex<BTreeMap<&'static str, String>>>);

impl Notices {
    /// Set the notice for `key`, logging it when it is new.
    pub fn set(&self, key: &'static str, text: String) {
        if let Ok(mut m) = self.0.lock() {
            if m.get(key) != Some(&text) {
                tracing::warn!("{text}");
                m.insert(key, text);
            }
        }
    }

    pub fn clear(&self, key: &'static str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(key);
        }
    }

    pub fn list(&self) -> Vec<String> {
        self.0.lock().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }
}
