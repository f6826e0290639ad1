//! The forms a secret value can take in a process's output: raw, each of
//! its lines, base64 and base64url at all three alignments, hex in both
//! cases, URL-encoded, and JSON-string-escaped.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// Values shorter than this are not masked: too many innocent strings
/// would match.
pub const MIN_SECRET_LEN: usize = 6;

/// Every form of `value` worth masking, longest first, without duplicates.
pub fn forms(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut add = |form: Vec<u8>| {
        if form.len() >= MIN_SECRET_LEN && !out.contains(&form) {
            out.push(form);
        }
    };
    for piece in pieces(value) {
        if piece.len() < MIN_SECRET_LEN {
            continue;
        }
        add(piece.to_vec());
        add(hex_lower(piece));
        add(hex_lower(piece).to_ascii_uppercase());
        for encoded in url_encoded(piece) {
            add(encoded);
        }
        for escaped in json_escaped(piece) {
            add(escaped);
        }
        for alignment in 0..3 {
            add(base64_inner(piece, alignment, false));
            add(base64_inner(piece, alignment, true));
        }
    }
    out.sort_by_key(|form| std::cmp::Reverse(form.len()));
    out
}

/// The value, and each of its lines if it has several.
pub(crate) fn pieces(value: &[u8]) -> Vec<&[u8]> {
    let mut pieces: Vec<&[u8]> = vec![value];
    if value.contains(&b'\n') {
        pieces.extend(
            value
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l)),
        );
    }
    pieces
}

pub(crate) fn hex_lower(bytes: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|&b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
        .collect()
}

/// The base64 characters that depend only on `bytes` when they start
/// `alignment` bytes into a 3-byte group of a longer base64 stream.
fn base64_inner(bytes: &[u8], alignment: usize, url_safe: bool) -> Vec<u8> {
    let mut padded = vec![0u8; alignment];
    padded.extend_from_slice(bytes);
    let encoded = if url_safe {
        URL_SAFE_NO_PAD.encode(&padded)
    } else {
        STANDARD_NO_PAD.encode(&padded)
    };
    let first_bit = 8 * alignment;
    let end_bit = 8 * (alignment + bytes.len());
    let first = first_bit.div_ceil(6);
    let end = end_bit / 6;
    encoded
        .as_bytes()
        .get(first..end)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// Percent-encoding of everything but unreserved characters, with upper- and
/// lower-case hex, and the form-encoding variant (`+` for spaces).
fn url_encoded(bytes: &[u8]) -> Vec<Vec<u8>> {
    let encode = |upper: bool, plus: bool| -> Vec<u8> {
        let hex: &[u8; 16] = if upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        let mut out = Vec::with_capacity(bytes.len() * 3);
        for &b in bytes {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b);
            } else if plus && b == b' ' {
                out.push(b'+');
            } else {
                out.extend_from_slice(&[b'%', hex[usize::from(b >> 4)], hex[usize::from(b & 0xf)]]);
            }
        }
        out
    };
    vec![
        encode(true, false),
        encode(false, false),
        encode(true, true),
        encode(false, true),
    ]
}

/// The contents of a JSON string holding `bytes`: minimal escaping, and the
/// ASCII-only variant (`\uXXXX` for everything outside ASCII, as many
/// encoders write it). Also `\/` for slashes.
fn json_escaped(bytes: &[u8]) -> Vec<Vec<u8>> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Vec::new();
    };
    let escape = |ascii_only: bool, slash: bool| -> Vec<u8> {
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '/' if slash => out.push_str("\\/"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (ascii_only && !c.is_ascii()) => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.into_bytes()
    };
    vec![
        escape(false, false),
        escape(true, false),
        escape(false, true),
        escape(true, true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn base64_forms_are_found_inside_longer_base64_at_every_offset() {
        let secret = b"hunter2-secret";
        let f = forms(secret);
        for prefix in 0..6 {
            let mut stream = vec![b'x'; prefix];
            stream.extend_from_slice(secret);
            stream.extend_from_slice(b"tail");
            let encoded = STANDARD.encode(&stream);
            assert!(
                f.iter().any(|form| contains(encoded.as_bytes(), form)),
                "offset {prefix}: {encoded}"
            );
            let url = URL_SAFE_NO_PAD.encode(&stream);
            assert!(
                f.iter().any(|form| contains(url.as_bytes(), form)),
                "url offset {prefix}"
            );
        }
    }

    #[test]
    fn the_other_forms() {
        let f = forms("p@ss wörd/\"x\"\nsecond-line".as_bytes());
        let has = |s: &str| f.iter().any(|form| form == s.as_bytes());
        assert!(has("p@ss wörd/\"x\""), "each line");
        assert!(has("second-line"));
        assert!(has("p%40ss%20w%C3%B6rd%2F%22x%22"));
        assert!(has("p%40ss+w%c3%b6rd%2f%22x%22"));
        assert!(has("p@ss wörd/\\\"x\\\""));
        assert!(has("p@ss w\\u00f6rd\\/\\\"x\\\""));
        assert!(has(&hex_lower(b"second-line")
            .iter()
            .map(|&b| b as char)
            .collect::<String>()));
        assert!(
            forms(b"short").is_empty(),
            "under 6 bytes nothing is masked"
        );
    }
}
