//! Candor server: enrollment, ingest, storage, policies, admin API, console.
//!
//! Data flows one way: agents' batches → [`api::agent`] (authenticate, decode,
//! check categories) → [`ingest`] (single writer, grouped commits) →
//! [`store`] → [`api::admin`] queries and the console.

pub mod alert_sink;
pub mod api;
pub mod audit;
pub mod chat;
pub mod chat_archive;
pub mod company_time;
pub mod config;
pub mod enrollment;
pub mod ingest;
pub mod live;
pub mod notice;
pub mod outbound;
pub mod policy;
pub mod presence;
pub mod retention;
pub mod roles;
pub mod sealed;
pub mod store;
pub mod tls;
pub mod web;
pub mod wecom_api;

use anyhow::Context;
use config::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use store::sqlite::SqliteStore;
use store::{AdminStore, Store};

/// The data directory opened: store and PKI. Used by the server and by CLI
/// commands that work on the data directly (`token create`, `admin`).
pub struct DataDir {
    pub store: Arc<SqliteStore>,
    pub pki: tls::Pki,
    pub blobs: store::blob::FolderBlobStore,
}

impl DataDir {
    pub fn open(config: &ServerConfig) -> anyhow::Result<DataDir> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
        let store = SqliteStore::open(&dir.join("candor.db")).context("opening the database")?;
        let pki = tls::Pki::load_or_create(&dir.join("tls"))?;
        let blobs = store::blob::FolderBlobStore::new(dir.join("blobs")).context("opening the blob folder")?;
        Ok(DataDir { store: Arc::new(store), pki, blobs })
    }

    /// Create the first admin if there is none; returns its one-time password.
    pub fn ensure_first_admin(&self) -> anyhow::Result<Option<String>> {
        if self.store.admin_count()? > 0 {
            return Ok(None);
        }
        let password = api::auth::generate_password();
        let hash = api::auth::hash_password(&password).map_err(anyhow::Error::msg)?;
        self.store.create_admin("admin", &hash, roles::Role::SystemAdmin, &[])?;
        Ok(Some(password))
    }
}

pub struct Running {
    pub addr: SocketAddr,
    pub public_url: String,
    pub ca_fingerprint: String,
    /// Set when this start created the first admin.
    pub first_admin_password: Option<String>,
    pub state: Arc<api::AppState>,
    handle: axum_server::Handle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Wait until the server stops by itself (an error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("server task")?.context("server")
    }

    pub async fn shutdown(self) {
        self.handle.graceful_shutdown(Some(std::time::Duration::from_secs(2)));
        let _ = self.task.await;
    }
}

fn tls_names(config: &ServerConfig, public_url: &str) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Some(h) = hostname::get().ok().and_then(|h| h.into_string().ok()) {
        names.push(h);
    }
    let host = public_url.trim_start_matches("https://").split('/').next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    names.push(host.trim_start_matches('[').trim_end_matches(']').to_string());
    names.extend(config.tls_extra_names.iter().cloned());
    names.retain(|n| !n.is_empty());
    names.sort();
    names.dedup();
    names
}

/// Open the data directory and serve until shut down.
pub async fn start(config: ServerConfig) -> anyhow::Result<Running> {
    company_time::parse_tz(&config.console.timezone).map_err(|e| anyhow::anyhow!("console.timezone: {e}"))?;
    let data = DataDir::open(&config)?;
    let first_admin_password = data.ensure_first_admin()?;
    let public_url = config.public_url();
    let tls = data.pki.server_config(&tls_names(&config, &public_url))?;
    let store: Arc<dyn Store> = data.store.clone();
    let writer = ingest::IngestWriter::spawn(store.clone(), config.ingest.max_group_events)?;
    let (epoch, _) = tokio::sync::watch::channel(0u64);
    let chat_dir = config.data_dir.join("chat-index");
    let chat_store = store.clone();
    let sink = alert_sink::spawn(&config.alerts).context("starting the alert sink")?;
    let chat = tokio::task::spawn_blocking(move || chat::Chat::open(&chat_dir, chat_store.as_ref(), sink))
        .await
        .context("opening the chat search index")??;
    let chat = Arc::new(chat);
    let web = Arc::new(web::WebLists::new(
        store::blob::FolderBlobStore::new(config.data_dir.join("blobs")).context("opening the blob folder")?,
    ));
    let (web2, store2) = (web.clone(), store.clone());
    tokio::task::spawn_blocking(move || web2.reload(store2.as_ref())).await?.context("loading the web lists")?;
    let state = Arc::new(api::AppState {
        store,
        config: config.clone(),
        public_url: public_url.clone(),
        ca_fingerprint: data.pki.ca_fingerprint.clone(),
        ca_pem: data.pki.ca_pem.clone(),
        writer,
        live: live::Live::new(epoch.clone()),
        epoch,
        creds: Default::default(),
        allowed: Default::default(),
        login_limiter: Default::default(),
        chat,
        web,
        blobs: Arc::new(data.blobs),
    });
    web::spawn_fetcher(state.clone());
    presence::spawn(state.clone());
    retention::spawn(state.clone());
    if !config.chat.wecom.sdk_path.is_empty() {
        let master = Arc::new(sealed::MasterKey::load_or_create(config.master_key_file.as_deref(), &config.data_dir)?);
        let wecom = config.chat.wecom.revealed(&master)?;
        let blobs =
            store::blob::FolderBlobStore::new(config.data_dir.join("blobs")).context("opening the blob folder")?;
        chat_archive::spawn(&wecom, master, state.store.clone(), state.chat.clone(), blobs)
            .context("starting the chat archive connector")?;
        wecom_api::spawn(&wecom, state.store.clone()).context("starting the WeCom consent sync")?;
    }
    let addr: SocketAddr =
        config.listen.parse().with_context(|| format!("listen address {:?} is not host:port", config.listen))?;
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let app = api::router(state.clone());
    let server = axum_server::from_tcp_rustls(listener, axum_server::tls_rustls::RustlsConfig::from_config(tls))
        .handle(handle.clone());
    let task = tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
    Ok(Running {
        addr,
        public_url,
        ca_fingerprint: data.pki.ca_fingerprint.clone(),
        first_admin_password,
        state,
        handle,
        task,
    })
}
