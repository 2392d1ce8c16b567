//! Rule specifications (what an admin writes) and the compiled [`RuleSet`].

use crate::detectors::{self, Detector};
use crate::keywords::Keywords;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Bounds that keep a hostile rule list from exhausting memory or time.
const MAX_RULES: usize = 1_000;
const MAX_KEYWORDS: usize = 200_000;
const MAX_KEYWORD_BYTES: usize = 256;
const MAX_REGEX_BYTES: usize = 1_000;
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Findings reported per scan; the rest are counted in [`Scan::more`].
pub const MAX_FINDINGS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One rule as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default)]
    pub severity: Severity,
    #[serde(flatten)]
    pub kind: RuleKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RuleKind {
    /// Any of these words (ASCII letters case-insensitively).
    Keywords { words: Vec<String> },
    /// A regular expression (Rust `regex` syntax, linear time).
    Regex { pattern: String },
    /// A built-in validated detector.
    Detector { detector: Detector },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RuleError {
    #[error("rule {index} ({name:?}): {reason}")]
    Invalid { index: usize, name: String, reason: String },
    #[error("too many rules or keywords (at most {MAX_RULES} rules and {MAX_KEYWORDS} keywords)")]
    TooMany,
}

/// A match of one rule; offsets are byte offsets into the scanned text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Shared with the rule set: a scan with many findings allocates no names.
    pub rule: Arc<str>,
    pub severity: Severity,
    pub start: usize,
    pub end: usize,
    /// For detectors: which one (so a console can word it).
    pub detector: Option<Detector>,
}

/// The outcome of a scan: findings in text order, and how many more were cut.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    pub findings: Vec<Finding>,
    pub more: usize,
}

struct RuleInfo {
    name: Arc<str>,
    severity: Severity,
}

/// Compiled rules. Cheap to share (`Arc`) between threads.
pub struct RuleSet {
    rules: Vec<RuleInfo>,
    keywords: Option<Keywords>,
    /// Keyword pattern index → rule index.
    keyword_rule: Vec<usize>,
    regexes: Vec<(usize, regex::Regex)>,
    detectors: Vec<(usize, Detector)>,
}

impl RuleSet {
    pub fn compile(specs: &[RuleSpec]) -> Result<RuleSet, RuleError> {
        if specs.len() > MAX_RULES {
            return Err(RuleError::TooMany);
        }
        let mut set = RuleSet {
            rules: Vec::with_capacity(specs.len()),
            keywords: None,
            keyword_rule: Vec::new(),
            regexes: Vec::new(),
            detectors: Vec::new(),
        };
        let mut words: Vec<&str> = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            let bad = |reason: String| RuleError::Invalid { index, name: spec.name.clone(), reason };
            let name = spec.name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(bad("a rule needs a name of 1 to 100 characters".into()));
            }
            match &spec.kind {
                RuleKind::Keywords { words: list } => {
                    if list.is_empty() {
                        return Err(bad("a keyword rule needs at least one word".into()));
                    }
                    for w in list {
                        let w = w.trim();
                        if w.is_empty() || w.len() > MAX_KEYWORD_BYTES {
                            return Err(bad(format!(
                                "keyword {w:?} is empty or longer than {MAX_KEYWORD_BYTES} bytes"
                            )));
                        }
                        words.push(w);
                        set.keyword_rule.push(index);
                    }
                    if words.len() > MAX_KEYWORDS {
                        return Err(RuleError::TooMany);
                    }
                }
                RuleKind::Regex { pattern } => {
                    if pattern.len() > MAX_REGEX_BYTES {
                        return Err(bad(format!("pattern longer than {MAX_REGEX_BYTES} bytes")));
                    }
                    let re = regex::RegexBuilder::new(pattern)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .dfa_size_limit(REGEX_SIZE_LIMIT)
                        .build()
                        .map_err(|e| bad(format!("bad pattern: {e}")))?;
                    if re.is_match("") {
                        return Err(bad("the pattern matches empty text".into()));
                    }
                    set.regexes.push((index, re));
                }
                RuleKind::Detector { detector } => set.detectors.push((index, *detector)),
            }
            set.rules.push(RuleInfo { name: name.into(), severity: spec.severity });
        }
        if !words.is_empty() {
            let kw = Keywords::new(&words).map_err(|e| RuleError::Invalid {
                index: 0,
                name: "keywords".into(),
                reason: e.to_string(),
            })?;
            set.keywords = Some(kw);
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every rule's matches in `text`, in text order (at most [`MAX_FINDINGS`]).
    pub fn scan(&self, text: &str) -> Scan {
        let mut out = Scan::default();
        let mut push = |rule: usize, start: usize, end: usize, detector: Option<Detector>| {
            if out.findings.len() >= MAX_FINDINGS {
                out.more += 1;
                return;
            }
            let r = &self.rules[rule];
            out.findings.push(Finding { rule: r.name.clone(), severity: r.severity, start, end, detector });
        };
        if let Some(kw) = &self.keywords {
            kw.find(text, |pattern, start, end| push(self.keyword_rule[pattern], start, end, None));
        }
        for (rule, re) in &self.regexes {
            for m in re.find_iter(text) {
                push(*rule, m.start(), m.end(), None);
            }
        }
        if !self.detectors.is_empty() {
            detectors::scan(text, |d, start, end| {
                for (rule, det) in &self.detectors {
                    if *det == d {
                        push(*rule, start, end, Some(d));
                    }
                }
            });
        }
        out.findings.sort_by_key(|f| (f.start, f.end));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, kind: RuleKind) -> RuleSpec {
        RuleSpec { name: name.into(), severity: Severity::Critical, kind }
    }

    #[test]
    fn keywords_regex_and_detectors_in_one_scan() {
        let set = RuleSet::compile(&[
            spec("报价", RuleKind::Keywords { words: vec!["报价单".into(), "Confidential".into()] }),
            spec("合同号", RuleKind::Regex { pattern: r"HT-\d{6}".into() }),
            spec("身份证", RuleKind::Detector { detector: Detector::ChineseId }),
        ])
        .unwrap();
        let text = "请把报价单发我 CONFIDENTIAL 合同HT-123456，身份证11010519491231002X谢谢";
        let scan = set.scan(text);
        let names: Vec<&str> = scan.findings.iter().map(|f| &*f.rule).collect();
        assert_eq!(names, ["报价", "报价", "合同号", "身份证"]);
        assert_eq!(&text[scan.findings[3].start..scan.findings[3].end], "11010519491231002X");
    }

    #[test]
    fn bad_rules_are_named() {
        let err = RuleSet::compile(&[
            spec("ok", RuleKind::Keywords { words: vec!["a".into()] }),
            spec("bad", RuleKind::Regex { pattern: "(".into() }),
        ])
        .err()
        .unwrap();
        assert!(matches!(err, RuleError::Invalid { index: 1, .. }), "{err}");
        assert!(RuleSet::compile(&[spec("empty", RuleKind::Regex { pattern: "a*".into() })]).is_err());
        assert!(RuleSet::compile(&[spec(" ", RuleKind::Keywords { words: vec!["x".into()] })]).is_err());
    }

    #[test]
    fn findings_are_bounded() {
        let set = RuleSet::compile(&[spec("k", RuleKind::Keywords { words: vec!["x".into()] })]).unwrap();
        let scan = set.scan(&"x".repeat(1000));
        assert_eq!(scan.findings.len(), MAX_FINDINGS);
        assert_eq!(scan.more, 1000 - MAX_FINDINGS);
    }
}
