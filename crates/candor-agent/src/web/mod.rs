//! Web filtering and visits (policy section `web`): while `web.filter` is
//! on, a local [`resolver`] answers every DNS query of the machine (the
//! nftables redirect in `platform::nft` sends it there), the [`sni`] proxy
//! sees every HTTP/HTTPS connection's host, both decide with one compiled
//! [`filter`], and looked-up names become folded [`visits`].
//!
//! This task owns the pieces: it fetches the uploaded lists the policy names
//! (by SHA-256, checked), builds the filter off the async threads, swaps it
//! in whole, re-evaluates category schedules every 30 s, and removes the
//! redirect when the filter is switched off or the agent stops.

pub mod browser;
pub mod cache;
pub mod crx;
pub mod filter;
pub mod resolver;
pub mod sni;
pub mod upstream;
pub mod visits;
pub mod wire;

use crate::config::WebConfig;
use crate::credentials::Credentials;
use crate::gate::Recorder;
use crate::notices::Notices;
use crate::platform::nft;
use crate::Stop;
use anyhow::{bail, Context};
use cache::Cache;
use candor_proto::policy::EffectivePolicy;
use candor_proto::web::{WebListRef, WebOptions};
use candor_proto::Category;
use filter::Filter;
use resolver::Resolver;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Largest list the agent downloads.
const MAX_LIST_BYTES: u64 = 256 << 20;

/// The nameservers of `/etc/resolv.conf`, except `ours`.
pub fn system_upstreams(resolv_conf: &str, ours: SocketAddr) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .filter(|a| *a != ours)
        .collect()
}

/// Download the lists not yet on disk (checked against their SHA-256) and
/// delete the ones no longer named.
async fn fetch_lists(client: &reqwest::Client, creds: &Credentials, lists: &[WebListRef], dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = tokio::fs::create_dir_all(dir).await {
        return vec![format!("creating {}: {e}", dir.display())];
    }
    for l in lists {
        let path = dir.join(&l.sha256);
        if l.sha256.len() != 64 || !l.sha256.bytes().all(|b| b.is_ascii_hexdigit()) || path.exists() {
            continue;
        }
        let got = async {
            if l.bytes > MAX_LIST_BYTES {
                bail!("{} bytes is more than the agent downloads", l.bytes);
            }
            let mut r = client
                .get(format!("{}/api/v1/agent/web-lists/{}", creds.server_url, l.sha256))
                .header(reqwest::header::AUTHORIZATION, creds.bearer())
                .timeout(Duration::from_secs(300))
                .send()
                .await?
                .error_for_status()?;
            // Streamed to disk: a list held whole in memory beside the rules in
            // use would raise the agent's peak by the list's size.
            use sha2::Digest;
            use tokio::io::AsyncWriteExt;
            let tmp = path.with_extension("part");
            let mut f = tokio::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .await
                .with_context(|| format!("writing {}", tmp.display()))?;
            let (mut hash, mut got) = (sha2::Sha256::new(), 0u64);
            while let Some(chunk) = r.chunk().await? {
                got += chunk.len() as u64;
                if got > l.bytes.min(MAX_LIST_BYTES) {
                    bail!("the download is longer than the {} bytes announced", l.bytes);
                }
                hash.update(&chunk);
                f.write_all(&chunk).await?;
            }
            f.sync_all().await?;
            if hex::encode(hash.finalize()) != l.sha256 {
                let _ = tokio::fs::remove_file(&tmp).await;
                bail!("the download does not match its SHA-256");
            }
            tokio::fs::rename(&tmp, &path).await.with_context(|| format!("renaming to {}", path.display()))
        };
        if let Err(e) = got.await {
            problems.push(format!("web list {:?}: {e:#}", l.name));
        }
    }
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(e)) = entries.next_entry().await {
            let name = e.file_name().to_string_lossy().into_owned();
            if !lists.iter().any(|l| l.sha256 == name) {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
    }
    problems
}

/// The filter while it runs.
struct Running {
    resolver: Arc<Resolver>,
    tasks: tokio::task::JoinSet<()>,
    redirected: bool,
    web_port: Option<u16>,
}

impl Running {
    async fn start(
        config: &WebConfig,
        filter: Arc<Filter>,
        visits: mpsc::Sender<visits::Visit>,
    ) -> anyhow::Result<Running> {
        let listen = SocketAddr::V4(config.listen);
        let upstreams = if config.upstreams.is_empty() {
            system_upstreams(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(), listen)
        } else {
            config.upstreams.clone()
        };
        if upstreams.is_empty() {
            bail!("no upstream resolver: set [web] upstreams or a nameserver in /etc/resolv.conf");
        }
        let udp = tokio::net::UdpSocket::bind(listen).await.with_context(|| format!("binding UDP {listen}"))?;
        let tcp = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding TCP {listen}"))?;
        let resolver = Arc::new(Resolver::new(
            filter,
            Cache::new(config.cache_entries.max(16), config.cache_max_ttl_secs, 60),
            upstreams,
            config.mark,
            Duration::from_millis(config.upstream_timeout_ms.max(100)),
            config.block_page,
            visits,
        ));
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(resolver.clone().serve_udp(Arc::new(udp)));
        tasks.spawn(resolver.clone().serve_tcp(tcp));
        match tokio::net::TcpListener::bind((config.block_page, 80)).await {
            Ok(l) => {
                tasks.spawn(sni::serve_block_page(resolver.clone(), l));
            }
            Err(e) => tracing::warn!(error = %e, addr = %config.block_page, "block page not served"),
        }
        let mut web_port = None;
        if config.web_port != 0 {
            let v4 = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.web_port))
                .await
                .with_context(|| format!("binding the SNI/Host filter on 127.0.0.1:{}", config.web_port))?;
            tasks.spawn(sni::serve(resolver.clone(), v4));
            // Without IPv6 on loopback there is no IPv6 web traffic to see.
            if let Ok(v6) = tokio::net::TcpListener::bind((Ipv6Addr::LOCALHOST, config.web_port)).await {
                tasks.spawn(sni::serve(resolver.clone(), v6));
            }
            web_port = Some(config.web_port);
        }
        let mut running = Running { resolver, tasks, redirected: false, web_port };
        if config.redirect {
            running.redirect(config).await?;
        }
        Ok(running)
    }

    /// Install (or replace, after a policy change) the nftables redirect.
    async fn redirect(&mut self, config: &WebConfig) -> anyhow::Result<()> {
        let r = nft::Redirect {
            dns: config.listen,
            mark: config.mark,
            block_dot: self.resolver.current().options().block_doh,
            web_port: self.web_port,
        };
        tokio::task::spawn_blocking(move || nft::install(&r)).await??;
        self.redirected = true;
        Ok(())
    }

    fn stop(mut self) {
        if self.redirected {
            if let Err(e) = nft::remove() {
                tracing::error!(error = %e, "removing the DNS redirect failed");
            }
        }
        self.tasks.abort_all();
    }
}

pub struct Web {
    pub recorder: Recorder,
    pub policy: watch::Receiver<Arc<EffectivePolicy>>,
    pub config: WebConfig,
    pub client: reqwest::Client,
    pub creds: Credentials,
    pub notices: Notices,
    pub stop: Stop,
}

/// Install the native host and listen for the extension's reports.
fn start_browser_reports(w: &Web) -> tokio::task::JoinHandle<()> {
    let c = &w.config;
    let installed = browser::install_extension(c, &w.stop.state_dir)
        .and_then(|id| browser::install_host(&c.browser_host, &c.browser_socket, &c.native_host_dirs, &id));
    if let Err(e) = installed {
        w.notices.set("browser", format!("browser extension not installed: {e:#}"));
    }
    let (socket, recorder, policy, notices) =
        (c.browser_socket.clone(), w.recorder.clone(), w.policy.clone(), w.notices.clone());
    tokio::spawn(async move {
        if let Err(e) = browser::serve(&socket, recorder, move || policy.borrow().doc.web.full_urls).await {
            notices.set("browser", format!("browser extension reports not received: {e:#}"));
        }
    })
}

pub async fn supervise(mut w: Web) {
    let (visit_tx, visit_rx) = mpsc::channel(8192);
    let flush = Duration::from_secs(w.config.visit_flush_secs.max(1));
    let visits = tokio::spawn(visits::run(visit_rx, w.recorder.clone(), flush, w.stop.clone()));
    let dir = w.stop.state_dir.join("web-lists");
    let mut running: Option<Running> = None;
    let mut built_for: Option<(WebOptions, Vec<WebListRef>)> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    let mut browser: Option<tokio::task::JoinHandle<()>> = None;
    // A table left by a crashed run would send DNS to nobody.
    if w.config.redirect {
        let _ = tokio::task::spawn_blocking(nft::remove).await;
    }
    loop {
        let p = w.policy.borrow_and_update().clone();
        if p.doc.web.filter {
            let want = (p.doc.web.clone(), p.web_lists.clone());
            if built_for.as_ref() != Some(&want) {
                let mut problems = fetch_lists(&w.client, &w.creds, &p.web_lists, &dir).await;
                let (opts, lists, d) = (want.0.clone(), want.1.clone(), dir.clone());
                let built = tokio::task::spawn_blocking(move || Filter::build(&opts, &lists, &d)).await;
                match built {
                    Ok((filter, warnings)) => {
                        problems.extend(warnings);
                        tracing::info!(rules = filter.rules(), "web filter rules loaded");
                        let filter = Arc::new(filter);
                        match &mut running {
                            Some(r) => {
                                if let Ok(mut f) = r.resolver.filter.write() {
                                    *f = filter;
                                }
                                // block_doh decides the DoT reset in the redirect too.
                                if r.redirected {
                                    if let Err(e) = r.redirect(&w.config).await {
                                        problems.push(format!("updating the redirect failed: {e:#}"));
                                    }
                                }
                                built_for = Some(want);
                            }
                            None => match Running::start(&w.config, filter, visit_tx.clone()).await {
                                Ok(r) => {
                                    tracing::info!(listen = %w.config.listen, "web filter running");
                                    running = Some(r);
                                    built_for = Some(want);
                                    w.notices.clear("web");
                                }
                                Err(e) => w.notices.set("web", format!("web filter could not start: {e:#}")),
                            },
                        }
                    }
                    Err(e) => problems.push(format!("building the web filter failed: {e}")),
                }
                match problems.first() {
                    Some(first) => {
                        w.notices.set("web-rules", format!("web filter: {} problem(s), first: {first}", problems.len()))
                    }
                    None => w.notices.clear("web-rules"),
                }
            }
            if let Some(r) = &running {
                r.resolver.note_visits.store(p.allows(Category::Web), Ordering::Relaxed);
                r.resolver.current().refresh(candor_proto::now_ms());
            }
        } else if let Some(r) = running.take() {
            r.stop();
            built_for = None;
            w.notices.clear("web");
            w.notices.clear("web-rules");
            tracing::info!("web filter stopped");
        }
        // The browser extension's reports are visits: taken only while web data is collected.
        if p.allows(Category::Web) && browser.as_ref().is_none_or(|b| b.is_finished()) {
            browser = Some(start_browser_reports(&w));
        } else if !p.allows(Category::Web) {
            if let Some(b) = browser.take() {
                b.abort();
                browser::remove_extension(&w.config);
            }
        }
        tokio::select! {
            changed = w.policy.changed() => if changed.is_err() { break },
            _ = tick.tick() => {}
            _ = w.stop.wait() => break,
        }
    }
    if let Some(r) = running.take() {
        r.stop();
    }
    if let Some(b) = browser.take() {
        b.abort();
        browser::remove_extension(&w.config);
    }
    drop(visit_tx);
    let _ = visits.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_from_resolv_conf_skip_ourselves() {
        let conf =
            "# c\nnameserver 10.0.0.1\nnameserver 127.0.0.153\nnameserver fe80::1%eth0\nsearch x\nnameserver bogus\n";
        let ours: SocketAddr = "127.0.0.153:53".parse().unwrap();
        assert_eq!(
            system_upstreams(conf, ours),
            ["10.0.0.1:53".parse::<SocketAddr>().unwrap(), "[fe80::1]:53".parse().unwrap()]
        );
    }
}
