//! One line of a rule list, in the formats blocklists are published in:
//!
//! | line                          | meaning                                  |
//! |-------------------------------|------------------------------------------|
//! | `example.com`                 | exactly that name                        |
//! | `0.0.0.0 a.com b.com` (hosts) | exactly those names                      |
//! | `\|\|example.com^`            | the domain and every subdomain           |
//! | `\|example.com^`              | exactly that name                        |
//! | `*.example.com`               | subdomains only                          |
//! | `ads*.example.*`              | wildcard over the whole name             |
//! | `/^ad[0-9]+\./`               | regular expression over the whole name   |
//! | `@@` before any of the above  | allow: overrides every block rule        |
//!
//! `#` and `!` start comments; `$important` is accepted and ignored (allow
//! rules always win here); other `$` modifiers are errors, so a rule that
//! means something else in AdGuard is never silently widened.

use crate::domain::{normalise, MAX_NAME};

/// How a rule matches a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    /// The domain itself and all names below it.
    Suffix(String),
    /// Names below the domain, not the domain itself.
    Subdomains(String),
    /// A regular expression over the whole normalised name (globs become one).
    Regex(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub pattern: Pattern,
    pub allow: bool,
}

/// A line that could not be read; the rest of the list still loads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Longest line considered; a longer one is an error, not an allocation.
const MAX_LINE: usize = 1024;

/// Names every hosts file maps and no list means to block.
const HOSTS_NOISE: [&str; 8] = [
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-allnodes",
    "ip6-allrouters",
];

/// Parse one line, passing each rule it holds to `out` (a hosts line may name
/// several). Comments and blank lines hold none.
pub fn parse_line(line: &str, out: &mut impl FnMut(Rule)) -> Result<(), String> {
    if line.len() > MAX_LINE {
        return Err(format!("line longer than {MAX_LINE} bytes"));
    }
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('!') || line.starts_with('[') {
        return Ok(());
    }
    let mut words = line.split_whitespace();
    let first = words.next().unwrap_or_default();
    if first.parse::<std::net::IpAddr>().is_ok() {
        for name in words.take_while(|w| !w.starts_with('#')) {
            if HOSTS_NOISE.contains(&name) {
                continue;
            }
            let name = normalise(name).map_err(|e| format!("{name:?}: {e}"))?;
            out(Rule { pattern: Pattern::Exact(name), allow: false });
        }
        return Ok(());
    }
    if words.next().is_some_and(|w| !w.starts_with('#')) {
        return Err("expected one rule per line (or a hosts line starting with an address)".into());
    }
    let (allow, body) = match first.strip_prefix("@@") {
        Some(rest) => (true, rest),
        None => (false, first),
    };
    out(Rule { pattern: pattern(body)?, allow });
    Ok(())
}

fn pattern(body: &str) -> Result<Pattern, String> {
    if let Some(re) = body.strip_prefix('/').and_then(|b| b.strip_suffix('/')) {
        if re.is_empty() {
            return Err("empty regular expression".into());
        }
        return Ok(Pattern::Regex(re.to_string()));
    }
    let body = match body.split_once('$') {
        Some((b, "important")) => b,
        Some((_, m)) => return Err(format!("unsupported modifier ${m}")),
        None => body,
    };
    let body = body.strip_suffix('^').unwrap_or(body);
    let (kind, name): (fn(String) -> Pattern, &str) = if let Some(n) = body.strip_prefix("||") {
        (Pattern::Suffix, n)
    } else if let Some(n) = body.strip_prefix('|') {
        (Pattern::Exact, n)
    } else if let Some(n) = body.strip_prefix("*.").filter(|n| !n.contains('*')) {
        (Pattern::Subdomains, n)
    } else {
        (Pattern::Exact, body)
    };
    if name.contains('*') {
        return glob(name).map(Pattern::Regex);
    }
    if name.contains(['/', ':', '|', '^']) {
        return Err(format!("{name:?} is not a domain rule (URL paths and ports are not filtered by name)"));
    }
    normalise(name).map(kind).map_err(|e| format!("{name:?}: {e}"))
}

/// A glob over a whole name: `*` spans any characters including dots.
fn glob(name: &str) -> Result<String, String> {
    if name.len() > MAX_NAME {
        return Err("wildcard longer than a domain name".into());
    }
    let mut re = String::from("^");
    for part in name.split('*') {
        if part.chars().any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
            return Err(format!("wildcard {name:?} holds a character not allowed in a domain name"));
        }
        re.push_str(&regex::escape(&part.to_ascii_lowercase()));
        re.push_str(".*");
    }
    re.truncate(re.len() - 2);
    re.push('$');
    Ok(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(line: &str) -> Result<Vec<Rule>, String> {
        let mut v = Vec::new();
        parse_line(line, &mut |r| v.push(r))?;
        Ok(v)
    }

    fn one(line: &str) -> Rule {
        let mut v = rules(line).unwrap();
        assert_eq!(v.len(), 1, "{line}");
        v.remove(0)
    }

    #[test]
    fn reads_every_format() {
        assert_eq!(one("Example.com").pattern, Pattern::Exact("example.com".into()));
        assert_eq!(one("||ads.example.com^").pattern, Pattern::Suffix("ads.example.com".into()));
        assert_eq!(one("||ads.example.com^$important").pattern, Pattern::Suffix("ads.example.com".into()));
        assert_eq!(one("|x.example.com^").pattern, Pattern::Exact("x.example.com".into()));
        assert_eq!(one("*.example.com").pattern, Pattern::Subdomains("example.com".into()));
        assert_eq!(one("ads*.example.*").pattern, Pattern::Regex(r"^ads.*\.example\..*$".into()));
        assert_eq!(one("/^ad[0-9]+\\./").pattern, Pattern::Regex("^ad[0-9]+\\.".into()));
        let allow = one("@@||good.example.com^");
        assert!(allow.allow);
        assert_eq!(allow.pattern, Pattern::Suffix("good.example.com".into()));
        let hosts = rules("0.0.0.0 a.com B.com  # two names").unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[1].pattern, Pattern::Exact("b.com".into()));
        assert!(rules("127.0.0.1 localhost").unwrap().is_empty());
        for skip in ["", "  # comment", "! adblock comment", "[Adblock Plus 2.0]"] {
            assert!(rules(skip).unwrap().is_empty(), "{skip:?}");
        }
    }

    #[test]
    fn rejects_what_it_cannot_honour() {
        for bad in [
            "||example.com^$third-party",
            "example.com/path",
            "two words",
            "bad_char!.com",
            "//",
            "a*b c",
            &"x".repeat(2000),
        ] {
            assert!(rules(bad).is_err(), "{bad:?} should be an error");
        }
    }
}
