#![no_main]
//! Chat export files (JSON Lines and CSV) uploaded by admins from other tools.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for f in [candor_chat::import::Format::JsonLines, candor_chat::import::Format::Csv] {
        let _ = candor_chat::import::read(f, data);
    }
});
