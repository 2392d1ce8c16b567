#![no_main]
//! The server's ingest parser: any bytes from the network.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = candor_proto::batch::decode(data, &candor_proto::batch::Limits::default());
});
