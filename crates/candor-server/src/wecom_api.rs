//! The qyapi HTTP APIs around the chat archive, called with an access token
//! got with the archive secret: who is archived (`get_permit_user_list`),
//! who agreed to archiving (`check_single_agree`, `check_room_agree`) and
//! what internal groups are called (`groupchat/get`). A periodic sync asks
//! about every one-to-one pair of an archived employee and every room with
//! external contacts seen in the archive, and appends what it learns to the
//! contact consent history (source `api`), next to what agree/disagree
//! messages say.
//!
//! WeCom answers per employee–contact pair and per room, and Candor keeps
//! consent the same way ([`candor_chat::consent`] scopes; decision 0013).

use crate::config::WecomConfig;
use crate::store::{ChatRoomName, ContactConsent, Store};
use candor_chat::consent;
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

    /// The statuses in an answer, each in the scope `scope` gives it.
    fn agreements(v: &Value, scope: impl Fn(&Value) -> Option<String>) -> Vec<ContactConsent> {
        let Some(list) = v.get("agreeinfo").and_then(Value::as_array) else { return Vec::new() };
        list.iter()
            .filter_map(|a| {
                // The API's own spelling: `exteranalopenid`.
                let contact = a.get("exteranalopenid").and_then(Value::as_str)?.to_string();
                let status = a.get("agree_status").and_then(Value::as_str)?;
                let secs = a.get("status_change_time").and_then(Value::as_i64).unwrap_or(0);
                Some(ContactConsent {
                    contact,
                    scope: scope(a)?,
                    agree: matches!(status, "Agree" | "Default_Agree"),
                    ts_ms: secs.saturating_mul(1000),
                    source: "api".into(),
                })
            })
            .collect()
    }

    /// Status of each (employee userid, external contact) pair, in the
    /// scope of that employee's one-to-one chat.
    pub async fn single(&self, token: &str, pairs: &[(String, String)]) -> anyhow::Result<Vec<ContactConsent>> {
        let mut out = Vec::new();
        for chunk in pairs.chunks(PAIRS_PER_CALL) {
            let info: Vec<Value> = chunk.iter().map(|(u, c)| json!({"userid": u, "exteranalopenid": c})).collect();
            let v = self.post(token, "check_single_agree", json!({"info": info})).await?;
            out.extend(Self::agreements(&v, |a| a.get("userid").and_then(Value::as_str).map(consent::user)));
        }
        Ok(out)
    }

    /// Status of the external contacts in a group chat, in its scope.
    pub async fn room(&self, token: &str, roomid: &str) -> anyhow::Result<Vec<ContactConsent>> {
        let v = self.post(token, "check_room_agree", json!({"roomid": roomid})).await?;
        Ok(Self::agreements(&v, |_| Some(consent::room(roomid))))
    }

    /// The employees whose chats WeCom archives (`get_permit_user_list`, all editions).
    pub async fn permit_users(&self, token: &str) -> anyhow::Result<Vec<String>> {
        let v = self.post(token, "get_permit_user_list", json!({})).await?;
        let ids =
            v.get("ids").and_then(Value::as_array).ok_or_else(|| anyhow::anyhow!("get_permit_user_list: no ids"))?;
        Ok(ids.iter().filter_map(Value::as_str).map(String::from).collect())
    }

    /// An internal group chat's name, creator and size (`groupchat/get`).
    pub async fn room_info(&self, token: &str, roomid: &str) -> anyhow::Result<ChatRoomName> {
        let v = self.post(token, "groupchat/get", json!({"roomid": roomid})).await?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").chars().take(200).collect::<String>();
        Ok(ChatRoomName {
            roomid: roomid.to_string(),
            name: text("roomname"),
            creator: text("creator"),
            members: v.get("members").and_then(Value::as_array).map_or(0, |m| m.len() as u32),
        })
    }
}

/// What one sync did.
#[derive(Debug, Default)]
pub struct Synced {
    pub statuses: usize,
    pub permitted: usize,
    pub rooms_named: usize,
}

/// One sync: the permit list, consent of the permitted employees' contacts
/// (WeCom answers only for them) and of rooms with contacts, and internal
/// rooms' names. A room that cannot be described is recorded as an error and
/// the sync goes on.
pub async fn sync(api: &QyApi, store: &Arc<dyn Store>) -> anyhow::Result<Synced> {
    let token = api.token().await?;
    let permitted = api.permit_users(&token).await?;
    let s = store.clone();
    let (pairs, rooms, internal) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::store::StoreError>((s.chat_pairs()?, s.chat_rooms()?, s.chat_internal_rooms()?))
    })
    .await??;
    let allowed: std::collections::HashSet<&str> = permitted.iter().map(String::as_str).collect();
    let pairs: Vec<(String, String)> = pairs.into_iter().filter(|(u, _)| allowed.contains(u.as_str())).collect();
    let mut found = api.single(&token, &pairs).await?;
    for room in &rooms {
        found.extend(api.room(&token, room).await?);
    }
    let mut named = Vec::new();
    let mut failed = Vec::new();
    for room in &internal {
        match api.room_info(&token, room).await {
            Ok(r) => named.push(r),
            Err(e) => failed.push((format!("groupchat/get {room}"), format!("{e:#}"), None)),
        }
    }
    let done = Synced { statuses: found.len(), permitted: permitted.len(), rooms_named: named.len() };
    let s = store.clone();
    tokio::task::spawn_blocking(move || {
        let now = candor_proto::now_ms();
        s.set_chat_permit_users(&permitted, now)?;
        for a in &found {
            s.record_contact_consent(a)?;
        }
        for r in &named {
            s.set_chat_room_name(r, now)?;
        }
        if !failed.is_empty() {
            s.add_chat_errors("wecom-api", &failed, now)?;
        }
        Ok::<_, crate::store::StoreError>(())
    })
    .await??;
    Ok(done)
}

/// Syncs every `consent_sync_secs` (started with the connector).
pub fn spawn(config: &WecomConfig, store: Arc<dyn Store>) -> anyhow::Result<()> {
    if config.consent_sync_secs == 0 {
        return Ok(());
    }
    let api = QyApi::new(config)?;
    let every = Duration::from_secs(config.consent_sync_secs);
    tokio::spawn(async move {
        loop {
            match sync(&api, &store).await {
                Ok(d) => tracing::info!(
                    statuses = d.statuses,
                    permitted = d.permitted,
                    rooms_named = d.rooms_named,
                    "WeCom archiving consent synced"
                ),
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
