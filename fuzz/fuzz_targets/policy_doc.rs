#![no_main]
//! Policy documents and event payloads as JSON; a parsed policy's software
//! rules are validated, compiled and applied to a path taken from the input.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = serde_json::from_slice::<candor_proto::policy::PolicyDoc>(data) {
        let _ = doc.software.validate();
        let rules = candor_agent::software::rules::Rules::compile(&doc.software);
        let path = String::from_utf8_lossy(data);
        let s = candor_agent::software::rules::Subject { path: &path, user: Some("fuzz"), ..Default::default() };
        let _ = rules.decide(&s);
    }
    let _ = serde_json::from_slice::<candor_proto::Payload>(data);
});
