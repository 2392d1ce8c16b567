//! What the endpoint blocks: the policy's own block and allow rules, the
//! built-in DNS-over-HTTPS names, and the uploaded lists of blocked
//! categories (each active only inside its schedule), compiled into one
//! `candor_webrules::RuleSet` and swapped whole when anything changes.

use candor_proto::web::{WebListRef, WebOptions};
use candor_webrules::{parse_line, ListId, RuleSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Well-known DNS-over-HTTPS/TLS resolvers, blocked so that a browser or
/// application cannot resolve around the filter.
pub const DOH_NAMES: &[&str] = &[
    "||dns.google^",
    "||dns.google.com^",
    "||cloudflare-dns.com^",
    "||one.one.one.one^",
    "||dns.quad9.net^",
    "||doh.opendns.com^",
    "||dns.adguard.com^",
    "||dns.adguard-dns.com^",
    "||dns.nextdns.io^",
    "||doh.cleanbrowsing.org^",
    "||dns.alidns.com^",
    "||doh.pub^",
    "||dot.pub^",
    "||doh.360.cn^",
    "||dns.twnic.tw^",
    "||mozilla.cloudflare-dns.com^",
];

const POLICY_BLOCK: ListId = 0;
const POLICY_ALLOW: ListId = 1;
const DOH: ListId = 2;
const FIRST_UPLOADED: usize = 3;

struct List {
    name: String,
    /// Uploaded lists block only while their category does.
    category: Option<String>,
    active: AtomicBool,
}

pub struct Filter {
    set: RuleSet,
    lists: Vec<List>,
    opts: WebOptions,
}

impl Filter {
    /// Compile `opts` and the uploaded lists (read from `dir/<sha256>`).
    /// Problems (an unreadable list, bad lines) are returned as warnings; the
    /// rest still filters.
    pub fn build(opts: &WebOptions, lists: &[WebListRef], dir: &Path) -> (Filter, Vec<String>) {
        let mut meta = vec![
            List { name: "policy".into(), category: None, active: AtomicBool::new(true) },
            List { name: "policy".into(), category: None, active: AtomicBool::new(true) },
            List { name: "doh".into(), category: None, active: AtomicBool::new(opts.block_doh) },
        ];
        let lists = &lists[..lists.len().min(candor_webrules::MAX_LISTS - FIRST_UPLOADED)];
        meta.extend(lists.iter().map(|l| List {
            name: l.name.clone(),
            category: Some(l.category.clone()),
            active: AtomicBool::new(false),
        }));
        // The set reads everything twice (count, then place); each pass finds the same
        // problems, so the warnings are those of the last one.
        let mut warnings = Vec::new();
        let set = RuleSet::compile(|b| {
            warnings.clear();
            let mut inline = |list: ListId, lines: &mut dyn Iterator<Item = &str>, allow: bool| {
                for line in lines {
                    let mut failed = None;
                    let r = parse_line(line, &mut |mut rule| {
                        rule.allow |= allow;
                        if let Err(e) = b.add_rule(list, rule) {
                            failed = Some(e);
                        }
                    });
                    if let Err(e) = r.and(failed.map_or(Ok(()), Err)) {
                        warnings.push(format!("web rule {line:?}: {e}"));
                    }
                }
            };
            inline(POLICY_BLOCK, &mut opts.block.iter().map(String::as_str), false);
            inline(POLICY_ALLOW, &mut opts.allow.iter().map(String::as_str), true);
            inline(DOH, &mut DOH_NAMES.iter().copied(), false);
            for (i, l) in lists.iter().enumerate() {
                let id = (FIRST_UPLOADED + i) as ListId;
                match std::fs::File::open(dir.join(&l.sha256)) {
                    Ok(f) => match b.add_list(id, std::io::BufReader::with_capacity(1 << 16, f)) {
                        Ok(r) if r.errors > 0 => warnings.push(format!(
                            "web list {:?}: {} bad lines skipped (first: {})",
                            l.name,
                            r.errors,
                            r.first_errors.first().map(|e| e.to_string()).unwrap_or_default()
                        )),
                        Ok(_) => {}
                        Err(e) => warnings.push(format!("web list {:?}: {e}", l.name)),
                    },
                    Err(e) => warnings.push(format!("web list {:?} is not available: {e}", l.name)),
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| {
            warnings.push(e.to_string());
            RuleSet::default()
        });
        let f = Filter { set, lists: meta, opts: opts.clone() };
        f.refresh(candor_proto::now_ms());
        (f, warnings)
    }

    /// Re-evaluate category schedules at `now_ms` (local time).
    pub fn refresh(&self, now_ms: i64) {
        let (day, minute) = crate::host::local_time(now_ms);
        for l in &self.lists {
            if let Some(c) = &l.category {
                l.active.store(self.opts.blocks_category(c, day, minute), Ordering::Relaxed);
            }
        }
    }

    /// The name of the list that blocks `name` (normalised, no trailing dot), if any.
    pub fn blocked_by(&self, name: &str) -> Option<&str> {
        let hit = self
            .set
            .verdict(name, |l| self.lists.get(usize::from(l)).is_some_and(|x| x.active.load(Ordering::Relaxed)))?;
        (!hit.allow).then(|| self.lists[usize::from(hit.list)].name.as_str())
    }

    pub fn options(&self) -> &WebOptions {
        &self.opts
    }

    pub fn rules(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candor_proto::software::Schedule;
    use candor_proto::web::CategoryBlock;

    #[test]
    fn policy_rules_doh_and_scheduled_categories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("abc"), "||games.example^\nbad line here\n").unwrap();
        let opts = WebOptions {
            filter: true,
            block: vec!["||blocked.example^".into()],
            allow: vec!["ok.blocked.example".into()],
            block_categories: vec![CategoryBlock {
                category: "games".into(),
                schedule: Some(Schedule { days: vec![], from: "00:00".into(), to: "00:00".into() }),
            }],
            ..Default::default()
        };
        let list = WebListRef {
            id: 1,
            name: "games list".into(),
            category: "games".into(),
            sha256: "abc".into(),
            bytes: 30,
            rules: 1,
        };
        let (f, warnings) = Filter::build(&opts, std::slice::from_ref(&list), dir.path());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(f.blocked_by("x.blocked.example"), Some("policy"));
        assert_eq!(f.blocked_by("ok.blocked.example"), None, "allow overrides");
        assert_eq!(f.blocked_by("dns.google"), Some("doh"));
        assert_eq!(f.blocked_by("www.games.example"), None, "outside its (empty) schedule");
        let always = WebOptions {
            block_categories: vec![CategoryBlock { category: "games".into(), schedule: None }],
            block_doh: false,
            ..opts
        };
        let (f, _) = Filter::build(&always, &[list], dir.path());
        assert_eq!(f.blocked_by("www.games.example"), Some("games list"));
        assert_eq!(f.blocked_by("dns.google"), None);
    }
}
