//! The detectors against a labelled corpus: valid ID, card and mobile numbers
//! and e-mail addresses written the ways people write them (right after
//! Chinese text, grouped with spaces or hyphens, inside English), near-misses
//! that must not match (bad checksums, impossible dates, unknown regions and
//! issuers, wrong lengths), and look-alike numbers (order numbers,
//! timestamps, amounts). Prints precision and recall per detector.

use candor_dlp::{chinese_id_valid, Detector, RuleKind, RuleSet, RuleSpec, Severity};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

fn id_check(first17: &str) -> char {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17.bytes().zip(W).map(|(b, w)| (b - b'0') as u32 * w).sum();
    b"10X98765432"[(sum % 11) as usize] as char
}

fn luhn_complete(body: &str) -> String {
    for d in 0..10 {
        let c = format!("{body}{d}");
        if candor_dlp::luhn_valid(c.as_bytes()) {
            return c;
        }
    }
    unreachable!()
}

fn group4(s: &str, sep: char) -> String {
    s.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(&sep.to_string())
}

/// (text to embed, the detector it must trigger, or None).
fn samples(rng: &mut StdRng) -> Vec<(String, Option<Detector>)> {
    let regions = ["110105", "310101", "440305", "510104", "320102", "650102", "810000"];
    let mut out = Vec::new();
    for _ in 0..400 {
        let region = regions[rng.gen_range(0..regions.len())];
        let date = format!("{}{:02}{:02}", rng.gen_range(1940..2010), rng.gen_range(1..13), rng.gen_range(1..29));
        let body = format!("{region}{date}{}", digits(rng, 3));
        let good = format!("{body}{}", id_check(&body));
        assert!(chinese_id_valid(good.as_bytes()));
        out.push((good.clone(), Some(Detector::ChineseId)));
        let c = id_check(&body);
        let wrong = if c == '0' { '1' } else { '0' };
        out.push((format!("{body}{wrong}"), None));
        let bad_date = format!("{region}{}0230{}", rng.gen_range(1940..2010), digits(rng, 3));
        out.push((format!("{bad_date}{}", id_check(&bad_date)), None));
        let bad_region = format!("99{}{date}{}", &region[2..], digits(rng, 3));
        out.push((format!("{bad_region}{}", id_check(&bad_region)), None));

        let prefix = ["62", "4", "51", "55", "35"][rng.gen_range(0..5)];
        let len = if prefix == "62" && rng.gen_bool(0.3) { 19 } else { 16 };
        let card = luhn_complete(&format!("{prefix}{}", digits(rng, len - prefix.len() - 1)));
        let shown = if len == 16 && rng.gen_bool(0.4) { group4(&card, ' ') } else { card.clone() };
        out.push((shown, Some(Detector::BankCard)));
        let mut bad = card.into_bytes();
        let last = bad.len() - 1;
        bad[last] = b'0' + (bad[last] - b'0' + 1) % 10;
        out.push((String::from_utf8(bad).unwrap(), None));
        out.push((luhn_complete(&format!("9{}", digits(rng, 14))), None));

        let mobile = format!("1{}{}", rng.gen_range(3..10), digits(rng, 9));
        let shown = match rng.gen_range(0..3) {
            0 => mobile.clone(),
            1 => format!("{} {} {}", &mobile[..3], &mobile[3..7], &mobile[7..]),
            _ => format!("{}-{}-{}", &mobile[..3], &mobile[3..7], &mobile[7..]),
        };
        out.push((shown, Some(Detector::Mobile)));
        out.push((format!("12{}", digits(rng, 9)), None));
        out.push((format!("1{}{}", rng.gen_range(3..10), digits(rng, 8)), None));
        out.push((format!("1{}{}", rng.gen_range(3..10), digits(rng, 10)), None));

        let user = ["zhang.san", "li_si", "wangwu+crm", "sales"][rng.gen_range(0..4)];
        let domain = ["example.com", "corp.example.cn", "mail.qq.com"][rng.gen_range(0..3)];
        out.push((format!("{user}{}@{domain}", rng.gen_range(1..99)), Some(Detector::Email)));
        out.push((format!("{user}@localhost"), None));

        // Look-alikes.
        out.push((format!("2024{}", digits(rng, 14)), None)); // an order number
        out.push((format!("17{}", digits(rng, 11)), None)); // a millisecond timestamp
        out.push((format!("¥{}.{}", digits(rng, 5), digits(rng, 2)), None));
    }
    out
}

#[test]
fn detectors_precision_and_recall_on_a_labelled_corpus() {
    let mut rng = StdRng::seed_from_u64(2026);
    let contexts =
        ["身份证号{}请核实", "卡号：{}。", "电话{}，谢谢", "发到 {} 吧", "ID {} ok", "{}", "（{}）", "编号为{}的客户"];
    let rules = RuleSet::compile(
        &[Detector::ChineseId, Detector::BankCard, Detector::Mobile, Detector::Email]
            .iter()
            .map(|d| RuleSpec {
                name: format!("{d:?}"),
                severity: Severity::Critical,
                kind: RuleKind::Detector { detector: *d },
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    // detector → (true positives, false positives, false negatives)
    let mut score: HashMap<Detector, (u32, u32, u32)> = HashMap::new();
    for (value, label) in samples(&mut rng) {
        let ctx = contexts[rng.gen_range(0..contexts.len())];
        let text = ctx.replace("{}", &value);
        let found: Vec<(Detector, &str)> =
            rules.scan(&text).findings.iter().map(|f| (f.detector.unwrap(), &text[f.start..f.end])).collect();
        for (d, s) in &found {
            if Some(*d) == label && *s == value {
                score.entry(*d).or_default().0 += 1;
            } else {
                score.entry(*d).or_default().1 += 1;
                eprintln!("false positive {d:?}: {s:?} in {text:?}");
            }
        }
        if let Some(d) = label {
            if !found.iter().any(|(fd, s)| *fd == d && *s == value) {
                score.entry(d).or_default().2 += 1;
                eprintln!("missed {d:?}: {value:?} in {text:?}");
            }
        }
    }
    for d in [Detector::ChineseId, Detector::BankCard, Detector::Mobile, Detector::Email] {
        let (tp, fp, fneg) = score.get(&d).copied().unwrap_or_default();
        let precision = tp as f64 / (tp + fp).max(1) as f64;
        let recall = tp as f64 / (tp + fneg).max(1) as f64;
        println!("{d:?}: precision {precision:.4} recall {recall:.4} ({tp} true, {fp} false positives, {fneg} missed)");
        assert_eq!(recall, 1.0, "{d:?} missed valid items");
        assert!(precision >= 0.99, "{d:?} precision {precision}");
        assert!(tp >= 400, "{d:?}: {tp}");
    }
}
