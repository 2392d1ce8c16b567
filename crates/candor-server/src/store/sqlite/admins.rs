//! [`AdminStore`] for SQLite: console accounts, lock-out and sessions.

use super::SqliteStore;
use crate::roles::Role;
use crate::store::{Admin, AdminStore, AdminUpdate, LoginInfo, Result, StoreError};
use candor_proto::now_ms;
use rusqlite::{params, OptionalExtension, Row};

const COLS: &str =
    "a.id, a.username, a.role, a.departments, a.lang, a.totp_secret IS NOT NULL, a.locked_until_ms, a.disabled";

fn admin_row(r: &Row) -> rusqlite::Result<Admin> {
    let role: String = r.get(2)?;
    let departments: String = r.get(3)?;
    Ok(Admin {
        id: r.get::<_, i64>(0)? as u64,
        username: r.get(1)?,
        // Roles are validated on the way in; an unknown one gets the narrowest.
        role: Role::parse(&role).unwrap_or(Role::DepartmentManager),
        departments: serde_json::from_str(&departments).unwrap_or_default(),
        lang: r.get(4)?,
        totp_enabled: r.get(5)?,
        locked_until_ms: r.get(6)?,
        disabled: r.get(7)?,
    })
}

impl AdminStore for SqliteStore {
    fn admin_count(&self) -> Result<u64> {
        self.read(|c| Ok(c.query_row("SELECT count(*) FROM admins", [], |r| r.get::<_, i64>(0))? as u64))
    }

    fn admins(&self) -> Result<Vec<Admin>> {
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {COLS} FROM admins a ORDER BY a.id"))?;
            let rows = st.query_map([], admin_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn create_admin(&self, username: &str, password_hash: &str, role: Role, departments: &[u64]) -> Result<u64> {
        let username = username.trim();
        if username.is_empty() || username.len() > 64 {
            return Err(StoreError::Invalid("username must be 1 to 64 characters".into()));
        }
        let depts = serde_json::to_string(departments).unwrap_or_default();
        self.write(|c| {
            c.execute(
                "INSERT INTO admins (username, password_hash, role, departments, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![username, password_hash, role.as_str(), depts, now_ms()],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("an admin named {username:?} exists")),
                other => other,
            })?;
            Ok(c.last_insert_rowid() as u64)
        })
    }

    fn update_admin(&self, id: u64, u: &AdminUpdate) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            let exists: Option<i64> =
                tx.query_row("SELECT id FROM admins WHERE id = ?1", [id as i64], |r| r.get(0)).optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("admin {id}")));
            }
            if let Some(role) = u.role {
                tx.execute("UPDATE admins SET role = ?2 WHERE id = ?1", params![id as i64, role.as_str()])?;
            }
            if let Some(d) = &u.departments {
                tx.execute(
                    "UPDATE admins SET departments = ?2 WHERE id = ?1",
                    params![id as i64, serde_json::to_string(d).unwrap_or_default()],
                )?;
            }
            if let Some(disabled) = u.disabled {
                tx.execute("UPDATE admins SET disabled = ?2 WHERE id = ?1", params![id as i64, disabled])?;
                if disabled {
                    tx.execute("DELETE FROM sessions WHERE admin_id = ?1", [id as i64])?;
                }
            }
            if u.unlock {
                tx.execute("UPDATE admins SET failed_logins = 0, locked_until_ms = 0 WHERE id = ?1", [id as i64])?;
            }
            if let Some(lang) = &u.lang {
                tx.execute("UPDATE admins SET lang = ?2 WHERE id = ?1", params![id as i64, lang])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn set_admin_password(&self, username: &str, password_hash: &str) -> Result<()> {
        self.write(|c| {
            let n = c.execute(
                "UPDATE admins SET password_hash = ?2, failed_logins = 0, locked_until_ms = 0 WHERE username = ?1",
                params![username, password_hash],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("admin {username:?}")));
            }
            c.execute("DELETE FROM sessions WHERE admin_id = (SELECT id FROM admins WHERE username = ?1)", [username])?;
            Ok(())
        })
    }

    fn set_admin_totp(&self, id: u64, secret: Option<&str>) -> Result<()> {
        self.write(|c| {
            c.execute("UPDATE admins SET totp_secret = ?2 WHERE id = ?1", params![id as i64, secret])?;
            Ok(())
        })
    }

    fn login_info(&self, username: &str) -> Result<Option<LoginInfo>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {COLS}, a.password_hash, a.totp_secret FROM admins a WHERE a.username = ?1"),
                [username],
                |r| Ok(LoginInfo { admin: admin_row(r)?, password_hash: r.get(8)?, totp_secret: r.get(9)? }),
            )
            .optional()?)
        })
    }

    fn login_failed(&self, id: u64, now: i64, max_failures: u32, lock_ms: i64) -> Result<i64> {
        self.write(|c| {
            let tx = c.transaction()?;
            let failed: i64 = tx.query_row(
                "UPDATE admins SET failed_logins = failed_logins + 1 WHERE id = ?1 RETURNING failed_logins",
                [id as i64],
                |r| r.get(0),
            )?;
            let mut until = 0;
            if failed >= max_failures as i64 {
                until = now + lock_ms;
                tx.execute(
                    "UPDATE admins SET locked_until_ms = ?2, failed_logins = 0 WHERE id = ?1",
                    params![id as i64, until],
                )?;
            }
            tx.commit()?;
            Ok(until)
        })
    }

    fn login_succeeded(&self, id: u64) -> Result<()> {
        self.write(|c| {
            c.execute("UPDATE admins SET failed_logins = 0 WHERE id = ?1", [id as i64])?;
            Ok(())
        })
    }

    fn create_session(&self, admin_id: u64, token_hash: &str, expires_ms: i64) -> Result<()> {
        self.write(|c| {
            c.execute("DELETE FROM sessions WHERE expires_ms < ?1", [now_ms()])?;
            c.execute(
                "INSERT INTO sessions (token_hash, admin_id, expires_ms) VALUES (?1, ?2, ?3)",
                params![token_hash, admin_id as i64, expires_ms],
            )?;
            Ok(())
        })
    }

    fn session_admin(&self, token_hash: &str, now: i64) -> Result<Option<Admin>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {COLS} FROM sessions s JOIN admins a ON a.id = s.admin_id
                     WHERE s.token_hash = ?1 AND s.expires_ms > ?2 AND a.disabled = 0"
                ),
                params![token_hash, now],
                admin_row,
            )
            .optional()?)
        })
    }

    fn delete_session(&self, token_hash: &str) -> Result<()> {
        self.write(|c| {
            c.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(())
        })
    }
}
