//! Keyword matching that stays fast with many CJK keywords. A plain
//! Aho-Corasick automaton walks a state per byte, and on Chinese text with
//! thousands of Chinese keywords nearly every character begins some keyword,
//! so it runs from memory rather than cache (measured: ~100 MiB/s with 10k
//! keywords; see docs/benchmarks.md). Here the text is sampled every
//! `stride` bytes, and the [`GRAM`] bytes at each sample pick a bucket by
//! their hash. A bucket is one 64-bit word: a small signature of the grams in
//! it (two bits each) and where its keywords begin in one flat entry list;
//! only where the signature matches are the keywords compared, so the common
//! miss costs one load from an array that stays in L2 cache, and a hit one
//! more read of the entries (the table probe this replaced cost a cache miss
//! of its own per hit). Each keyword is indexed by its grams at offsets
//! `0..stride`, so one of them lies on a sample wherever the keyword starts;
//! that needs keywords of at least `GRAM + stride - 1` bytes. The stride is
//! the largest (up to [`MAX_STRIDE`]) that leaves at most
//! [`AUTOMATON_WORDS`] keywords shorter than that, and those go to an
//! ordinary automaton (the `aho-corasick` crate), whose vectorised
//! prefilter serves a few words well: three-character Chinese keywords
//! (9 bytes) give a sample every 4 bytes, however many there are. Sample
//! positions do not depend on the text, so the CPU overlaps their loads
//! instead of waiting on UTF-8 decoding. Both matchers read a copy of the
//! text with ASCII letters lowered (one vectorised pass) instead of folding
//! case at every byte they look at.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Buckets per indexed gram, at least (a power of two above it): about 0.3%
/// of samples then hit a signature by chance. At most 2^16 buckets
/// (512 KiB), which stays in L2 cache.
const BUCKETS_PER_GRAM: usize = 2;
const MAX_BUCKET_BITS: u32 = 16;
/// Bytes hashed per sample: two Chinese characters when aligned, and at any
/// offset one whole character plus most of a neighbour. Measured on the
/// keyword set of `candor bench dlp`: 4-byte grams scanned 146 MiB/s, 5-byte
/// 412, 6-byte 573 — shorter grams hit far more often.
const GRAM: usize = 6;
/// Each keyword is indexed `stride` times; the cap bounds the index and the
/// buckets' fill when every keyword is long.
const MAX_STRIDE: usize = 8;
/// Keywords an automaton takes beside the sampled scan: aho-corasick's
/// vectorised prefilter stays fast up to a few dozen words.
const AUTOMATON_WORDS: usize = 32;
/// The lowered copy of the text is kept for the next scan up to this size.
const MAX_KEPT_BUFFER: usize = 1 << 20;

pub struct Keywords {
    /// `1 << bucket_bits` buckets and one more that ends the last: each the
    /// signature of its grams (high 32 bits) and the index of its first
    /// entry (low 32 bits); a bucket's entries end where the next one's begin.
    buckets: Box<[u64]>,
    bucket_bits: u32,
    /// Every keyword under each of its indexed grams, by bucket.
    entries: Box<[Entry]>,
    keywords: Box<[Keyword]>,
    /// The lowered keywords, end to end.
    arena: Box<[u8]>,
    /// Bytes between samples.
    stride: usize,
    /// Keywords too short for the stride: an unanchored automaton.
    short: Option<(AhoCorasick, Vec<usize>)>,
}

/// A keyword as indexed under one of its grams: 16 bytes, so a hit reads one
/// cache line and most candidates are rejected by `head` alone.
#[derive(Clone, Copy)]
struct Entry {
    /// The keyword's first 8 bytes ([`word8`]).
    head: u64,
    /// Index into [`Keywords::keywords`].
    keyword: u32,
    len: u16,
    /// Bytes in the keyword before the indexed gram.
    back: u16,
}

struct Keyword {
    /// Where its bytes lie in the arena.
    off: u32,
    /// The pattern id reported for it.
    id: u32,
}

const MIX: u64 = 0x9E37_79B9_7F4A_7C15;
/// The signature half of a bucket.
const SIGNATURE: u64 = 0xffff_ffff << 32;

/// The first `n` (at most 8) bytes at `b[i..]` as a number, zeros past `n`
/// bytes or the end of `b`.
#[inline(always)]
fn word8(b: &[u8], i: usize, n: usize) -> u64 {
    let x = match b.get(i..i + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().unwrap_or_default()),
        // Near the end, byte by byte: written as one copy of variable length,
        // the compiler merged it with the load above into a `memcpy` call
        // per sample (measured: a quarter of all instructions).
        None => b[i..].iter().rev().fold(0, |x, &c| x << 8 | u64::from(c)),
    };
    if n < 8 {
        x & ((1u64 << (8 * n)) - 1)
    } else {
        x
    }
}

/// The bucket of the [`GRAM`] bytes at `b[i..]` (top bits of their hash) and
/// their two signature bits (chosen by middle bits: the low bits of a
/// product depend only on the low bits of the gram). The caller ensures
/// `i + GRAM <= b.len()`.
#[inline(always)]
fn probe(b: &[u8], i: usize, bucket_bits: u32) -> (usize, u64) {
    let h = word8(b, i, GRAM).wrapping_mul(MIX);
    ((h >> (64 - bucket_bits)) as usize, SIGNATURE_BITS[((h >> 26) & 1023) as usize])
}

/// Two of the 32 signature bits for each 10 bits of hash: one load from L1
/// instead of two variable shifts per sample (measured 15% faster).
static SIGNATURE_BITS: [u64; 1024] = {
    let mut t = [0u64; 1024];
    let mut k = 0;
    while k < 1024 {
        t[k] = (1 << (32 + (k & 31))) | (1 << (32 + (k >> 5)));
        k += 1;
    }
    t
};

impl Keywords {
    /// `words[i]` belongs to pattern id `i` (reported back by [`Keywords::find`]).
    pub fn new(words: &[&str]) -> Result<Keywords, aho_corasick::BuildError> {
        // The stride is the largest that leaves at most `AUTOMATON_WORDS`
        // keywords too short to be indexed at it: one short keyword must
        // not slow the scan for ten thousand long ones.
        let mut lens: Vec<usize> = words.iter().map(|w| w.len()).filter(|&n| n > 0).collect();
        lens.sort_unstable();
        let stride = (1..=MAX_STRIDE)
            .rev()
            .find(|s| lens.partition_point(|&n| n < GRAM + s - 1) <= AUTOMATON_WORDS)
            .unwrap_or(1);
        let (mut keywords, mut arena, mut short, mut short_ids) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, w) in words.iter().enumerate() {
            match w.len() {
                0 => {}
                n if n < GRAM + stride - 1 => {
                    short.push(w.to_ascii_lowercase());
                    short_ids.push(i);
                }
                _ => {
                    keywords.push(Keyword { off: arena.len() as u32, id: i as u32 });
                    arena.extend(w.bytes().map(|c| c.to_ascii_lowercase()));
                }
            }
        }
        let bucket_bits =
            (keywords.len() * stride * BUCKETS_PER_GRAM).next_power_of_two().trailing_zeros().clamp(4, MAX_BUCKET_BITS);
        let mut buckets = vec![0u64; (1 << bucket_bits) + 1].into_boxed_slice();
        // (bucket, entry) for every keyword and offset, each bucket's in the
        // order leftmost-longest matching tries them: earliest start first,
        // then longest.
        let mut indexed = Vec::with_capacity(keywords.len() * stride);
        for (k, kw) in keywords.iter().enumerate() {
            let end = keywords.get(k + 1).map_or(arena.len(), |next| next.off as usize);
            let word = &arena[kw.off as usize..end];
            // Every indexed keyword has at least `stride + GRAM - 1` bytes.
            for back in 0..stride {
                let (bucket, bits) = probe(word, back, bucket_bits);
                buckets[bucket] |= bits;
                let e = Entry {
                    head: word8(word, 0, word.len()),
                    keyword: k as u32,
                    len: word.len() as u16,
                    back: back as u16,
                };
                indexed.push((bucket, e));
            }
        }
        indexed.sort_unstable_by_key(|(bucket, e)| (*bucket, std::cmp::Reverse(e.back), std::cmp::Reverse(e.len)));
        // Each bucket's first entry, counted up from the end so the extra
        // bucket ends the last one.
        let mut next = indexed.len();
        for bucket in (0..buckets.len()).rev() {
            next = indexed.partition_point(|(b, _)| *b < bucket);
            buckets[bucket] |= next as u64;
        }
        debug_assert_eq!(next, 0);
        let short = if short.is_empty() {
            None
        } else {
            // The text is lowered before the automaton sees it.
            let ac = AhoCorasickBuilder::new().match_kind(MatchKind::LeftmostLongest).build(&short)?;
            Some((ac, short_ids))
        };
        Ok(Keywords {
            buckets,
            bucket_bits,
            entries: indexed.into_iter().map(|(_, e)| e).collect(),
            keywords: keywords.into_boxed_slice(),
            arena: arena.into_boxed_slice(),
            stride,
            short,
        })
    }

    /// Calls `found(pattern id, start, end)` for each match: leftmost-longest
    /// and non-overlapping among keywords of a gram or longer, and among the
    /// shorter ones.
    pub fn find(&self, text: &str, found: impl FnMut(usize, usize, usize)) {
        // The buffer is taken out of its cell, so a `found` that scans again
        // gets a fresh one.
        thread_local! {
            static LOWER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
        }
        let mut lower = LOWER.take();
        lower.clear();
        lower.extend_from_slice(text.as_bytes());
        lower.make_ascii_lowercase();
        self.find_lowered(&lower, found);
        if lower.capacity() <= MAX_KEPT_BUFFER {
            LOWER.set(lower);
        }
    }

    fn find_lowered(&self, b: &[u8], mut found: impl FnMut(usize, usize, usize)) {
        if let Some((ac, ids)) = &self.short {
            for m in ac.find_iter(b) {
                found(ids[m.pattern().as_usize()], m.start(), m.end());
            }
        }
        if self.entries.is_empty() {
            return;
        }
        // The sample at `i` finds keywords starting in `i + 1 - stride ..= i`;
        // past `b.len() - GRAM` no keyword fits.
        let mut i = self.stride - 1;
        while i + GRAM <= b.len() {
            let (bucket, bits) = probe(b, i, self.bucket_bits);
            if self.buckets[bucket] & bits == bits {
                if let Some((id, start, end)) = self.candidate(b, i, bucket) {
                    found(id, start, end);
                    i = end + self.stride - 1;
                    continue;
                }
            }
            i += self.stride;
        }
    }

    /// The first keyword of `bucket` that the text holds around sample `i`.
    #[inline]
    fn candidate(&self, b: &[u8], i: usize, bucket: usize) -> Option<(usize, usize, usize)> {
        let first = (self.buckets[bucket] & !SIGNATURE) as usize;
        let end = (self.buckets[bucket + 1] & !SIGNATURE) as usize;
        self.entries[first..end].iter().find_map(|e| {
            let (start, n) = (i.checked_sub(e.back as usize)?, e.len as usize);
            let end = start + n;
            // A keyword begins with a lead byte, so bytes equal to it begin
            // at a character boundary.
            if end > b.len() || word8(b, start, n) != e.head {
                return None;
            }
            let kw = &self.keywords[e.keyword as usize];
            let off = kw.off as usize;
            (n <= 8 || b[start + 8..end] == self.arena[off + 8..off + n]).then_some((kw.id as usize, start, end))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same matches as one plain automaton over the same words, on text
    /// where no short keyword overlaps a long one.
    #[test]
    fn agrees_with_a_plain_automaton() {
        let words = ["报价单", "客户名单", "Secret", "机密文件", "ok", "价格表", "客户", "税"];
        let text = "请把客户名单和报价单发我，SECRET 机密文件ok价格表；客户。机密文 保密 SeCrEt 交税";
        let kw = Keywords::new(&words).unwrap();
        let mut ours = Vec::new();
        kw.find(text, |p, a, z| ours.push((a, z, p)));
        ours.sort();
        let plain = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(true)
            .build(words)
            .unwrap();
        let theirs: Vec<_> = plain.find_iter(text).map(|m| (m.start(), m.end(), m.pattern().as_usize())).collect();
        assert_eq!(ours, theirs);
        assert_eq!(ours.len(), 9);
    }

    /// Ten thousand keywords fill every bucket (the count is capped), so
    /// buckets hold several grams and signatures hit by chance: still the
    /// same matches as a plain automaton, on text dense with them.
    #[test]
    fn a_large_set_agrees_with_a_plain_automaton() {
        use rand::{Rng, SeedableRng};
        let alphabet: Vec<char> =
            "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子".chars().collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let words: Vec<String> = (0..10_000)
            .map(|i| match i % 10 {
                0 => format!("Keyword{i:05}"),
                _ => (0..rng.gen_range(3..5)).map(|_| alphabet[rng.gen_range(0..alphabet.len())]).collect(),
            })
            .collect();
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let kw = Keywords::new(&refs).unwrap();
        assert_eq!(kw.buckets.len(), (1 << MAX_BUCKET_BITS) + 1);
        let mut text = String::new();
        while text.len() < 32 << 10 {
            match rng.gen_range(0..8) {
                0 => text.push_str(&words[rng.gen_range(0..words.len())].to_uppercase()),
                _ => text.push(alphabet[rng.gen_range(0..alphabet.len())]),
            }
        }
        let mut ours = Vec::new();
        kw.find(&text, |id, a, z| ours.push((a, z, id)));
        ours.sort();
        let plain = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(true)
            .build(&refs)
            .unwrap();
        let theirs: Vec<_> = plain.find_iter(&text).map(|m| (m.start(), m.end(), m.pattern().as_usize())).collect();
        assert!(theirs.len() > 1000, "{}", theirs.len());
        let spans = |v: &[(usize, usize, usize)]| v.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>();
        assert_eq!(spans(&ours), spans(&theirs));
        assert!(ours.iter().all(|m| words[m.2].eq_ignore_ascii_case(&text[m.0..m.1])));
    }

    /// Random keyword sets of mixed Chinese and ASCII words on text made of
    /// them (dense, overlapping matches): the sampled
    /// words match exactly as a plain automaton over them, and the words
    /// left to the automaton as one over those.
    #[test]
    fn every_stride_agrees_with_a_plain_automaton() {
        use rand::{Rng, SeedableRng};
        let alphabet: Vec<char> = "报价单客户合同aB1".chars().collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut strides = std::collections::BTreeSet::new();
        for round in 0..400 {
            let chars = 1 + round % 6;
            let words: Vec<String> = (0..1 + rng.gen_range(0..60))
                .map(|_| (0..rng.gen_range(chars..chars + 4)).map(|_| alphabet[rng.gen_range(0..8)]).collect())
                .collect();
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            // Whole keywords, their tails (so that matches overlap) and noise.
            let mut text = String::new();
            for _ in 0..rng.gen_range(0..80) {
                let w = words[rng.gen_range(0..words.len())];
                match rng.gen_range(0..3) {
                    0 => text.push_str(w),
                    1 => text.extend(w.chars().skip(rng.gen_range(0..w.chars().count()))),
                    _ => text.push(alphabet[rng.gen_range(0..alphabet.len())]),
                }
            }
            // ASCII case differs between keywords and text.
            let text: String = text.chars().map(|c| if rng.gen() { c.to_ascii_uppercase() } else { c }).collect();
            let kw = Keywords::new(&words).unwrap();
            strides.insert(kw.stride);
            let sampled = |w: &str| w.len() >= GRAM + kw.stride - 1;
            assert!(words.iter().filter(|w| !sampled(w)).count() <= AUTOMATON_WORDS || kw.stride == 1);
            let mut ours = [Vec::new(), Vec::new()];
            kw.find(&text, |id, a, z| ours[sampled(words[id]) as usize].push((a, z, id)));
            for (side, found) in ours.iter_mut().enumerate() {
                let ids: Vec<usize> = (0..words.len()).filter(|&i| sampled(words[i]) == (side == 1)).collect();
                let plain = AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .ascii_case_insensitive(true)
                    .build(ids.iter().map(|&i| words[i]))
                    .unwrap();
                let theirs: Vec<_> =
                    plain.find_iter(&text).map(|m| (m.start(), m.end(), ids[m.pattern().as_usize()])).collect();
                // Equal words: either id is right.
                let same = |a: &[(usize, usize, usize)], b: &[(usize, usize, usize)]| {
                    a.len() == b.len()
                        && a.iter()
                            .zip(b)
                            .all(|(x, y)| (x.0, x.1) == (y.0, y.1) && words[x.2].eq_ignore_ascii_case(words[y.2]))
                };
                found.sort();
                assert!(same(found, &theirs), "words {words:?} text {text:?}: {found:?} vs {theirs:?}");
            }
        }
        assert!(strides.len() >= 5, "strides tried: {strides:?}");
    }
}
