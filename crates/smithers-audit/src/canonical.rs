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
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
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
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                canonical_json(item, out);
            }
            out.push(b'}');
        }
    }
}

pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
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
