//! Content-encoding decoding for the log (gzip, deflate, br, zstd); the client always gets the
//! original bytes.

use std::io::Read;

/// The body decoded from `encoding` (a `content-encoding` value; stacked codings are applied
/// in reverse order), at most `limit` bytes of output. Returns the decoded bytes, the coding
/// names that were undone, and whether the output was cut at `limit` or the input ended early
/// (a truncated capture). `None` when an encoding is unknown or the data is not that encoding.
pub fn decode(body: &[u8], encoding: &str, limit: usize) -> Option<(Vec<u8>, String, bool)> {
    let codings: Vec<String> = encoding
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    if codings.is_empty() {
        return None;
    }
    let mut data = body.to_vec();
    let mut cut = false;
    for coding in codings.iter().rev() {
        let (out, partial) = decode_one(&data, coding, limit)?;
        cut |= partial;
        data = out;
    }
    Some((data, codings.join(", "), cut))
}

fn decode_one(body: &[u8], coding: &str, limit: usize) -> Option<(Vec<u8>, bool)> {
    let reader: Box<dyn Read + '_> = match coding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(body)),
        "deflate" => {
            // RFC 9110 "deflate" is zlib-wrapped; some servers send raw deflate.
            if body.len() >= 2 && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0 {
                Box::new(flate2::read::ZlibDecoder::new(body))
            } else {
                Box::new(flate2::read::DeflateDecoder::new(body))
            }
        }
        "br" => Box::new(brotli::Decompressor::new(body, 8192)),
        "zstd" => Box::new(zstd::stream::read::Decoder::with_buffer(body).ok()?),
        _ => return None,
    };
    let mut out = Vec::new();
    let mut limited = reader.take(limit as u64 + 1);
    let mut buf = [0u8; 16384];
    let mut partial = false;
    loop {
        match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) if !out.is_empty() => {
                // A capture cut at the cap ends mid-stream: keep what decoded.
                partial = true;
                break;
            }
            Err(_) => return None,
        }
    }
    if out.len() > limit {
        out.truncate(limit);
        partial = true;
    }
    Some((out, partial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_and_zstd_and_br_round_trip() {
        let text = b"{\"hello\":\"world\"}".repeat(10);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode(&gz, "gzip", 1 << 20).unwrap().0, text);
        let zs = zstd::encode_all(&text[..], 3).unwrap();
        assert_eq!(decode(&zs, "zstd", 1 << 20).unwrap().0, text);
        let mut br = Vec::new();
        brotli::BrotliCompress(
            &mut &text[..],
            &mut br,
            &brotli::enc::BrotliEncoderParams::default(),
        )
        .unwrap();
        assert_eq!(decode(&br, "br", 1 << 20).unwrap().0, text);
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zl.write_all(&text).unwrap();
        assert_eq!(
            decode(&zl.finish().unwrap(), "deflate", 1 << 20).unwrap().0,
            text
        );
    }

    #[test]
    fn output_is_limited() {
        let text = vec![b'a'; 100_000];
        let zs = zstd::encode_all(&text[..], 3).unwrap();
        let (out, _, cut) = decode(&zs, "zstd", 1000).unwrap();
        assert_eq!(out.len(), 1000);
        assert!(cut);
    }
}
