//! Domain rules for web filtering and web statistics.
//!
//! Lists (hosts files, adblock-style `||domain^` lists, plain domain lists)
//! are parsed line by line by [`parse_line`]; [`RuleSet::compile`] reads any
//! number of them (twice: to count, then to place) into a set that answers
//! "which lists match this name" with a few cache misses. The same engine runs on the agent (blocking) and on the
//! server (naming the category of a visited domain), so a rule means the same
//! thing in both places.

mod domain;
mod list;
mod set;

pub use domain::{normalise, DomainError, MAX_NAME};
pub use list::{parse_line, LineError, Pattern, Rule};
pub use set::{Builder, Hit, ListId, ListReport, RuleSet, MAX_LISTS, MAX_PATTERNS};
