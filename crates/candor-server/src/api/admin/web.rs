//! Web statistics and domain lists: visits, blocked attempts, bytes and
//! dwell time per domain, category, day and employee (from the rollups kept
//! at ingest, categorised by the uploaded lists), and managing those lists
//! (upload, fetch by URL on a schedule, delete).

use super::reports::{stats_scope, StatsParams, StatsScope};
use super::{audit, not_found};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, JsonBody, State};
use crate::roles::Perm;
use crate::store::{WebList, WebRow};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use candor_proto::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Domains listed in one answer.
const TOP_DOMAINS: usize = 200;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Tally {
    pub visits: i64,
    pub blocked: i64,
    pub bytes: i64,
    pub dwell_ms: i64,
}

impl Tally {
    fn add(&mut self, r: &WebRow) {
        if r.blocked {
            self.blocked += r.visits;
        } else {
            self.visits += r.visits;
        }
        self.bytes += r.bytes;
        self.dwell_ms += r.dwell_ms;
    }

    fn merge(&mut self, o: &Tally) {
        self.visits += o.visits;
        self.blocked += o.blocked;
        self.bytes += o.bytes;
        self.dwell_ms += o.dwell_ms;
    }
}

#[derive(Serialize)]
pub struct DomainTally {
    domain: String,
    category: Option<String>,
    #[serde(flatten)]
    tally: Tally,
}

#[derive(Serialize)]
pub struct Keyed {
    key: String,
    #[serde(flatten)]
    tally: Tally,
}

#[derive(Serialize)]
pub struct PersonTally {
    employee_id: Option<u64>,
    name: String,
    #[serde(flatten)]
    tally: Tally,
}

#[derive(Serialize)]
pub struct WebStats {
    from: String,
    to: String,
    totals: Tally,
    distinct_domains: usize,
    /// Most visited (or most blocked) first.
    domains: Vec<DomainTally>,
    categories: Vec<Keyed>,
    days: Vec<Keyed>,
    people: Vec<PersonTally>,
}

/// Sum rollup rows per domain, category, day and person.
pub fn summarise(
    rows: &[WebRow],
    category: impl Fn(&str) -> Option<String>,
    person: impl Fn(u64) -> (Option<u64>, String),
) -> (Tally, Vec<DomainTally>, Vec<Keyed>, Vec<Keyed>, Vec<PersonTally>) {
    let mut totals = Tally::default();
    let mut domains: HashMap<&str, Tally> = HashMap::new();
    let mut days: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut people: HashMap<(Option<u64>, String), Tally> = HashMap::new();
    for r in rows {
        totals.add(r);
        domains.entry(&r.domain).or_default().add(r);
        days.entry(&r.day).or_default().add(r);
        people.entry(person(r.agent_id)).or_default().add(r);
    }
    let mut categories: BTreeMap<String, Tally> = BTreeMap::new();
    let mut domains: Vec<DomainTally> = domains
        .into_iter()
        .map(|(d, tally)| {
            let category = category(d);
            let c = categories.entry(category.clone().unwrap_or_else(|| "uncategorised".into())).or_default();
            c.merge(&tally);
            DomainTally { domain: d.to_string(), category, tally }
        })
        .collect();
    domains.sort_by(|a, b| {
        (b.tally.visits + b.tally.blocked)
            .cmp(&(a.tally.visits + a.tally.blocked))
            .then_with(|| a.domain.cmp(&b.domain))
    });
    let keyed = |m: BTreeMap<String, Tally>| m.into_iter().map(|(key, tally)| Keyed { key, tally }).collect();
    let mut people: Vec<PersonTally> =
        people.into_iter().map(|((employee_id, name), tally)| PersonTally { employee_id, name, tally }).collect();
    people.sort_by(|a, b| b.tally.visits.cmp(&a.tally.visits).then_with(|| a.name.cmp(&b.name)));
    let days = days.into_iter().map(|(k, t)| (k.to_string(), t)).collect();
    (totals, domains, keyed(categories), keyed(days), people)
}

pub async fn stats(
    state: State,
    session: AdminSession,
    Query(p): Query<StatsParams>,
) -> Result<Json<WebStats>, ApiError> {
    session.require(Perm::ViewEvents)?;
    let StatsScope { from, to, agents, visible, employee, all_agents } =
        stats_scope(&state, &session, &p, "web.employee").await?;
    // An employee's visits are those of their endpoints (visits carry no login).
    let scope = if employee.is_some() || p.department.is_some() { agents } else { visible };
    let (f, t) = (from.to_string(), to.to_string());
    let rows = state.db(move |s| s.web_rows(&f, &t, scope.as_deref())).await?;
    let employees: HashMap<u64, String> =
        state.db(|s| s.employees()).await?.into_iter().map(|e| (e.id, e.name)).collect();
    let owner: HashMap<u64, (Option<u64>, String)> = all_agents
        .iter()
        .map(|a| {
            let name = a.employee_id.and_then(|e| employees.get(&e).cloned()).unwrap_or_else(|| a.hostname.clone());
            (a.id, (a.employee_id, name))
        })
        .collect();
    let categorizer = state.web.categorizer();
    let (totals, mut domains, categories, days, people) = summarise(
        &rows,
        |d| categorizer.category(d).map(str::to_string),
        |agent| owner.get(&agent).cloned().unwrap_or((None, format!("agent {agent}"))),
    );
    let distinct_domains = domains.len();
    domains.truncate(TOP_DOMAINS);
    Ok(Json(WebStats {
        from: from.to_string(),
        to: to.to_string(),
        totals,
        distinct_domains,
        domains,
        categories,
        days,
        people,
    }))
}

pub async fn list_lists(state: State, session: AdminSession) -> Result<Json<Vec<WebList>>, ApiError> {
    session.require(Perm::ViewPolicies)?;
    Ok(Json(state.db(|s| s.web_lists()).await?))
}

#[derive(Deserialize)]
pub struct ListUpload {
    name: String,
    category: String,
    /// The list itself (hosts, adblock-style or plain domains)…
    text: Option<String>,
    /// …or where to fetch it (now, and every `refresh_hours` when set).
    url: Option<String>,
    refresh_hours: Option<u32>,
}

#[derive(Serialize)]
pub struct ListSaved {
    id: u64,
    rules: usize,
    errors: usize,
    first_errors: Vec<LineProblem>,
}

#[derive(Serialize)]
pub struct LineProblem {
    line: usize,
    message: String,
}

pub async fn put_list(
    state: State,
    session: AdminSession,
    JsonBody(u): JsonBody<ListUpload>,
) -> Result<Json<ListSaved>, ApiError> {
    session.require(Perm::ManagePolicies)?;
    let name = u.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_request("a list needs a name of 1 to 100 characters"));
    }
    let category = u.category.trim().to_lowercase();
    if !crate::web::valid_category(&category) {
        return Err(ApiError::bad_request(format!(
            "category {category:?}: up to 32 letters, digits, '-' or '_' (e.g. gambling, video, social)"
        )));
    }
    let url = u.url.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let text = match (u.text, &url) {
        (Some(t), _) => t.into_bytes(),
        (None, Some(url)) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ApiError::bad_request("url must be http:// or https://"));
            }
            let client = crate::outbound::client().map_err(|e| ApiError::internal(e.to_string()))?;
            crate::web::download(&client, url)
                .await
                .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, format!("{e:#}")))?
        }
        (None, None) => return Err(ApiError::bad_request("give the list as text or a url to fetch it from")),
    };
    let by = session.0.username.clone();
    audit(&state, &session.0, "web.list.put", format!("list:{name} category:{category}")).await?;
    let meta = WebList {
        id: 0,
        name,
        category,
        sha256: String::new(),
        bytes: 0,
        rules: 0,
        errors: 0,
        fetched_ms: url.as_ref().map(|_| now_ms()),
        source_url: url,
        refresh_hours: u.refresh_hours.filter(|h| *h > 0),
        fetch_error: None,
        updated_by: by,
        updated_ms: now_ms(),
    };
    let st = state.clone();
    let (id, report) = tokio::task::spawn_blocking(move || st.web.put(st.store.as_ref(), meta, &text))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    state.bump_epoch();
    Ok(Json(ListSaved {
        id,
        rules: report.rules,
        errors: report.errors,
        first_errors: report
            .first_errors
            .into_iter()
            .map(|e| LineProblem { line: e.line, message: e.message })
            .collect(),
    }))
}

pub async fn delete_list(state: State, session: AdminSession, Path(id): Path<u64>) -> Result<StatusCode, ApiError> {
    session.require(Perm::ManagePolicies)?;
    audit(&state, &session.0, "web.list.delete", format!("list:{id}")).await?;
    if !state.db(move |s| s.delete_web_list(id)).await? {
        return Err(not_found(format!("list {id}")));
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || st.web.reload(st.store.as_ref()))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    state.bump_epoch();
    Ok(StatusCode::NO_CONTENT)
}
