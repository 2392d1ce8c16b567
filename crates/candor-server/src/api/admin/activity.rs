//! Activity figures from the rollups kept at ingest: time per application
//! and class (productive, neutral, unproductive or an admin's own), idle and
//! locked time, first and last activity — for the timeline, the statistics
//! page and the dashboard. Also the application catalogue and its
//! classification, company-wide or per department.

use super::{audit, Visibility};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, JsonBody, State};
use crate::roles::Perm;
use crate::store::{ActivityRow, Agent, AppClass, Application, Department, Employee};
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use candor_proto::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub const BUILTIN_CLASSES: [&str; 3] = ["productive", "neutral", "unproductive"];

/// The class suggested by an application's freedesktop categories until an admin decides.
fn suggested(app: Option<&Application>) -> &'static str {
    let cats = app.map(|a| a.categories.as_slice()).unwrap_or_default();
    let has = |c: &str| cats.iter().any(|x| x == c);
    if has("Game") {
        "unproductive"
    } else if ["Development", "Office", "Education", "Science", "Engineering"].iter().any(|c| has(c)) {
        "productive"
    } else {
        "neutral"
    }
}

/// Resolves an application's class for a department: the nearest
/// department (walking up the tree) that set one, else the company-wide
/// class, else the suggestion.
pub struct Classifier {
    classes: HashMap<(String, u64), String>,
    parents: HashMap<u64, Option<u64>>,
    apps: HashMap<String, Application>,
}

impl Classifier {
    pub fn new(classes: Vec<AppClass>, departments: &[Department], apps: Vec<Application>) -> Classifier {
        Classifier {
            classes: classes.into_iter().map(|c| ((c.app, c.department_id), c.class)).collect(),
            parents: departments.iter().map(|d| (d.id, d.parent_id)).collect(),
            apps: apps.into_iter().map(|a| (a.app.clone(), a)).collect(),
        }
    }

    /// `(class, source)` where source is `department`, `company` or `suggested`.
    pub fn class(&self, app: &str, department: Option<u64>) -> (String, &'static str) {
        let mut d = department;
        let mut hops = 0;
        while let Some(id) = d {
            if let Some(c) = self.classes.get(&(app.to_string(), id)) {
                return (c.clone(), "department");
            }
            d = self.parents.get(&id).copied().flatten();
            hops += 1;
            if hops > 64 {
                break; // a cycle in a corrupted tree
            }
        }
        if let Some(c) = self.classes.get(&(app.to_string(), 0)) {
            return (c.clone(), "company");
        }
        (suggested(self.apps.get(app)).to_string(), "suggested")
    }

    pub fn app(&self, app: &str) -> Option<&Application> {
        self.apps.get(app)
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AppTime {
    pub app: String,
    pub name: Option<String>,
    pub name_zh: Option<String>,
    pub has_icon: bool,
    pub class: String,
    pub class_source: &'static str,
    pub active_ms: i64,
    pub idle_ms: i64,
    pub locked_ms: i64,
    pub spans: i64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Totals {
    pub active_ms: i64,
    pub idle_ms: i64,
    pub locked_ms: i64,
    /// First and last active moment.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// Active time per class.
    pub classes: BTreeMap<String, i64>,
    /// Per application, most active first.
    pub apps: Vec<AppTime>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DayActivity {
    pub date: String,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ActivitySummary {
    #[serde(flatten)]
    pub totals: Totals,
    pub days: Vec<DayActivity>,
}

#[derive(Default)]
struct Acc {
    totals: Totals,
    apps: BTreeMap<(String, String), AppTime>,
}

impl Acc {
    fn add(&mut self, r: &ActivityRow, class: &(String, &'static str), c: &Classifier) {
        let t = &mut self.totals;
        let a = self.apps.entry((r.app.clone(), class.0.clone())).or_insert_with(|| {
            let info = c.app(&r.app);
            AppTime {
                app: r.app.clone(),
                name: info.and_then(|i| i.name.clone()),
                name_zh: info.and_then(|i| i.name_zh.clone()),
                has_icon: info.is_some_and(|i| i.has_icon),
                class: class.0.clone(),
                class_source: class.1,
                ..Default::default()
            }
        });
        a.spans += r.spans;
        match r.state.as_str() {
            "active" => {
                t.active_ms += r.duration_ms;
                a.active_ms += r.duration_ms;
                *t.classes.entry(class.0.clone()).or_default() += r.duration_ms;
                t.first_ms = Some(t.first_ms.map_or(r.first_ms, |f| f.min(r.first_ms)));
                t.last_ms = Some(t.last_ms.map_or(r.last_ms, |l| l.max(r.last_ms)));
            }
            "idle" => {
                t.idle_ms += r.duration_ms;
                a.idle_ms += r.duration_ms;
            }
            _ => {
                t.locked_ms += r.duration_ms;
                a.locked_ms += r.duration_ms;
            }
        }
    }

    fn finish(self) -> Totals {
        let mut t = self.totals;
        t.apps = self.apps.into_values().collect();
        t.apps.sort_by(|a, b| b.active_ms.cmp(&a.active_ms).then_with(|| a.app.cmp(&b.app)));
        t
    }
}

/// Whose rows these are: a row recorded for a session user belongs to the
/// employee with that login name; rows without one (or of a login no
/// employee has) belong to the endpoint's assigned employee.
pub struct Attribution<'a> {
    pub employee: &'a Employee,
    pub agents: &'a HashMap<u64, &'a Agent>,
    pub claimed_logins: &'a [String],
}

impl Attribution<'_> {
    pub fn owns(&self, r: &ActivityRow) -> bool {
        let e = self.employee;
        if !r.user.is_empty() && e.username.as_deref() == Some(r.user.as_str()) {
            return true;
        }
        let assigned = self.agents.get(&r.agent_id).is_some_and(|a| a.employee_id == Some(e.id));
        assigned && (r.user.is_empty() || !self.claimed_logins.contains(&r.user))
    }
}

/// Sum rollup rows into totals overall and per day; `department_of` gives
/// the department whose classification applies to a row.
pub fn summarise(
    rows: &[ActivityRow],
    c: &Classifier,
    department_of: impl Fn(&ActivityRow) -> Option<u64>,
) -> ActivitySummary {
    let mut all = Acc::default();
    let mut days: BTreeMap<String, Acc> = BTreeMap::new();
    for r in rows {
        let class = c.class(&r.app, department_of(r));
        all.add(r, &class, c);
        days.entry(r.day.clone()).or_default().add(r, &class, c);
    }
    ActivitySummary {
        totals: all.finish(),
        days: days.into_iter().map(|(date, acc)| DayActivity { date, totals: acc.finish() }).collect(),
    }
}

/// Activity of some endpoints (all when `agents` is `None`) over company
/// days `from..=to`, narrowed to one employee's sessions when given.
pub async fn load(
    state: &std::sync::Arc<crate::api::AppState>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    agents: Option<Vec<u64>>,
    employee: Option<&Employee>,
) -> Result<ActivitySummary, ApiError> {
    let (f, t) = (from.to_string(), to.to_string());
    let rows = state.db(move |s| s.activity_rows(&f, &t, agents.as_deref())).await?;
    let (classes, departments, apps, all_agents) =
        state.db(|s| Ok((s.app_classes()?, s.departments()?, s.applications()?, s.agents()?))).await?;
    let classifier = Classifier::new(classes, &departments, apps);
    let by_id: HashMap<u64, &Agent> = all_agents.iter().map(|a| (a.id, a)).collect();
    Ok(match employee {
        Some(e) => {
            let claimed: Vec<String> =
                state.db(|s| s.employees()).await?.into_iter().filter_map(|e| e.username).collect();
            let who = Attribution { employee: e, agents: &by_id, claimed_logins: &claimed };
            let mine: Vec<ActivityRow> = rows.into_iter().filter(|r| who.owns(r)).collect();
            summarise(&mine, &classifier, |_| e.department_id)
        }
        None => summarise(&rows, &classifier, |r| by_id.get(&r.agent_id).and_then(|a| a.department_id)),
    })
}

#[derive(Serialize)]
pub struct Catalogue {
    apps: Vec<CatalogueEntry>,
    builtin_classes: [&'static str; 3],
}

#[derive(Serialize)]
pub struct CatalogueEntry {
    #[serde(flatten)]
    app: Application,
    suggested: &'static str,
    /// Admin classifications, company-wide (department 0) and per department.
    classes: Vec<AppClass>,
}

pub async fn catalogue(state: State, session: AdminSession) -> Result<Json<Catalogue>, ApiError> {
    session.require(Perm::ViewPolicies)?;
    let apps = state.db(|s| s.applications()).await?;
    let classes = state.db(|s| s.app_classes()).await?;
    let vis = Visibility::load(&state, &session).await?;
    let apps = apps
        .into_iter()
        .map(|a| CatalogueEntry {
            suggested: suggested(Some(&a)),
            classes: classes
                .iter()
                .filter(|c| c.app == a.app && (c.department_id == 0 || vis.department(Some(c.department_id))))
                .cloned()
                .collect(),
            app: a,
        })
        .collect();
    Ok(Json(Catalogue { apps, builtin_classes: BUILTIN_CLASSES }))
}

#[derive(Deserialize)]
pub struct ClassUpdate {
    /// Department the class applies to; absent for company-wide.
    department_id: Option<u64>,
    /// `productive`, `neutral`, `unproductive` or a custom class; `null` clears it.
    class: Option<String>,
}

pub async fn set_class(
    state: State,
    session: AdminSession,
    Path(app): Path<String>,
    JsonBody(u): JsonBody<ClassUpdate>,
) -> Result<StatusCode, ApiError> {
    session.require(Perm::ManagePolicies)?;
    let class = u.class.map(|c| c.trim().to_lowercase());
    if let Some(c) = &class {
        let ok = !c.is_empty()
            && c.chars().count() <= 32
            && c.chars().all(|ch| ch.is_alphanumeric() || ch == '-' || ch == '_' || ch == ' ');
        if !ok {
            return Err(ApiError::bad_request(format!(
                "class {c:?}: use productive, neutral, unproductive or a name of up to 32 letters, digits, '-', '_'"
            )));
        }
    }
    let dept = u.department_id.unwrap_or(0);
    if dept != 0 {
        let departments = state.db(|s| s.departments()).await?;
        if !departments.iter().any(|d| d.id == dept) {
            return Err(super::not_found(format!("department {dept}")));
        }
    }
    let known = state.db(|s| s.applications()).await?.iter().any(|a| a.app == app);
    if !known {
        return Err(super::not_found(format!("application {app:?}")));
    }
    let by = session.0.username.clone();
    audit(&state, &session.0, "app.classify", format!("app:{app} department:{dept} class:{class:?}")).await?;
    state.db(move |s| s.set_app_class(&app, dept, class.as_deref(), &by, now_ms())).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn icon(state: State, session: AdminSession, Path(app): Path<String>) -> Result<Response, ApiError> {
    session.require(Perm::ViewAgents)?;
    let icon = state.db(move |s| s.app_icon(&app)).await?;
    let png = icon.filter(|b| b.starts_with(b"\x89PNG\r\n\x1a\n")).ok_or_else(|| super::not_found("icon".into()))?;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "private, max-age=3600")], png).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: &str, agent: u64, user: &str, app: &str, state: &str, ms: i64, first: i64) -> ActivityRow {
        ActivityRow {
            day: day.into(),
            agent_id: agent,
            user: user.into(),
            app: app.into(),
            state: state.into(),
            duration_ms: ms,
            spans: 1,
            first_ms: first,
            last_ms: first + ms,
        }
    }

    fn app(name: &str, cats: &[&str]) -> Application {
        Application {
            app: name.into(),
            desktop_id: None,
            name: Some(name.to_uppercase()),
            name_zh: None,
            categories: cats.iter().map(|c| c.to_string()).collect(),
            has_icon: false,
            first_seen_ms: 0,
        }
    }

    fn class(app: &str, dept: u64, class: &str) -> AppClass {
        AppClass { app: app.into(), department_id: dept, class: class.into(), updated_by: "t".into(), updated_ms: 0 }
    }

    #[test]
    fn classes_resolve_department_then_company_then_suggestion() {
        let depts = vec![
            Department { id: 1, name: "研发".into(), parent_id: None },
            Department { id: 2, name: "测试".into(), parent_id: Some(1) },
        ];
        let c = Classifier::new(
            vec![class("chromium", 0, "neutral"), class("chromium", 1, "productive")],
            &depts,
            vec![app("code", &["Development"]), app("sol", &["Game"])],
        );
        assert_eq!(c.class("chromium", Some(2)), ("productive".into(), "department"), "inherited from the parent");
        assert_eq!(c.class("chromium", None), ("neutral".into(), "company"));
        assert_eq!(c.class("code", Some(2)), ("productive".into(), "suggested"));
        assert_eq!(c.class("sol", None), ("unproductive".into(), "suggested"));
        assert_eq!(c.class("xterm", None), ("neutral".into(), "suggested"));
    }

    #[test]
    fn summary_equals_the_sum_of_rows() {
        let c = Classifier::new(vec![class("sol", 0, "unproductive")], &[], vec![app("code", &["Development"])]);
        let rows = vec![
            row("2026-11-28", 1, "", "code", "active", 1000, 100),
            row("2026-11-29", 1, "", "code", "active", 3000, 90_000),
            row("2026-11-29", 1, "", "sol", "active", 500, 95_000),
            row("2026-11-29", 1, "", "sol", "idle", 7000, 96_000),
        ];
        let s = summarise(&rows, &c, |_| None);
        assert_eq!(s.totals.active_ms, 4500);
        assert_eq!(s.totals.idle_ms, 7000);
        assert_eq!(s.totals.classes["productive"], 4000);
        assert_eq!(s.totals.classes["unproductive"], 500);
        assert_eq!((s.totals.first_ms, s.totals.last_ms), (Some(100), Some(95_500)));
        assert_eq!(s.totals.apps[0].app, "code");
        assert_eq!(s.totals.apps[0].name.as_deref(), Some("CODE"));
        assert_eq!(s.days.len(), 2);
        assert_eq!(s.days[1].totals.active_ms, 3500);
        assert_eq!(s.days.iter().map(|d| d.totals.active_ms).sum::<i64>(), s.totals.active_ms);
    }

    #[test]
    fn rows_follow_the_session_user() {
        let zhang = Employee { id: 1, name: "张".into(), username: Some("zhang".into()), department_id: None };
        let li = Employee { id: 2, name: "李".into(), username: Some("li".into()), department_id: None };
        let a = Agent { id: 9, employee_id: Some(1), ..Default::default() };
        let agents: HashMap<u64, &Agent> = [(9, &a)].into_iter().collect();
        let claimed = vec!["zhang".to_string(), "li".to_string()];
        let of = |e| Attribution { employee: e, agents: &agents, claimed_logins: &claimed };
        let r = |user: &str| row("d", 9, user, "x", "active", 1, 0);
        assert!(of(&zhang).owns(&r("")) && of(&zhang).owns(&r("root")) && of(&zhang).owns(&r("zhang")));
        assert!(!of(&zhang).owns(&r("li")), "li's session on zhang's desktop is li's");
        assert!(of(&li).owns(&r("li")) && !of(&li).owns(&r("")));
    }
}
