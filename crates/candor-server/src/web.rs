//! Domain lists on the server: uploaded or fetched by URL on a schedule,
//! checked line by line, kept as blobs (agents download them by SHA-256), and
//! compiled into one [`Categorizer`] that names the category of any visited
//! domain for the web statistics.

use crate::api::AppState;
use crate::store::blob::{BlobStore, FolderBlobStore};
use crate::store::{Store, WebList};
use anyhow::{bail, Context};
use candor_webrules::{Builder, ListId, ListReport, RuleSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Largest list accepted (a 1M-domain list is about 25 MB).
pub const MAX_LIST_BYTES: usize = 128 << 20;

/// Names the category of a domain: the first list with a block rule for it.
#[derive(Default)]
pub struct Categorizer {
    set: RuleSet,
    categories: Vec<String>,
}

impl Categorizer {
    pub fn category(&self, domain: &str) -> Option<&str> {
        let mut found = None;
        self.set.for_each_match(domain, |h| {
            if !h.allow && found.is_none() {
                found = Some(h.list);
            }
        });
        found.and_then(|l| self.categories.get(usize::from(l))).map(String::as_str)
    }
}

pub struct WebLists {
    pub blobs: FolderBlobStore,
    categorizer: RwLock<Arc<Categorizer>>,
}

/// Parse `text` as a list: rules found, bad lines with numbers.
pub fn check(text: &[u8]) -> ListReport {
    let mut b = Builder::default();
    b.add_list(0, text).unwrap_or_default()
}

/// A category name: letters, digits, `-`, `_`; at most 32 characters.
pub fn valid_category(c: &str) -> bool {
    !c.is_empty() && c.chars().count() <= 32 && c.chars().all(|ch| ch.is_alphanumeric() || ch == '-' || ch == '_')
}

impl WebLists {
    pub fn new(blobs: FolderBlobStore) -> Self {
        WebLists { blobs, categorizer: RwLock::new(Arc::default()) }
    }

    pub fn categorizer(&self) -> Arc<Categorizer> {
        match self.categorizer.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Rebuild the categorizer from every stored list (blocking).
    pub fn reload(&self, store: &dyn Store) -> anyhow::Result<()> {
        let lists = store.web_lists()?;
        let lists = &lists[..lists.len().min(candor_webrules::MAX_LISTS)];
        let categories = lists.iter().map(|l| l.category.clone()).collect();
        // Each pass reads the texts again, one at a time, rather than holding them all.
        let mut first_pass = true;
        let set = RuleSet::compile(|b| {
            for (i, l) in lists.iter().enumerate() {
                match self.blobs.get(&l.sha256) {
                    Ok(Some(text)) => {
                        b.add_list(i as ListId, &text[..])?;
                    }
                    Ok(None) if first_pass => {
                        tracing::warn!(list = %l.name, "web list text is missing from the blob store")
                    }
                    Err(e) if first_pass => tracing::warn!(list = %l.name, error = %e, "web list text unreadable"),
                    _ => {}
                }
            }
            first_pass = false;
            Ok(())
        })?;
        if let Ok(mut c) = self.categorizer.write() {
            *c = Arc::new(Categorizer { set, categories });
        }
        Ok(())
    }

    /// Check and store a list's text under `meta.name` (replacing one of that name).
    pub fn put(&self, store: &dyn Store, mut meta: WebList, text: &[u8]) -> anyhow::Result<(u64, ListReport)> {
        if text.len() > MAX_LIST_BYTES {
            bail!("the list is {} bytes; at most {MAX_LIST_BYTES} are accepted", text.len());
        }
        let report = check(text);
        if report.rules == 0 {
            let first = report.first_errors.first().map(|e| format!(" (first problem: {e})")).unwrap_or_default();
            bail!("the list holds no domain rule{first}");
        }
        meta.sha256 = self.blobs.put(text).context("storing the list text")?;
        meta.bytes = text.len() as u64;
        meta.rules = report.rules as u64;
        meta.errors = report.errors as u64;
        let id = store.put_web_list(&meta)?;
        self.reload(store)?;
        Ok((id, report))
    }
}

/// Download a list (bounded).
pub async fn download(client: &reqwest::Client, url: &str) -> anyhow::Result<Vec<u8>> {
    let mut r = client
        .get(url)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .with_context(|| format!("fetching {url}"))?
        .error_for_status()?;
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await? {
        if body.len() + chunk.len() > MAX_LIST_BYTES {
            bail!("{url} is larger than {MAX_LIST_BYTES} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Re-fetch lists with a source URL when their refresh period has passed.
pub fn spawn_fetcher(state: Arc<AppState>) {
    tokio::spawn(async move {
        let client = match crate::outbound::client() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "web list fetcher has no HTTPS client");
                return;
            }
        };
        loop {
            let due: Vec<WebList> = state
                .db(|s| s.web_lists())
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|l| match (&l.source_url, l.refresh_hours) {
                    (Some(_), Some(h)) if h > 0 => {
                        l.fetched_ms.unwrap_or(0) + i64::from(h) * 3_600_000 <= candor_proto::now_ms()
                    }
                    _ => false,
                })
                .collect();
            for l in due {
                let url = l.source_url.clone().unwrap_or_default();
                let result = match download(&client, &url).await {
                    Ok(text) => {
                        let meta = WebList { fetched_ms: Some(candor_proto::now_ms()), ..l.clone() };
                        let st = state.clone();
                        tokio::task::spawn_blocking(move || st.web.put(st.store.as_ref(), meta, &text))
                            .await
                            .map_err(anyhow::Error::from)
                            .and_then(|r| r)
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok((_, r)) => {
                        tracing::info!(list = %l.name, rules = r.rules, "web list refreshed");
                        state.bump_epoch();
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        tracing::warn!(list = %l.name, error = %msg, "web list fetch failed; keeping the last copy");
                        let _ = state.db(move |s| s.set_web_list_fetch_error(l.id, &msg, candor_proto::now_ms())).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(state.config.web.list_check_secs.max(1))).await;
        }
    });
}
