//! Chat search benchmark: N generated chat messages (Chinese words with a
//! skewed frequency, ASCII model names and numbers) indexed by Candor's
//! bigram index and by SQLite FTS5 with the trigram tokenizer, in the same
//! run; then the same queries (1 to 6 characters, taken from the corpus so
//! they hit, plus misses) against both, each answering "newest 50 and how
//! many in all". Recall of both is checked against a brute-force substring
//! scan on a sample of queries. FTS5's trigram index cannot serve queries
//! under 3 characters: those run as `LIKE '%q%'`, a full scan. Relevance
//! order is timed too: Candor's jieba re-ranking of the 1,000 newest
//! matches against FTS5's bm25() order.

use anyhow::Context;
use candor_chat::index::{ChatIndex, Entry, SearchQuery};
use candor_chat::text::normalise;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

#[derive(clap::Args)]
pub struct ChatBench {
    /// Messages to index.
    #[arg(long, default_value_t = 1_000_000)]
    messages: usize,
    /// Queries to time.
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// Queries whose recall is checked against brute force.
    #[arg(long, default_value_t = 30)]
    recall_queries: usize,
}

const CHARS: &str = "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢雷警获模充负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈策演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮挥胜降阶审沉坚善妈刘读啊超免压银买皇养伊怀执副乱抗犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背阵草脚概恶块顿敢守酒岛托央户烈洋哥索胡款靠评版宝座释景顾弟登货互付伯慢欧换闻危忙核暗姐介坏讨丽良序升监临亮露永呼味野架域沙掉括舰鱼杂误湖钟奔";
const ASCII: &[&str] = &["iPhone15", "MacBook", "Q3", "2024年", "OK", "PDF", "v2.1", "P40", "WPS", "Excel"];

/// A Zipf-like pick: low indexes much more often.
fn skewed(rng: &mut StdRng, n: usize) -> usize {
    let u: f64 = rng.gen();
    ((n as f64).powf(u) - 1.0) as usize % n
}

fn corpus(n: usize) -> Vec<String> {
    let chars: Vec<char> = CHARS.chars().collect();
    let mut rng = StdRng::seed_from_u64(42);
    // A vocabulary of 5000 two- and three-character words.
    let words: Vec<String> =
        (0..5000).map(|_| (0..rng.gen_range(2..4)).map(|_| chars[skewed(&mut rng, chars.len())]).collect()).collect();
    (0..n)
        .map(|_| {
            let mut s = String::new();
            for _ in 0..rng.gen_range(2..14) {
                if rng.gen_ratio(1, 25) {
                    s.push_str(ASCII[rng.gen_range(0..ASCII.len())]);
                } else {
                    s.push_str(&words[skewed(&mut rng, words.len())]);
                }
                if rng.gen_ratio(1, 8) {
                    s.push(if rng.gen_bool(0.5) { '，' } else { ' ' });
                }
            }
            s
        })
        .collect()
}

fn queries(texts: &[String], n: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let len = [1, 2, 2, 2, 3, 3, 4, 4, 5, 6][rng.gen_range(0..10)];
        if rng.gen_ratio(1, 20) {
            // A miss.
            out.push("不存在词组".chars().take(len.max(2)).collect());
            continue;
        }
        let t: Vec<char> = texts[rng.gen_range(0..texts.len())].chars().collect();
        if t.len() <= len {
            continue;
        }
        let at = rng.gen_range(0..t.len() - len);
        let q: String = t[at..at + len].iter().collect::<String>().trim().to_string();
        if !q.is_empty() && !q.contains('，') {
            out.push(q);
        }
    }
    out
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p).map(|rd| rd.flatten().map(|e| e.metadata().map(|m| m.len()).unwrap_or(0)).sum()).unwrap_or(0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Latencies {
    all: Vec<f64>,
    short: Vec<f64>,
}

impl Latencies {
    fn summary(&mut self) -> (f64, f64, f64) {
        self.all.sort_by(f64::total_cmp);
        self.short.sort_by(f64::total_cmp);
        (pct(&self.all, 0.5), pct(&self.all, 0.99), if self.short.is_empty() { 0.0 } else { pct(&self.short, 0.99) })
    }
}

pub fn run(b: ChatBench) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    println!("generating {} messages…", b.messages);
    let texts = corpus(b.messages);
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    println!(
        "corpus: {} messages, {:.1} MiB of UTF-8, {:.1} characters per message",
        texts.len(),
        bytes as f64 / 1048576.0,
        texts.iter().map(|t| t.chars().count()).sum::<usize>() as f64 / texts.len() as f64
    );

    // Candor.
    let dir = tmp.path().join("candor");
    let idx = ChatIndex::open(&dir)?;
    let t0 = Instant::now();
    for (i, t) in texts.iter().enumerate() {
        idx.add(&Entry {
            id: i as u64 + 1,
            ts_ms: i as i64,
            text: t,
            people: vec!["zhangsan"],
            room: "",
            kind: "text",
        })?;
    }
    idx.commit(texts.len() as u64)?;
    let candor_rate = texts.len() as f64 / t0.elapsed().as_secs_f64();
    let candor_size = dir_size(&dir);

    // SQLite FTS5, trigram tokenizer, one transaction.
    let db = rusqlite::Connection::open(tmp.path().join("fts.db"))?;
    db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE VIRTUAL TABLE fts USING fts5(text, tokenize='trigram');")
        .context("creating the FTS5 table (SQLite built with FTS5)")?;
    let t0 = Instant::now();
    db.execute_batch("BEGIN")?;
    {
        let mut st = db.prepare("INSERT INTO fts (rowid, text) VALUES (?1, ?2)")?;
        for (i, t) in texts.iter().enumerate() {
            st.execute(rusqlite::params![i as i64 + 1, t])?;
        }
    }
    db.execute_batch("COMMIT; PRAGMA wal_checkpoint(TRUNCATE);")?;
    let fts_rate = texts.len() as f64 / t0.elapsed().as_secs_f64();
    let fts_size = std::fs::metadata(tmp.path().join("fts.db"))?.len();

    let qs = queries(&texts, b.queries);
    let (mut c_lat, mut f_lat) = (Latencies { all: vec![], short: vec![] }, Latencies { all: vec![], short: vec![] });
    for q in &qs {
        let short = q.chars().count() < 3;
        let t0 = Instant::now();
        let hits = idx.search(&SearchQuery { text: q.clone(), limit: 50, ..Default::default() })?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        c_lat.all.push(ms);
        if short {
            c_lat.short.push(ms);
        }
        std::hint::black_box(hits);
        let t0 = Instant::now();
        let (total, top) = fts_query(&db, q)?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        f_lat.all.push(ms);
        if short {
            f_lat.short.push(ms);
        }
        std::hint::black_box((total, top));
    }

    // Relevance order: Candor ranks the 1,000 newest matches with jieba
    // (what the API's order=relevance does, texts here from memory rather
    // than the store); FTS5 orders by its bm25() (trigram queries only).
    let t0 = Instant::now();
    candor_chat::rank::order("预热", &[(1, 1, "预热一下")]);
    let jieba_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let (mut c_rank, mut f_rank) = (Latencies { all: vec![], short: vec![] }, Latencies { all: vec![], short: vec![] });
    for q in qs.iter().take(100) {
        let short = q.chars().count() < 3;
        let t0 = Instant::now();
        let hits = idx.search(&SearchQuery { text: q.clone(), limit: 1000, ..Default::default() })?;
        let candidates: Vec<(u64, i64, &str)> =
            hits.ids.iter().map(|&(ts, id)| (id, ts, texts[id as usize - 1].as_str())).collect();
        std::hint::black_box(candor_chat::rank::order(q, &candidates));
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        c_rank.all.push(ms);
        if short {
            c_rank.short.push(ms);
        }
        let t0 = Instant::now();
        std::hint::black_box(fts_ranked(&db, q)?);
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        f_rank.all.push(ms);
        if short {
            f_rank.short.push(ms);
        }
    }

    // Recall against brute force (exact sets for Candor, counts for FTS5).
    let mut candor_found = 0usize;
    let mut fts_found = 0usize;
    let mut truth_total = 0usize;
    let folded: Vec<String> = texts.iter().map(|t| normalise(t)).collect();
    for q in qs.iter().take(b.recall_queries) {
        let fq = normalise(q);
        let truth: std::collections::HashSet<u64> =
            folded.iter().enumerate().filter(|(_, t)| t.contains(&fq)).map(|(i, _)| i as u64 + 1).collect();
        let hits = idx.search(&SearchQuery { text: q.clone(), limit: truth.len().max(1), ..Default::default() })?;
        candor_found += hits.ids.iter().filter(|(_, id)| truth.contains(id)).count();
        anyhow::ensure!(hits.total == truth.len(), "candor: query {q:?} counted {} of {}", hits.total, truth.len());
        fts_found += (fts_query(&db, q)?.0 as usize).min(truth.len());
        truth_total += truth.len();
    }
    let recall = |f: usize| if truth_total == 0 { 1.0 } else { f as f64 / truth_total as f64 };

    let (c50, c99, cs99) = c_lat.summary();
    let (f50, f99, fs99) = f_lat.summary();
    println!("\n{:<34}{:>14}{:>14}{:>10}", "", "candor", "sqlite fts5", "ratio");
    println!("{:<34}{:>14.0}{:>14.0}{:>9.2}×", "indexing (messages/s)", candor_rate, fts_rate, candor_rate / fts_rate);
    println!(
        "{:<34}{:>14.1}{:>14.1}{:>9.2}×",
        "index size (MiB)",
        candor_size as f64 / 1048576.0,
        fts_size as f64 / 1048576.0,
        candor_size as f64 / fts_size as f64
    );
    println!("{:<34}{:>14.2}{:>14.2}{:>9.2}×", "query p50 (ms)", c50, f50, c50 / f50);
    println!("{:<34}{:>14.2}{:>14.2}{:>9.2}×", "query p99 (ms)", c99, f99, c99 / f99);
    println!("{:<34}{:>14.2}{:>14.2}{:>9.2}×", "query p99, 1–2 characters (ms)", cs99, fs99, cs99 / fs99.max(1e-9));
    let (r50, r99, _) = c_rank.summary();
    let (fr50, fr99, _) = f_rank.summary();
    println!("{:<34}{:>14.2}{:>14.2}{:>9.2}×", "relevance order p50 (ms)", r50, fr50, r50 / fr50);
    println!("{:<34}{:>14.2}{:>14.2}{:>9.2}×", "relevance order p99 (ms)", r99, fr99, r99 / fr99);
    println!("{:<34}{:>14}", "  (jieba dictionary load, once)", format!("{jieba_ms:.0} ms"));
    println!(
        "{:<34}{:>14.4}{:>14.4}",
        format!("recall ({} queries)", b.recall_queries.min(qs.len())),
        recall(candor_found),
        recall(fts_found)
    );
    println!(
        "({} queries: newest 50 and the total count each; FTS5 runs queries under 3 characters as LIKE, a full scan)",
        qs.len()
    );
    Ok(())
}

/// `q` as one FTS5 phrase.
fn fts_phrase(q: &str) -> String {
    format!("\"{}\"", q.replace('"', "\"\""))
}

/// FTS5's best 50 by bm25() (queries under 3 characters: LIKE, newest 50, unranked).
fn fts_ranked(db: &rusqlite::Connection, q: &str) -> anyhow::Result<Vec<i64>> {
    if q.chars().count() < 3 {
        return Ok(fts_query(db, q)?.1);
    }
    let phrase = fts_phrase(q);
    let mut st = db.prepare_cached("SELECT rowid FROM fts WHERE fts MATCH ?1 ORDER BY bm25(fts) LIMIT 50")?;
    let top = st.query_map([&phrase], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(top)
}

/// FTS5's answer to the same question: total and newest 50.
fn fts_query(db: &rusqlite::Connection, q: &str) -> anyhow::Result<(i64, Vec<i64>)> {
    if q.chars().count() >= 3 {
        let phrase = fts_phrase(q);
        let total = db.query_row("SELECT count(*) FROM fts WHERE fts MATCH ?1", [&phrase], |r| r.get(0))?;
        let mut st = db.prepare_cached("SELECT rowid FROM fts WHERE fts MATCH ?1 ORDER BY rowid DESC LIMIT 50")?;
        let top = st.query_map([&phrase], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok((total, top))
    } else {
        let pattern = format!("%{}%", q.replace('%', "\\%").replace('_', "\\_"));
        let total =
            db.query_row("SELECT count(*) FROM fts WHERE text LIKE ?1 ESCAPE '\\'", [&pattern], |r| r.get(0))?;
        let mut st =
            db.prepare_cached("SELECT rowid FROM fts WHERE text LIKE ?1 ESCAPE '\\' ORDER BY rowid DESC LIMIT 50")?;
        let top = st.query_map([&pattern], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok((total, top))
    }
}
