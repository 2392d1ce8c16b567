//! `candor agent enroll TOKEN`: pin the server's CA from the token and trade
//! the single-use token for this agent's credentials.

use crate::credentials::Credentials;
use crate::net::{error_text, pinned_client};
use anyhow::{bail, Context};
use candor_proto::api::{EnrollRequest, EnrollResponse};
use candor_proto::token::EnrollToken;
use std::path::Path;

pub async fn enroll(token: &str, state_dir: &Path) -> anyhow::Result<Credentials> {
    let token = EnrollToken::decode(token).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(state_dir).with_context(|| format!("creating {}", state_dir.display()))?;
    let client = pinned_client(&token.ca)?;
    let req = EnrollRequest {
        secret: token.secret.clone(),
        hostname: crate::host::hostname(),
        os: crate::host::os_name(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
    };
    let resp = client
        .post(format!("{}/api/v1/enroll", token.url))
        .json(&req)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {}: {}", token.url, crate::host::error_chain(&e)))?;
    if !resp.status().is_success() {
        bail!("enrollment refused: {}", error_text(resp).await);
    }
    let r: EnrollResponse = resp.json().await.context("reading the enrollment answer")?;
    let creds = Credentials { server_url: token.url, ca_fingerprint: token.ca, agent_id: r.agent_id, secret: r.secret };
    creds.save(state_dir)?;
    let _ = std::fs::remove_file(state_dir.join("revoked"));
    Ok(creds)
}
