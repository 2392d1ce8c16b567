#![no_main]
//! Enrollment tokens pasted by people.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = candor_proto::token::EnrollToken::decode(&String::from_utf8_lossy(data));
});
