#![no_main]
//! Domain lists (uploaded by admins or fetched from the internet) compiled into a rule set,
//! and any name looked up in it.
use candor_webrules::RuleSet;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let set = RuleSet::compile(|b| {
        let report = b.add_list(0, data)?;
        assert!(report.first_errors.len() <= report.errors);
        Ok(())
    });
    if let Ok(set) = set {
        for line in String::from_utf8_lossy(data).lines().take(64) {
            let _ = set.verdict(line, |_| true);
            if let Ok(n) = candor_webrules::normalise(line) {
                let _ = set.verdict(&n, |_| true);
            }
        }
    }
});
