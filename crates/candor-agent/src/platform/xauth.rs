//! Xauthority files: the cookie that lets the root agent connect to a
//! user's display. The file belongs to the user, so its content is hostile:
//! every length is checked and the parse stops at the first bad entry.

/// (authorization name, data) for display `number` on `hostname`, preferring
/// an entry for this host over a wildcard one.
pub fn cookie(file: &[u8], number: u16, hostname: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    const LOCAL: u16 = 256;
    const WILD: u16 = 65535;
    let want = number.to_string();
    let mut wild = None;
    for e in entries(file) {
        if e.number != want.as_bytes() && !e.number.is_empty() {
            continue;
        }
        if e.family == LOCAL && e.address == hostname.as_bytes() {
            return Some((e.name.to_vec(), e.data.to_vec()));
        }
        if e.family == WILD && wild.is_none() {
            wild = Some((e.name.to_vec(), e.data.to_vec()));
        }
    }
    wild
}

struct Entry<'a> {
    family: u16,
    address: &'a [u8],
    number: &'a [u8],
    name: &'a [u8],
    data: &'a [u8],
}

fn entries(mut b: &[u8]) -> impl Iterator<Item = Entry<'_>> {
    std::iter::from_fn(move || {
        let take_u16 = |b: &mut &[u8]| -> Option<u16> {
            let (h, rest) = b.split_at_checked(2)?;
            *b = rest;
            Some(u16::from_be_bytes([h[0], h[1]]))
        };
        let mut rest = b;
        let family = take_u16(&mut rest)?;
        let mut field = || -> Option<&[u8]> {
            let len = take_u16(&mut rest)? as usize;
            let (f, r) = rest.split_at_checked(len)?;
            rest = r;
            Some(f)
        };
        let (address, number, name, data) = (field()?, field()?, field()?, field()?);
        b = rest;
        Some(Entry { family, address, number, name, data })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(family: u16, addr: &str, num: &str, data: &[u8]) -> Vec<u8> {
        let mut v = family.to_be_bytes().to_vec();
        for f in [addr.as_bytes(), num.as_bytes(), b"MIT-MAGIC-COOKIE-1", data] {
            v.extend_from_slice(&(f.len() as u16).to_be_bytes());
            v.extend_from_slice(f);
        }
        v
    }

    #[test]
    fn picks_the_host_entry_for_the_display() {
        let mut f = entry(65535, "", "0", b"wild");
        f.extend(entry(256, "other", "7", b"other-host"));
        f.extend(entry(256, "desk", "3", b"three"));
        f.extend(entry(256, "desk", "7", b"seven"));
        assert_eq!(cookie(&f, 7, "desk").unwrap().1, b"seven");
        assert_eq!(cookie(&f, 0, "desk").unwrap().1, b"wild");
        assert_eq!(cookie(&f, 9, "desk"), None);
        // Truncated or lying lengths end the parse without panicking.
        for cut in 0..f.len() {
            let _ = cookie(&f[..cut], 7, "desk");
        }
        let mut lying = entry(256, "desk", "7", b"x");
        lying[2] = 0xff;
        assert_eq!(cookie(&lying, 7, "desk"), None);
    }
}
