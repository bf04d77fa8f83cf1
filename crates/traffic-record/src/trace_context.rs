//! The W3C Trace Context `traceparent` request header (<https://www.w3.org/TR/trace-context/>),
//! read strictly: Claude Code sends one on each model request when
//! `CLAUDE_CODE_PROPAGATE_TRACEPARENT=1`, and the shipper and the viewer place the exchange in
//! Claude Code's own trace with it. The header comes from the client, so anything that is not
//! exactly the specified form is ignored rather than trusted.
//!
//! Written here rather than taken from a crate: the maintained parser lives in
//! `opentelemetry_sdk`'s propagator, a large dependency for 55 bytes of fixed layout.

/// A valid `traceparent`: the caller's trace and the span the request was made under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
}

/// Version `00` is exactly this long: `vv-<32 hex>-<16 hex>-ff`.
const LEN_00: usize = 55;
/// A later version may append fields; a value longer than this is refused outright.
const MAX_LEN: usize = 512;

/// Parses a `traceparent` value. `None` for anything the specification says to ignore:
/// a wrong length, upper-case or non-hex digits, version `ff`, version `00` with trailing
/// data, an all-zero trace or parent id.
pub fn parse(value: &str) -> Option<TraceParent> {
    let b = value.as_bytes();
    if b.len() < LEN_00 || b.len() > MAX_LEN {
        return None;
    }
    let version = hex_bytes::<1>(&b[0..2])?[0];
    if version == 0xff || (version == 0 && b.len() != LEN_00) {
        return None;
    }
    // A later version keeps the version-00 fields in front; anything it adds starts with '-'.
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' || (b.len() > LEN_00 && b[LEN_00] != b'-') {
        return None;
    }
    let trace_id = hex_bytes::<16>(&b[3..35])?;
    let parent_id = hex_bytes::<8>(&b[36..52])?;
    hex_bytes::<1>(&b[53..55])?;
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some(TraceParent {
        trace_id,
        parent_id,
    })
}

/// Exactly `2 * N` lowercase hex digits.
fn hex_bytes<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    fn nibble(d: u8) -> Option<u8> {
        match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            _ => None,
        }
    }
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAUDE_CODE: &str = "00-22a69c0f849d92305ba37d65ef1fd039-d26af7ffdb197558-01";

    #[test]
    fn the_header_claude_code_sends_is_read() {
        let t = parse(CLAUDE_CODE).unwrap();
        assert_eq!(t.trace_id[..4], [0x22, 0xa6, 0x9c, 0x0f]);
        assert_eq!(
            t.parent_id,
            [0xd2, 0x6a, 0xf7, 0xff, 0xdb, 0x19, 0x75, 0x58]
        );
        // Not sampled is still a valid parent.
        assert!(parse(&CLAUDE_CODE.replace("-01", "-00")).is_some());
    }

    #[test]
    fn a_later_version_is_read_by_its_version_00_fields() {
        assert!(parse(&CLAUDE_CODE.replacen("00", "01", 1)).is_some());
        assert!(parse(&format!("{}-extra", CLAUDE_CODE.replacen("00", "cc", 1))).is_some());
        assert!(parse(&format!("{}extra", CLAUDE_CODE.replacen("00", "cc", 1))).is_none());
    }

    #[test]
    fn anything_else_is_ignored() {
        let zero_trace = format!("00-{}-d26af7ffdb197558-01", "0".repeat(32));
        let zero_parent = format!("00-22a69c0f849d92305ba37d65ef1fd039-{}-01", "0".repeat(16));
        let huge = format!(
            "01-22a69c0f849d92305ba37d65ef1fd039-d26af7ffdb197558-01-{}",
            "a".repeat(10_000)
        );
        for bad in [
            "",
            "00",
            &CLAUDE_CODE[..54],
            &format!("{CLAUDE_CODE}-01"),
            &CLAUDE_CODE.replacen("00", "ff", 1),
            &CLAUDE_CODE.to_uppercase(),
            &CLAUDE_CODE.replace('-', "_"),
            &CLAUDE_CODE.replacen('2', "g", 1),
            &zero_trace,
            &zero_parent,
            &huge,
            "00-22a69c0f849d92305ba37d65ef1fd039-d26af7ffdb19755é-01",
            &format!("{CLAUDE_CODE}, {CLAUDE_CODE}"),
        ] {
            assert_eq!(parse(bad), None, "{bad:.80}");
        }
    }
}
