//! The chat search index (tantivy). It holds no text of its own — only the
//! bigram postings, the message id, its time and who/where — so the store
//! stays the one copy of each message and a purge deletes by id.

use crate::text::{query_pairs, BigramTokenizer, END};
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, PhraseQuery, Query, RangeQuery, RegexQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STRING,
};
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};

/// Longest query accepted, in characters (a phrase of at most this many pairs).
pub const MAX_QUERY_CHARS: usize = 100;
const WRITER_BUDGET: usize = 64 << 20;
const TOKENIZER: &str = "candor_bigram";

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("search index directory: {0}")]
    Directory(String),
    #[error("query longer than {MAX_QUERY_CHARS} characters")]
    QueryTooLong,
}

#[derive(Clone, Copy)]
struct Fields {
    msg: Field,
    ts: Field,
    grams: Field,
    people: Field,
    room: Field,
    kind: Field,
    /// [`crate::consent::key`]s of the (contact, scope)s the message depends on.
    consent: Field,
}

/// What the index needs of one message.
pub struct Entry<'a> {
    pub id: u64,
    pub ts_ms: i64,
    pub text: &'a str,
    /// Sender and receivers.
    pub people: Vec<&'a str>,
    pub room: &'a str,
    pub kind: &'a str,
}

#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Substring to find; empty = every message the filters let through.
    pub text: String,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Each of these must take part (sender or receiver).
    pub people: Vec<String>,
    pub room: Option<String>,
    pub kind: Option<String>,
    /// Messages with any of these taking part are left out (employees
    /// without chat consent).
    pub hidden: Vec<String>,
    /// Messages depending on any of these [`crate::consent::key`]s are left
    /// out (contacts who have not agreed in that conversation).
    pub hidden_keys: Vec<String>,
    pub limit: usize,
    pub offset: usize,
}

/// Matches newest first: `(ts_ms, message id)`, and how many there are in all.
#[derive(Debug, Default)]
pub struct Hits {
    pub total: usize,
    pub ids: Vec<(i64, u64)>,
}

pub struct ChatIndex {
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    f: Fields,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let grams = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let f = Fields {
        msg: b.add_u64_field("msg", NumericOptions::default() | INDEXED | FAST),
        ts: b.add_i64_field("ts", NumericOptions::default() | INDEXED | FAST),
        grams: b.add_text_field("grams", grams),
        people: b.add_text_field("people", STRING),
        room: b.add_text_field("room", STRING),
        kind: b.add_text_field("kind", STRING),
        consent: b.add_text_field("consent", STRING),
    };
    (b.build(), f)
}

impl ChatIndex {
    /// Opens the index in `dir`, creating it if needed. An index of another
    /// schema (an older version's) is emptied: it is rebuilt from the store,
    /// as [`ChatIndex::indexed_upto`] then says 0.
    pub fn open(dir: &Path) -> Result<ChatIndex, IndexError> {
        let bad_dir = |e: &dyn std::fmt::Display| IndexError::Directory(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| bad_dir(&e))?;
        let (schema, f) = schema();
        let mmap = tantivy::directory::MmapDirectory::open(dir).map_err(|e| bad_dir(&e))?;
        if Index::exists(&mmap).map_err(|e| bad_dir(&e))? && Index::open(mmap.clone())?.schema() != schema {
            tracing::warn!(dir = %dir.display(), "the chat index has an older schema; rebuilding it");
            for entry in std::fs::read_dir(dir).map_err(|e| bad_dir(&e))? {
                let path = entry.map_err(|e| bad_dir(&e))?.path();
                std::fs::remove_file(&path).map_err(|e| bad_dir(&e))?;
            }
        }
        Self::with(Index::open_or_create(mmap, schema)?, f)
    }

    fn with(index: Index, f: Fields) -> Result<ChatIndex, IndexError> {
        index.tokenizers().register(TOKENIZER, BigramTokenizer::default());
        let writer = index.writer(WRITER_BUDGET)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(ChatIndex { writer: Mutex::new(writer), reader, f })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        // A panic while holding the writer leaves nothing half-done that a
        // commit would publish inconsistently: tantivy's operations are atomic.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, e: &Entry<'_>) -> Result<(), IndexError> {
        let f = self.f;
        let mut doc = TantivyDocument::default();
        doc.add_u64(f.msg, e.id);
        doc.add_i64(f.ts, e.ts_ms);
        doc.add_text(f.grams, e.text);
        for p in &e.people {
            doc.add_text(f.people, p);
        }
        doc.add_text(f.room, e.room);
        doc.add_text(f.kind, e.kind);
        for (contact, scope) in crate::consent::pairs(&e.people, e.room) {
            doc.add_text(f.consent, crate::consent::key(&contact, &scope));
        }
        self.writer().add_document(doc)?;
        Ok(())
    }

    pub fn delete(&self, id: u64) {
        self.writer().delete_term(Term::from_field_u64(self.f.msg, id));
    }

    /// Makes everything added or deleted so far durable and searchable, and
    /// records (atomically with it) that messages up to id `upto` are in.
    pub fn commit(&self, upto: u64) -> Result<(), IndexError> {
        let mut w = self.writer();
        let mut prepared = w.prepare_commit()?;
        prepared.set_payload(&upto.to_string());
        prepared.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    /// The `upto` of the last commit: messages after it must be (re)indexed.
    pub fn indexed_upto(&self) -> Result<u64, IndexError> {
        let metas = self.writer().index().load_metas()?;
        Ok(metas.payload.and_then(|p| p.parse().ok()).unwrap_or(0))
    }

    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn text_query(&self, text: &str) -> Result<Option<Box<dyn Query>>, IndexError> {
        let n = text.chars().count();
        if n > MAX_QUERY_CHARS {
            return Err(IndexError::QueryTooLong);
        }
        let g = self.f.grams;
        Ok(match n {
            0 => None,
            1 => {
                let c = crate::text::normalise(text);
                let pattern = format!("(?s){}.", regex_escape(&c));
                Some(Box::new(RegexQuery::from_pattern(&pattern, g)?))
            }
            _ => {
                let terms: Vec<Term> = query_pairs(text).iter().map(|p| Term::from_field_text(g, p)).collect();
                if terms.len() == 1 {
                    Some(Box::new(TermQuery::new(terms[0].clone(), IndexRecordOption::Basic)))
                } else {
                    Some(Box::new(PhraseQuery::new(terms)))
                }
            }
        })
    }

    pub fn search(&self, q: &SearchQuery) -> Result<Hits, IndexError> {
        let f = self.f;
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        must.push((Occur::Must, self.text_query(&q.text)?.unwrap_or_else(|| Box::new(AllQuery))));
        let term = |field: Field, v: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(field, v), IndexRecordOption::Basic))
        };
        for p in &q.people {
            must.push((Occur::Must, term(f.people, p)));
        }
        if let Some(r) = &q.room {
            must.push((Occur::Must, term(f.room, r)));
        }
        if let Some(k) = &q.kind {
            must.push((Occur::Must, term(f.kind, k)));
        }
        if q.from_ms.is_some() || q.to_ms.is_some() {
            let lo = q.from_ms.map_or(Bound::Unbounded, |v| Bound::Included(Term::from_field_i64(f.ts, v)));
            let hi = q.to_ms.map_or(Bound::Unbounded, |v| Bound::Excluded(Term::from_field_i64(f.ts, v)));
            must.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        for (field, hidden) in [(f.people, &q.hidden), (f.consent, &q.hidden_keys)] {
            if !hidden.is_empty() {
                let terms = hidden.iter().map(|h| Term::from_field_text(field, h));
                must.push((Occur::MustNot, Box::new(TermSetQuery::new(terms))));
            }
        }
        let query = BooleanQuery::new(must);
        let searcher = self.reader.searcher();
        let top =
            TopDocs::with_limit(q.limit.max(1)).and_offset(q.offset).order_by_fast_field::<i64>("ts", Order::Desc);
        let (docs, total): (Vec<(i64, DocAddress)>, usize) = searcher.search(&query, &(top, Count))?;
        let mut ids = Vec::with_capacity(docs.len());
        for (ts, addr) in docs {
            let column = searcher.segment_reader(addr.segment_ord).fast_fields().u64("msg")?;
            if let Some(id) = column.first(addr.doc_id) {
                ids.push((ts, id));
            }
        }
        Ok(Hits { total, ids })
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c == END || "\\.+*?()|[]{}^$#&-~\"<>@".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(texts: &[&str]) -> (tempfile::TempDir, ChatIndex) {
        let dir = tempfile::tempdir().unwrap();
        let idx = ChatIndex::open(dir.path()).unwrap();
        for (i, t) in texts.iter().enumerate() {
            let people = if i % 2 == 0 { vec!["zhangsan", "wmExternal"] } else { vec!["lisi"] };
            idx.add(&Entry { id: i as u64, ts_ms: 1000 + i as i64, text: t, people, room: "", kind: "text" }).unwrap();
        }
        idx.commit(texts.len() as u64).unwrap();
        assert_eq!(idx.indexed_upto().unwrap(), texts.len() as u64);
        (dir, idx)
    }

    fn find(idx: &ChatIndex, q: &str) -> Vec<u64> {
        let mut ids: Vec<u64> = idx
            .search(&SearchQuery { text: q.into(), limit: 100, ..Default::default() })
            .unwrap()
            .ids
            .iter()
            .map(|h| h.1)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn substrings_across_word_boundaries() {
        let texts = ["请发一下报价单", "客户合同已经签了", "新买的iPhone15很好用", "哈哈哈", "价格", "单"];
        let (_d, idx) = index_of(&texts);
        assert_eq!(find(&idx, "价单"), [0]);
        assert_eq!(find(&idx, "户合同"), [1]);
        assert_eq!(find(&idx, "IPHONE15"), [2]);
        assert_eq!(find(&idx, "ｉｐｈｏｎｅ1"), [2]);
        assert_eq!(find(&idx, "哈哈哈"), [3]);
        assert_eq!(find(&idx, "哈哈哈哈"), Vec::<u64>::new());
        assert_eq!(find(&idx, "价"), [0, 4]);
        assert_eq!(find(&idx, "单"), [0, 5]);
        assert_eq!(find(&idx, "."), Vec::<u64>::new());
        assert_eq!(find(&idx, ""), [0, 1, 2, 3, 4, 5]);
    }

    /// An index written by a version without the consent field is emptied
    /// on open, so the server rebuilds it from the store.
    #[test]
    fn an_older_schema_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut b = Schema::builder();
            let msg = b.add_u64_field("msg", NumericOptions::default() | INDEXED | FAST);
            let index = Index::create_in_dir(dir.path(), b.build()).unwrap();
            let mut w: IndexWriter = index.writer(15_000_000).unwrap();
            let mut doc = TantivyDocument::default();
            doc.add_u64(msg, 1);
            w.add_document(doc).unwrap();
            let mut prepared = w.prepare_commit().unwrap();
            prepared.set_payload("1");
            prepared.commit().unwrap();
        }
        let idx = ChatIndex::open(dir.path()).unwrap();
        assert_eq!((idx.indexed_upto().unwrap(), idx.len()), (0, 0));
    }

    #[test]
    fn filters_and_hidden_people() {
        let (_d, idx) = index_of(&["报价一", "报价二", "报价三"]);
        let q = |people: Vec<String>, hidden: Vec<String>| {
            let q = SearchQuery { text: "报价".into(), people, hidden, limit: 10, ..Default::default() };
            idx.search(&q).unwrap().ids.iter().map(|h| h.1).collect::<Vec<_>>()
        };
        assert_eq!(q(vec![], vec![]), [2, 1, 0], "newest first");
        assert_eq!(q(vec!["lisi".into()], vec![]), [1]);
        assert_eq!(q(vec![], vec!["wmExternal".into()]), [1]);
        // wmExternal has not agreed in its chat with zhangsan (messages 0 and 2).
        let keyed = |keys: Vec<String>| {
            let q = SearchQuery { text: "报价".into(), hidden_keys: keys, limit: 10, ..Default::default() };
            idx.search(&q).unwrap().ids.iter().map(|h| h.1).collect::<Vec<_>>()
        };
        assert_eq!(keyed(vec![crate::consent::key("wmExternal", "user:zhangsan")]), [1]);
        assert_eq!(keyed(vec![crate::consent::key("wmExternal", "user:lisi")]), [2, 1, 0]);
        let ranged = SearchQuery {
            text: "报价".into(),
            from_ms: Some(1001),
            to_ms: Some(1002),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(idx.search(&ranged).unwrap().ids, [(1001, 1)]);
        idx.delete(1);
        idx.commit(3).unwrap();
        assert_eq!(q(vec![], vec![]), [2, 0]);
        assert!(idx.search(&SearchQuery { text: "长".repeat(101), ..Default::default() }).is_err());
    }
}
