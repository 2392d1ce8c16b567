//! The acknowledgement rule, as a pure function.

/// Advance an agent's contiguous acknowledgement `high` over the seqs just
/// processed (sorted). Seqs below `floor` are accounted for by the agent
/// (acknowledged before, or dropped and reported by its spool).
pub fn advance(high: u64, floor: u64, processed: &[u64]) -> u64 {
    let mut h = high.max(floor.saturating_sub(1));
    for &s in processed {
        if s <= h {
            continue;
        }
        if s == h + 1 {
            h = s;
        } else {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::advance;

    #[test]
    fn contiguous_only() {
        assert_eq!(advance(0, 1, &[1, 2, 3]), 3);
        assert_eq!(advance(0, 1, &[2, 3]), 0, "seq 1 missing");
        assert_eq!(advance(5, 1, &[3, 4, 5, 6, 8]), 6, "duplicates pass, gap stops");
        assert_eq!(advance(0, 10, &[10, 11]), 11, "spool dropped 1..9");
        assert_eq!(advance(20, 10, &[]), 20, "floor never lowers");
    }
}
