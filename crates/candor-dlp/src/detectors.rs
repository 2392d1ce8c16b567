//! Validated detectors for personal data that has a checkable structure.
//! Numbers are found by ASCII digit boundaries, not Unicode `\b`: in
//! "身份证110105…" the digits follow a letter-class character and a `\b`
//! pattern would miss them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// 居民身份证 (GB 11643-1999, 18 characters): region, birth date, checksum.
    ChineseId,
    /// Payment card: 15–19 digits, a known issuer prefix, Luhn checksum.
    BankCard,
    /// Mainland mobile number: 11 digits starting 13–19.
    Mobile,
    Email,
}

const MAX_GROUPS: usize = 5;
const MAX_DIGITS: usize = 19;
const MIN_DIGITS: usize = 11;

/// Calls `found` for every detected item, in text order.
pub fn scan(text: &str, mut found: impl FnMut(Detector, usize, usize)) {
    numbers(text.as_bytes(), &mut found);
    emails(text.as_bytes(), &mut found);
}

/// Digit runs, optionally grouped by single spaces or hyphens ("138 1234 5678").
///
/// Every detected number has a group of at least four digits, so the text is
/// searched 16 bytes at a time for four digits in a row ([`next_run`]) and
/// the grouping below runs only around them. It starts from the first digit
/// of the chain of groups holding the run, found by walking back: exactly
/// where a scan of every digit from the start would have begun that chain,
/// because chains end where the text stops joining groups. A chain longer
/// than [`MAX_WALK_BACK`] bytes is scanned from where the last one ended.
fn numbers(b: &[u8], found: &mut impl FnMut(Detector, usize, usize)) {
    let mut floor = 0;
    loop {
        let run = next_run(b, floor);
        if run >= b.len() {
            return;
        }
        let mut i = chain_start(b, run, floor);
        while i <= run {
            i = next_digit(b, i);
            if i >= b.len() {
                return;
            }
            i = chain(b, i, found);
        }
        floor = i;
    }
}

/// Bytes walked back from a run of four digits to the start of its chain.
const MAX_WALK_BACK: usize = 256;

/// The first digit of the chain of groups that holds `run`, not before
/// `floor` (`floor` itself when the chain is longer than [`MAX_WALK_BACK`]).
fn chain_start(b: &[u8], run: usize, floor: usize) -> usize {
    let mut s = run;
    loop {
        while s > floor && b[s - 1].is_ascii_digit() {
            s -= 1;
        }
        if run - s > MAX_WALK_BACK {
            return floor;
        }
        if s >= floor + 2 && matches!(b[s - 1], b' ' | b'-') && b[s - 2].is_ascii_digit() {
            s -= 2;
        } else {
            return s;
        }
    }
}

/// Looks at the chain of digit groups starting at digit `i` and reports what
/// it holds; returns where the search goes on.
fn chain(b: &[u8], i: usize, found: &mut impl FnMut(Detector, usize, usize)) -> usize {
    let mut groups: [(usize, usize); MAX_GROUPS] = [(0, 0); MAX_GROUPS];
    let mut n = 0;
    let mut digits = 0;
    let mut j = i;
    loop {
        let start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        digits += j - start;
        if n < MAX_GROUPS {
            groups[n] = (start, j);
        }
        n += 1;
        let joinable = j + 1 < b.len() && matches!(b[j], b' ' | b'-') && b[j + 1].is_ascii_digit();
        if !joinable || n >= MAX_GROUPS || digits > MAX_DIGITS {
            break;
        }
        j += 1;
    }
    let n = n.min(MAX_GROUPS);
    let groups = &mut groups[..n];
    // An 18th character X belongs to an ID number.
    let last = groups[n - 1];
    let x = last.1 < b.len()
        && matches!(b[last.1], b'X' | b'x')
        && !b.get(last.1 + 1).is_some_and(u8::is_ascii_alphanumeric);
    if x {
        groups[n - 1].1 += 1;
    }
    // The shortest detected number (a mobile) has 11 digits.
    if digits >= MIN_DIGITS && !classify(b, groups, found) && n > 1 {
        for g in groups.iter_mut() {
            classify(b, std::slice::from_mut(g), found);
        }
    }
    let mut i = groups[n - 1].1.max(i + 1);
    // Skip the rest of an over-long run so no detector matches inside it.
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Bit `k` set where `block[k]` is an ASCII digit.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn digit_mask(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8, _mm_sub_epi8,
    };
    // SAFETY: SSE2 is part of every x86-64 CPU; the load reads the 16 bytes of `block`.
    unsafe {
        let d = _mm_sub_epi8(_mm_loadu_si128(block.as_ptr().cast()), _mm_set1_epi8(b'0' as i8));
        // As unsigned bytes, digits are those below 10: min(d, 9) == d.
        _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d)) as u32
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn digit_mask(block: &[u8; 16]) -> u32 {
    block.iter().enumerate().fold(0u32, |m, (k, &c)| m | (u32::from(c.is_ascii_digit()) << k))
}

/// The first position at or after `i` where four ASCII digits follow in a
/// row (or `b.len()`).
fn next_run(b: &[u8], mut i: usize) -> usize {
    while let Some(block) = b.get(i..).and_then(|rest| rest.first_chunk::<16>()) {
        let m = digit_mask(block);
        // Bit k: digits at k..k+4; only k ≤ 12 is known from this block.
        let runs = m & (m >> 1) & (m >> 2) & (m >> 3) & 0x1fff;
        if runs != 0 {
            return i + runs.trailing_zeros() as usize;
        }
        i += 13;
    }
    let mut row = 0;
    while i < b.len() {
        row = if b[i].is_ascii_digit() { row + 1 } else { 0 };
        if row == 4 {
            return i - 3;
        }
        i += 1;
    }
    b.len()
}

/// The index of the next ASCII digit at or after `i` (or `b.len()`).
fn next_digit(b: &[u8], i: usize) -> usize {
    b[i.min(b.len())..].iter().position(u8::is_ascii_digit).map_or(b.len(), |k| i + k)
}

/// Tries the detectors on one candidate; true if one matched.
fn classify(b: &[u8], groups: &[(usize, usize)], found: &mut impl FnMut(Detector, usize, usize)) -> bool {
    let mut s = [0u8; 24];
    let mut len = 0;
    let mut lens = [0usize; MAX_GROUPS];
    for (k, &(a, z)) in groups.iter().enumerate() {
        if len + (z - a) > s.len() {
            return false;
        }
        s[len..len + z - a].copy_from_slice(&b[a..z]);
        len += z - a;
        lens[k] = z - a;
    }
    let s = &s[..len];
    let lens = &lens[..groups.len()];
    let (start, end) = (groups[0].0, groups[groups.len() - 1].1);
    let detector = if len == 18 && (lens == [18] || lens == [6, 8, 4]) && chinese_id_valid(s) {
        Detector::ChineseId
    } else if !s.iter().all(u8::is_ascii_digit) {
        return false;
    } else if len == 11 && (lens == [11] || lens == [3, 4, 4]) && s[0] == b'1' && (b'3'..=b'9').contains(&s[1]) {
        Detector::Mobile
    } else if (15..=19).contains(&len) && card_grouping(lens) && card_prefix(s) && luhn_valid(s) {
        Detector::BankCard
    } else {
        return false;
    };
    found(detector, start, end);
    true
}

fn card_grouping(lens: &[usize]) -> bool {
    match lens {
        [_] => true,
        [4, 6, 5] => true,
        [rest @ .., last] => rest.iter().all(|&l| l == 4) && (3..=4).contains(last),
        [] => false,
    }
}

/// Issuer prefixes with the lengths each issues: Amex 34/37 (15), Visa 4
/// (16, 19), Mastercard 51–55 and 2221–2720 (16), UnionPay 62, JCB 35 and
/// Discover 60/65 (16–19). An 18-digit number shaped like an ID number
/// (region and birth date) is not taken for a card.
fn card_prefix(s: &[u8]) -> bool {
    let p2 = (s[0] - b'0') as u32 * 10 + (s[1] - b'0') as u32;
    let p4 = p2 * 100 + (s[2] - b'0') as u32 * 10 + (s[3] - b'0') as u32;
    let wide = matches!(p2, 62 | 35 | 60 | 65);
    match s.len() {
        15 => p2 == 34 || p2 == 37,
        16 => wide || s[0] == b'4' || matches!(p2, 51..=55) || (2221..=2720).contains(&p4),
        18 => wide && !id_shaped(s),
        19 => wide || s[0] == b'4',
        _ => wide,
    }
}

/// The Luhn (mod 10) checksum over ASCII digits.
pub fn luhn_valid(s: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &c) in s.iter().rev().enumerate() {
        if !c.is_ascii_digit() {
            return false;
        }
        let mut d = (c - b'0') as u32;
        if k % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !s.is_empty() && sum.is_multiple_of(10)
}

/// GB 11643: province code, a real birth date (1900–2099) and the ISO 7064
/// MOD 11-2 check character.
pub fn chinese_id_valid(s: &[u8]) -> bool {
    if !id_shaped(s) {
        return false;
    }
    let d = |k: usize| (s[k] - b'0') as u32;
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = (0..17).map(|k| d(k) * W[k]).sum();
    let check = b"10X98765432"[(sum % 11) as usize];
    s[17].to_ascii_uppercase() == check
}

/// 18 characters with a province code and a real birth date (checksum not checked).
fn id_shaped(s: &[u8]) -> bool {
    if s.len() != 18 || !s[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let d = |k: usize| (s[k] - b'0') as u32;
    let province = d(0) * 10 + d(1);
    if !matches!(province, 11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81..=83) {
        return false;
    }
    let year = d(6) * 1000 + d(7) * 100 + d(8) * 10 + d(9);
    let month = d(10) * 10 + d(11);
    let day = d(12) * 10 + d(13);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1900..=2099).contains(&year) && day != 0 && day <= days
}

fn local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

fn emails(b: &[u8], found: &mut impl FnMut(Detector, usize, usize)) {
    let mut floor = 0;
    for at in memchr::memchr_iter(b'@', b) {
        if at < floor {
            continue;
        }
        let mut start = at;
        while start > floor && local_char(b[start - 1]) && at - start < 64 {
            start -= 1;
        }
        while start < at && b[start] == b'.' {
            start += 1;
        }
        let mut end = at + 1;
        while end < b.len() && domain_char(b[end]) && end - at < 254 {
            end += 1;
        }
        while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let domain = &b[at + 1..end];
        let labels_ok = domain.split(|&c| c == b'.').all(|l| !l.is_empty());
        let tld = domain.rsplit(|&c| c == b'.').next().unwrap_or_default();
        if start < at
            && labels_ok
            && domain.contains(&b'.')
            && tld.len() >= 2
            && tld.iter().all(u8::is_ascii_alphabetic)
        {
            found(Detector::Email, start, end);
            floor = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(text: &str) -> Vec<(Detector, &str)> {
        let mut out = Vec::new();
        scan(text, |d, a, z| out.push((d, &text[a..z])));
        out
    }

    #[test]
    fn checksums() {
        assert!(chinese_id_valid(b"11010519491231002X"));
        assert!(chinese_id_valid(b"11010519491231002x"));
        assert!(!chinese_id_valid(b"110105194912310021"), "wrong check digit");
        assert!(!chinese_id_valid(b"990105194912310027"), "no such province");
        assert!(!chinese_id_valid(b"110105194902300025"), "30 February");
        assert!(luhn_valid(b"4111111111111111"));
        assert!(!luhn_valid(b"4111111111111112"));
    }

    #[test]
    fn numbers_after_chinese_text_and_grouped() {
        assert_eq!(
            find("电话13812345678，卡号4111 1111 1111 1111，身份证11010519491231002X。"),
            [
                (Detector::Mobile, "13812345678"),
                (Detector::BankCard, "4111 1111 1111 1111"),
                (Detector::ChineseId, "11010519491231002X")
            ]
        );
        assert_eq!(
            find("138-1234-5678 或 13912345678"),
            [(Detector::Mobile, "138-1234-5678"), (Detector::Mobile, "13912345678")]
        );
        assert_eq!(
            find("13812345678 13912345678"),
            [(Detector::Mobile, "13812345678"), (Detector::Mobile, "13912345678")]
        );
    }

    #[test]
    fn digit_boundaries_hold() {
        assert!(find("订单号213812345678").is_empty(), "12 digits is not a mobile number");
        assert!(find("41111111111111110").is_empty());
        assert!(find("12812345678").is_empty(), "no 12x mobile prefix");
        assert!(find("1603875826656").is_empty(), "a millisecond timestamp");
    }

    /// The skipping scan finds exactly what a scan of every digit finds, on
    /// digit-dense random text with groups, separators, X and long chains.
    #[test]
    fn skipping_agrees_with_every_digit() {
        use rand::{Rng, SeedableRng};
        fn every_digit(b: &[u8]) -> Vec<(Detector, usize, usize)> {
            let mut out = Vec::new();
            let mut i = 0;
            loop {
                i = next_digit(b, i);
                if i >= b.len() {
                    return out;
                }
                i = chain(b, i, &mut |d, a, z| out.push((d, a, z)));
            }
        }
        let pieces = ["13812345678", "11010519491231002X", "4111 1111 1111 1111", "138-1234-5678", "62", "1 ", "-"];
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut found = 0;
        for round in 0..3000 {
            let mut text = String::new();
            let len = if round % 100 == 0 { 2000 } else { rng.gen_range(0..120) };
            while text.len() < len {
                match rng.gen_range(0..10) {
                    0..=2 => text.push(char::from(b'0' + rng.gen_range(0..10))),
                    3 => text.push(' '),
                    4 => text.push(['-', 'X', 'x', 'a', '报'][rng.gen_range(0..5)]),
                    5 if round % 100 == 0 => text.push_str("1 2-3 "),
                    _ => text.push_str(pieces[rng.gen_range(0..pieces.len())]),
                }
            }
            let mut ours = Vec::new();
            numbers(text.as_bytes(), &mut |d, a, z| ours.push((d, a, z)));
            assert_eq!(ours, every_digit(text.as_bytes()), "{text:?}");
            found += ours.len();
        }
        assert!(found > 1000, "the text should hold many numbers ({found})");
    }

    #[test]
    fn emails_in_chinese_text() {
        assert_eq!(find("发到zhang.san@example.com.cn，谢谢"), [(Detector::Email, "zhang.san@example.com.cn")]);
        assert!(find("a@b").is_empty());
        assert!(find("@example.com").is_empty());
        assert!(find("x@host.").is_empty());
    }
}
