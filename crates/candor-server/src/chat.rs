//! Chat audit on the server. Messages from an import (and, later, the WeCom
//! archive connector) are taken in here: stored once by msgid, indexed for
//! substring search, scanned by the DLP rules, errors kept. Visibility
//! follows consent: a message is hidden while any external contact in it has
//! not agreed to archiving, or any employee in it has not consented to chat
//! collection.

use crate::store::{NewAlert, Store, StoreError};
use candor_chat::index::{ChatIndex, Entry, Hits, SearchQuery};
use candor_chat::message::ChatMessage;
use candor_dlp::{RuleSet, RuleSpec};
use candor_proto::{now_ms, Category};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock};

const REINDEX_BATCH: u32 = 10_000;
/// Alerts carry at most this many evidence snippets.
const MAX_EVIDENCE: usize = 5;

pub struct Chat {
    index: ChatIndex,
    rules: RwLock<Arc<RuleSet>>,
    sink: crate::alert_sink::AlertSink,
}

/// What one take-in did (the API's import report).
#[derive(Debug, Default, serde::Serialize)]
pub struct TakeIn {
    #[serde(flatten)]
    pub insert: crate::store::ChatInsert,
    pub errors: usize,
    pub alerts: usize,
    /// The first errors, for the person who sent the file.
    pub first_errors: Vec<String>,
}

/// Sender and receivers of a message.
pub fn participants<'a>(from: &'a str, tolist: &'a [String]) -> impl Iterator<Item = &'a str> {
    std::iter::once(from).chain(tolist.iter().map(String::as_str))
}

/// The rules in force: as an admin set them, else the defaults.
pub fn stored_rules(store: &dyn Store) -> crate::store::Result<Vec<RuleSpec>> {
    match store.dlp_rules()? {
        Some(json) => serde_json::from_str(&json).map_err(|e| StoreError::Backend(format!("stored DLP rules: {e}"))),
        None => Ok(default_rules()),
    }
}

/// The rules used until an admin sets others: ID and bank card numbers.
fn default_rules() -> Vec<RuleSpec> {
    use candor_dlp::{Detector, RuleKind, Severity};
    vec![
        RuleSpec {
            name: "身份证号".into(),
            severity: Severity::Critical,
            kind: RuleKind::Detector { detector: Detector::ChineseId },
        },
        RuleSpec {
            name: "银行卡号".into(),
            severity: Severity::Critical,
            kind: RuleKind::Detector { detector: Detector::BankCard },
        },
    ]
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl Chat {
    /// Opens the index under `dir` and indexes whatever the store has that the
    /// index does not (after a crash between the two commits).
    pub fn open(dir: &Path, store: &dyn Store, sink: crate::alert_sink::AlertSink) -> anyhow::Result<Chat> {
        let index = ChatIndex::open(dir)?;
        let specs = stored_rules(store)?;
        let rules = RuleSet::compile(&specs).map_err(|e| anyhow::anyhow!("stored DLP rules: {e}"))?;
        let chat = Chat { index, rules: RwLock::new(Arc::new(rules)), sink };
        chat.catch_up(store)?;
        chat.apply_purges(store)?;
        Ok(chat)
    }

    fn catch_up(&self, store: &dyn Store) -> anyhow::Result<()> {
        let mut upto = self.index.indexed_upto()?;
        let mut n = 0usize;
        loop {
            let rows = store.chat_after(upto, REINDEX_BATCH)?;
            let Some(last) = rows.last().map(|r| r.id) else { break };
            for r in &rows {
                let people = participants(&r.from, &r.tolist).collect();
                self.index.add(&Entry {
                    id: r.id,
                    ts_ms: r.ts_ms,
                    text: &r.text,
                    people,
                    room: &r.roomid,
                    kind: &r.msgtype,
                })?;
            }
            n += rows.len();
            upto = last;
            self.index.commit(upto)?;
        }
        if n > 0 {
            tracing::info!(messages = n, "chat search index caught up with the store");
        }
        Ok(())
    }

    /// Deletes the index entries of purged messages.
    pub fn apply_purges(&self, store: &dyn Store) -> crate::store::Result<usize> {
        let mut total = 0;
        loop {
            let ids = store.chat_unindex_pending(REINDEX_BATCH)?;
            if ids.is_empty() {
                return Ok(total);
            }
            for id in &ids {
                self.index.delete(*id);
            }
            self.index.commit(self.index.indexed_upto().map_err(backend)?).map_err(backend)?;
            store.chat_unindexed(&ids)?;
            total += ids.len();
        }
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().map(|r| r.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Validates, stores and puts in force a new rule list.
    pub fn set_rules(&self, store: &dyn Store, specs: &[RuleSpec], by: &str) -> crate::store::Result<()> {
        let compiled = RuleSet::compile(specs).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let json = serde_json::to_string(specs).map_err(backend)?;
        store.set_dlp_rules(&json, by, now_ms())?;
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(compiled);
        Ok(())
    }

    /// Stores, indexes and scans `msgs`; `errors` are (position, error, raw) of
    /// input that could not be read, kept in the store.
    pub fn take_in(
        &self,
        store: &dyn Store,
        source: &str,
        msgs: &[ChatMessage],
        errors: Vec<(String, String, Option<String>)>,
    ) -> crate::store::Result<TakeIn> {
        let now = now_ms();
        let mut out = TakeIn {
            errors: errors.len(),
            first_errors: errors.iter().take(20).map(|(p, e, _)| format!("{p}: {e}")).collect(),
            ..Default::default()
        };
        if !errors.is_empty() {
            store.add_chat_errors(source, &errors, now)?;
        }
        out.insert = store.chat_insert(msgs, source, now)?;
        if out.insert.new_ids.is_empty() {
            return Ok(out);
        }
        for &(k, id) in &out.insert.new_ids {
            let m = &msgs[k];
            let people = participants(&m.from, &m.tolist).collect();
            self.index
                .add(&Entry { id, ts_ms: m.ts_ms, text: &m.text, people, room: &m.roomid, kind: &m.msgtype })
                .map_err(backend)?;
        }
        let upto = store.chat_max_id()?;
        self.index.commit(upto).map_err(backend)?;
        out.alerts = self.scan(store, msgs, &out.insert.new_ids)?;
        Ok(out)
    }

    /// DLP over newly stored messages that are visible (consented): content
    /// nobody may see is not scanned either.
    fn scan(&self, store: &dyn Store, msgs: &[ChatMessage], new_ids: &[(usize, u64)]) -> crate::store::Result<usize> {
        let rules = self.rules();
        if rules.is_empty() {
            return Ok(0);
        }
        let hidden: HashSet<String> = hidden_people(store)?.into_iter().collect();
        let mut raised = 0;
        for &(k, id) in new_ids {
            let m = &msgs[k];
            if m.text.is_empty() || participants(&m.from, &m.tolist).any(|p| hidden.contains(p)) {
                continue;
            }
            let scan = rules.scan(&m.text);
            let Some(top) = scan.findings.iter().map(|f| f.severity).max() else { continue };
            let mut names: Vec<&str> = scan.findings.iter().map(|f| &*f.rule).collect();
            names.dedup();
            let evidence: Vec<String> =
                scan.findings.iter().take(MAX_EVIDENCE).map(|f| candor_dlp::evidence(&m.text, f)).collect();
            let alert = NewAlert {
                ts_ms: m.ts_ms,
                agent_id: 0,
                kind: "dlp_chat",
                severity: top,
                detail: format!("{} in a chat message from {}", names.join(", "), m.from),
                data: serde_json::json!({
                    "message_id": id, "msgid": m.msgid, "from": m.from, "roomid": m.roomid,
                    "rules": names, "findings": scan.findings.len() + scan.more, "evidence": evidence,
                }),
                source_seq: id,
            };
            if store.raise_unbound_alert(&alert)? {
                self.sink.send(&alert);
                raised += 1;
            }
        }
        Ok(raised)
    }

    /// Search, leaving out what consent hides.
    pub fn search(&self, store: &dyn Store, mut q: SearchQuery) -> crate::store::Result<Hits> {
        q.hidden = hidden_people(store)?;
        self.index.search(&q).map_err(|e| match e {
            candor_chat::index::IndexError::QueryTooLong => StoreError::Invalid(e.to_string()),
            other => backend(other),
        })
    }
}

/// Everyone whose chats may not be shown now: external contacts whose latest
/// archiving consent is not "agree" (or who never answered), and people of
/// the company without a granted chat consent (or not known as employees).
pub fn hidden_people(store: &dyn Store) -> crate::store::Result<Vec<String>> {
    let agreed: HashSet<String> =
        store.contact_consents()?.into_iter().filter(|c| c.agree).map(|c| c.contact).collect();
    let usernames: HashMap<u64, String> =
        store.employees()?.into_iter().filter_map(|e| e.username.map(|u| (e.id, u))).collect();
    // Consents come in id order: the last one per employee is in force.
    let mut chat_consent: HashMap<u64, bool> = HashMap::new();
    for c in store.consents(None)?.into_iter().filter(|c| c.category == Category::Chat) {
        chat_consent.insert(c.employee_id, c.granted);
    }
    let consenting: HashSet<&str> = chat_consent
        .iter()
        .filter(|(_, granted)| **granted)
        .filter_map(|(id, _)| usernames.get(id).map(String::as_str))
        .collect();
    Ok(store
        .chat_people()?
        .into_iter()
        .filter(|p| if p.external { !agreed.contains(&p.id) } else { !consenting.contains(p.id.as_str()) })
        .map(|p| p.id)
        .collect())
}
