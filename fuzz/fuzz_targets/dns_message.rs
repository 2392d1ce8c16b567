#![no_main]
//! DNS packets as the agent's resolver receives them (any local program, or anything the
//! redirect sends it): parsed, filtered, answered from the cache; answers from upstream laid
//! out and aged; the opening bytes of a redirected web connection (TLS ClientHello, HTTP); page
//! reports from the browser extension's native host.
use candor_agent::web::cache::{Cache, Key};
use candor_agent::web::filter::Filter;
use candor_agent::web::resolver::{Resolver, Step};
use candor_proto::web::WebOptions;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

fn resolver() -> &'static Resolver {
    static R: OnceLock<Resolver> = OnceLock::new();
    R.get_or_init(|| {
        let opts = WebOptions { filter: true, block: vec!["||blocked.example^".into(), "/^ad[0-9]+\\./".into()], ..Default::default() };
        let (filter, _) = Filter::build(&opts, &[], std::path::Path::new("/nonexistent"));
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        std::mem::forget(rx);
        Resolver::new(Arc::new(filter), Cache::new(64, 3600, 60), vec![], 0, Duration::from_secs(1), [127, 0, 0, 154].into(), tx)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let r = resolver();
    if let Step::Reply(reply) = r.step(data) {
        assert!(reply.len() <= 65535);
    }
    // As an upstream answer: cached, then served to the same question.
    let key = Key { name: "x.example.".into(), qtype: 1, qclass: 1, dnssec_ok: false };
    r.cache.put(key.clone(), data);
    let _ = r.cache.get(&key, data);
    let _ = candor_agent::web::wire::layout(data);
    let _ = candor_agent::web::sni::read_opening(data);
    // As a browser extension's page report.
    let _ = candor_agent::web::browser::to_payload(data, true, 1_800_000_000_000);
});
