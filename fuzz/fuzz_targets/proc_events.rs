#![no_main]
//! Netlink process-connector datagrams (from the kernel, but parsed with bounds regardless).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = candor_agent::platform::proc_connector::parse(data);
});
