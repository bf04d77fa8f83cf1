//! Sizing and splitting text under Seq's per-event limit: the JSON-escaped size of a string
//! or of attributes, and the split of a body into ordered parts that reassemble exactly.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

/// Upper bound of the JSON-escaped size of attributes (what Seq counts against its limit).
pub(crate) fn attrs_size(attrs: &[KeyValue]) -> usize {
    let value_size = |v: Option<&AnyValue>| match v.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => escaped_len(s),
        Some(Value::ArrayValue(a)) => a
            .values
            .iter()
            .map(|v| match &v.value {
                Some(Value::StringValue(s)) => escaped_len(s) + 3,
                _ => 24,
            })
            .sum(),
        _ => 24,
    };
    attrs
        .iter()
        .map(|kv| kv.key.len() + value_size(kv.value.as_ref()) + 8)
        .sum()
}

/// Bytes one byte of a string may cost once the string is written as JSON by the receiver:
/// `"` `\\` and the short control escapes 2, other control characters 6 (`\u00XX`), and
/// every byte of a non-ASCII character 3, the worst case of `\uXXXX` escaping (a 2-byte
/// character becomes 6 bytes, a 4-byte one a 12-byte surrogate pair). Branch-free and in u16,
/// so that the sum vectorizes on 16 bytes at a time.
#[inline]
pub(crate) fn byte_cost(b: u8) -> u16 {
    let quote = u16::from(b == b'"') | u16::from(b == b'\\');
    let ctrl = u16::from(b < 0x20) | u16::from(b == 0x7f);
    let short = u16::from(b == 8)
        | u16::from(b == 9)
        | u16::from(b == 10)
        | u16::from(b == 12)
        | u16::from(b == 13);
    let high = u16::from(b >= 0x80);
    1 + quote + short + 5 * (ctrl - short) + 2 * high
}

/// Upper bound of the length of `s` once escaped as a JSON string (without quotes).
pub fn escaped_len(s: &str) -> usize {
    // A byte costs at most 6: a chunk of 8,192 sums to at most 49,152, within a u16.
    s.as_bytes()
        .chunks(8192)
        .map(|chunk| {
            usize::from(
                chunk
                    .iter()
                    .map(|&b| byte_cost(b))
                    .fold(0, u16::wrapping_add),
            )
        })
        .sum()
}

/// Splits `s` into consecutive parts whose [`escaped_len`] is at most `budget`, cutting only
/// on character boundaries. Concatenating the parts gives `s` back exactly.
pub fn split_parts(s: &str, budget: usize) -> Vec<&str> {
    assert!(budget >= 12, "a part must hold any one character");
    if s.len().saturating_mul(6) <= budget {
        return vec![s];
    }
    let bytes = s.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut cost, mut i) = (0, 0, 0);
    while i < bytes.len() {
        let b = bytes[i];
        let len = match b {
            0..=0x7f => 1,
            0xf0..=0xff => 4,
            0xe0..=0xef => 3,
            _ => 2,
        };
        let c = if len == 1 {
            usize::from(byte_cost(b))
        } else {
            3 * len
        };
        if cost + c > budget && i > start {
            parts.push(&s[start..i]);
            start = i;
            cost = 0;
        }
        cost += c;
        i += len;
    }
    if start < bytes.len() || parts.is_empty() {
        parts.push(&s[start..]);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_len_is_the_sum_of_each_byte_cost_across_chunk_boundaries() {
        let cost = |b: u8| match b {
            b'"' | b'\\' | 8 | 9 | 10 | 12 | 13 => 2,
            0..=0x1f | 0x7f => 6,
            0x80..=0xff => 3,
            _ => 1,
        };
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut text = String::new();
        while text.len() < 50_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let c = match rng % 8 {
                0 => '"',
                1 => '\\',
                2 => char::from((rng >> 8) as u8 % 0x20),
                3 => '\u{7f}',
                4 => 'é',
                5 => '😀',
                _ => char::from(b'a' + (rng >> 8) as u8 % 26),
            };
            text.push(c);
        }
        let want: usize = text.bytes().map(cost).sum();
        assert_eq!(escaped_len(&text), want);
        // The costliest byte throughout: a chunk's sum must not wrap.
        assert_eq!(escaped_len(&"\u{1}".repeat(50_000)), 300_000);
    }

    #[test]
    fn split_parts_respects_budget_and_char_boundaries() {
        let s = "aé🦀\"\u{1}".repeat(1000);
        for budget in [12, 13, 100, 4096] {
            let parts = split_parts(&s, budget);
            assert_eq!(parts.concat(), s);
            assert!(
                parts
                    .iter()
                    .all(|p| escaped_len(p) <= budget && !p.is_empty())
            );
        }
        assert_eq!(split_parts("", 12), vec![""]);
        assert_eq!(
            escaped_len("a\"\n\u{1}\u{7f}é🦀"),
            1 + 2 + 2 + 6 + 6 + 6 + 12
        );
        assert_eq!(escaped_len("\\\t\r\u{8}\u{c}"), 10);
    }
}
