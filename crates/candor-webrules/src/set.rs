//! The compiled rule set: for each domain rule 32 bits of its name's hash and
//! 16 bits of list and kind, in two parallel arrays sorted within 65,536
//! buckets (the bucket is another 16 bits of the hash, so nothing is stored
//! for it), plus a `RegexSet` for the few wildcard and regex rules. About 6
//! bytes per rule; a lookup hashes the name and each parent domain and probes
//! one short bucket for each.
//!
//! Building reads the rules twice: once to count them per bucket, once to
//! write each into its place. So a rebuild beside a live set needs only the
//! new set's own memory, never an unsorted copy of it.

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

const ALLOW: u16 = 1 << 15;
const KIND_SHIFT: u32 = 13;
const EXACT: u16 = 0;
const SUFFIX: u16 = 1;
const SUBDOMAINS: u16 = 2;
const LIST_MASK: u16 = (1 << KIND_SHIFT) - 1;
const BUCKETS: usize = 1 << 16;
const MAX_LINE: usize = 1024;

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

/// Takes rules during one pass of [`RuleSet::compile`]; on its own
/// (`Builder::default()`) it only checks and counts them.
#[derive(Default)]
pub struct Builder {
    /// Rules per bucket while counting; the next free slot of each bucket while placing.
    cursor: Vec<u32>,
    /// Set for the placing pass: the arrays the rules are written into.
    placing: Option<Placing>,
    patterns: Vec<String>,
    pattern_meta: Vec<u16>,
}

struct Placing {
    /// Where each bucket starts (`BUCKETS + 1` entries).
    start: Vec<u32>,
    hashes: Vec<u32>,
    metas: Vec<u16>,
    /// Rules that did not fit the count of the first pass (input changed between passes).
    overflow: usize,
}

fn split(k: u64) -> (usize, u32) {
    ((k >> 48) as usize, (k >> 16) as u32)
}

impl Builder {
    pub fn add_rule(&mut self, list: ListId, rule: Rule) -> Result<(), String> {
        if usize::from(list) >= MAX_LISTS {
            return Err(format!("list id {list} is above {MAX_LISTS}"));
        }
        let meta = list | if rule.allow { ALLOW } else { 0 };
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
                self.pattern_meta.push(meta);
                return Ok(());
            }
        };
        let (bucket, hash) = split(key(&name));
        if self.cursor.is_empty() {
            self.cursor = vec![0; BUCKETS];
        }
        let meta = meta | kind << KIND_SHIFT;
        match &mut self.placing {
            None => self.cursor[bucket] = self.cursor[bucket].saturating_add(1),
            Some(p) => {
                let slot = self.cursor[bucket];
                if slot < p.start[bucket + 1] {
                    p.hashes[slot as usize] = hash;
                    p.metas[slot as usize] = meta;
                    self.cursor[bucket] = slot + 1;
                } else {
                    p.overflow += 1;
                }
            }
        }
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

    /// After the placing pass: sort and deduplicate each bucket, close the
    /// gaps duplicates leave (moving rules down only, so in place), and
    /// compile the patterns.
    fn finish(self) -> Result<RuleSet, String> {
        let Builder { cursor, placing, patterns, pattern_meta } = self;
        let Some(Placing { mut start, mut hashes, mut metas, overflow }) = placing else {
            return Err("the rule set was not counted first".into());
        };
        if overflow > 0 {
            return Err(format!(
                "{overflow} rules were added that were not counted: a list changed while the set was built"
            ));
        }
        let mut scratch: Vec<u64> = Vec::new();
        let mut w = 0usize;
        for (b, &end) in cursor.iter().enumerate() {
            let lo = start[b] as usize;
            start[b] = w as u32;
            scratch.clear();
            scratch.extend((lo..end as usize).map(|i| u64::from(hashes[i]) << 16 | u64::from(metas[i])));
            scratch.sort_unstable();
            scratch.dedup();
            for &e in &scratch {
                hashes[w] = (e >> 16) as u32;
                metas[w] = e as u16;
                w += 1;
            }
        }
        start[BUCKETS] = w as u32;
        hashes.truncate(w);
        metas.truncate(w);
        let patterns = if patterns.is_empty() {
            None
        } else {
            Some(
                regex::RegexSetBuilder::new(&patterns)
                    .size_limit(64 << 20)
                    .build()
                    .map_err(|e| format!("wildcard/regex rules: {e}"))?,
            )
        };
        Ok(RuleSet {
            hashes: hashes.into_boxed_slice(),
            metas: metas.into_boxed_slice(),
            index: start.into_boxed_slice(),
            patterns,
            pattern_meta: pattern_meta.into_boxed_slice(),
        })
    }
}

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
    /// Bits 16..48 of each rule's name hash, sorted within each bucket.
    hashes: Box<[u32]>,
    /// List, kind and allow flag of the rule at the same position.
    metas: Box<[u16]>,
    /// Where each bucket (the hash's top 16 bits) starts; `BUCKETS + 1` entries.
    index: Box<[u32]>,
    patterns: Option<regex::RegexSet>,
    pattern_meta: Box<[u16]>,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            hashes: Box::new([]),
            metas: Box::new([]),
            index: vec![0; BUCKETS + 1].into(),
            patterns: None,
            pattern_meta: Box::new([]),
        }
    }
}

impl RuleSet {
    /// Build a set from the rules `feed` adds to the builder it is given.
    /// `feed` is called twice and must add the same rules both times (it reads
    /// the same lists again); errors it reports are best collected afresh on
    /// each call.
    pub fn compile(mut feed: impl FnMut(&mut Builder) -> std::io::Result<()>) -> std::io::Result<RuleSet> {
        let mut counting = Builder::default();
        feed(&mut counting)?;
        let mut counts = counting.cursor;
        counts.resize(BUCKETS, 0);
        let mut start = Vec::with_capacity(BUCKETS + 1);
        let mut total = 0u32;
        start.push(0);
        for c in counts {
            total = total
                .checked_add(c)
                .ok_or_else(|| std::io::Error::other(format!("more than {} domain rules", u32::MAX)))?;
            start.push(total);
        }
        let n = total as usize;
        let mut b = Builder {
            cursor: start[..BUCKETS].to_vec(),
            placing: Some(Placing { start, hashes: vec![0; n], metas: vec![0; n], overflow: 0 }),
            ..Default::default()
        };
        feed(&mut b)?;
        b.finish().map_err(std::io::Error::other)
    }

    pub fn len(&self) -> usize {
        self.hashes.len() + self.pattern_meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the domain rules and their index (the regex set is extra
    /// and bounded by `MAX_PATTERNS`).
    pub fn heap_bytes(&self) -> usize {
        self.hashes.len() * 4 + self.metas.len() * 2 + self.index.len() * 4 + self.pattern_meta.len() * 2
    }

    /// Call `f` for every rule matching `name` (already normalised).
    pub fn for_each_match(&self, name: &str, mut f: impl FnMut(Hit)) {
        let hit = |m: u16| Hit { list: m & LIST_MASK, allow: m & ALLOW != 0 };
        for (depth, suffix) in suffixes(name).enumerate() {
            let (b, h) = split(key(suffix));
            let (lo, hi) = (self.index[b] as usize, self.index[b + 1] as usize);
            let first = lo + self.hashes[lo..hi].partition_point(|&x| x < h);
            for i in (first..hi).take_while(|&i| self.hashes[i] == h) {
                let m = self.metas[i];
                let applies = match (m >> KIND_SHIFT) & 3 {
                    EXACT => depth == 0,
                    SUFFIX => true,
                    _ => depth > 0,
                };
                if applies {
                    f(hit(m));
                }
            }
        }
        if let Some(set) = &self.patterns {
            for i in set.matches(name).iter() {
                f(hit(self.pattern_meta[i]));
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
        RuleSet::compile(|b| {
            for (i, l) in lists.iter().enumerate() {
                let r = b.add_list(i as ListId, l.as_bytes())?;
                assert_eq!(r.errors, 0, "{:?}", r.first_errors);
            }
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn duplicates_are_stored_once_and_a_list_that_grew_between_passes_is_an_error() {
        let s = set(&["a.com\na.com\n||a.com^\nb.com\n", "a.com\n"]);
        assert_eq!(s.len(), 4);
        assert_eq!(s.verdict("a.com", |l| l == 1), Some(Hit { list: 1, allow: false }));
        let mut passes = 0;
        let grew = RuleSet::compile(|b| {
            passes += 1;
            let text = if passes == 1 { "a.com\n" } else { "a.com\nb.com\n" };
            b.add_list(0, text.as_bytes()).map(drop)
        });
        assert!(grew.err().unwrap().to_string().contains("changed"));
        // A list that shrank leaves no hole a lookup could trip on.
        let mut passes = 0;
        let shrank = RuleSet::compile(|b| {
            passes += 1;
            let text = if passes == 1 { "a.com\nb.com\nc.com\n" } else { "c.com\n" };
            b.add_list(0, text.as_bytes()).map(drop)
        })
        .unwrap();
        assert_eq!(shrank.len(), 1);
        assert!(shrank.verdict("c.com", |_| true).is_some() && shrank.verdict("a.com", |_| true).is_none());
    }

    #[test]
    fn six_bytes_per_rule() {
        let text: String = (0..200_000).map(|i| format!("n{i}.example.cn\n")).collect();
        let s = set(&[&text]);
        assert_eq!(s.len(), 200_000);
        let per_rule = s.heap_bytes() as f64 / 200_000.0;
        assert!(per_rule < 7.4, "{per_rule} bytes per rule");
        assert!((0..200_000).step_by(997).all(|i| s.verdict(&format!("n{i}.example.cn"), |_| true).is_some()));
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
        let s = RuleSet::compile(|b| b.add_list(0, &raw[..]).map(drop)).unwrap();
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
