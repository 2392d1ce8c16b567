#![no_main]
//! Any text scanned by the DLP rules (chat messages, later files): keywords, a regex, every
//! detector; evidence snippets cut from it.
use candor_dlp::{Detector, RuleKind, RuleSet, RuleSpec, Severity};
use std::sync::OnceLock;

fn rules() -> &'static RuleSet {
    static R: OnceLock<RuleSet> = OnceLock::new();
    R.get_or_init(|| {
        // Enough long keywords that the sampled scan, not only the automaton, runs.
        let mut words: Vec<String> = ["报价单", "Secret", "密", "ab"].map(String::from).into();
        words.extend((0..40).map(|i| format!("客户名单{i}")));
        let mut specs = vec![
            RuleSpec { name: "k".into(), severity: Severity::Warning, kind: RuleKind::Keywords { words } },
            RuleSpec { name: "r".into(), severity: Severity::Info, kind: RuleKind::Regex { pattern: r"HT-\d{4,}".into() } },
        ];
        for d in [Detector::ChineseId, Detector::BankCard, Detector::Mobile, Detector::Email] {
            specs.push(RuleSpec { name: format!("{d:?}"), severity: Severity::Critical, kind: RuleKind::Detector { detector: d } });
        }
        RuleSet::compile(&specs).expect("fixed rules compile")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let scan = rules().scan(&text);
    for f in &scan.findings {
        assert!(f.start < f.end && f.end <= text.len() && text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        let _ = candor_dlp::evidence(&text, f);
    }
    // Rule lists are admin input too.
    if let Ok(specs) = serde_json::from_slice::<Vec<RuleSpec>>(data) {
        let _ = RuleSet::compile(&specs);
    }
});
