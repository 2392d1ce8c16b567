//! The endpoint's redirect of DNS (and web) traffic into the agent's filter,
//! as one nftables table (`inet candor`) replaced atomically with `nft -f`.
//! Traffic carrying the agent's mark (its own upstream queries and passed-on
//! connections) is exempt. IPv6 DNS to anything but the local resolver is
//! refused so that clients fall back to IPv4, where it is redirected.
//!
//! If the agent dies the table stays, so DNS keeps going to a dead resolver
//! until it restarts: the filter fails closed, like software control's
//! fail-closed mode. `remove` runs on every clean stop and before each install.

use anyhow::{bail, Context};
use std::io::Write;
use std::net::SocketAddrV4;
use std::process::{Command, Stdio};

pub const TABLE: &str = "candor";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Where the local resolver listens.
    pub dns: SocketAddrV4,
    pub mark: u32,
    /// Refuse DNS-over-TLS (TCP 853).
    pub block_dot: bool,
    /// Port on 127.0.0.1/::1 where the SNI/Host filter listens, if it runs.
    pub web_port: Option<u16>,
}

impl Redirect {
    pub fn ruleset(&self) -> String {
        let (addr, port, mark) = (self.dns.ip(), self.dns.port(), self.mark);
        let mut nat = format!(
            "    meta mark {mark:#x} return\n\
             \x20   ip daddr {addr} return\n\
             \x20   meta l4proto {{ tcp, udp }} th dport 53 ip daddr != {addr} dnat ip to {addr}:{port}\n"
        );
        let mut filter = format!(
            "    meta mark {mark:#x} return\n\
             \x20   meta l4proto {{ tcp, udp }} th dport 53 ip6 daddr != ::1 reject\n"
        );
        if let Some(web) = self.web_port {
            nat.push_str(&format!(
                "    ip daddr != 127.0.0.0/8 tcp dport {{ 80, 443 }} redirect to :{web}\n\
                 \x20   ip6 daddr != ::1 tcp dport {{ 80, 443 }} redirect to :{web}\n"
            ));
        }
        if self.block_dot {
            filter.push_str("    tcp dport 853 reject with tcp reset\n");
        }
        format!(
            "table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n\
             \x20 chain divert {{\n    type nat hook output priority -100; policy accept;\n{nat}  }}\n\
             \x20 chain guard {{\n    type filter hook output priority 0; policy accept;\n{filter}  }}\n}}\n"
        )
    }
}

fn nft(script: &str) -> anyhow::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft (is the nftables package installed?)")?;
    child.stdin.take().context("nft stdin")?.write_all(script.as_bytes()).context("writing to nft")?;
    let out = child.wait_with_output().context("waiting for nft")?;
    if !out.status.success() {
        bail!("nft refused the rules: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Install (or replace) the redirect.
pub fn install(r: &Redirect) -> anyhow::Result<()> {
    nft(&r.ruleset())
}

/// Remove the redirect (nothing to do if it is not there).
pub fn remove() -> anyhow::Result<()> {
    nft(&format!("table inet {TABLE}\ndelete table inet {TABLE}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_names_every_piece() {
        let r =
            Redirect { dns: "127.0.0.153:53".parse().unwrap(), mark: 0x4344, block_dot: true, web_port: Some(15380) };
        let s = r.ruleset();
        assert!(s.contains("dnat ip to 127.0.0.153:53"), "{s}");
        assert!(s.contains("meta mark 0x4344 return"));
        assert!(s.contains("tcp dport 853 reject"));
        assert!(s.contains("redirect to :15380"));
        let plain = Redirect { block_dot: false, web_port: None, ..r }.ruleset();
        assert!(!plain.contains("853") && !plain.contains("redirect to"));
    }
}
