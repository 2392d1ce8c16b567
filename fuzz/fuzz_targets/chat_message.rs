#![no_main]
//! Decrypted chat-archive messages (written by anyone who chats with an employee; untrusted),
//! then what search does with their text: bigram tokens and highlights.
use tantivy_tokenizer_api::{TokenStream, Tokenizer};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = candor_chat::message::parse(data) {
        assert!(m.text.len() <= candor_chat::message::MAX_TEXT_BYTES);
        let mut t = candor_chat::text::BigramTokenizer::default();
        let mut s = t.token_stream(&m.text);
        while s.advance() {}
        let q: String = m.text.chars().take(3).collect();
        let _ = candor_chat::text::highlights(&m.text, &q);
    }
});
