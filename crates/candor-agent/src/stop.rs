//! Shutdown signal shared by the agent's tasks, with the reason (e.g. the
//! server revoked this agent).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone)]
pub struct Stop {
    tx: Arc<watch::Sender<Option<Option<String>>>>,
    pub state_dir: PathBuf,
}

impl Stop {
    pub fn new(state_dir: PathBuf) -> Self {
        Stop { tx: Arc::new(watch::channel(None).0), state_dir }
    }

    /// Ask every task to stop; `reason` is set when it is an error.
    pub fn trigger(&self, reason: Option<String>) {
        self.tx.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|v| v.is_some()).await;
    }

    /// Sleep for `d`; returns true if stopped meanwhile.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = self.wait() => true,
        }
    }

    pub fn reason(&self) -> Option<String> {
        self.tx.borrow().clone().flatten()
    }
}
