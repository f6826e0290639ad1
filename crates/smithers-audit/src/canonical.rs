//! Canonical JSON: one byte sequence per value, so a hash over it is
//! reproducible by anyone who holds the value.
//!
//! Object keys are sorted by their UTF-8 bytes (code point order), there is
//! no whitespace, strings and numbers are written as `serde_json` writes
//! them. Key order in the input never matters, which is what lets a value
//! read back from a database hash the same as when it was written.

use serde_json::Value;

/// Appends the canonical encoding of `value` to `out`.
pub fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                write_int(u, out);
            } else if let Some(i) = n.as_i64() {
                write_int(i, out);
            } else {
                out.extend_from_slice(n.to_string().as_bytes());
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // serde_json keeps keys sorted unless its `preserve_order`
            // feature is on somewhere in the build: sort only when needed.
            let sorted = map
                .keys()
                .zip(map.keys().skip(1))
                .all(|(a, b)| a.as_bytes() < b.as_bytes());
            if sorted {
                write_object(map.iter(), out);
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                write_object(entries.into_iter(), out);
            }
        }
    }
}

fn write_object<'v>(entries: impl Iterator<Item = (&'v String, &'v Value)>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (key, item)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        canonical_json(item, out);
    }
    out.push(b'}');
}

pub(crate) fn write_int(n: impl itoa::Integer, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Bytes that cannot appear raw inside a JSON string.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !NEEDS_ESCAPE[b as usize] {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: &Value) -> String {
        let mut out = Vec::new();
        canonical_json(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keys_are_sorted_and_whitespace_dropped() {
        let v = json!({"b": 1, "a": [true, null, {"z": "x", "y": 2.5}], "é": "\u{1}\n\"q\""});
        assert_eq!(
            enc(&v),
            r#"{"a":[true,null,{"y":2.5,"z":"x"}],"b":1,"é":"\u0001\n\"q\""}"#
        );
    }

    #[test]
    fn the_encoding_is_valid_json_for_the_same_value() {
        let v = json!({"k": ["\u{7f}", "\u{2028}", -0, 1e300, "\\"]});
        let back: Value = serde_json::from_str(&enc(&v)).unwrap();
        assert_eq!(back, v);
    }
}
