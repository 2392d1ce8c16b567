#![no_main]
//! Lines of dpkg's log (written by any package's maintainer scripts' actions; untrusted).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for line in String::from_utf8_lossy(data).lines() {
        let _ = candor_agent::software::dpkg_log::parse_line(line);
    }
});
