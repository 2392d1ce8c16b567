//! Storage behind traits: [`Store`] for records, [`blob::BlobStore`] for large
//! objects. The embedded default is SQLite ([`sqlite::SqliteStore`]) and a
//! content-addressed folder ([`blob::FolderBlobStore`]); scale-out backends
//! (PostgreSQL, S3) implement the same traits.
//!
//! Methods are synchronous; async callers run them on the blocking pool. The
//! ingest path has one writer (see `crate::ingest`), which calls
//! [`Store::ingest`] with grouped batches so that one commit covers many.

pub mod blob;
pub mod sqlite;

use candor_proto::policy::PolicyDoc;
use candor_proto::{Category, Event};
use serde::Serialize;

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("storage error: {0}")]
    Backend(String),
}

/// One agent's batch on its way to the store, already validated and filtered.
#[derive(Debug)]
pub struct IngestItem {
    pub agent_id: u64,
    pub floor: u64,
    /// Allowed events, seq-ascending.
    pub events: Vec<Event>,
    /// Seqs refused by policy × consent (counted, not stored, but acknowledged).
    pub refused: Vec<u64>,
    /// Alerts this batch raises (deduplicated on agent, kind and source seq).
    pub alerts: Vec<NewAlert>,
    /// Activity rollup deltas, applied for newly stored events only.
    pub rollups: Vec<crate::ingest::rollup::RollupDelta>,
    /// Application catalogue entries the agent sent.
    pub apps: Vec<crate::ingest::rollup::AppUpsert>,
    /// Web visit rollup deltas, applied for newly stored events only.
    pub web: Vec<crate::ingest::web_rollup::WebDelta>,
    /// Screen frames (already in the blob store) to index.
    pub screens: Vec<ScreenFrame>,
}

/// Alert severity: the same scale as content rules', so a DLP rule's
/// severity is its alert's.
pub use candor_dlp::Severity;

#[derive(Debug, Clone)]
pub struct NewAlert {
    pub ts_ms: i64,
    pub agent_id: u64,
    pub kind: &'static str,
    pub severity: Severity,
    pub detail: String,
    pub data: serde_json::Value,
    pub source_seq: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: u64,
    pub ts_ms: i64,
    pub agent_id: Option<u64>,
    pub kind: String,
    pub severity: String,
    pub detail: String,
    pub data: serde_json::Value,
    pub status: String,
    pub assignee: Option<String>,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertComment {
    pub id: u64,
    pub author: String,
    pub text: String,
    pub ts_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub agent_id: Option<u64>,
    pub scope: Option<Vec<u64>>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: u32,
}

/// Per-category totals over a time range.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryTotal {
    pub category: Category,
    pub events: u64,
    /// Sum of span durations (activity time once the activity collector lands).
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct IngestOutcome {
    pub acked: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub refused: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Admin {
    pub id: u64,
    pub username: String,
    pub role: crate::roles::Role,
    /// Department scope of a department manager (each with its sub-departments).
    pub departments: Vec<u64>,
    pub lang: String,
    pub totp_enabled: bool,
    pub locked_until_ms: i64,
    pub disabled: bool,
}

/// What login needs beyond [`Admin`].
#[derive(Debug, Clone)]
pub struct LoginInfo {
    pub admin: Admin,
    pub password_hash: String,
    pub totp_secret: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AdminUpdate {
    pub role: Option<crate::roles::Role>,
    pub departments: Option<Vec<u64>>,
    pub disabled: Option<bool>,
    pub unlock: bool,
    pub lang: Option<String>,
}

/// One line of an org import: a department path and an optional employee.
#[derive(Debug, Clone)]
pub struct OrgRow {
    pub line: usize,
    /// e.g. ["总部", "销售部"]
    pub department_path: Vec<String>,
    pub employee_name: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub departments_created: u64,
    pub employees_created: u64,
    pub employees_updated: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Department {
    pub id: u64,
    pub name: String,
    pub parent_id: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Employee {
    pub id: u64,
    pub name: String,
    pub username: Option<String>,
    pub department_id: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: u64,
    pub department_id: Option<u64>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub used_ms: Option<i64>,
    pub used_by_agent: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Agent {
    pub id: u64,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub department_id: Option<u64>,
    pub employee_id: Option<u64>,
    pub enrolled_ms: i64,
    pub revoked_ms: Option<i64>,
    pub revoked_reason: Option<String>,
    pub last_seen_ms: Option<i64>,
    pub online: bool,
    pub users: Vec<String>,
    pub addresses: Vec<String>,
    pub applied_policy: Option<String>,
    pub spool_events: u64,
    pub notices: Vec<String>,
    pub acked_seq: u64,
    pub refused_events: u64,
    /// Personal-device mode: collects nothing but system events.
    pub personal: bool,
}

/// What authenticates an agent, cached by the API layer.
#[derive(Debug, Clone)]
pub struct AgentCredential {
    pub secret_hash: String,
    pub revoked_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OfflineGap {
    pub agent_id: u64,
    pub offline_from_ms: i64,
    pub offline_to_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub agent_id: u64,
    pub seq: u64,
    pub ts_ms: i64,
    pub duration_ms: Option<u64>,
    pub category: Category,
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub agent_id: Option<u64>,
    /// Restrict to these agents (a department manager's scope).
    pub scope: Option<Vec<u64>>,
    pub category: Option<Category>,
    /// Payload type, e.g. `software_control`.
    pub kind: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Resume after this (ts, agent, seq).
    pub after: Option<(i64, u64, u64)>,
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub id: u64,
    pub name: String,
    pub revision: u64,
    pub updated_ms: i64,
    pub doc: PolicyDoc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Global,
    Department,
    Agent,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Department => "department",
            Scope::Agent => "agent",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    pub scope: Scope,
    /// Department or agent id; 0 for global.
    pub target: u64,
    pub policy_id: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsentRecord {
    pub id: u64,
    pub employee_id: u64,
    pub category: Category,
    pub granted: bool,
    pub method: String,
    pub note: Option<String>,
    pub recorded_by: String,
    pub recorded_ms: i64,
    /// The monitoring notice version answered (portal consent).
    pub notice_version: Option<u64>,
    /// Blob key of the scanned signed form (paper consent).
    pub scan: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewConsent {
    pub employee_id: u64,
    pub category: Category,
    pub granted: bool,
    pub method: String,
    pub note: Option<String>,
    pub recorded_by: String,
    pub notice_version: Option<u64>,
    pub scan: Option<String>,
}

/// One published version of the company's monitoring notice.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub version: u64,
    pub body: crate::notice::NoticeBody,
    pub published_by: String,
    pub published_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccessEntry {
    pub id: u64,
    pub ts_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Everything the policy resolver needs to know about one agent.
#[derive(Debug, Clone, Default)]
pub struct PolicyInputs {
    /// Most specific first: agent, departments from nearest to root, global.
    pub candidates: Vec<(Scope, Policy)>,
    pub employees: Vec<u64>,
    /// Latest consent per (employee, category).
    pub consents: Vec<ConsentRecord>,
    /// Personal-device mode: nothing but system events, whatever the policy.
    pub personal: bool,
    /// The notice in force, if some of `employees` have not answered it.
    pub notice: Option<candor_proto::policy::NoticeDue>,
}

/// Console accounts and their sessions.
pub trait AdminStore {
    fn admin_count(&self) -> Result<u64>;
    fn admins(&self) -> Result<Vec<Admin>>;
    fn create_admin(
        &self,
        username: &str,
        password_hash: &str,
        role: crate::roles::Role,
        departments: &[u64],
    ) -> Result<u64>;
    fn update_admin(&self, id: u64, u: &AdminUpdate) -> Result<()>;
    fn set_admin_password(&self, username: &str, password_hash: &str) -> Result<()>;
    fn set_admin_totp(&self, id: u64, secret: Option<&str>) -> Result<()>;
    fn login_info(&self, username: &str) -> Result<Option<LoginInfo>>;
    /// Count a failed login; lock the account for `lock_ms` at `max_failures`.
    /// Returns the lock deadline (0 when not locked).
    fn login_failed(&self, id: u64, now_ms: i64, max_failures: u32, lock_ms: i64) -> Result<i64>;
    fn login_succeeded(&self, id: u64) -> Result<()>;
    fn create_session(&self, admin_id: u64, token_hash: &str, expires_ms: i64) -> Result<()>;
    fn session_admin(&self, token_hash: &str, now_ms: i64) -> Result<Option<Admin>>;
    fn delete_session(&self, token_hash: &str) -> Result<()>;
}

/// The alerts inbox.
pub trait AlertStore {
    fn alerts(&self, q: &AlertQuery) -> Result<Vec<Alert>>;
    fn alert(&self, id: u64) -> Result<Option<(Alert, Vec<AlertComment>)>>;
    fn update_alert(&self, id: u64, status: Option<&str>, assignee: Option<Option<&str>>) -> Result<()>;
    fn comment_alert(&self, id: u64, author: &str, text: &str) -> Result<u64>;
}

/// One row of the per-day activity rollup.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ActivityRow {
    pub day: String,
    pub agent_id: u64,
    pub user: String,
    pub app: String,
    pub state: String,
    pub duration_ms: i64,
    pub spans: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// An application as the catalogue knows it (icon served separately).
#[derive(Debug, Clone, Serialize)]
pub struct Application {
    pub app: String,
    pub desktop_id: Option<String>,
    pub name: Option<String>,
    pub name_zh: Option<String>,
    pub categories: Vec<String>,
    pub has_icon: bool,
    pub first_seen_ms: i64,
}

/// An admin's classification of an application; department 0 is company-wide.
#[derive(Debug, Clone, Serialize)]
pub struct AppClass {
    pub app: String,
    pub department_id: u64,
    pub class: String,
    pub updated_by: String,
    pub updated_ms: i64,
}

/// Activity rollups and the application catalogue.
pub trait ActivityStore {
    /// Rollup rows for company days `from..=to` (YYYY-MM-DD), optionally for some agents only.
    fn activity_rows(&self, from: &str, to: &str, agents: Option<&[u64]>) -> Result<Vec<ActivityRow>>;
    fn applications(&self) -> Result<Vec<Application>>;
    fn app_icon(&self, app: &str) -> Result<Option<Vec<u8>>>;
    fn app_classes(&self) -> Result<Vec<AppClass>>;
    /// Set (or with `None` clear) the class of `app` for a department (0: company-wide).
    fn set_app_class(&self, app: &str, department_id: u64, class: Option<&str>, by: &str, now_ms: i64) -> Result<()>;
}

#[derive(Debug, Clone, Serialize)]
pub struct LegalHold {
    pub employee_id: u64,
    pub reason: String,
    pub set_by: String,
    pub set_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PurgeRecord {
    pub id: u64,
    pub ts_ms: i64,
    pub category: String,
    pub cutoff_ms: i64,
    pub events: u64,
    pub rollups: u64,
    pub held_endpoints: u64,
}

/// Retention: purges and the legal holds that suspend them.
pub trait RetentionStore {
    fn legal_holds(&self) -> Result<Vec<LegalHold>>;
    /// Place (`Some(reason)`) or release (`None`) a hold on an employee.
    fn set_legal_hold(&self, employee_id: u64, reason: Option<&str>, by: &str, now_ms: i64) -> Result<()>;
    /// Delete `category` events older than `cutoff_ms` (and, for activity, the
    /// rollup days before `cutoff_day`), except on endpoints of employees
    /// under hold; in chunks, so ingest goes on meanwhile. Logged.
    fn purge(&self, category: Category, cutoff_ms: i64, cutoff_day: Option<&str>, now_ms: i64) -> Result<PurgeRecord>;
    fn purge_log(&self, limit: u32) -> Result<Vec<PurgeRecord>>;
}

/// One row of the per-day web rollup.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WebRow {
    pub day: String,
    pub agent_id: u64,
    pub domain: String,
    pub blocked: bool,
    pub visits: i64,
    pub bytes: i64,
    pub dwell_ms: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// An uploaded (or fetched) domain list.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct WebList {
    pub id: u64,
    pub name: String,
    pub category: String,
    pub sha256: String,
    pub bytes: u64,
    pub rules: u64,
    pub errors: u64,
    pub source_url: Option<String>,
    pub refresh_hours: Option<u32>,
    pub fetched_ms: Option<i64>,
    pub fetch_error: Option<String>,
    pub updated_by: String,
    pub updated_ms: i64,
}

/// Web rollups and domain lists.
pub trait WebStore {
    /// Rollup rows for company days `from..=to`, optionally for some agents only.
    fn web_rows(&self, from: &str, to: &str, agents: Option<&[u64]>) -> Result<Vec<WebRow>>;
    fn web_lists(&self) -> Result<Vec<WebList>>;
    /// Create or replace (by name) a list; returns its id.
    fn put_web_list(&self, l: &WebList) -> Result<u64>;
    fn delete_web_list(&self, id: u64) -> Result<bool>;
    fn set_web_list_fetch_error(&self, id: u64, error: &str, now_ms: i64) -> Result<()>;
}

/// One recorded screen frame (or part of one) in the time index.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScreenFrame {
    pub agent_id: u64,
    pub seq: u64,
    pub ts_ms: i64,
    pub display: String,
    pub width: u32,
    pub height: u32,
    pub key: bool,
    pub tiles: u32,
    pub bytes: u64,
    pub reason: String,
    /// Where the frame is in the blob store (not shown to API clients).
    #[serde(skip_serializing)]
    pub blob: String,
}

/// The screen frame index, and blob files whose rows a purge removed.
pub trait ScreenStore {
    /// Frames of `agents` in `from_ms..=to_ms`, oldest first, at most `limit`.
    fn screen_frames(&self, agents: &[u64], from_ms: i64, to_ms: i64, limit: u32) -> Result<Vec<ScreenFrame>>;
    /// What showing `display` of `agent` at `at_ms` takes: the last key frame
    /// at or before it and every frame after that up to `at_ms`, in order.
    fn screen_chain(&self, agent: u64, display: &str, at_ms: i64) -> Result<Vec<ScreenFrame>>;
    /// Blob keys queued for deletion by a purge (at most `limit`).
    fn blob_purge_queue(&self, limit: u32) -> Result<Vec<String>>;
    /// The files of these keys are gone: forget them.
    fn blobs_purged(&self, keys: &[String]) -> Result<()>;
}

pub trait Store:
    AdminStore + AlertStore + ActivityStore + RetentionStore + ChatStore + WebStore + ScreenStore + Send + Sync + 'static
{
    // Ingest (called by the single ingest writer).
    fn ingest(&self, items: &[IngestItem]) -> Result<Vec<IngestOutcome>>;

    // Org.
    fn departments(&self) -> Result<Vec<Department>>;
    fn create_department(&self, name: &str, parent_id: Option<u64>) -> Result<u64>;
    fn department_by_name(&self, name: &str) -> Result<Option<Department>>;
    fn employees(&self) -> Result<Vec<Employee>>;
    fn create_employee(&self, name: &str, username: Option<&str>, department_id: Option<u64>) -> Result<u64>;
    fn update_employee(&self, id: u64, name: &str, username: Option<&str>, department_id: Option<u64>) -> Result<()>;
    /// Create departments along each path and create or update employees
    /// (matched by username), all in one transaction.
    fn import_org(&self, rows: &[OrgRow]) -> Result<ImportReport>;

    // Enrollment and agents.
    fn create_token(&self, secret_hash: &str, department_id: Option<u64>, expires_ms: i64) -> Result<u64>;
    fn tokens(&self) -> Result<Vec<TokenInfo>>;
    /// Consume a token and create the agent atomically. Errors say why a token
    /// is refused (unknown, used, expired).
    fn enroll(
        &self,
        token_hash: &str,
        agent_secret_hash: &str,
        hostname: &str,
        os: &str,
        version: &str,
        now_ms: i64,
    ) -> Result<u64>;
    fn agent_credential(&self, agent_id: u64) -> Result<Option<AgentCredential>>;
    fn agents(&self) -> Result<Vec<Agent>>;
    fn agent(&self, agent_id: u64) -> Result<Option<Agent>>;
    fn revoke_agent(&self, agent_id: u64, reason: &str, now_ms: i64) -> Result<()>;
    fn assign_agent(&self, agent_id: u64, employee_id: Option<u64>, department_id: Option<u64>) -> Result<()>;
    fn set_agent_personal(&self, agent_id: u64, personal: bool) -> Result<()>;
    /// Record a heartbeat; returns true if the agent's logged-in users changed.
    fn heartbeat(
        &self,
        agent_id: u64,
        hb: &candor_proto::api::Heartbeat,
        now_ms: i64,
        offline_after_ms: i64,
    ) -> Result<bool>;
    /// Mark agents silent for longer than `offline_after_ms` offline; returns how many.
    fn mark_offline(&self, now_ms: i64, offline_after_ms: i64) -> Result<u64>;
    fn offline_gaps(&self, agent_id: u64) -> Result<Vec<OfflineGap>>;

    // Events.
    fn events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>>;
    /// Events and span time per category in `[from_ms, to_ms)`, optionally for some agents only.
    fn category_totals(&self, from_ms: i64, to_ms: i64, agents: Option<&[u64]>) -> Result<Vec<CategoryTotal>>;

    // Policies and consent.
    fn policies(&self) -> Result<Vec<Policy>>;
    fn policy(&self, id: u64) -> Result<Option<Policy>>;
    fn create_policy(&self, name: &str, doc: &PolicyDoc) -> Result<u64>;
    fn update_policy(&self, id: u64, name: Option<&str>, doc: &PolicyDoc) -> Result<u64>;
    fn delete_policy(&self, id: u64) -> Result<()>;
    fn assignments(&self) -> Result<Vec<Assignment>>;
    fn assign_policy(&self, scope: Scope, target: u64, policy_id: u64) -> Result<()>;
    fn unassign_policy(&self, scope: Scope, target: u64) -> Result<()>;
    fn policy_inputs(&self, agent_id: u64) -> Result<PolicyInputs>;
    fn record_consent(&self, c: &NewConsent) -> Result<u64>;
    fn consents(&self, employee_id: Option<u64>) -> Result<Vec<ConsentRecord>>;
    /// Publishes the next version of the monitoring notice; returns its version.
    fn publish_notice(&self, body: &crate::notice::NoticeBody, by: &str) -> Result<u64>;
    /// Every published version, newest first.
    fn notices(&self) -> Result<Vec<Notice>>;

    // Access log (append-only, hash-chained).
    fn append_access(&self, actor: &str, action: &str, target: &str, now_ms: i64) -> Result<()>;
    fn access_log(&self, limit: u32, before_id: Option<u64>) -> Result<Vec<AccessEntry>>;
}

/// A stored chat message.
#[derive(Debug, Clone, Serialize)]
pub struct ChatRow {
    pub id: u64,
    pub msgid: String,
    pub ts_ms: i64,
    pub action: String,
    pub from: String,
    pub tolist: Vec<String>,
    pub roomid: String,
    pub msgtype: String,
    pub text: String,
    pub media: serde_json::Value,
    /// The recall that withdrew this message, if any (the message is kept).
    pub revoked_by: Option<String>,
}

/// What storing a batch of chat messages did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChatInsert {
    /// Row ids of the messages stored for the first time, in batch order.
    #[serde(skip)]
    pub new_ids: Vec<(usize, u64)>,
    pub stored: usize,
    pub duplicates: usize,
    pub recalls: usize,
    pub consent_changes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatPerson {
    pub id: String,
    pub external: bool,
}

/// An external contact's archiving consent in force in one scope
/// ([`candor_chat::consent`]: `user:<employee>`, `room:<roomid>`, or empty
/// for every conversation of the contact).
#[derive(Debug, Clone, Serialize)]
pub struct ContactConsent {
    pub contact: String,
    pub scope: String,
    pub agree: bool,
    pub ts_ms: i64,
    pub source: String,
}

/// An internal group chat as `msgaudit/groupchat/get` describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatRoomName {
    pub roomid: String,
    pub name: String,
    pub creator: String,
    pub members: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatError {
    pub id: u64,
    pub ts_ms: i64,
    pub source: String,
    pub position: String,
    pub error: String,
}

pub trait ChatStore {
    /// Stores messages not seen before (by msgid), applies recalls and
    /// consent changes, all in one transaction.
    fn chat_insert(&self, msgs: &[candor_chat::message::ChatMessage], source: &str, now: i64) -> Result<ChatInsert>;
    fn chat_rows(&self, ids: &[u64]) -> Result<Vec<ChatRow>>;
    /// Messages with id > `after`, ascending (to rebuild the search index).
    fn chat_after(&self, after: u64, limit: u32) -> Result<Vec<ChatRow>>;
    fn chat_max_id(&self) -> Result<u64>;
    /// Messages `person` sent or received, oldest first (the employee's export).
    fn chat_of_person(&self, person: &str, limit: u32) -> Result<Vec<ChatRow>>;
    /// `before` messages before and `after` after message `id` in its conversation.
    fn chat_conversation(&self, id: u64, before: u32, after: u32) -> Result<Vec<ChatRow>>;
    fn chat_people(&self) -> Result<Vec<ChatPerson>>;
    /// (employee, external contact) of every one-to-one conversation seen.
    fn chat_pairs(&self) -> Result<Vec<(String, String)>>;
    /// Group chats with an external contact in them.
    fn chat_rooms(&self) -> Result<Vec<String>>;
    /// Every (external contact, scope) the stored messages depend on.
    fn chat_scopes(&self) -> Result<Vec<(String, String)>>;
    /// Group chats with no external contact (the ones `groupchat/get` names).
    fn chat_internal_rooms(&self) -> Result<Vec<String>>;
    /// Replaces the list of employees WeCom archives.
    fn set_chat_permit_users(&self, users: &[String], now: i64) -> Result<()>;
    fn chat_permit_users(&self) -> Result<Vec<String>>;
    fn set_chat_room_name(&self, room: &ChatRoomName, now: i64) -> Result<()>;
    fn chat_room_names(&self) -> Result<Vec<ChatRoomName>>;
    /// The latest record per (contact, scope).
    fn contact_consents(&self) -> Result<Vec<ContactConsent>>;
    fn record_contact_consent(&self, c: &ContactConsent) -> Result<()>;
    fn add_chat_errors(&self, source: &str, errors: &[(String, String, Option<String>)], now: i64) -> Result<()>;
    fn chat_errors(&self, limit: u32) -> Result<Vec<ChatError>>;
    /// Ids of purged messages still in the search index.
    fn chat_unindex_pending(&self, limit: u32) -> Result<Vec<u64>>;
    fn chat_unindexed(&self, ids: &[u64]) -> Result<()>;
    fn chat_cursor(&self, source: &str) -> Result<u64>;
    fn set_chat_cursor(&self, source: &str, seq: u64, now: i64) -> Result<()>;
    /// Replaces a message's media list (after downloads added blob keys).
    fn set_chat_media(&self, id: u64, media: &serde_json::Value) -> Result<()>;
    fn dlp_rules(&self) -> Result<Option<String>>;
    fn set_dlp_rules(&self, spec: &str, by: &str, now: i64) -> Result<()>;
    /// Raises an alert not tied to an endpoint (deduplicated on kind and source).
    fn raise_unbound_alert(&self, a: &NewAlert) -> Result<bool>;
}
