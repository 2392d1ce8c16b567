//! Chat audit on the server. Messages from an import or the WeCom archive
//! connector are taken in here: stored once by msgid, indexed for substring
//! search, scanned by the DLP rules, errors kept. Visibility follows consent
//! ([`Visibility`]): a message is hidden while an external contact in it has
//! not agreed to archiving in that conversation, or an employee in it has not
//! consented to chat collection.

use crate::store::{ChatRow, NewAlert, Store, StoreError};
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
        let visibility = Visibility::now(store)?;
        let mut raised = 0;
        for &(k, id) in new_ids {
            let m = &msgs[k];
            if m.text.is_empty() || !visibility.shows(&m.from, &m.tolist, &m.roomid) {
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

    /// Search, leaving out what consent hides: how many messages match, and
    /// the page `q.offset..` of `q.limit` rows in the order asked. Relevance
    /// orders the [`RANKED`] newest matches ([`candor_chat::rank`]).
    pub fn search(
        &self,
        store: &dyn Store,
        mut q: SearchQuery,
        order: Order,
    ) -> crate::store::Result<(usize, Vec<ChatRow>)> {
        let visibility = Visibility::now(store)?;
        q.hidden = visibility.people.into_iter().collect();
        q.hidden_keys = visibility.scopes.iter().map(|(c, s)| candor_chat::consent::key(c, s)).collect();
        let ranked = order == Order::Relevance && !q.text.is_empty();
        let page = (q.offset, q.limit);
        if ranked {
            (q.offset, q.limit) = (0, RANKED);
        }
        let hits: Hits = self.index.search(&q).map_err(|e| match e {
            candor_chat::index::IndexError::QueryTooLong => StoreError::Invalid(e.to_string()),
            other => backend(other),
        })?;
        let mut ids: Vec<u64> = hits.ids.iter().map(|h| h.1).collect();
        let mut rows: HashMap<u64, ChatRow> = store.chat_rows(&ids)?.into_iter().map(|r| (r.id, r)).collect();
        if ranked {
            let candidates: Vec<(u64, i64, &str)> =
                hits.ids.iter().filter_map(|&(ts, id)| Some((id, ts, rows.get(&id)?.text.as_str()))).collect();
            ids = candor_chat::rank::order(&q.text, &candidates).into_iter().skip(page.0).take(page.1).collect();
        }
        Ok((hits.total, ids.iter().filter_map(|id| rows.remove(id)).collect()))
    }
}

/// Matches a relevance order looks at: the newest this many.
pub const RANKED: usize = 1000;

/// How search results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Newest,
    /// Whole-word occurrences first ([`candor_chat::rank`]), among the [`RANKED`] newest.
    Relevance,
}

/// What consent lets be shown now: people of the company without a granted
/// chat consent (or not known as employees) hide every message they take
/// part in; an external contact hides the messages of each conversation
/// (scope, [`candor_chat::consent`]) where their latest archiving consent is
/// not "agree" or was never given.
pub struct Visibility {
    pub people: HashSet<String>,
    /// (contact, scope)s not agreed.
    pub scopes: HashSet<(String, String)>,
}

impl Visibility {
    pub fn now(store: &dyn Store) -> crate::store::Result<Visibility> {
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
        let people = store
            .chat_people()?
            .into_iter()
            .filter(|p| !p.external && !consenting.contains(p.id.as_str()))
            .map(|p| p.id)
            .collect();
        // A record for the contact as a whole (scope "") counts in every
        // scope; the later of it and the scope's own decides.
        let latest: HashMap<(String, String), (i64, bool)> =
            store.contact_consents()?.into_iter().map(|c| ((c.contact, c.scope), (c.ts_ms, c.agree))).collect();
        let in_force = |contact: &str, scope: &str| {
            let own = latest.get(&(contact.to_string(), scope.to_string()));
            let whole = latest.get(&(contact.to_string(), String::new()));
            match (own, whole) {
                (Some(a), Some(b)) if b.0 > a.0 => b.1,
                (Some(a), _) => a.1,
                (None, Some(b)) => b.1,
                (None, None) => false,
            }
        };
        let scopes = store.chat_scopes()?.into_iter().filter(|(contact, scope)| !in_force(contact, scope)).collect();
        Ok(Visibility { people, scopes })
    }

    /// Whether a message of `from` to `tolist` (in `roomid`, if any) may be shown.
    pub fn shows(&self, from: &str, tolist: &[String], roomid: &str) -> bool {
        let people: Vec<&str> = participants(from, tolist).collect();
        !people.iter().any(|p| self.people.contains(*p))
            && candor_chat::consent::pairs(&people, roomid).iter().all(|p| !self.scopes.contains(p))
    }
}
