//! The server's own PKI: a CA created once per data directory (its SHA-256
//! fingerprint goes into enrollment tokens, so agents pin it), and a server
//! certificate re-issued from it at every start for the current names.

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::Path;
use std::sync::Arc;

pub struct Pki {
    pub ca_der: Vec<u8>,
    pub ca_pem: String,
    /// Hex SHA-256 of the CA certificate DER.
    pub ca_fingerprint: String,
    ca_key: KeyPair,
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "Candor server CA");
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(p)
}

impl Pki {
    /// Load the CA from `dir`, creating it (mode 0600 key) on first use.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        if !cert_path.exists() {
            let key = KeyPair::generate().context("generating CA key")?;
            let cert = ca_params()?.self_signed(&key).context("self-signing CA")?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            std::fs::write(&cert_path, cert.pem()).with_context(|| format!("writing {}", cert_path.display()))?;
        }
        let ca_pem = std::fs::read_to_string(&cert_path).with_context(|| format!("reading {}", cert_path.display()))?;
        let key_pem = std::fs::read_to_string(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
        let ca_key = KeyPair::from_pem(&key_pem).context("parsing CA key")?;
        let ca_der = pem_to_der(&ca_pem).context("parsing CA certificate")?;
        Ok(Pki { ca_fingerprint: candor_proto::token::sha256_hex(&ca_der), ca_der, ca_pem, ca_key })
    }

    /// Issue a server certificate for `names` and build the rustls config.
    pub fn server_config(&self, names: &[String]) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        // Re-signing the same CA parameters with the same key yields an issuer
        // with the same name and key identifier as the stored CA certificate.
        let issuer = ca_params()?.self_signed(&self.ca_key)?;
        let leaf_key = KeyPair::generate()?;
        let mut p = CertificateParams::new(names.to_vec()).context("server certificate names")?;
        p.distinguished_name.push(DnType::CommonName, "Candor server");
        let leaf = p.signed_by(&leaf_key, &issuer, &self.ca_key).context("signing server certificate")?;
        let chain = vec![CertificateDer::from(leaf.der().to_vec()), CertificateDer::from(self.ca_der.clone())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("building TLS config")?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(body.trim())?)
}

/// Write a file only its owner can read.
pub fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}
