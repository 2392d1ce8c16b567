//! The SNI/Host filter: a transparent TCP proxy for ports 80 and 443 (the
//! nftables redirect sends connections here). It reads only the opening
//! bytes — the TLS ClientHello's server name, parsed by rustls' `Acceptor`,
//! or the HTTP `Host` header, parsed by httparse — without intercepting or
//! decrypting anything. A denied host gets the block page (HTTP) or a reset
//! (TLS); an allowed one is connected to its original destination over a
//! marked socket and relayed, and noted with bytes and duration.
//!
//! The same page answers on the block page address, where blocked names
//! resolve when the policy asks for `block_page`.

use super::resolver::Resolver;
use super::upstream;
use super::visits::Visit;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Most bytes read before the host must be known (a ClientHello is usually
/// under 2 KB; post-quantum key shares push it past 1.5 KB).
const MAX_OPENING: usize = 16 * 1024;
const OPENING_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 1024;

/// The destination the client asked for before the redirect.
fn original_destination(s: &TcpStream) -> std::io::Result<SocketAddr> {
    let fd = s.as_raw_fd();
    let local = s.local_addr()?;
    // SAFETY: getsockopt into zeroed sockaddr structs we own, with their sizes.
    unsafe {
        if local.is_ipv4() {
            let mut a: libc::sockaddr_in = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::getsockopt(
                fd,
                libc::SOL_IP,
                libc::SO_ORIGINAL_DST,
                (&mut a as *mut libc::sockaddr_in).cast(),
                &mut len,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(SocketAddr::from((u32::from_be(a.sin_addr.s_addr).to_be_bytes(), u16::from_be(a.sin_port))))
        } else {
            let mut a: libc::sockaddr_in6 = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            if libc::getsockopt(
                fd,
                libc::SOL_IPV6,
                libc::IP6T_SO_ORIGINAL_DST,
                (&mut a as *mut libc::sockaddr_in6).cast(),
                &mut len,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(SocketAddr::from((a.sin6_addr.s6_addr, u16::from_be(a.sin6_port))))
        }
    }
}

/// What the opening bytes say.
#[derive(Debug, PartialEq, Eq)]
pub enum Opening {
    Tls(Option<String>),
    Http(Option<String>),
    /// Need more bytes.
    Partial,
    /// Neither TLS nor HTTP (or malformed).
    Other,
}

/// Classify the first bytes of a connection.
pub fn read_opening(buf: &[u8]) -> Opening {
    if buf.is_empty() {
        return Opening::Partial;
    }
    if buf[0] == 0x16 {
        let mut acceptor = rustls::server::Acceptor::default();
        let mut rd = buf;
        if acceptor.read_tls(&mut rd).is_err() {
            return Opening::Other;
        }
        return match acceptor.accept() {
            Ok(Some(accepted)) => Opening::Tls(accepted.client_hello().server_name().map(str::to_ascii_lowercase)),
            Ok(None) => Opening::Partial,
            Err(_) => Opening::Other,
        };
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let host = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("host"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .map(host_without_port);
            Opening::Http(host)
        }
        Ok(httparse::Status::Partial) => Opening::Partial,
        Err(_) => Opening::Other,
    }
}

fn host_without_port(h: &str) -> String {
    let h = h.trim();
    let h = if h.starts_with('[') {
        h.split(']').next().unwrap_or(h).trim_start_matches('[')
    } else {
        h.rsplit_once(':').map_or(h, |(host, _)| host)
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// The page a blocked plain-HTTP request gets.
pub fn block_page(host: &str, list: &str) -> Vec<u8> {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let body = format!(
        "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>已拦截 Blocked</title>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\">\
         <h1>此网站已被公司策略拦截</h1><p>This site is blocked by your company's policy.</p>\
         <p>网站 Site: <b>{}</b><br>规则 Rule: {}</p>\
         <p>Candor 已记录这次访问尝试。如有疑问请联系管理员。<br>The attempt was recorded; ask your administrator if this is wrong.</p>",
        esc(host),
        esc(list)
    );
    format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Read until the opening is known, at most `MAX_OPENING` bytes.
async fn opening(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Opening {
    let work = async {
        let mut chunk = [0u8; 4096];
        loop {
            match read_opening(buf) {
                Opening::Partial if buf.len() < MAX_OPENING => {}
                Opening::Partial => return Opening::Other,
                o => return o,
            }
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return Opening::Other,
                Ok(n) => buf.extend_from_slice(&chunk[..n.min(MAX_OPENING - buf.len())]),
            }
        }
    };
    tokio::time::timeout(OPENING_TIMEOUT, work).await.unwrap_or(Opening::Other)
}

/// Close with a TCP reset instead of a FIN.
fn reset(conn: TcpStream) {
    let _ = conn.set_zero_linger();
    drop(conn);
}

async fn handle(resolver: Arc<Resolver>, mut conn: TcpStream) {
    let Ok(dest) = original_destination(&conn) else { return };
    // A connection made to the filter itself (not redirected) would be relayed to itself.
    if conn.local_addr().is_ok_and(|l| l == dest) {
        reset(conn);
        return;
    }
    let mut buf = Vec::new();
    let (host, tls) = match opening(&mut conn, &mut buf).await {
        Opening::Tls(h) => (h, true),
        Opening::Http(h) => (h, false),
        _ => (None, dest.port() == 443),
    };
    if let Some(h) = &host {
        if let Some(list) = resolver.current().blocked_by(h) {
            let _ = resolver.visits.try_send(Visit {
                domain: h.clone(),
                source: if tls { "sni" } else { "http" },
                blocked: Some(list.to_string()),
                ..Default::default()
            });
            if tls {
                reset(conn);
            } else {
                let _ = conn.write_all(&block_page(h, list)).await;
                let _ = conn.shutdown().await;
            }
            return;
        }
    }
    let started = Instant::now();
    let Ok(mut out) = upstream::tcp(dest, resolver.mark, resolver.timeout).await else {
        reset(conn);
        return;
    };
    if out.write_all(&buf).await.is_err() {
        return;
    }
    let (sent, received) = tokio::io::copy_bidirectional(&mut conn, &mut out).await.unwrap_or((0, 0));
    if let Some(h) = host {
        if resolver.note_visits.load(Ordering::Relaxed) {
            let _ = resolver.visits.try_send(Visit {
                domain: h,
                source: if tls { "sni" } else { "http" },
                blocked: None,
                bytes_out: Some(sent + buf.len() as u64),
                bytes_in: Some(received),
                duration_ms: Some(started.elapsed().as_millis() as u64),
            });
        }
    }
}

/// Accept redirected connections on `listener`.
pub async fn serve(resolver: Arc<Resolver>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            reset(conn);
            continue;
        };
        let r = resolver.clone();
        tokio::spawn(async move {
            handle(r, conn).await;
            drop(permit);
        });
    }
}

/// Serve the block page on the block page address.
pub async fn serve_block_page(resolver: Arc<Resolver>, listener: TcpListener) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let r = resolver.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let host = match opening(&mut conn, &mut buf).await {
                Opening::Http(Some(h)) => h,
                _ => return,
            };
            let list = r.current().blocked_by(&host).unwrap_or("policy").to_string();
            let _ = conn.write_all(&block_page(&host, &list)).await;
            let _ = conn.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_http_hosts() {
        assert_eq!(
            read_opening(b"GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n"),
            Opening::Http(Some("example.com".into()))
        );
        assert_eq!(read_opening(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), Opening::Http(Some("::1".into())));
        assert_eq!(read_opening(b"GET / HTTP/1.1\r\nHo"), Opening::Partial);
        assert_eq!(read_opening(b"\x00\x01garbage\r\n\r\n"), Opening::Other);
    }

    #[test]
    fn reads_tls_server_names() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("Secure.Example.org").unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut hello = Vec::new();
        client.write_tls(&mut hello).unwrap();
        assert_eq!(read_opening(&hello), Opening::Tls(Some("secure.example.org".into())));
        assert_eq!(read_opening(&hello[..hello.len() / 2]), Opening::Partial);
        let mut bad = hello.clone();
        bad[5] = 0x02; // not a ClientHello
        assert_eq!(read_opening(&bad), Opening::Other);
    }
}
