//! The decision: a policy's software section compiled once (globs built,
//! shells read) and applied to the facts about one exec. Pure apart from
//! compiling, so that every branch is unit-tested; gathering the facts is
//! the enforcer's job.

use candor_proto::software::{Action, SoftwareMode, SoftwareOptions};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Programs that install or remove software (matched by file name).
const PACKAGE_MANAGERS: &[&str] = &[
    "dpkg",
    "apt",
    "apt-get",
    "aptitude",
    "gdebi",
    "deepin-deb-installer",
    "rpm",
    "dnf",
    "yum",
    "zypper",
    "snap",
    "flatpak",
    "pkcon",
];

/// Whether `path` names a package manager (by file name).
pub fn is_package_manager(path: &str) -> bool {
    PACKAGE_MANAGERS.contains(&path.rsplit('/').next().unwrap_or(path))
}

/// Front ends whose command line says which packages they install.
const APT: &[&str] = &["apt", "apt-get", "aptitude"];
/// apt subcommands that change nothing installed.
const APT_READ_ONLY: &[&str] =
    &["update", "list", "search", "show", "showsrc", "policy", "depends", "rdepends", "changelog", "download"];

/// Whether an apt command line (argv) installs only `approved` packages or
/// changes nothing installed. `Err` names what is not approved.
pub fn apt_approved(args: &[String], approved: &[String]) -> Result<(), String> {
    // Values of options given as separate words (`-o X=Y`, `-t release`) are not words of the command.
    let mut skip = false;
    let mut rest = Vec::new();
    for a in args.iter().skip(1).filter(|a| !a.is_empty()) {
        if skip {
            skip = false;
            continue;
        }
        if ["-o", "-t", "-c", "--option", "--target-release", "--config-file"].contains(&a.as_str()) {
            skip = true;
        } else if !a.starts_with('-') {
            rest.push(a.as_str());
        }
    }
    let Some((cmd, names)) = rest.split_first() else { return Ok(()) };
    if APT_READ_ONLY.contains(cmd) {
        return Ok(());
    }
    if !["install", "reinstall"].contains(cmd) {
        return Err(format!("apt {cmd}"));
    }
    for n in names {
        // name, name=version, name/release, name:arch; a file path is never approved.
        let base = n.split(['=', '/', ':']).next().unwrap_or(n);
        if n.ends_with(".deb") || !approved.iter().any(|a| a == base) {
            return Err(format!("not approved: {n}"));
        }
    }
    Ok(())
}

pub fn is_apt(path: &str) -> bool {
    APT.contains(&path.rsplit('/').next().unwrap_or(path))
}

impl Rules {
    /// Whether an apt started by `user` must have its command line checked
    /// against the approved packages once it has started.
    pub fn apt_check_needed(&self, path: &str, user: &str) -> bool {
        let i = &self.opts.install;
        i.action != Action::Allow
            && !i.approved_packages.is_empty()
            && is_apt(path)
            && !i.allowed_users.iter().any(|u| u == user)
    }
}

/// Where employees can write: a program found here was downloaded or built, not installed.
const USER_WRITABLE: &[&str] = &["/home/", "/tmp/", "/var/tmp/", "/dev/shm/", "/run/user/", "/media/", "/mnt/"];

/// Helpers the desktop starts on its own; exempt from allow-list mode so that
/// sessions keep working (they cannot be launched by name from a menu).
const SYSTEM_HELPERS: &[&str] = &["/usr/lib/", "/usr/lib64/", "/usr/libexec/", "/lib/", "/lib64/"];

/// Everything known about one exec.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    /// The file being executed (its path as the kernel names the descriptor).
    pub path: &'a str,
    pub sha256: Option<&'a str>,
    pub package: Option<&'a str>,
    pub categories: &'a [String],
    /// Owner of the file.
    pub owner_uid: u32,
    /// Login name of the employee behind the exec; `None` for system accounts (exempt).
    pub user: Option<&'a str>,
    /// Started by an apt run whose packages are all approved (for dpkg).
    pub approved_parent: bool,
    /// Local time: 0 = Monday, minutes after midnight.
    pub weekday: u32,
    pub minute: u32,
}

impl Subject<'_> {
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A deny rule matched.
    Rule,
    /// Allow-list mode and nothing on the list matched.
    NotListed,
    /// A package manager started by an employee not allowed to install.
    Install,
    /// An executable in a user-writable place.
    Untrusted,
    /// No decision in time (fail-closed or fail-open, per policy).
    Timeout,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rule => "rule",
            Reason::NotListed => "not_listed",
            Reason::Install => "install",
            Reason::Untrusted => "untrusted",
            Reason::Timeout => "timeout",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    pub reason: Reason,
    /// Name of the rule that decided, for the employee and the report.
    pub rule: Option<String>,
}

impl Verdict {
    fn allow() -> Verdict {
        Verdict { action: Action::Allow, reason: Reason::Rule, rule: None }
    }
}

pub struct Rules {
    pub opts: SoftwareOptions,
    /// All file-name globs and all path globs, each compiled into one matcher;
    /// `*_rule[i]` is the rule of the set's i-th glob.
    files: GlobSet,
    file_rule: Vec<usize>,
    paths: GlobSet,
    path_rule: Vec<usize>,
    shells: Vec<String>,
    pub needs_hash: bool,
    pub needs_package: bool,
    pub needs_category: bool,
    /// An allowed file's answer holds for every later exec until the file
    /// changes or the rules do: no rule depends on the clock, none only
    /// reports (it must see every start), places are not judged.
    pub kernel_cacheable: bool,
}

/// One matcher for many globs; a glob that does not compile (the server
/// validates, so only a stored document from an older version) is left out,
/// and its rule then matches nothing rather than everything.
fn glob_set<'a>(globs: impl Iterator<Item = (usize, &'a str)>, case_insensitive: bool) -> (GlobSet, Vec<usize>) {
    let mut b = GlobSetBuilder::new();
    let mut rule_of = Vec::new();
    for (i, g) in globs {
        match GlobBuilder::new(g).literal_separator(true).case_insensitive(case_insensitive).build() {
            Ok(glob) => {
                b.add(glob);
                rule_of.push(i);
            }
            Err(e) => tracing::warn!(glob = g, error = %e, "invalid glob in software rule ignored"),
        }
    }
    (b.build().unwrap_or_else(|_| GlobSet::empty()), rule_of)
}

impl Rules {
    pub fn compile(opts: &SoftwareOptions) -> Rules {
        let (files, file_rule) =
            glob_set(opts.rules.iter().enumerate().filter_map(|(i, r)| Some((i, r.file.as_deref()?))), true);
        let (paths, path_rule) =
            glob_set(opts.rules.iter().enumerate().filter_map(|(i, r)| Some((i, r.path.as_deref()?))), false);
        let shells = std::fs::read_to_string("/etc/shells")
            .map(|s| s.lines().filter(|l| l.starts_with('/')).map(|l| l.trim().to_string()).collect())
            .unwrap_or_default();
        Rules {
            needs_hash: opts.rules.iter().any(|r| r.sha256.is_some()),
            needs_package: opts.rules.iter().any(|r| r.package.is_some()),
            needs_category: opts.rules.iter().any(|r| r.category.is_some()),
            kernel_cacheable: opts.untrusted == Action::Allow
                && !opts.rules.iter().any(|r| r.schedule.is_some() || r.action == Some(Action::Alert)),
            opts: opts.clone(),
            files,
            file_rule,
            paths,
            path_rule,
            shells,
        }
    }

    /// Indices of the rules matching `s`, in rule order.
    fn matching(&self, s: &Subject) -> Vec<usize> {
        let mut file_hit = vec![false; self.opts.rules.len()];
        let mut path_hit = vec![false; self.opts.rules.len()];
        for i in self.files.matches(s.file_name()) {
            file_hit[self.file_rule[i]] = true;
        }
        if !self.paths.is_empty() {
            for i in self.paths.matches(s.path) {
                path_hit[self.path_rule[i]] = true;
            }
        }
        (0..self.opts.rules.len())
            .filter(|i| {
                let r = &self.opts.rules[*i];
                !r.is_empty()
                    && (r.file.is_none() || file_hit[*i])
                    && (r.path.is_none() || path_hit[*i])
                    && r.sha256.as_ref().is_none_or(|h| s.sha256.is_some_and(|x| x.eq_ignore_ascii_case(h)))
                    && r.package.as_ref().is_none_or(|p| s.package == Some(p.as_str()))
                    && r.category.as_ref().is_none_or(|c| s.categories.iter().any(|x| x.eq_ignore_ascii_case(c)))
                    && r.schedule.as_ref().is_none_or(|w| w.contains(s.weekday, s.minute))
            })
            .collect()
    }

    fn exempt_by_design(&self, s: &Subject) -> bool {
        SYSTEM_HELPERS.iter().any(|p| s.path.starts_with(p)) || self.shells.iter().any(|sh| sh == s.path)
    }

    pub fn decide(&self, s: &Subject) -> Verdict {
        let Some(user) = s.user else { return Verdict::allow() };
        let o = &self.opts;
        if o.install.action != Action::Allow
            && is_package_manager(s.path)
            && !o.install.allowed_users.iter().any(|u| u == user)
        {
            // apt is checked once started (its command line names the packages),
            // and the dpkg it then runs is let through.
            let approved_apt = !o.install.approved_packages.is_empty() && is_apt(s.path);
            if !approved_apt && !s.approved_parent {
                return Verdict { action: o.install.action, reason: Reason::Install, rule: None };
            }
        }
        let hits = if o.mode == SoftwareMode::Off { Vec::new() } else { self.matching(s) };
        match o.mode {
            SoftwareMode::Off => {}
            SoftwareMode::Deny => {
                let action = |i: usize| o.rules[i].action.unwrap_or(Action::Block);
                let hit = hits
                    .iter()
                    .find(|i| action(**i) == Action::Block)
                    .or_else(|| hits.iter().find(|i| action(**i) == Action::Alert));
                if let Some(&i) = hit {
                    return Verdict { action: action(i), reason: Reason::Rule, rule: Some(o.rules[i].name.clone()) };
                }
            }
            SoftwareMode::Allow => {
                if let Some(&i) = hits.first() {
                    return Verdict {
                        action: Action::Allow,
                        reason: Reason::Rule,
                        rule: Some(o.rules[i].name.clone()),
                    };
                }
                if !self.exempt_by_design(s) {
                    return Verdict { action: Action::Block, reason: Reason::NotListed, rule: None };
                }
            }
        }
        let untrusted = USER_WRITABLE.iter().any(|p| s.path.starts_with(p)) || s.owner_uid >= o.min_uid;
        if o.untrusted != Action::Allow && untrusted {
            return Verdict { action: o.untrusted, reason: Reason::Untrusted, rule: None };
        }
        Verdict::allow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candor_proto::software::{InstallControl, ProgramRule, Schedule};

    fn rule(name: &str, f: impl FnOnce(&mut ProgramRule)) -> ProgramRule {
        let mut r = ProgramRule { name: name.into(), ..Default::default() };
        f(&mut r);
        r
    }

    fn subject(path: &str) -> Subject<'_> {
        Subject { path, user: Some("alice"), weekday: 0, minute: 600, ..Default::default() }
    }

    #[test]
    fn deny_mode_by_name_path_hash_package_category_and_schedule() {
        let cats = vec!["Game".to_string()];
        let opts = SoftwareOptions {
            mode: SoftwareMode::Deny,
            rules: vec![
                rule("steam", |r| r.file = Some("steam*".into())),
                rule("opt games", |r| r.path = Some("/opt/games/**".into())),
                rule("hash", |r| r.sha256 = Some("AB".repeat(32))),
                rule("pkg", |r| r.package = Some("supertux".into())),
                rule("cat", |r| {
                    r.category = Some("game".into());
                    r.schedule = Some(Schedule::default())
                }),
                rule("watch", |r| {
                    r.file = Some("curl".into());
                    r.action = Some(Action::Alert)
                }),
            ],
            ..Default::default()
        };
        let rules = Rules::compile(&opts);
        assert!(rules.needs_hash && rules.needs_package && rules.needs_category);
        let block = |s: &Subject| rules.decide(s).rule.filter(|_| rules.decide(s).action == Action::Block);
        assert_eq!(block(&subject("/usr/games/Steam.sh")).as_deref(), Some("steam"), "file globs ignore case");
        assert_eq!(block(&subject("/opt/games/x/y/bin")).as_deref(), Some("opt games"));
        assert_eq!(
            block(&Subject { sha256: Some(&"ab".repeat(32)), ..subject("/tmp/renamed") }).as_deref(),
            Some("hash")
        );
        assert_eq!(
            block(&Subject { package: Some("supertux"), ..subject("/usr/games/supertux2") }).as_deref(),
            Some("pkg")
        );
        let game = Subject { categories: &cats, ..subject("/usr/bin/chess") };
        assert_eq!(block(&game).as_deref(), Some("cat"));
        assert_eq!(rules.decide(&Subject { minute: 20 * 60, ..game.clone() }).action, Action::Allow, "after hours");
        assert_eq!(rules.decide(&Subject { user: None, ..game }).action, Action::Allow, "system accounts are exempt");
        let v = rules.decide(&subject("/usr/bin/curl"));
        assert_eq!((v.action, v.rule.as_deref()), (Action::Alert, Some("watch")));
        assert_eq!(rules.decide(&subject("/usr/bin/vim")).action, Action::Allow);
        assert_eq!(rules.decide(&subject("/opt/gamesX/bin")).action, Action::Allow);
    }

    #[test]
    fn allow_mode_keeps_shells_and_helpers() {
        let opts = SoftwareOptions {
            mode: SoftwareMode::Allow,
            rules: vec![rule("coreutils", |r| r.package = Some("coreutils".into()))],
            ..Default::default()
        };
        let rules = Rules::compile(&opts);
        let v = rules.decide(&subject("/tmp/true"));
        assert_eq!((v.action, v.reason), (Action::Block, Reason::NotListed));
        assert_eq!(
            rules.decide(&Subject { package: Some("coreutils"), ..subject("/usr/bin/true") }).action,
            Action::Allow
        );
        assert_eq!(rules.decide(&subject("/usr/libexec/gvfsd")).action, Action::Allow);
        if std::fs::read_to_string("/etc/shells").is_ok_and(|s| s.lines().any(|l| l == "/bin/sh")) {
            assert_eq!(rules.decide(&subject("/bin/sh")).action, Action::Allow);
        }
    }

    #[test]
    fn install_and_untrusted() {
        let opts = SoftwareOptions {
            install: InstallControl { action: Action::Block, allowed_users: vec!["it".into()], ..Default::default() },
            untrusted: Action::Alert,
            ..Default::default()
        };
        let rules = Rules::compile(&opts);
        let v = rules.decide(&subject("/usr/bin/dpkg"));
        assert_eq!((v.action, v.reason), (Action::Block, Reason::Install));
        assert_eq!(rules.decide(&Subject { user: Some("it"), ..subject("/usr/bin/dpkg") }).action, Action::Allow);
        let v = rules.decide(&subject("/home/alice/Downloads/x.AppImage"));
        assert_eq!((v.action, v.reason), (Action::Alert, Reason::Untrusted));
        assert_eq!(rules.decide(&Subject { owner_uid: 1000, ..subject("/opt/x") }).reason, Reason::Untrusted);
        assert_eq!(rules.decide(&subject("/usr/bin/ls")).action, Action::Allow);
        assert_eq!(rules.decide(&subject("/usr/bin/apt-get")).action, Action::Block, "no approved list");
    }

    #[test]
    fn approved_packages_through_apt() {
        let opts = SoftwareOptions {
            install: InstallControl {
                action: Action::Block,
                allowed_users: vec![],
                approved_packages: vec!["wps-office".into(), "vim".into()],
            },
            ..Default::default()
        };
        let rules = Rules::compile(&opts);
        assert_eq!(rules.decide(&subject("/usr/bin/apt-get")).action, Action::Allow, "checked once started");
        assert_eq!(rules.decide(&subject("/usr/bin/dpkg")).action, Action::Block);
        assert_eq!(rules.decide(&Subject { approved_parent: true, ..subject("/usr/bin/dpkg") }).action, Action::Allow);
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let ok = |s: &str| apt_approved(&argv(s), &opts.install.approved_packages);
        assert_eq!(ok("apt-get install -y vim wps-office=1.2 vim:amd64"), Ok(()));
        assert_eq!(ok("apt update"), Ok(()));
        assert_eq!(ok("apt install vim "), Ok(()), "the empty word after the last NUL of /proc/<pid>/cmdline");
        assert_eq!(ok("apt-get -o Dir::Etc::SourceList=x install -y vim"), Ok(()));
        assert_eq!(ok("apt install vim steam"), Err("not approved: steam".into()));
        assert_eq!(ok("apt install ./vim.deb"), Err("not approved: ./vim.deb".into()));
        assert_eq!(ok("apt-get remove vim"), Err("apt remove".into()));
    }
}
