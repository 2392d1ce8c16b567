//! The raw-wire facts the resolver needs beyond hickory-proto's parse: where
//! a response's question ends and where its TTLs sit, so a cached answer is
//! served with the client's ID, the client's spelling of the name and its
//! remaining TTLs without decoding and re-encoding it. Bounded by the
//! message: a malformed one yields `None`, never a panic or a long loop.

/// Byte positions in a DNS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// End of the (single) question section.
    pub question_end: usize,
    /// Offsets of the 32-bit TTL of every record except OPT.
    pub ttls: Vec<u16>,
    /// Smallest of those TTLs.
    pub min_ttl: Option<u32>,
}

const OPT: u16 = 41;

fn u16_at(m: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*m.get(at)?, *m.get(at + 1)?]))
}

/// Position after the name starting at `pos` (compression pointers end a name).
fn skip_name(m: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *m.get(pos)?;
        match len & 0xC0 {
            0 if len == 0 => return Some(pos + 1),
            0 => pos += 1 + usize::from(len),
            0xC0 => return (pos + 2 <= m.len()).then_some(pos + 2),
            _ => return None,
        }
    }
    None
}

/// The layout of a message with one question, or `None` if it is malformed.
pub fn layout(m: &[u8]) -> Option<Layout> {
    if m.len() < 12 || m.len() > usize::from(u16::MAX) || u16_at(m, 4)? != 1 {
        return None;
    }
    let question_end = skip_name(m, 12)? + 4;
    if question_end > m.len() {
        return None;
    }
    let records = usize::from(u16_at(m, 6)?) + usize::from(u16_at(m, 8)?) + usize::from(u16_at(m, 10)?);
    let (mut pos, mut ttls, mut min_ttl) = (question_end, Vec::new(), None::<u32>);
    for _ in 0..records {
        pos = skip_name(m, pos)?;
        let rtype = u16_at(m, pos)?;
        let ttl_at = pos + 4;
        let rdlen = usize::from(u16_at(m, pos + 8)?);
        pos += 10 + rdlen;
        if pos > m.len() {
            return None;
        }
        if rtype != OPT {
            let ttl = u32::from_be_bytes(m[ttl_at..ttl_at + 4].try_into().ok()?);
            min_ttl = Some(min_ttl.map_or(ttl, |t| t.min(ttl)));
            ttls.push(ttl_at as u16);
        }
    }
    Some(Layout { question_end, ttls, min_ttl })
}

/// Lower every TTL by `elapsed` seconds (not below zero).
pub fn age(m: &mut [u8], ttls: &[u16], elapsed: u32) {
    for &at in ttls {
        let at = usize::from(at);
        if let Some(b) = m.get_mut(at..at + 4) {
            let ttl = u32::from_be_bytes([b[0], b[1], b[2], b[3]]).saturating_sub(elapsed);
            b.copy_from_slice(&ttl.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, Query};
    use hickory_proto::rr::{rdata::A, Name, RData, Record, RecordType};
    use std::str::FromStr;

    fn response() -> Vec<u8> {
        let name = Name::from_str("www.Example.com.").unwrap();
        let mut m = Message::new();
        m.set_id(7).set_message_type(MessageType::Response);
        m.add_query(Query::query(name.clone(), RecordType::A));
        m.add_answer(Record::from_rdata(name.clone(), 300, RData::A(A::new(10, 0, 0, 1))));
        m.add_answer(Record::from_rdata(name, 60, RData::A(A::new(10, 0, 0, 2))));
        m.to_vec().unwrap()
    }

    #[test]
    fn finds_ttls_and_ages_them() {
        let mut wire = response();
        let l = layout(&wire).unwrap();
        assert_eq!(l.ttls.len(), 2);
        assert_eq!(l.min_ttl, Some(60));
        age(&mut wire, &l.ttls, 100);
        let m = Message::from_vec(&wire).unwrap();
        assert_eq!(m.answers().iter().map(|r| r.ttl()).collect::<Vec<_>>(), [200, 0]);
    }

    #[test]
    fn malformed_messages_are_refused() {
        let wire = response();
        for cut in 0..wire.len() {
            assert!(layout(&wire[..cut]).is_none(), "cut at {cut}");
        }
        let mut looped = wire.clone();
        looped[12] = 0x80;
        assert!(layout(&looped).is_none());
    }
}
