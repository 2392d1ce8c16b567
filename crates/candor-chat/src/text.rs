//! Text normalisation and the character-bigram tokenizer behind substring
//! search. Normalisation maps each character to exactly one character, so
//! character offsets in the normalised text are offsets in the original.
//!
//! Every character pair becomes a term at the position of its first
//! character, and the last character is paired with [`END`]. A query of k ≥ 2
//! characters is then the phrase of its k − 1 pairs at consecutive positions —
//! true exactly when the text contains the query — and a 1-character query is
//! "a pair starting with it". No word segmentation can miss a match.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Pairs the last character of a text, so single characters are findable.
pub const END: char = '\u{E000}';

/// Lower-case, full-width ASCII folded to ASCII, all whitespace (line
/// breaks too) to a space.
pub fn fold(c: char) -> char {
    if c.is_ascii() {
        return if c.is_ascii_whitespace() { ' ' } else { c.to_ascii_lowercase() };
    }
    if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
        return char::from_u32(c as u32 - 0xFEE0).map_or(c, |a| a.to_ascii_lowercase());
    }
    if c.is_whitespace() {
        return ' ';
    }
    if c == END {
        return ' ';
    }
    if c.is_uppercase() {
        let mut l = c.to_lowercase();
        if let (Some(one), None) = (l.next(), l.next()) {
            return one;
        }
    }
    c
}

pub fn normalise(s: &str) -> String {
    s.chars().map(fold).collect()
}

/// Character ranges `[from, to)` where `needle` occurs in `text` (normalised).
pub fn highlights(text: &str, needle: &str) -> Vec<(usize, usize)> {
    let hay: Vec<char> = text.chars().map(fold).collect();
    let pat: Vec<char> = needle.chars().map(fold).collect();
    let mut out = Vec::new();
    if pat.is_empty() || pat.len() > hay.len() {
        return out;
    }
    let mut i = 0;
    while i + pat.len() <= hay.len() {
        if hay[i..i + pat.len()] == pat[..] {
            out.push((i, i + pat.len()));
            i += pat.len();
        } else {
            i += 1;
        }
    }
    out
}

#[derive(Clone, Default)]
pub struct BigramTokenizer {
    token: Token,
}

pub struct BigramStream<'a> {
    chars: std::str::CharIndices<'a>,
    prev: Option<(usize, char)>,
    position: usize,
    len: usize,
    token: &'a mut Token,
}

impl Tokenizer for BigramTokenizer {
    type TokenStream<'a> = BigramStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> BigramStream<'a> {
        self.token.reset();
        let mut chars = text.char_indices();
        let prev = chars.next().map(|(i, c)| (i, fold(c)));
        BigramStream { chars, prev, position: 0, len: text.len(), token: &mut self.token }
    }
}

impl TokenStream for BigramStream<'_> {
    fn advance(&mut self) -> bool {
        let Some((start, a)) = self.prev else { return false };
        let next = self.chars.next();
        let (end, b) = match next {
            Some((i, c)) => (i + c.len_utf8(), fold(c)),
            None => (self.len, END),
        };
        self.token.text.clear();
        self.token.text.push(a);
        self.token.text.push(b);
        self.token.offset_from = start;
        self.token.offset_to = end;
        self.token.position = self.position;
        self.token.position_length = 1;
        self.position += 1;
        self.prev = next.map(|(i, c)| (i, fold(c)));
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// The terms a query is made of: pairs of the normalised query.
pub fn query_pairs(q: &str) -> Vec<String> {
    let chars: Vec<char> = q.chars().map(fold).collect();
    chars.windows(2).map(|w| w.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<(String, usize)> {
        let mut t = BigramTokenizer::default();
        let mut st = t.token_stream(s);
        let mut out = Vec::new();
        while st.advance() {
            out.push((st.token().text.clone(), st.token().position));
        }
        out
    }

    #[test]
    fn pairs_with_positions() {
        assert_eq!(tokens("报价单"), [("报价".into(), 0), ("价单".into(), 1), (format!("单{END}"), 2)]);
        assert_eq!(
            tokens("ｉPhone"),
            [
                ("ip".into(), 0),
                ("ph".into(), 1),
                ("ho".into(), 2),
                ("on".into(), 3),
                ("ne".into(), 4),
                (format!("e{END}"), 5)
            ]
        );
        assert!(tokens("").is_empty());
    }

    #[test]
    fn highlights_use_character_offsets() {
        assert_eq!(highlights("客户合同和客户合同", "户合同"), [(1, 4), (6, 9)]);
        assert_eq!(highlights("买了IPHONE15", "iphone15"), [(2, 10)]);
    }
}
