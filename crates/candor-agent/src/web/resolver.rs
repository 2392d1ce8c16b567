//! The endpoint's resolver: answers blocked names itself (NXDOMAIN or the
//! block page's address), serves cached answers, forwards the rest to the
//! upstream resolvers over marked sockets, and notes each looked-up name as
//! a visit. UDP and TCP; every packet is hostile input: it is parsed with
//! hickory-proto, anything malformed gets FORMERR or nothing, buffers and
//! in-flight work are bounded.

use super::cache::{Cache, Key};
use super::filter::Filter;
use super::upstream;
use super::visits::Visit;
use super::wire;
use candor_proto::web::BlockAnswer;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{rdata::A, RData, Record, RecordType};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, Semaphore};

/// Forwards waiting for upstream at once; beyond it a query gets SERVFAIL.
const MAX_IN_FLIGHT: usize = 1024;
/// TCP clients at once, and how long an idle one is kept.
const MAX_TCP_CLIENTS: usize = 128;
const TCP_IDLE: Duration = Duration::from_secs(10);
/// TTL of a synthesised block answer.
const BLOCK_TTL: u32 = 60;

#[derive(Default)]
pub struct Stats {
    pub queries: AtomicU64,
    pub blocked: AtomicU64,
    pub cache_hits: AtomicU64,
    pub upstream_failures: AtomicU64,
}

pub struct Resolver {
    pub filter: RwLock<Arc<Filter>>,
    pub cache: Cache,
    pub upstreams: Vec<SocketAddr>,
    pub mark: u32,
    pub timeout: Duration,
    /// Address a blocked A query gets when the policy asks for the block page.
    pub block_addr: Ipv4Addr,
    /// Whether allowed lookups are noted (the `web` category is collected).
    pub note_visits: AtomicBool,
    pub visits: mpsc::Sender<Visit>,
    pub stats: Stats,
    in_flight: Arc<Semaphore>,
}

/// What a query needs after the local checks.
pub enum Step {
    Reply(Vec<u8>),
    Forward(Option<Key>),
    Drop,
}

impl Resolver {
    pub fn new(
        filter: Arc<Filter>,
        cache: Cache,
        upstreams: Vec<SocketAddr>,
        mark: u32,
        timeout: Duration,
        block_addr: Ipv4Addr,
        visits: mpsc::Sender<Visit>,
    ) -> Self {
        Resolver {
            filter: RwLock::new(filter),
            cache,
            upstreams,
            mark,
            timeout,
            block_addr,
            note_visits: AtomicBool::new(false),
            visits,
            stats: Stats::default(),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    pub fn current(&self) -> Arc<Filter> {
        match self.filter.read() {
            Ok(f) => f.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn note(&self, name: &str, blocked: Option<&str>) {
        if blocked.is_none() && !self.note_visits.load(Ordering::Relaxed) {
            return;
        }
        // Never wait on the visit log: a full queue loses a note, not a query.
        let _ = self.visits.try_send(Visit::lookup(name, blocked));
    }

    /// Everything that can be decided without upstream (also the fuzz target's entry).
    pub fn step(&self, packet: &[u8]) -> Step {
        self.stats.queries.fetch_add(1, Ordering::Relaxed);
        let req = match Message::from_vec(packet) {
            Ok(m) => m,
            Err(_) if packet.len() >= 12 && packet[2] & 0x80 == 0 => {
                let id = u16::from_be_bytes([packet[0], packet[1]]);
                return reply(Message::error_msg(id, OpCode::Query, ResponseCode::FormErr));
            }
            Err(_) => return Step::Drop,
        };
        // Responses are never answered (no reflection loops).
        if req.message_type() != MessageType::Query {
            return Step::Drop;
        }
        if req.op_code() != OpCode::Query || req.queries().len() != 1 {
            let code = if req.op_code() == OpCode::Query { ResponseCode::FormErr } else { ResponseCode::NotImp };
            return reply(Message::error_msg(req.id(), req.op_code(), code));
        }
        let q = &req.queries()[0];
        let lower = q.name().to_lowercase().to_ascii();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        let visit = matches!(q.query_type(), RecordType::A | RecordType::AAAA | RecordType::HTTPS)
            && !name.is_empty()
            && !name.ends_with(".arpa");
        let filter = self.current();
        if let Some(list) = filter.blocked_by(name) {
            self.stats.blocked.fetch_add(1, Ordering::Relaxed);
            if visit {
                self.note(name, Some(list));
            }
            let mut r = response_to(&req);
            match filter.options().block_answer {
                BlockAnswer::Nxdomain => {
                    r.set_response_code(ResponseCode::NXDomain);
                }
                BlockAnswer::BlockPage => {
                    if q.query_type() == RecordType::A {
                        r.add_answer(Record::from_rdata(q.name().clone(), BLOCK_TTL, RData::A(A(self.block_addr))));
                    }
                }
            }
            return reply(r);
        }
        if visit {
            self.note(name, None);
        }
        let key = Key {
            name: lower.as_str().into(),
            qtype: q.query_type().into(),
            qclass: q.query_class().into(),
            dnssec_ok: req.extensions().as_ref().is_some_and(|e| e.flags().dnssec_ok),
        };
        if let Some(hit) = self.cache.get(&key, packet) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Step::Reply(hit);
        }
        Step::Forward(Some(key))
    }

    /// Ask the upstreams in turn; SERVFAIL when none answers.
    async fn forward(&self, packet: &[u8], key: Option<Key>) -> Vec<u8> {
        let Some(question_end) = wire::layout(packet).map(|l| l.question_end) else {
            return servfail(packet);
        };
        let mut query = packet.to_vec();
        let id: u16 = rand::random();
        query[..2].copy_from_slice(&id.to_be_bytes());
        for &up in &self.upstreams {
            match self.exchange(up, &query, question_end).await {
                Ok(mut resp) => {
                    if let Some(k) = key {
                        self.cache.put(k, &resp);
                    }
                    resp[..2].copy_from_slice(&packet[..2]);
                    return resp;
                }
                Err(e) => {
                    self.stats.upstream_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(upstream = %up, error = %e, "upstream failed");
                }
            }
        }
        servfail(packet)
    }

    async fn exchange(&self, up: SocketAddr, query: &[u8], question_end: usize) -> std::io::Result<Vec<u8>> {
        let sock = upstream::udp(up, self.mark)?;
        sock.send(query).await?;
        let mut buf = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
            let resp = &buf[..n];
            // Only the answer to this question counts; anything else is ignored (spoofing, stale).
            if !answers(resp, query, question_end) {
                continue;
            }
            if resp[2] & 0x02 != 0 {
                return upstream::tcp_exchange(up, self.mark, query, self.timeout).await;
            }
            return Ok(resp.to_vec());
        }
    }

    pub async fn serve_udp(self: Arc<Self>, sock: Arc<UdpSocket>) {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = match sock.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "dns receive failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let packet = &buf[..n];
            match self.step(packet) {
                Step::Reply(r) => {
                    let _ = sock.send_to(&fit_udp(r, packet), peer).await;
                }
                Step::Drop => {}
                Step::Forward(key) => {
                    let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
                        let _ = sock.send_to(&servfail(packet), peer).await;
                        continue;
                    };
                    let (me, sock, packet) = (self.clone(), sock.clone(), packet.to_vec());
                    tokio::spawn(async move {
                        let r = me.forward(&packet, key).await;
                        let _ = sock.send_to(&fit_udp(r, &packet), peer).await;
                        drop(permit);
                    });
                }
            }
        }
    }

    pub async fn serve_tcp(self: Arc<Self>, listener: TcpListener) {
        let clients = Arc::new(Semaphore::new(MAX_TCP_CLIENTS));
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let Ok(permit) = clients.clone().try_acquire_owned() else { continue };
            let me = self.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; usize::from(u16::MAX)];
                while let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, conn.read_u16()).await {
                    let packet = &mut buf[..usize::from(len)];
                    if tokio::time::timeout(TCP_IDLE, conn.read_exact(packet)).await.is_err() {
                        break;
                    }
                    let r = match me.step(packet) {
                        Step::Reply(r) => r,
                        Step::Forward(key) => me.forward(packet, key).await,
                        Step::Drop => break,
                    };
                    let mut framed = (r.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&r);
                    if conn.write_all(&framed).await.is_err() {
                        break;
                    }
                }
                drop(permit);
            });
        }
    }
}

fn reply(m: Message) -> Step {
    m.to_vec().map(Step::Reply).unwrap_or(Step::Drop)
}

/// A response skeleton for `req`: same id, question and RD flag.
fn response_to(req: &Message) -> Message {
    let mut r = Message::new();
    r.set_id(req.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(req.recursion_desired())
        .set_recursion_available(true)
        .add_queries(req.queries().to_vec());
    r
}

/// Whether `resp` is the answer to `query`: same id, a response, the same question.
fn answers(resp: &[u8], query: &[u8], question_end: usize) -> bool {
    resp.len() >= question_end
        && resp[..2] == query[..2]
        && resp[2] & 0x80 != 0
        && resp[4..6] == query[4..6]
        && resp[12..question_end].eq_ignore_ascii_case(&query[12..question_end])
}

/// SERVFAIL for the (parseable) query in `packet`.
fn servfail(packet: &[u8]) -> Vec<u8> {
    let Some(l) = wire::layout(packet) else { return Vec::new() };
    let mut r = packet[..l.question_end].to_vec();
    r[2] = 0x80 | (packet[2] & 0x01); // QR, keep RD
    r[3] = 0x80 | ResponseCode::ServFail.low();
    r[6..12].fill(0);
    r
}

/// A UDP reply no larger than the client accepts (512 bytes, or its EDNS
/// size): a larger one becomes a truncated header plus question, so the
/// client retries over TCP.
fn fit_udp(resp: Vec<u8>, request: &[u8]) -> Vec<u8> {
    if resp.len() <= 512 {
        return resp;
    }
    let limit = Message::from_vec(request)
        .ok()
        .and_then(|m| m.extensions().as_ref().map(|e| e.max_payload()))
        .unwrap_or(512)
        .max(512);
    if resp.len() <= usize::from(limit) {
        return resp;
    }
    let Some(l) = wire::layout(&resp) else { return resp };
    let mut t = resp[..l.question_end].to_vec();
    t[2] |= 0x02;
    t[6..12].fill(0);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    fn query(name: &str, id: u16) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(id).set_recursion_desired(true).add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    /// An upstream that answers every A query with 10.0.0.1 (TTL 300) and counts queries.
    async fn upstream() -> (SocketAddr, Arc<AtomicU64>) {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                c.fetch_add(1, Ordering::Relaxed);
                let req = Message::from_vec(&buf[..n]).unwrap();
                let mut r = response_to(&req);
                r.add_answer(Record::from_rdata(req.queries()[0].name().clone(), 300, RData::A(A::new(10, 0, 0, 1))));
                sock.send_to(&r.to_vec().unwrap(), peer).await.unwrap();
            }
        });
        (addr, count)
    }

    #[tokio::test]
    async fn forwards_caches_and_blocks() {
        let (up, asked) = upstream().await;
        let opts = candor_proto::web::WebOptions {
            filter: true,
            block: vec!["||blocked.example^".into()],
            ..Default::default()
        };
        let (filter, _) = Filter::build(&opts, &[], std::path::Path::new("/nonexistent"));
        let (tx, _rx) = mpsc::channel(16);
        let r = Resolver::new(
            Arc::new(filter),
            Cache::new(16, 3600, 60),
            vec![up],
            0,
            Duration::from_secs(2),
            [127, 0, 0, 154].into(),
            tx,
        );
        let first = match r.step(&query("www.Example.com.", 7)) {
            Step::Forward(key) => r.forward(&query("www.Example.com.", 7), key).await,
            _ => panic!("an unknown name goes upstream"),
        };
        let m = Message::from_vec(&first).unwrap();
        assert_eq!((m.id(), m.answers().len()), (7, 1));
        // hickory writes names in lower case; a client may not (0x20 randomisation).
        let mut second = query("www.example.com.", 9);
        second[13..16].copy_from_slice(b"WWW");
        let Step::Reply(cached) = r.step(&second) else { panic!("the second query is answered from the cache") };
        let m = Message::from_vec(&cached).unwrap();
        assert_eq!(m.id(), 9);
        assert_eq!(&cached[13..16], b"WWW", "the client's spelling");
        assert_eq!(asked.load(Ordering::Relaxed), 1);
        let Step::Reply(blocked) = r.step(&query("a.blocked.example.", 3)) else {
            panic!("blocked names are answered locally")
        };
        assert_eq!(Message::from_vec(&blocked).unwrap().response_code(), ResponseCode::NXDomain);
        assert!(matches!(r.step(&blocked), Step::Drop), "a response is never answered");
        assert!(matches!(r.step(b"\x01\x02\x03"), Step::Drop));
    }
}
