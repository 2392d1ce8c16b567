//! The qyapi HTTP APIs around the chat archive that say who agreed to
//! archiving (`msgaudit/check_single_agree`, `msgaudit/check_room_agree`),
//! called with an access token got with the archive secret. A periodic sync
//! asks about every one-to-one pair and every room with external contacts
//! seen in the archive, and appends what it learns to the contact consent
//! history (source `api`), next to what agree/disagree messages say.
//!
//! WeCom answers per employee–contact pair; Candor keeps consent per contact,
//! and the latest status by time wins (see decision 0013).

use crate::config::WecomConfig;
use crate::store::Store;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Entries per `check_single_agree` request (the API's maximum).
const PAIRS_PER_CALL: usize = 100;

pub struct QyApi {
    http: reqwest::Client,
    base: String,
    corpid: String,
    secret: String,
}

/// One contact's archiving status as the API reports it.
#[derive(Debug, PartialEq)]
pub struct Agreement {
    pub contact: String,
    pub agree: bool,
    pub ts_ms: i64,
}

impl QyApi {
    pub fn new(config: &WecomConfig) -> anyhow::Result<QyApi> {
        Ok(QyApi {
            http: crate::outbound::client()?,
            base: config.api_base.trim_end_matches('/').to_string(),
            corpid: config.corpid.clone(),
            secret: config.secret.clone(),
        })
    }

    async fn checked(resp: reqwest::Response, what: &str) -> anyhow::Result<Value> {
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|e| anyhow::anyhow!("{what}: HTTP {status}, not JSON: {e}"))?;
        match v.get("errcode").and_then(Value::as_i64).unwrap_or(0) {
            0 => Ok(v),
            code => anyhow::bail!("{what}: errcode {code}: {}", v.get("errmsg").and_then(Value::as_str).unwrap_or("")),
        }
    }

    /// `gettoken` with the archive secret.
    pub async fn token(&self) -> anyhow::Result<String> {
        let url = format!("{}/cgi-bin/gettoken", self.base);
        let resp = self.http.get(url).query(&[("corpid", &self.corpid), ("corpsecret", &self.secret)]).send().await?;
        let v = Self::checked(resp, "gettoken").await?;
        v.get("access_token")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| anyhow::anyhow!("gettoken: no access_token"))
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let url = format!("{}/cgi-bin/msgaudit/{path}", self.base);
        let resp = self.http.post(url).query(&[("access_token", token)]).json(&body).send().await?;
        Self::checked(resp, path).await
    }

    fn agreements(v: &Value) -> Vec<Agreement> {
        let Some(list) = v.get("agreeinfo").and_then(Value::as_array) else { return Vec::new() };
        list.iter()
            .filter_map(|a| {
                // The API's own spelling: `exteranalopenid`.
                let contact = a.get("exteranalopenid").and_then(Value::as_str)?.to_string();
                let status = a.get("agree_status").and_then(Value::as_str)?;
                let secs = a.get("status_change_time").and_then(Value::as_i64).unwrap_or(0);
                Some(Agreement {
                    contact,
                    agree: matches!(status, "Agree" | "Default_Agree"),
                    ts_ms: secs.saturating_mul(1000),
                })
            })
            .collect()
    }

    /// Status of each (employee userid, external contact) pair.
    pub async fn single(&self, token: &str, pairs: &[(String, String)]) -> anyhow::Result<Vec<Agreement>> {
        let mut out = Vec::new();
        for chunk in pairs.chunks(PAIRS_PER_CALL) {
            let info: Vec<Value> = chunk.iter().map(|(u, c)| json!({"userid": u, "exteranalopenid": c})).collect();
            out.extend(Self::agreements(&self.post(token, "check_single_agree", json!({"info": info})).await?));
        }
        Ok(out)
    }

    /// Status of the external contacts in a group chat.
    pub async fn room(&self, token: &str, roomid: &str) -> anyhow::Result<Vec<Agreement>> {
        Ok(Self::agreements(&self.post(token, "check_room_agree", json!({"roomid": roomid})).await?))
    }
}

/// One sync: returns how many statuses were recorded.
pub async fn sync(api: &QyApi, store: &Arc<dyn Store>) -> anyhow::Result<usize> {
    let token = api.token().await?;
    let s = store.clone();
    let (pairs, rooms) =
        tokio::task::spawn_blocking(move || Ok::<_, crate::store::StoreError>((s.chat_pairs()?, s.chat_rooms()?)))
            .await??;
    let mut found = api.single(&token, &pairs).await?;
    for room in &rooms {
        found.extend(api.room(&token, room).await?);
    }
    let n = found.len();
    let s = store.clone();
    tokio::task::spawn_blocking(move || {
        for a in &found {
            s.record_contact_consent(&a.contact, a.agree, a.ts_ms, "api")?;
        }
        Ok::<_, crate::store::StoreError>(())
    })
    .await??;
    Ok(n)
}

/// Syncs every `consent_sync_secs` while the connector is configured.
pub fn spawn(config: &WecomConfig, store: Arc<dyn Store>) -> anyhow::Result<()> {
    if config.sdk_path.is_empty() || config.consent_sync_secs == 0 {
        return Ok(());
    }
    let api = QyApi::new(config)?;
    let every = Duration::from_secs(config.consent_sync_secs);
    tokio::spawn(async move {
        loop {
            match sync(&api, &store).await {
                Ok(n) => tracing::info!(statuses = n, "WeCom archiving consent synced"),
                Err(e) => {
                    tracing::warn!(error = %e, "WeCom archiving consent sync failed");
                    let _ = store.add_chat_errors(
                        "wecom-api",
                        &[("consent sync".into(), e.to_string(), None)],
                        candor_proto::now_ms(),
                    );
                }
            }
            tokio::time::sleep(every).await;
        }
    });
    Ok(())
}
