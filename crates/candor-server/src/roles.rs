//! Console roles and what each may do. The three admin roles (system,
//! security, auditor) can be held by different people (三员分立): the system
//! admin runs accounts, org and endpoints but reads no personal data; the
//! security admin owns policies and reads collected data; the auditor reads
//! configuration and is the only role that reads the access log. A department
//! manager reads only the endpoints, employees and data of their departments.
//! An employee account sees only its own data, in the self-service portal.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    SystemAdmin,
    SecurityAdmin,
    Auditor,
    DepartmentManager,
    /// An employee in the self-service portal: their own data, nothing else.
    /// The account's username is the employee's login name.
    Employee,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    ManageAdmins,
    ManageOrg,
    ViewOrg,
    ManageAgents,
    ViewAgents,
    ManagePolicies,
    ViewPolicies,
    ManageConsent,
    ViewConsent,
    ViewEvents,
    ViewAlerts,
    ManageAlerts,
    ViewAccessLog,
    /// Search and read archived chats (the most sensitive data Candor holds).
    ViewChat,
    /// See, export, and see who viewed, one's own data.
    OwnData,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SystemAdmin => "system_admin",
            Role::SecurityAdmin => "security_admin",
            Role::Auditor => "auditor",
            Role::DepartmentManager => "department_manager",
            Role::Employee => "employee",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::SystemAdmin, Role::SecurityAdmin, Role::Auditor, Role::DepartmentManager, Role::Employee]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    pub fn can(self, p: Perm) -> bool {
        use Perm::*;
        match self {
            Role::SystemAdmin => {
                matches!(
                    p,
                    ManageAdmins
                        | ManageOrg
                        | ViewOrg
                        | ManageAgents
                        | ViewAgents
                        | ViewPolicies
                        | ManageConsent
                        | ViewConsent
                )
            }
            Role::SecurityAdmin => {
                matches!(
                    p,
                    ViewOrg
                        | ViewAgents
                        | ManagePolicies
                        | ViewPolicies
                        | ManageConsent
                        | ViewConsent
                        | ViewEvents
                        | ViewChat
                        | ViewAlerts
                        | ManageAlerts
                )
            }
            Role::Auditor => matches!(p, ViewOrg | ViewAgents | ViewPolicies | ViewConsent | ViewAccessLog),
            Role::DepartmentManager => matches!(p, ViewOrg | ViewAgents | ViewEvents | ViewAlerts),
            Role::Employee => p == OwnData,
        }
    }

    /// Whether this role sees only its departments.
    pub fn is_scoped(self) -> bool {
        self == Role::DepartmentManager
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_of_duties() {
        assert!(!Role::SystemAdmin.can(Perm::ViewEvents), "the system admin reads no personal data");
        assert!(!Role::SystemAdmin.can(Perm::ViewAccessLog));
        assert!(!Role::SecurityAdmin.can(Perm::ViewAccessLog));
        assert!(!Role::SecurityAdmin.can(Perm::ManageAdmins));
        assert!(Role::Auditor.can(Perm::ViewAccessLog));
        assert!(!Role::Auditor.can(Perm::ManagePolicies) && !Role::Auditor.can(Perm::ViewEvents));
        assert!(Role::DepartmentManager.is_scoped() && !Role::DepartmentManager.can(Perm::ManageAgents));
        assert!(Role::SecurityAdmin.can(Perm::ManageAlerts) && !Role::DepartmentManager.can(Perm::ManageAlerts));
        assert!(!Role::SystemAdmin.can(Perm::ViewAlerts));
        assert_eq!(Role::parse("auditor"), Some(Role::Auditor));
        assert!(Role::Employee.can(Perm::OwnData) && !Role::Employee.can(Perm::ViewOrg));
        assert!(!Role::SecurityAdmin.can(Perm::OwnData));
        assert!(Role::SecurityAdmin.can(Perm::ViewChat) && !Role::DepartmentManager.can(Perm::ViewChat));
        assert!(!Role::SystemAdmin.can(Perm::ViewChat) && !Role::Auditor.can(Perm::ViewChat));
    }
}
