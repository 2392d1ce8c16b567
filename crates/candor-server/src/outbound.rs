//! The HTTPS client for calls the server makes to other services (the WeCom
//! robot and qyapi): the system's CA roots, bounded timeouts.

use std::sync::Arc;
use std::time::Duration;

const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

pub fn client() -> anyhow::Result<reqwest::Client> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Ok(pem) = std::fs::read(SYSTEM_ROOTS) {
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem).flatten() {
            let _ = roots.add(cert);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()?)
}
