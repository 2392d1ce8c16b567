#![no_main]
//! Xauthority files and logind session records: owned or influenced by users, read by the root agent.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = candor_agent::platform::xauth::cookie(data, 0, "host");
    let _ = candor_agent::platform::sessions::parse("fuzz", &String::from_utf8_lossy(data));
});
