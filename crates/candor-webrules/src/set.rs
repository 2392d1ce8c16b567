//! The compiled rule set: one sorted array of 64-bit entries (48 bits of the
//! name's hash, 16 bits of list and kind) with a 65,536-bucket index, plus a
//! `RegexSet` for the few wildcard and regex rules. About 8 bytes per rule;
//! a lookup hashes the name and each parent domain and probes one short
//! bucket for each.

use crate::domain::{key, suffixes};
use crate::list::{parse_line, LineError, Pattern, Rule};
use std::io::BufRead;

/// Which list a rule came from (an index the caller assigns).
pub type ListId = u16;

/// Lists one set can hold (13 bits of each entry).
pub const MAX_LISTS: usize = 1 << 13;
/// Wildcard and regex rules one set can hold: they are matched by a
/// `RegexSet`, whose cost grows with their number, so large lists must be
/// domain lists.
pub const MAX_PATTERNS: usize = 10_000;
/// Errors kept per list (all are counted).
const KEPT_ERRORS: usize = 100;

const ALLOW: u64 = 1 << 15;
const KIND_SHIFT: u32 = 13;
const EXACT: u64 = 0;
const SUFFIX: u64 = 1;
const SUBDOMAINS: u64 = 2;
const LIST_MASK: u64 = (1 << KIND_SHIFT) - 1;

/// A rule of `list` matched; `allow` rules override blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub list: ListId,
    pub allow: bool,
}

/// What loading one list found.
#[derive(Debug, Default, Clone)]
pub struct ListReport {
    pub rules: usize,
    pub errors: usize,
    /// The first errors, with line numbers.
    pub first_errors: Vec<LineError>,
}

#[derive(Default)]
pub struct Builder {
    entries: Vec<u64>,
    patterns: Vec<String>,
    pattern_meta: Vec<u16>,
}

impl Builder {
    /// Reserve room for about `rules` domain rules, so that building does not
    /// grow (and briefly double) the array.
    pub fn with_capacity(rules: usize) -> Self {
        Builder { entries: Vec::with_capacity(rules), ..Default::default() }
    }

    pub fn add_rule(&mut self, list: ListId, rule: Rule) -> Result<(), String> {
        if usize::from(list) >= MAX_LISTS {
            return Err(format!("list id {list} is above {MAX_LISTS}"));
        }
        let meta = u64::from(list) | if rule.allow { ALLOW } else { 0 };
        let (kind, name) = match rule.pattern {
            Pattern::Exact(n) => (EXACT, n),
            Pattern::Suffix(n) => (SUFFIX, n),
            Pattern::Subdomains(n) => (SUBDOMAINS, n),
            Pattern::Regex(re) => {
                if self.patterns.len() >= MAX_PATTERNS {
                    return Err(format!("more than {MAX_PATTERNS} wildcard/regex rules; use domain rules"));
                }
                regex::Regex::new(&re).map_err(|e| format!("regular expression: {e}"))?;
                self.patterns.push(re);
                self.pattern_meta.push(meta as u16);
                return Ok(());
            }
        };
        self.entries.push(key(&name) | kind << KIND_SHIFT | meta);
        Ok(())
    }

    /// Load a whole list; bad lines are reported with their numbers and skipped.
    pub fn add_list(&mut self, list: ListId, mut text: impl BufRead) -> std::io::Result<ListReport> {
        let mut report = ListReport::default();
        let mut buf = Vec::new();
        let mut line_no = 0;
        loop {
            buf.clear();
            let long = read_line_bounded(&mut text, &mut buf)?;
            if buf.is_empty() && !long {
                return Ok(report);
            }
            line_no += 1;
            let result = if long {
                Err("line too long".to_string())
            } else {
                match std::str::from_utf8(&buf) {
                    Ok(line) => {
                        let mut failed = None;
                        let parsed = parse_line(line, &mut |rule| match self.add_rule(list, rule) {
                            Ok(()) => report.rules += 1,
                            Err(e) => failed = Some(e),
                        });
                        parsed.and(failed.map_or(Ok(()), Err))
                    }
                    Err(_) => Err("not UTF-8".to_string()),
                }
            };
            if let Err(message) = result {
                report.errors += 1;
                if report.first_errors.len() < KEPT_ERRORS {
                    report.first_errors.push(LineError { line: line_no, message });
                }
            }
        }
    }

    pub fn build(mut self) -> Result<RuleSet, String> {
        self.entries.sort_unstable();
        self.entries.dedup();
        self.entries.shrink_to_fit();
        let mut index = vec![0u32; BUCKETS + 1];
        let mut pos = 0usize;
        for (b, slot) in index.iter_mut().enumerate() {
            while pos < self.entries.len() && ((self.entries[pos] >> 48) as usize) < b {
                pos += 1;
            }
            *slot = pos as u32;
        }
        let patterns = if self.patterns.is_empty() {
            None
        } else {
            Some(
                regex::RegexSetBuilder::new(&self.patterns)
                    .size_limit(64 << 20)
                    .build()
                    .map_err(|e| format!("wildcard/regex rules: {e}"))?,
            )
        };
        Ok(RuleSet {
            entries: self.entries.into_boxed_slice(),
            index: index.into_boxed_slice(),
            patterns,
            pattern_meta: self.pattern_meta.into_boxed_slice(),
        })
    }
}

const BUCKETS: usize = 1 << 16;
const MAX_LINE: usize = 1024;

/// Read one line (without its newline) of at most `MAX_LINE` bytes; a longer
/// one is consumed and reported as `true` with nothing kept.
fn read_line_bounded(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut long = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(long);
        }
        let (part, done) = match memchr_newline(chunk) {
            Some(i) => (&chunk[..i], i + 1),
            None => (chunk, chunk.len()),
        };
        if !long && buf.len() + part.len() <= MAX_LINE {
            buf.extend_from_slice(part);
        } else {
            long = true;
            buf.clear();
        }
        let ended = done <= chunk.len() && chunk.get(done - 1) == Some(&b'\n');
        r.consume(done);
        if ended {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(long);
        }
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Compiled rules; immutable, so a new set is built beside the old one and
/// swapped in whole.
pub struct RuleSet {
    entries: Box<[u64]>,
    index: Box<[u32]>,
    patterns: Option<regex::RegexSet>,
    pattern_meta: Box<[u16]>,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            entries: Box::new([]),
            index: vec![0; BUCKETS + 1].into(),
            patterns: None,
            pattern_meta: Box::new([]),
        }
    }
}

impl RuleSet {
    pub fn len(&self) -> usize {
        self.entries.len() + self.pattern_meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the domain rules and their index (the regex set is extra
    /// and bounded by `MAX_PATTERNS`).
    pub fn heap_bytes(&self) -> usize {
        self.entries.len() * 8 + self.index.len() * 4 + self.pattern_meta.len() * 2
    }

    /// Call `f` for every rule matching `name` (already normalised).
    pub fn for_each_match(&self, name: &str, mut f: impl FnMut(Hit)) {
        for (depth, suffix) in suffixes(name).enumerate() {
            let k = key(suffix);
            let b = (k >> 48) as usize;
            let (lo, hi) = (self.index[b] as usize, self.index[b + 1] as usize);
            let bucket = &self.entries[lo..hi];
            let start = bucket.partition_point(|e| e & !0xFFFF < k);
            for &e in bucket[start..].iter().take_while(|e| *e & !0xFFFF == k) {
                let kind = (e >> KIND_SHIFT) & 3;
                let applies = match kind {
                    EXACT => depth == 0,
                    SUFFIX => true,
                    _ => depth > 0,
                };
                if applies {
                    f(Hit { list: (e & LIST_MASK) as ListId, allow: e & ALLOW != 0 });
                }
            }
        }
        if let Some(set) = &self.patterns {
            for i in set.matches(name).iter() {
                let m = u64::from(self.pattern_meta[i]);
                f(Hit { list: (m & LIST_MASK) as ListId, allow: m & ALLOW != 0 });
            }
        }
    }

    /// The decision for `name` among the lists `active` accepts: any allow
    /// rule wins; else the first block rule found; else `None`.
    pub fn verdict(&self, name: &str, active: impl Fn(ListId) -> bool) -> Option<Hit> {
        let mut block = None;
        let mut allow = None;
        self.for_each_match(name, |h| {
            if !active(h.list) {
                return;
            }
            if h.allow {
                allow.get_or_insert(h);
            } else {
                block.get_or_insert(h);
            }
        });
        allow.or(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(lists: &[&str]) -> RuleSet {
        let mut b = Builder::default();
        for (i, l) in lists.iter().enumerate() {
            let r = b.add_list(i as ListId, l.as_bytes()).unwrap();
            assert_eq!(r.errors, 0, "{:?}", r.first_errors);
        }
        b.build().unwrap()
    }

    #[test]
    fn kinds_match_what_they_say() {
        let s = set(&["exact.com\n||suffix.com^\n*.subs.com\nads*.wild.*\n/^t[0-9]+\\.re\\.com$/\n"]);
        let hit = |n: &str| s.verdict(n, |_| true).is_some();
        assert!(hit("exact.com") && !hit("www.exact.com"));
        assert!(hit("suffix.com") && hit("a.b.suffix.com") && !hit("notsuffix.com"));
        assert!(!hit("subs.com") && hit("x.subs.com"));
        assert!(hit("ads1.wild.org") && !hit("wild.org"));
        assert!(hit("t42.re.com") && !hit("tx.re.com"));
        assert!(!hit("com"));
    }

    #[test]
    fn allow_overrides_block_and_lists_can_be_switched_off() {
        let s = set(&["||example.com^\n", "@@||good.example.com^\n"]);
        assert_eq!(s.verdict("bad.example.com", |_| true), Some(Hit { list: 0, allow: false }));
        assert_eq!(s.verdict("x.good.example.com", |_| true), Some(Hit { list: 1, allow: true }));
        assert_eq!(s.verdict("bad.example.com", |l| l != 0), None);
    }

    #[test]
    fn bad_lines_are_numbered_and_the_rest_loads() {
        let mut b = Builder::default();
        let text = format!("a.com\nbad domain here\nb.com\n{}\n\u{0}\nc..com\nd.com", "x".repeat(5000));
        let r = b.add_list(0, text.as_bytes()).unwrap();
        assert_eq!(r.rules, 3, "{:?}", r.first_errors);
        assert_eq!(r.first_errors.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 4, 5, 6]);
        let mut raw = b"ok.com\n\xff\xfe.com\r\nz.com\r\n".to_vec();
        raw.extend_from_slice(b"y.com");
        let mut b = Builder::default();
        let r = b.add_list(0, &raw[..]).unwrap();
        assert_eq!((r.rules, r.errors), (3, 1));
        let s = b.build().unwrap();
        assert!(s.verdict("z.com", |_| true).is_some() && s.verdict("y.com", |_| true).is_some());
    }

    #[test]
    fn matches_a_brute_force_truth_on_random_names() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let label = |rng: &mut rand::rngs::StdRng| format!("l{}", rng.gen_range(0..50));
        let mut exact = std::collections::HashSet::new();
        let mut suffix = std::collections::HashSet::new();
        let mut text = String::new();
        for _ in 0..2000 {
            let name = format!("{}.{}.cn", label(&mut rng), label(&mut rng));
            if rng.gen_bool(0.5) {
                text.push_str(&format!("{name}\n"));
                exact.insert(name);
            } else {
                text.push_str(&format!("||{name}^\n"));
                suffix.insert(name);
            }
        }
        let s = set(&[&text]);
        for _ in 0..20_000 {
            let name = format!("{}.{}.{}.cn", label(&mut rng), label(&mut rng), label(&mut rng));
            let parent = name.split_once('.').unwrap().1.to_string();
            let truth = exact.contains(&name) || suffix.contains(&name) || suffix.contains(&parent);
            assert_eq!(s.verdict(&name, |_| true).is_some(), truth, "{name}");
            let truth = exact.contains(&parent) || suffix.contains(&parent);
            assert_eq!(s.verdict(&parent, |_| true).is_some(), truth, "{parent}");
        }
    }
}
