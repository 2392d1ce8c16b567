#![no_main]
//! Policy documents and event payloads as JSON.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<candor_proto::policy::PolicyDoc>(data);
    let _ = serde_json::from_slice::<candor_proto::Payload>(data);
});
