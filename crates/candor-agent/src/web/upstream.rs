//! Sockets for the filter's own traffic (queries to upstream resolvers,
//! connections the SNI/Host filter passes on), carrying the firewall mark
//! that exempts them from the DNS and web redirect.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

fn set_mark(fd: &impl AsRawFd, mark: u32) -> std::io::Result<()> {
    if mark == 0 {
        return Ok(());
    }
    // SAFETY: setsockopt with a u32 we own and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&mark as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A UDP socket connected to `to`, on a fresh random port, marked.
pub fn udp(to: SocketAddr, mark: u32) -> std::io::Result<UdpSocket> {
    let any: SocketAddr =
        if to.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let s = std::net::UdpSocket::bind(any)?;
    set_mark(&s, mark)?;
    s.set_nonblocking(true)?;
    s.connect(to)?;
    UdpSocket::from_std(s)
}

/// A marked TCP connection to `to`.
pub async fn tcp(to: SocketAddr, mark: u32, timeout: Duration) -> std::io::Result<TcpStream> {
    let s = if to.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    set_mark(&s, mark)?;
    tokio::time::timeout(timeout, s.connect(to))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("connecting to {to} timed out")))?
}

/// One DNS exchange over TCP (RFC 1035 length-prefixed).
pub async fn tcp_exchange(to: SocketAddr, mark: u32, query: &[u8], timeout: Duration) -> std::io::Result<Vec<u8>> {
    let work = async {
        let mut s = tcp(to, mark, timeout).await?;
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        s.write_all(&framed).await?;
        let len = s.read_u16().await?;
        let mut resp = vec![0; usize::from(len)];
        s.read_exact(&mut resp).await?;
        Ok(resp)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{to} did not answer over TCP")))?
}
