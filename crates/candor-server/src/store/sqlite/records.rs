//! [`Store`] methods other than ingest and admins: org, enrollment, agents,
//! events queries, policies, consent and the access log.

use super::SqliteStore;
use crate::audit::chain_hash;
use crate::store::*;
use candor_proto::api::Heartbeat;
use candor_proto::policy::PolicyDoc;
use candor_proto::{now_ms, Category};
use rusqlite::{params, OptionalExtension, Row};

fn json_vec(s: String) -> Vec<String> {
    serde_json::from_str(&s).unwrap_or_default()
}

fn agent_row(r: &Row) -> rusqlite::Result<Agent> {
    Ok(Agent {
        id: r.get::<_, i64>(0)? as u64,
        hostname: r.get(1)?,
        os: r.get(2)?,
        agent_version: r.get(3)?,
        department_id: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
        employee_id: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
        enrolled_ms: r.get(6)?,
        revoked_ms: r.get(7)?,
        revoked_reason: r.get(8)?,
        last_seen_ms: r.get(9)?,
        online: r.get(10)?,
        users: json_vec(r.get(11)?),
        addresses: json_vec(r.get(12)?),
        applied_policy: r.get(13)?,
        spool_events: r.get::<_, i64>(14)? as u64,
        notices: json_vec(r.get(15)?),
        acked_seq: r.get::<_, i64>(16)? as u64,
        refused_events: r.get::<_, i64>(17)? as u64,
        personal: r.get(18)?,
    })
}

const AGENT_COLS: &str = "id, hostname, os, agent_version, department_id, employee_id, enrolled_ms, revoked_ms,
    revoked_reason, last_seen_ms, online, users, addresses, applied_policy, spool_events, notices, acked_seq,
    refused_events, personal";

fn policy_row(r: &Row) -> rusqlite::Result<Policy> {
    let doc: String = r.get(2)?;
    Ok(Policy {
        id: r.get::<_, i64>(0)? as u64,
        name: r.get(1)?,
        // Documents are validated on the way in; a bad one means a hand edit.
        doc: serde_json::from_str(&doc).unwrap_or_default(),
        revision: r.get::<_, i64>(3)? as u64,
        updated_ms: r.get(4)?,
    })
}

fn consent_row(r: &Row) -> rusqlite::Result<ConsentRecord> {
    let cat: String = r.get(2)?;
    Ok(ConsentRecord {
        id: r.get::<_, i64>(0)? as u64,
        employee_id: r.get::<_, i64>(1)? as u64,
        category: cat.parse().unwrap_or(Category::System),
        granted: r.get(3)?,
        method: r.get(4)?,
        note: r.get(5)?,
        recorded_by: r.get(6)?,
        recorded_ms: r.get(7)?,
        notice_version: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        scan: r.get(9)?,
    })
}

const CONSENT_COLUMNS: &str =
    "id, employee_id, category, granted, method, note, recorded_by, recorded_ms, notice_version, scan";

impl SqliteStore {
    /// The notice in force, with the login names of `employees` that have
    /// not answered it (nothing when all have, or no notice was published).
    fn notice_due(&self, employees: &[u64]) -> Result<Option<candor_proto::policy::NoticeDue>> {
        self.read(|c| {
            let Some(version) = c.query_row("SELECT max(version) FROM notices", [], |r| r.get::<_, Option<i64>>(0))?
            else {
                return Ok(None);
            };
            let mut st = c.prepare_cached(
                "SELECT username FROM employees AS e WHERE id = ?1 AND username IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM consents WHERE employee_id = e.id AND notice_version = ?2)",
            )?;
            let mut pending = Vec::new();
            for e in employees {
                if let Some(u) = st.query_row(params![*e as i64, version], |r| r.get::<_, String>(0)).optional()? {
                    pending.push(u);
                }
            }
            Ok((!pending.is_empty()).then_some(candor_proto::policy::NoticeDue { version: version as u64, pending }))
        })
    }
}

fn opt_id(v: Option<u64>) -> Option<i64> {
    v.map(|v| v as i64)
}

impl Store for SqliteStore {
    fn ingest(&self, items: &[IngestItem]) -> Result<Vec<IngestOutcome>> {
        super::ingest::run(self, items)
    }

    fn departments(&self) -> Result<Vec<Department>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT id, name, parent_id FROM departments ORDER BY id")?;
            let rows = st.query_map([], |r| {
                Ok(Department {
                    id: r.get::<_, i64>(0)? as u64,
                    name: r.get(1)?,
                    parent_id: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn create_department(&self, name: &str, parent_id: Option<u64>) -> Result<u64> {
        if name.trim().is_empty() {
            return Err(StoreError::Invalid("department name is empty".into()));
        }
        self.write(|c| {
            c.execute(
                "INSERT INTO departments (name, parent_id) VALUES (?1, ?2)",
                params![name.trim(), opt_id(parent_id)],
            )?;
            Ok(c.last_insert_rowid() as u64)
        })
    }

    fn department_by_name(&self, name: &str) -> Result<Option<Department>> {
        Ok(self.departments()?.into_iter().find(|d| d.name == name))
    }

    fn employees(&self) -> Result<Vec<Employee>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT id, name, username, department_id FROM employees ORDER BY id")?;
            let rows = st.query_map([], |r| {
                Ok(Employee {
                    id: r.get::<_, i64>(0)? as u64,
                    name: r.get(1)?,
                    username: r.get(2)?,
                    department_id: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn create_employee(&self, name: &str, username: Option<&str>, department_id: Option<u64>) -> Result<u64> {
        if name.trim().is_empty() {
            return Err(StoreError::Invalid("employee name is empty".into()));
        }
        self.write(|c| {
            c.execute(
                "INSERT INTO employees (name, username, department_id, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![name.trim(), username, opt_id(department_id), now_ms()],
            )?;
            Ok(c.last_insert_rowid() as u64)
        })
    }

    fn update_employee(&self, id: u64, name: &str, username: Option<&str>, department_id: Option<u64>) -> Result<()> {
        if name.trim().is_empty() {
            return Err(StoreError::Invalid("employee name is empty".into()));
        }
        self.write(|c| {
            let n = c.execute(
                "UPDATE employees SET name = ?2, username = ?3, department_id = ?4 WHERE id = ?1",
                params![id as i64, name.trim(), username, opt_id(department_id)],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("employee {id}")));
            }
            Ok(())
        })
    }

    fn import_org(&self, rows: &[OrgRow]) -> Result<ImportReport> {
        self.write(|c| {
            let tx = c.transaction()?;
            let mut report = ImportReport::default();
            for row in rows {
                let mut parent: Option<i64> = None;
                for name in &row.department_path {
                    let found: Option<i64> = tx
                        .query_row(
                            "SELECT id FROM departments WHERE name = ?1 AND parent_id IS ?2",
                            params![name, parent],
                            |r| r.get(0),
                        )
                        .optional()?;
                    parent = Some(match found {
                        Some(id) => id,
                        None => {
                            tx.execute(
                                "INSERT INTO departments (name, parent_id) VALUES (?1, ?2)",
                                params![name, parent],
                            )?;
                            report.departments_created += 1;
                            tx.last_insert_rowid()
                        }
                    });
                }
                let Some(name) = &row.employee_name else { continue };
                let existing: Option<i64> = match &row.username {
                    Some(u) => {
                        tx.query_row("SELECT id FROM employees WHERE username = ?1", [u], |r| r.get(0)).optional()?
                    }
                    None => None,
                };
                match existing {
                    Some(id) => {
                        tx.execute(
                            "UPDATE employees SET name = ?2, department_id = ?3 WHERE id = ?1",
                            params![id, name, parent],
                        )?;
                        report.employees_updated += 1;
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO employees (name, username, department_id, created_ms) VALUES (?1, ?2, ?3, ?4)",
                            params![name, row.username, parent, now_ms()],
                        )
                        .map_err(|e| StoreError::Invalid(format!("line {}: {e}", row.line)))?;
                        report.employees_created += 1;
                    }
                }
            }
            tx.commit()?;
            Ok(report)
        })
    }

    fn create_token(&self, secret_hash: &str, department_id: Option<u64>, expires_ms: i64) -> Result<u64> {
        self.write(|c| {
            c.execute(
                "INSERT INTO enroll_tokens (secret_hash, department_id, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                params![secret_hash, opt_id(department_id), now_ms(), expires_ms],
            )?;
            Ok(c.last_insert_rowid() as u64)
        })
    }

    fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, department_id, created_ms, expires_ms, used_ms, used_by_agent FROM enroll_tokens ORDER BY id",
            )?;
            let rows = st.query_map([], |r| {
                Ok(TokenInfo {
                    id: r.get::<_, i64>(0)? as u64,
                    department_id: r.get::<_, Option<i64>>(1)?.map(|v| v as u64),
                    created_ms: r.get(2)?,
                    expires_ms: r.get(3)?,
                    used_ms: r.get(4)?,
                    used_by_agent: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn enroll(
        &self,
        token_hash: &str,
        agent_secret_hash: &str,
        hostname: &str,
        os: &str,
        version: &str,
        now: i64,
    ) -> Result<u64> {
        self.write(|c| {
            let tx = c.transaction()?;
            let tok: Option<(i64, Option<i64>, i64, Option<i64>)> = tx
                .query_row(
                    "SELECT id, department_id, expires_ms, used_ms FROM enroll_tokens WHERE secret_hash = ?1",
                    [token_hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let (tok_id, dept, expires, used) =
                tok.ok_or_else(|| StoreError::NotFound("enrollment token is not known to this server".into()))?;
            if used.is_some() {
                return Err(StoreError::Conflict("enrollment token was already used; create a new one".into()));
            }
            if expires <= now {
                return Err(StoreError::Conflict("enrollment token has expired; create a new one".into()));
            }
            tx.execute(
                "INSERT INTO agents (secret_hash, hostname, os, agent_version, department_id, enrolled_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![agent_secret_hash, hostname, os, version, dept, now],
            )?;
            let agent_id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE enroll_tokens SET used_ms = ?2, used_by_agent = ?3 WHERE id = ?1",
                params![tok_id, now, agent_id],
            )?;
            tx.commit()?;
            Ok(agent_id as u64)
        })
    }

    fn agent_credential(&self, agent_id: u64) -> Result<Option<AgentCredential>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT secret_hash, revoked_reason, revoked_ms FROM agents WHERE id = ?1",
                [agent_id as i64],
                |r| {
                    let revoked_ms: Option<i64> = r.get(2)?;
                    let reason: Option<String> = r.get(1)?;
                    Ok(AgentCredential {
                        secret_hash: r.get(0)?,
                        revoked_reason: revoked_ms.map(|_| reason.unwrap_or_default()),
                    })
                },
            )
            .optional()?)
        })
    }

    fn agents(&self) -> Result<Vec<Agent>> {
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {AGENT_COLS} FROM agents ORDER BY id"))?;
            let rows = st.query_map([], agent_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn agent(&self, agent_id: u64) -> Result<Option<Agent>> {
        self.read(|c| {
            Ok(c.query_row(&format!("SELECT {AGENT_COLS} FROM agents WHERE id = ?1"), [agent_id as i64], agent_row)
                .optional()?)
        })
    }

    fn revoke_agent(&self, agent_id: u64, reason: &str, now: i64) -> Result<()> {
        self.write(|c| {
            let n = c.execute(
                "UPDATE agents SET revoked_ms = ?2, revoked_reason = ?3, online = 0 WHERE id = ?1",
                params![agent_id as i64, now, reason],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("agent {agent_id}")));
            }
            Ok(())
        })
    }

    fn set_agent_personal(&self, agent_id: u64, personal: bool) -> Result<()> {
        self.write(|c| {
            let n = c.execute("UPDATE agents SET personal = ?2 WHERE id = ?1", params![agent_id as i64, personal])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("agent {agent_id}")));
            }
            Ok(())
        })
    }

    fn assign_agent(&self, agent_id: u64, employee_id: Option<u64>, department_id: Option<u64>) -> Result<()> {
        self.write(|c| {
            let n = c.execute(
                "UPDATE agents SET employee_id = ?2, department_id = ?3 WHERE id = ?1",
                params![agent_id as i64, opt_id(employee_id), opt_id(department_id)],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("agent {agent_id}")));
            }
            Ok(())
        })
    }

    fn heartbeat(&self, agent_id: u64, hb: &Heartbeat, now: i64, offline_after_ms: i64) -> Result<bool> {
        let users = serde_json::to_string(&hb.users).unwrap_or_default();
        self.write(|c| {
            let tx = c.transaction()?;
            let (old_users, last_seen, online): (String, Option<i64>, bool) =
                tx.query_row("SELECT users, last_seen_ms, online FROM agents WHERE id = ?1", [agent_id as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            if let Some(last) = last_seen {
                if !online || now - last > offline_after_ms {
                    tx.execute(
                        "INSERT INTO agent_gaps (agent_id, offline_from_ms, offline_to_ms) VALUES (?1, ?2, ?3)",
                        params![agent_id as i64, last, now],
                    )?;
                }
            }
            tx.execute(
                "UPDATE agents SET hostname = ?2, os = ?3, agent_version = ?4, users = ?5, addresses = ?6,
                 applied_policy = ?7, spool_events = ?8, notices = ?9, last_seen_ms = ?10, online = 1 WHERE id = ?1",
                params![
                    agent_id as i64,
                    hb.hostname,
                    hb.os,
                    hb.agent_version,
                    users,
                    serde_json::to_string(&hb.addresses).unwrap_or_default(),
                    hb.applied_policy,
                    hb.spool_events as i64,
                    serde_json::to_string(&hb.notices).unwrap_or_default(),
                    now
                ],
            )?;
            tx.commit()?;
            Ok(old_users != users)
        })
    }

    fn mark_offline(&self, now: i64, offline_after_ms: i64) -> Result<u64> {
        self.write(|c| {
            Ok(c.execute(
                "UPDATE agents SET online = 0 WHERE online = 1 AND last_seen_ms < ?1",
                [now - offline_after_ms],
            )? as u64)
        })
    }

    fn offline_gaps(&self, agent_id: u64) -> Result<Vec<OfflineGap>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT offline_from_ms, offline_to_ms FROM agent_gaps WHERE agent_id = ?1 ORDER BY offline_from_ms",
            )?;
            let rows = st.query_map([agent_id as i64], |r| {
                Ok(OfflineGap { agent_id, offline_from_ms: r.get(0)?, offline_to_ms: r.get(1)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>> {
        let (a_ts, a_agent, a_seq) = q.after.unwrap_or((i64::MIN, 0, 0));
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT agent_id, seq, ts_ms, duration_ms, category, payload FROM events
                 WHERE ts_ms >= ?1 AND ts_ms < ?2
                   AND (?3 IS NULL OR agent_id = ?3) AND (?4 IS NULL OR category = ?4)
                   AND (ts_ms, agent_id, seq) > (?5, ?6, ?7)
                   AND (?9 IS NULL OR agent_id IN (SELECT value FROM json_each(?9)))
                   AND (?10 IS NULL OR json_extract(payload, '$.type') = ?10)
                 ORDER BY ts_ms, agent_id, seq LIMIT ?8",
            )?;
            let rows = st.query_map(
                params![
                    q.from_ms,
                    q.to_ms,
                    opt_id(q.agent_id),
                    q.category.map(|c| c.code()),
                    a_ts,
                    a_agent as i64,
                    a_seq as i64,
                    q.limit,
                    q.scope.as_ref().map(|s| serde_json::to_string(s).unwrap_or_default()),
                    q.kind
                ],
                |r| {
                    let payload: Vec<u8> = r.get(5)?;
                    Ok(StoredEvent {
                        agent_id: r.get::<_, i64>(0)? as u64,
                        seq: r.get::<_, i64>(1)? as u64,
                        ts_ms: r.get(2)?,
                        duration_ms: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                        category: Category::from_code(r.get(4)?).unwrap_or(Category::System),
                        payload: serde_json::from_slice(&payload).unwrap_or(serde_json::Value::Null),
                    })
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn category_totals(&self, from_ms: i64, to_ms: i64, agents: Option<&[u64]>) -> Result<Vec<CategoryTotal>> {
        let scope = agents.map(|a| serde_json::to_string(a).unwrap_or_default());
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT category, count(*), coalesce(sum(duration_ms), 0) FROM events WHERE ts_ms >= ?1 AND ts_ms < ?2
                   AND (?3 IS NULL OR agent_id IN (SELECT value FROM json_each(?3)))
                 GROUP BY category ORDER BY category",
            )?;
            let rows = st.query_map(params![from_ms, to_ms, scope], |r| {
                Ok(CategoryTotal {
                    category: Category::from_code(r.get(0)?).unwrap_or(Category::System),
                    events: r.get::<_, i64>(1)? as u64,
                    duration_ms: r.get::<_, i64>(2)? as u64,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn policies(&self) -> Result<Vec<Policy>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT id, name, doc, revision, updated_ms FROM policies ORDER BY id")?;
            let rows = st.query_map([], policy_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn policy(&self, id: u64) -> Result<Option<Policy>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id, name, doc, revision, updated_ms FROM policies WHERE id = ?1",
                [id as i64],
                policy_row,
            )
            .optional()?)
        })
    }

    fn create_policy(&self, name: &str, doc: &PolicyDoc) -> Result<u64> {
        let doc = serde_json::to_string(doc).unwrap_or_default();
        self.write(|c| {
            c.execute(
                "INSERT INTO policies (name, doc, updated_ms) VALUES (?1, ?2, ?3)",
                params![name, doc, now_ms()],
            )?;
            Ok(c.last_insert_rowid() as u64)
        })
    }

    fn update_policy(&self, id: u64, name: Option<&str>, doc: &PolicyDoc) -> Result<u64> {
        let doc = serde_json::to_string(doc).unwrap_or_default();
        self.write(|c| {
            let n = c.execute(
                "UPDATE policies SET name = coalesce(?2, name), doc = ?3, revision = revision + 1, updated_ms = ?4
                 WHERE id = ?1",
                params![id as i64, name, doc, now_ms()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("policy {id}")));
            }
            Ok(c.query_row("SELECT revision FROM policies WHERE id = ?1", [id as i64], |r| r.get::<_, i64>(0))? as u64)
        })
    }

    fn delete_policy(&self, id: u64) -> Result<()> {
        self.write(|c| {
            let used: i64 =
                c.query_row("SELECT count(*) FROM policy_assignments WHERE policy_id = ?1", [id as i64], |r| r.get(0))?;
            if used > 0 {
                return Err(StoreError::Conflict(format!("policy {id} is assigned {used} time(s); unassign it first")));
            }
            if c.execute("DELETE FROM policies WHERE id = ?1", [id as i64])? == 0 {
                return Err(StoreError::NotFound(format!("policy {id}")));
            }
            Ok(())
        })
    }

    fn assignments(&self) -> Result<Vec<Assignment>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT scope, target, policy_id FROM policy_assignments ORDER BY scope, target")?;
            let rows = st.query_map([], |r| {
                let scope: String = r.get(0)?;
                Ok(Assignment {
                    scope: match scope.as_str() {
                        "global" => Scope::Global,
                        "department" => Scope::Department,
                        _ => Scope::Agent,
                    },
                    target: r.get::<_, i64>(1)? as u64,
                    policy_id: r.get::<_, i64>(2)? as u64,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn assign_policy(&self, scope: Scope, target: u64, policy_id: u64) -> Result<()> {
        let target = if scope == Scope::Global { 0 } else { target };
        self.write(|c| {
            let table = match scope {
                Scope::Global => None,
                Scope::Department => Some("departments"),
                Scope::Agent => Some("agents"),
            };
            if let Some(table) = table {
                let n: i64 =
                    c.query_row(&format!("SELECT count(*) FROM {table} WHERE id = ?1"), [target as i64], |r| r.get(0))?;
                if n == 0 {
                    return Err(StoreError::NotFound(format!("{} {target}", scope.as_str())));
                }
            }
            c.execute(
                "INSERT INTO policy_assignments (scope, target, policy_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scope, target) DO UPDATE SET policy_id = excluded.policy_id",
                params![scope.as_str(), target as i64, policy_id as i64],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::NotFound(format!("policy {policy_id}")),
                other => other,
            })?;
            Ok(())
        })
    }

    fn unassign_policy(&self, scope: Scope, target: u64) -> Result<()> {
        let target = if scope == Scope::Global { 0 } else { target };
        self.write(|c| {
            c.execute(
                "DELETE FROM policy_assignments WHERE scope = ?1 AND target = ?2",
                params![scope.as_str(), target as i64],
            )?;
            Ok(())
        })
    }

    fn policy_inputs(&self, agent_id: u64) -> Result<PolicyInputs> {
        let agent = self.agent(agent_id)?.ok_or_else(|| StoreError::NotFound(format!("agent {agent_id}")))?;
        let departments = self.departments()?;
        let assignments = self.assignments()?;
        let find = |scope: Scope, target: u64| {
            assignments.iter().find(|a| a.scope == scope && a.target == target).map(|a| a.policy_id)
        };
        // Most specific first: the agent, its department and each ancestor, global.
        let mut chain = vec![(Scope::Agent, find(Scope::Agent, agent_id))];
        let mut dept = agent.department_id;
        let mut hops = 0;
        while let (Some(d), true) = (dept, hops < 64) {
            chain.push((Scope::Department, find(Scope::Department, d)));
            dept = departments.iter().find(|x| x.id == d).and_then(|x| x.parent_id);
            hops += 1;
        }
        chain.push((Scope::Global, find(Scope::Global, 0)));
        let mut candidates = Vec::new();
        for (scope, id) in chain {
            if let Some(p) = id.map(|id| self.policy(id)).transpose()?.flatten() {
                candidates.push((scope, p));
            }
        }
        let personal = agent.personal;
        let employees: Vec<u64> = match agent.employee_id {
            Some(e) => vec![e],
            None => self
                .employees()?
                .into_iter()
                .filter(|e| e.username.as_ref().is_some_and(|u| agent.users.contains(u)))
                .map(|e| e.id)
                .collect(),
        };
        let mut consents = Vec::new();
        for e in &employees {
            consents.extend(self.read(|c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {CONSENT_COLUMNS} FROM consents
                     WHERE id IN (SELECT max(id) FROM consents WHERE employee_id = ?1 GROUP BY category)"
                ))?;
                let rows = st.query_map([*e as i64], consent_row)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })?);
        }
        let notice = self.notice_due(&employees)?;
        Ok(PolicyInputs { candidates, employees, consents, personal, notice })
    }

    fn record_consent(&self, n: &NewConsent) -> Result<u64> {
        self.write(|c| {
            c.execute(
                "INSERT INTO consents (employee_id, category, granted, method, note, recorded_by, recorded_ms,
                                       notice_version, scan)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    n.employee_id as i64,
                    n.category.as_str(),
                    n.granted,
                    n.method,
                    n.note,
                    n.recorded_by,
                    now_ms(),
                    n.notice_version.map(|v| v as i64),
                    n.scan,
                ],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::NotFound(format!("employee {}", n.employee_id)),
                other => other,
            })?;
            Ok(c.last_insert_rowid() as u64)
        })
    }

    fn consents(&self, employee_id: Option<u64>) -> Result<Vec<ConsentRecord>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {CONSENT_COLUMNS} FROM consents WHERE ?1 IS NULL OR employee_id = ?1 ORDER BY id"
            ))?;
            let rows = st.query_map([opt_id(employee_id)], consent_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn publish_notice(&self, body: &crate::notice::NoticeBody, by: &str) -> Result<u64> {
        let json = serde_json::to_string(body).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.write(|c| {
            let tx = c.transaction()?;
            let version: i64 = tx.query_row("SELECT coalesce(max(version), 0) + 1 FROM notices", [], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO notices (version, body, published_by, published_ms) VALUES (?1, ?2, ?3, ?4)",
                params![version, json, by, now_ms()],
            )?;
            tx.commit()?;
            Ok(version as u64)
        })
    }

    fn notices(&self) -> Result<Vec<Notice>> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT version, body, published_by, published_ms FROM notices ORDER BY version DESC")?;
            let rows = st.query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (version, body, published_by, published_ms) = row?;
                let body = serde_json::from_str(&body)
                    .map_err(|e| StoreError::Backend(format!("notice version {version}: {e}")))?;
                out.push(Notice { version: version as u64, body, published_by, published_ms });
            }
            Ok(out)
        })
    }

    fn append_access(&self, actor: &str, action: &str, target: &str, now: i64) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            let prev: String = tx
                .query_row("SELECT hash FROM access_log ORDER BY id DESC LIMIT 1", [], |r| r.get(0))
                .optional()?
                .unwrap_or_default();
            let hash = chain_hash(&prev, now, actor, action, target);
            tx.execute(
                "INSERT INTO access_log (ts_ms, actor, action, target, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![now, actor, action, target, prev, hash],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn access_log(&self, limit: u32, before_id: Option<u64>) -> Result<Vec<AccessEntry>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, ts_ms, actor, action, target, prev_hash, hash FROM access_log
                 WHERE ?1 IS NULL OR id < ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![opt_id(before_id), limit], |r| {
                Ok(AccessEntry {
                    id: r.get::<_, i64>(0)? as u64,
                    ts_ms: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    prev_hash: r.get(5)?,
                    hash: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}
