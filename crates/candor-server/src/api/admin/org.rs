//! Departments (a tree), employees, and CSV import of the org.

use super::{not_found, Created, Visibility};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, JsonBody, State};
use crate::roles::Perm;
use crate::store::{Department, Employee, ImportReport, OrgRow};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

pub async fn list_departments(state: State, session: AdminSession) -> Result<Json<Vec<Department>>, ApiError> {
    session.require(Perm::ViewOrg)?;
    let scope = Visibility::load(&state, &session).await?;
    let all = state.db(|s| s.departments()).await?;
    Ok(Json(all.into_iter().filter(|d| scope.department(Some(d.id))).collect()))
}

#[derive(Deserialize)]
pub struct DepartmentBody {
    name: String,
    parent_id: Option<u64>,
}

pub async fn create_department(
    state: State,
    session: AdminSession,
    JsonBody(b): JsonBody<DepartmentBody>,
) -> Result<Json<Created>, ApiError> {
    session.require(Perm::ManageOrg)?;
    let id = state.db(move |s| s.create_department(&b.name, b.parent_id)).await?;
    Ok(Json(Created { id }))
}

pub async fn list_employees(state: State, session: AdminSession) -> Result<Json<Vec<Employee>>, ApiError> {
    session.require(Perm::ViewOrg)?;
    let scope = Visibility::load(&state, &session).await?;
    let all = state.db(|s| s.employees()).await?;
    Ok(Json(all.into_iter().filter(|e| scope.department(e.department_id)).collect()))
}

pub async fn get_employee(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
) -> Result<Json<Employee>, ApiError> {
    session.require(Perm::ViewOrg)?;
    let scope = Visibility::load(&state, &session).await?;
    let all = state.db(|s| s.employees()).await?;
    all.into_iter()
        .find(|e| e.id == id && scope.department(e.department_id))
        .map(Json)
        .ok_or_else(|| not_found(format!("employee {id}")))
}

#[derive(Deserialize)]
pub struct EmployeeBody {
    name: String,
    username: Option<String>,
    department_id: Option<u64>,
}

pub async fn create_employee(
    state: State,
    session: AdminSession,
    JsonBody(b): JsonBody<EmployeeBody>,
) -> Result<Json<Created>, ApiError> {
    session.require(Perm::ManageOrg)?;
    let id = state.db(move |s| s.create_employee(&b.name, b.username.as_deref(), b.department_id)).await?;
    state.bump_epoch();
    Ok(Json(Created { id }))
}

pub async fn update_employee(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
    JsonBody(b): JsonBody<EmployeeBody>,
) -> Result<StatusCode, ApiError> {
    session.require(Perm::ManageOrg)?;
    state.db(move |s| s.update_employee(id, &b.name, b.username.as_deref(), b.department_id)).await?;
    state.bump_epoch();
    Ok(StatusCode::NO_CONTENT)
}

/// Parse the org CSV: `department,name,username` with a header row;
/// `department` is a path such as `总部/销售部`; name and username may be empty
/// (a row with only a department creates the department). Quoted fields may
/// hold commas.
pub fn parse_org_csv(text: &str) -> Result<Vec<OrgRow>, String> {
    const MAX_ROWS: usize = 100_000;
    let mut rows = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if i == 0 || line.trim().is_empty() {
            continue;
        }
        if rows.len() >= MAX_ROWS {
            return Err(format!("more than {MAX_ROWS} rows"));
        }
        let fields = split_csv_line(line).ok_or_else(|| format!("line {line_no}: unbalanced quotes"))?;
        if fields.len() > 3 {
            return Err(format!("line {line_no}: expected department,name,username"));
        }
        let get = |k: usize| fields.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let department_path: Vec<String> =
            get(0).unwrap_or_default().split('/').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if department_path.is_empty() {
            return Err(format!("line {line_no}: department is empty"));
        }
        if department_path.iter().any(|d| d.chars().count() > 100) {
            return Err(format!("line {line_no}: department name longer than 100 characters"));
        }
        let (employee_name, username) = (get(1), get(2));
        if username.is_some() && employee_name.is_none() {
            return Err(format!("line {line_no}: username without a name"));
        }
        rows.push(OrgRow { line: line_no, department_path, employee_name, username });
    }
    Ok(rows)
}

fn split_csv_line(line: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut()?.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut()?.push(c),
        }
    }
    (!quoted).then_some(fields)
}

pub async fn import_org(state: State, session: AdminSession, body: String) -> Result<Json<ImportReport>, ApiError> {
    session.require(Perm::ManageOrg)?;
    let rows = parse_org_csv(&body).map_err(ApiError::bad_request)?;
    let report = state.db(move |s| s.import_org(&rows)).await?;
    state.bump_epoch();
    Ok(Json(report))
}

#[cfg(test)]
mod tests {
    use super::parse_org_csv;

    #[test]
    fn org_csv() {
        let rows = parse_org_csv(
            "department,name,username\n总部/销售部,张三,zhangsan\n\"总部/研发, 一组\",李四,\n总部/财务部,,\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].department_path, vec!["总部", "销售部"]);
        assert_eq!(rows[1].department_path, vec!["总部", "研发, 一组"]);
        assert_eq!(rows[1].username, None);
        assert_eq!(rows[2].employee_name, None);
        assert!(parse_org_csv("h\n\"open,x\n").unwrap_err().contains("line 2"));
        assert!(parse_org_csv("h\n,x,y\n").unwrap_err().contains("department is empty"));
    }
}
