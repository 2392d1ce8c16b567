#![no_main]
//! Domain lists (uploaded by admins or fetched from the internet) compiled into a rule set,
//! and any name looked up in it.
use candor_webrules::Builder;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut b = Builder::default();
    let report = b.add_list(0, data).expect("reading from memory cannot fail");
    assert!(report.first_errors.len() <= report.errors);
    if let Ok(set) = b.build() {
        for line in String::from_utf8_lossy(data).lines().take(64) {
            let _ = set.verdict(line, |_| true);
            if let Ok(n) = candor_webrules::normalise(line) {
                let _ = set.verdict(&n, |_| true);
            }
        }
    }
});
