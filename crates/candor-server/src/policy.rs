//! Policy resolution: the most specific assigned policy (agent, then the
//! department and its ancestors, then global) combined with the consent on
//! record into the [`EffectivePolicy`] an agent applies.

use crate::store::{PolicyInputs, Result, Store};
use candor_proto::event::CategorySet;
use candor_proto::policy::{EffectivePolicy, PolicyDoc, PolicyRef};
use candor_proto::web::WebListRef;
use candor_proto::Category;

/// Pure: inputs to effective policy. A category counts as consented only when
/// every employee using the desktop has granted it (latest record wins).
pub fn resolve(inputs: PolicyInputs) -> EffectivePolicy {
    let (pref, doc) = match inputs.candidates.into_iter().next() {
        Some((scope, p)) => {
            (Some(PolicyRef { id: p.id, name: p.name, revision: p.revision, scope: scope.as_str().into() }), p.doc)
        }
        None => (None, PolicyDoc::default()),
    };
    let mut consented = CategorySet::default();
    if !inputs.employees.is_empty() {
        for c in Category::GATED {
            let all = inputs
                .employees
                .iter()
                .all(|e| inputs.consents.iter().any(|r| r.employee_id == *e && r.category == c && r.granted));
            if all {
                consented.insert(c);
            }
        }
    }
    let effective = EffectivePolicy::compose(pref, doc, inputs.employees, consented).with_notice(inputs.notice);
    if inputs.personal {
        effective.personal_device()
    } else {
        effective
    }
}

pub fn effective_for(store: &dyn Store, agent_id: u64) -> Result<EffectivePolicy> {
    let p = resolve(store.policy_inputs(agent_id)?);
    let web = &p.doc.web;
    if !web.filter || web.block_categories.is_empty() {
        return Ok(p);
    }
    // Only the lists of categories the policy blocks (at some hour) travel to the agent.
    let lists = store
        .web_lists()?
        .into_iter()
        .filter(|l| web.block_categories.iter().any(|c| c.category == l.category))
        .map(|l| WebListRef {
            id: l.id,
            name: l.name,
            category: l.category,
            sha256: l.sha256,
            bytes: l.bytes,
            rules: l.rules,
        })
        .collect();
    Ok(p.with_web_lists(lists))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ConsentRecord, Policy, Scope};
    use candor_proto::policy::Collect;

    fn policy(id: u64, activity: bool) -> Policy {
        Policy {
            id,
            name: format!("p{id}"),
            revision: 1,
            updated_ms: 0,
            doc: PolicyDoc { collect: Collect { activity, web: true, ..Default::default() }, ..Default::default() },
        }
    }

    fn consent(employee_id: u64, category: Category, granted: bool) -> ConsentRecord {
        ConsentRecord {
            id: 0,
            employee_id,
            category,
            granted,
            method: "api".into(),
            note: None,
            recorded_by: "t".into(),
            recorded_ms: 0,
            notice_version: None,
            scan: None,
        }
    }

    #[test]
    fn most_specific_wins_and_consent_gates() {
        let inputs = PolicyInputs {
            candidates: vec![(Scope::Agent, policy(2, false)), (Scope::Global, policy(1, true))],
            employees: vec![10, 11],
            consents: vec![
                consent(10, Category::Web, true),
                consent(11, Category::Web, true),
                consent(10, Category::Activity, true),
            ],
            personal: false,
            notice: None,
        };
        let e = resolve(inputs);
        assert_eq!(e.policy.as_ref().unwrap().id, 2);
        assert!(e.allows(Category::Web));
        assert!(!e.allows(Category::Activity));
        assert!(!e.consented.contains(Category::Activity), "employee 11 did not consent");
    }

    #[test]
    fn personal_devices_collect_only_system_events() {
        let inputs = PolicyInputs {
            candidates: vec![(Scope::Global, policy(1, true))],
            employees: vec![10],
            consents: vec![consent(10, Category::Web, true)],
            personal: true,
            notice: None,
        };
        let e = resolve(inputs);
        assert!(e.personal);
        assert_eq!(e.allowed.iter().collect::<Vec<_>>(), vec![Category::System]);
    }

    #[test]
    fn nobody_known_means_nothing_but_system() {
        let e = resolve(PolicyInputs { candidates: vec![(Scope::Global, policy(1, true))], ..Default::default() });
        assert_eq!(e.allowed.iter().collect::<Vec<_>>(), vec![Category::System]);
    }
}
