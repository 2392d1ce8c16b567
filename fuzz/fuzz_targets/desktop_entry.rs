#![no_main]
//! .desktop files: any package or user-installed application can ship one.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = candor_agent::platform::catalogue::parse("fuzz.desktop", &String::from_utf8_lossy(data));
});
