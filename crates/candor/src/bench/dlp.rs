//! DLP scanning benchmark: a rule set of 10k keywords plus the four
//! validated detectors scans generated chat/document text, against a plain
//! aho-corasick pass with the same 10k keywords and options over the same
//! text, in the same run. Both scan the text in documents of `--doc-bytes`.

use aho_corasick::{AhoCorasickBuilder, MatchKind};
use candor_dlp::{Detector, RuleKind, RuleSet, RuleSpec, Severity};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

#[derive(clap::Args)]
pub struct DlpBench {
    /// Text to scan (MiB).
    #[arg(long, default_value_t = 128)]
    mib: usize,
    /// Keywords in the rule set.
    #[arg(long, default_value_t = 10_000)]
    keywords: usize,
    /// Size of each scanned document (bytes).
    #[arg(long, default_value_t = 4096)]
    doc_bytes: usize,
    /// Passes over the text (the best is reported for each side).
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// Fewest characters in a Chinese keyword (each has this many or one
    /// more); two-character keywords make the sampled scan test every
    /// character pair.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=16))]
    min_chars: u8,
}

const CJK: &str = "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢雷警获模充负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈策演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮挥胜降阶审沉坚善妈刘读啊超免压银买皇养伊怀执副乱抗犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背阵草脚概恶块顿敢守酒岛托央户烈洋哥索胡款靠评版宝座释景顾弟登货互付伯慢欧换闻危忙核暗姐介坏讨丽良序升监临亮露永呼味野架域沙掉括舰鱼杂误湖钟奔";

fn text(mib: usize) -> String {
    let chars: Vec<char> = CJK.chars().collect();
    let mut rng = StdRng::seed_from_u64(3);
    let mut s = String::with_capacity(mib << 20);
    while s.len() < mib << 20 {
        match rng.gen_range(0..200) {
            0 => s.push_str("身份证11010519491231002X，"),
            1 => s.push_str("电话 13812345678 "),
            2 => s.push_str("订单号 20241130000123 "),
            3..=20 => s.push_str(["report ", "the Q3 figures ", "PDF ", "v2.1 "][rng.gen_range(0..4)]),
            _ => s.push(chars[rng.gen_range(0..chars.len())]),
        }
    }
    s
}

fn keywords(n: usize, min_chars: usize) -> Vec<String> {
    let chars: Vec<char> = CJK.chars().collect();
    let mut rng = StdRng::seed_from_u64(5);
    (0..n)
        .map(|i| {
            if i % 10 == 0 {
                format!("secret{i}")
            } else {
                (0..rng.gen_range(min_chars..min_chars + 2)).map(|_| chars[rng.gen_range(0..chars.len())]).collect()
            }
        })
        .collect()
}

/// Documents of about `size` bytes, cut at character boundaries.
fn documents(text: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let mut end = (at + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[at..end]);
        at = end;
    }
    out
}

pub fn run(b: DlpBench) -> anyhow::Result<()> {
    let text = text(b.mib);
    let docs = documents(&text, b.doc_bytes);
    let words = keywords(b.keywords, b.min_chars as usize);
    let t0 = Instant::now();
    let mut specs = vec![RuleSpec {
        name: "keywords".into(),
        severity: Severity::Warning,
        kind: RuleKind::Keywords { words: words.clone() },
    }];
    for d in [Detector::ChineseId, Detector::BankCard, Detector::Mobile, Detector::Email] {
        specs.push(RuleSpec {
            name: format!("{d:?}"),
            severity: Severity::Critical,
            kind: RuleKind::Detector { detector: d },
        });
    }
    let rules = RuleSet::compile(&specs)?;
    let build_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let plain =
        AhoCorasickBuilder::new().match_kind(MatchKind::LeftmostLongest).ascii_case_insensitive(true).build(&words)?;

    // The two halves alone, to show where the time goes.
    let keywords_only = RuleSet::compile(&specs[..1])?;
    let detectors_only = RuleSet::compile(&specs[1..])?;

    let mib = text.len() as f64 / 1048576.0;
    let (mut best_candor, mut best_plain, mut best_keywords, mut best_detectors) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let (mut findings, mut matches, mut keyword_findings) = (0usize, 0usize, 0usize);
    let timed = |best: &mut f64, f: &dyn Fn() -> usize| {
        let t0 = Instant::now();
        let n = f();
        *best = best.min(t0.elapsed().as_secs_f64());
        n
    };
    let count = |set: &RuleSet| docs.iter().map(|d| set.scan(d)).map(|s| s.findings.len() + s.more).sum::<usize>();
    for _ in 0..b.passes.max(1) {
        findings = timed(&mut best_candor, &|| count(&rules));
        matches = timed(&mut best_plain, &|| docs.iter().map(|d| plain.find_iter(d).count()).sum());
        keyword_findings = timed(&mut best_keywords, &|| count(&keywords_only));
        timed(&mut best_detectors, &|| count(&detectors_only));
    }
    anyhow::ensure!(
        keyword_findings == matches,
        "candor found {keyword_findings} keyword matches, aho-corasick {matches}"
    );
    println!(
        "{:.0} MiB in {} documents of {} bytes; {} keywords; rule set built in {build_ms:.0} ms",
        mib,
        docs.len(),
        b.doc_bytes,
        words.len()
    );
    println!("\n{:<40}{:>12}{:>18}{:>10}", "", "candor dlp", "aho-corasick only", "ratio");
    println!(
        "{:<40}{:>12.0}{:>18.0}{:>9.2}×",
        "throughput (MiB/s)",
        mib / best_candor,
        mib / best_plain,
        best_plain / best_candor
    );
    println!("{:<40}{:>12.0}", "  keywords alone (MiB/s)", mib / best_keywords);
    println!("{:<40}{:>12.0}", "  detectors alone (MiB/s)", mib / best_detectors);
    println!("{:<40}{:>12}{:>18}", "findings / keyword matches", findings, matches);
    Ok(())
}
