#![no_main]
//! fanotify event records as read(2) returns them (kernel output, parsed with bounds regardless).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = candor_agent::platform::fanotify::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = candor_agent::platform::fanotify::program_filesystems(text);
    }
});
