//! Decoding X11 text properties: `STRING` (Latin-1), `UTF8_STRING`, and
//! `COMPOUND_TEXT` (ISO 2022 with the designations X clients use: Latin-1
//! right half, JIS X 0208, GB 2312, KS C 5601, and UTF-8 extended segments).
//! xterm, for one, titles windows in COMPOUND_TEXT. Unknown designations and
//! broken sequences become U+FFFD; decoding never fails.

use encoding_rs::{Encoding, EUC_JP, EUC_KR, GBK};

pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|b| *b as char).collect()
}

/// Which 94×94 set is designated, decoded through its EUC form.
fn double_byte(final_byte: u8) -> Option<&'static Encoding> {
    match final_byte {
        b'A' => Some(GBK),
        b'B' => Some(EUC_JP),
        b'C' => Some(EUC_KR),
        _ => None,
    }
}

pub fn compound_text(bytes: &[u8]) -> String {
    let mut out = String::new();
    // G0 (bytes < 0x80) and G1 (bytes >= 0x80): None = single-byte default
    // (ASCII / Latin-1 right half); Some(encoding) = a 94×94 set.
    let (mut g0, mut g1): (Option<&Encoding>, Option<&Encoding>) = (None, None);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0x1b {
            let rest = &bytes[i + 1..];
            match rest {
                [b'%', b'G', tail @ ..] => {
                    // UTF-8 segment until ESC % @.
                    let end = tail.windows(3).position(|w| w == b"\x1b%@").unwrap_or(tail.len());
                    out.push_str(&String::from_utf8_lossy(&tail[..end]));
                    i += 3 + end + 3.min(tail.len() - end);
                    continue;
                }
                [b'$', b'(', f, ..] | [b'$', f @ b'A'..=b'C', ..] => {
                    g0 = double_byte(*f);
                    i += if rest[1] == b'(' { 4 } else { 3 };
                    continue;
                }
                [b'$', b')', f, ..] => {
                    g1 = double_byte(*f);
                    i += 4;
                    continue;
                }
                [b'(', _, ..] => {
                    g0 = None;
                    i += 3;
                    continue;
                }
                [b'-', _, ..] => {
                    g1 = None;
                    i += 3;
                    continue;
                }
                _ => {
                    out.push('\u{FFFD}');
                    i += 1;
                    continue;
                }
            }
        }
        let set = if b < 0x80 { g0 } else { g1 };
        match set {
            Some(enc) if b > 0x20 && b != 0x7f && b != 0xa0 && b != 0xff => {
                if let Some(&b2) = bytes.get(i + 1) {
                    let pair = [b | 0x80, b2 | 0x80];
                    let (cow, _, _) = enc.decode(&pair);
                    out.push_str(&cow);
                } else {
                    out.push('\u{FFFD}');
                }
                i += 2;
            }
            _ => {
                out.push(if b < 0x80 { b as char } else { char::from(b) });
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xterm_titles() {
        // What xterm stores for "Alpha 甲" (JIS X 0208 in G0).
        assert_eq!(compound_text(b"Alpha \x1b$(B9C"), "Alpha 甲");
        // GB 2312 in G1: 报价单 is B1A8 BCDB B5A5 in EUC-CN.
        assert_eq!(compound_text(b"\x1b$)A\xb1\xa8\xbc\xdb\xb5\xa5.xlsx"), "报价单.xlsx");
        assert_eq!(compound_text(b"a\x1b%G\xe4\xb8\xad\x1b%@b"), "a中b");
        assert_eq!(compound_text(b"caf\xe9"), "café");
        assert_eq!(latin1(b"caf\xe9"), "café");
    }

    #[test]
    fn hostile_sequences_never_panic() {
        for input in [&b"\x1b"[..], b"\x1b$", b"\x1b$(", b"\x1b$(B9", b"\x1b%G\xff", b"\x1b%", b"\x1bZ", b"\x1b$)Z\xb1"]
        {
            let _ = compound_text(input);
        }
        let mut x = 7u32;
        for _ in 0..20_000 {
            let v: Vec<u8> = (0..16)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x % 7) as u8 * 37
                })
                .collect();
            let _ = compound_text(&v);
        }
    }
}
