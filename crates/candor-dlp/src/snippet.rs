//! Evidence for an alert: a little context around a finding, with the
//! matched value masked so the alert itself does not spread the data.

use crate::Finding;

const CONTEXT_CHARS: usize = 20;

/// `…context [masked match] context…`, at most ~40 characters of context.
pub fn evidence(text: &str, f: &Finding) -> String {
    let (start, end) = (floor_char(text, f.start), floor_char(text, f.end));
    let before: String = {
        let chars: Vec<char> = text[..start].chars().rev().take(CONTEXT_CHARS).collect();
        chars.into_iter().rev().collect()
    };
    let after: String = text[end..].chars().take(CONTEXT_CHARS).collect();
    let lead = if before.chars().count() < text[..start].chars().count() { "…" } else { "" };
    let tail = if end + after.len() < text.len() { "…" } else { "" };
    let matched = &text[start..end];
    let shown = if f.detector.is_some() { mask(matched) } else { matched.to_string() };
    format!("{lead}{before}[{shown}]{after}{tail}").replace(['\n', '\r'], " ")
}

fn floor_char(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Keeps the first 3 and last 4 characters of longer values.
fn mask(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars
        .iter()
        .enumerate()
        .map(|(k, c)| if k < 3 || k >= n - 4 || !c.is_ascii_alphanumeric() { *c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Detector, Severity};

    #[test]
    fn masks_detected_values() {
        let text = "客户身份证11010519491231002X请核对";
        let start = text.find('1').unwrap();
        let f = Finding {
            rule: "id".into(),
            severity: Severity::Critical,
            start,
            end: start + 18,
            detector: Some(Detector::ChineseId),
        };
        assert_eq!(evidence(text, &f), "客户身份证[110***********002X]请核对");
    }
}
