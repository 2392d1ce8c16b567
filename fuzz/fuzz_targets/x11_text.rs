#![no_main]
//! Window titles as other programs set them (COMPOUND_TEXT, Latin-1).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = candor_agent::platform::ctext::compound_text(data);
    let _ = candor_agent::platform::ctext::latin1(data);
});
