//! Content classification for data-leak prevention: a [`RuleSet`] compiled
//! from [`RuleSpec`]s scans text in one pass per kind of matcher and returns
//! [`Finding`]s with a masked evidence snippet.
//!
//! Shared by every place that looks at content (chat messages now; files and
//! screen text later), so a rule means the same thing everywhere.

mod detectors;
mod keywords;
mod rules;
mod snippet;

pub use detectors::{chinese_id_valid, luhn_valid, Detector};
pub use rules::{Finding, RuleError, RuleKind, RuleSet, RuleSpec, Scan, Severity, MAX_FINDINGS};
pub use snippet::evidence;
