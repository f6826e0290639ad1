//! The redactor against hostile output: every form, every chunking, and
//! output as real tools write it (`xxd -p`, `base64`, `grep --color`,
//! Python's `urllib.parse.quote`, Go's `encoding/json`, JSON in JSON, HTML).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use proptest::prelude::*;
use smithers_secrets::{Redactor, SecretValue, forms};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn redactor(secrets: &[&str]) -> Redactor {
    let values: Vec<SecretValue> = secrets.iter().map(|s| SecretValue::from(*s)).collect();
    Redactor::new(&values).unwrap()
}

fn chunked(r: &Redactor, input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stream = r.stream();
    let mut at = 0;
    for &cut in cuts {
        let cut = cut.min(input.len()).max(at);
        stream.push(&input[at..cut], &mut out);
        at = cut;
    }
    stream.push(&input[at..], &mut out);
    stream.finish(&mut out);
    out
}

/// Redacts `input` at once, byte by byte and cut in two at every place;
/// all must agree.
fn redact_every_way(r: &Redactor, input: &[u8]) -> Vec<u8> {
    let whole = r.redact(input);
    let bytes: Vec<usize> = (1..input.len()).collect();
    assert_eq!(chunked(r, input, &bytes), whole, "byte by byte");
    for cut in 1..input.len() {
        assert_eq!(chunked(r, input, &[cut]), whole, "cut at {cut}");
    }
    whole
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `text` with `sep` after every `width` characters (as `xxd -p`, `base64`
/// and `fold` write), and after the last line.
fn wrap(text: &str, width: usize, sep: &str) -> String {
    let mut out = String::new();
    for line in text.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push_str(sep);
    }
    out
}

/// A JSON string literal the way `encoding/json` and `serde_json` write it.
fn json(s: &str, go_html_safe: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '<' | '>' | '&' if go_html_safe => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The strings of the issue: a token with `/ + & =` in it.
const TOK: &str = "ghp_Q7x/Lm9+Zt2&Rw8=Kd4vNc6bYf1sHj3";

/// No form of `value` in `out`, not even with line breaks taken out.
fn assert_gone(value: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    assert!(contains(out, b"***"), "nothing masked: {text:?}");
    let unwrapped: Vec<u8> = out
        .iter()
        .copied()
        .filter(|&b| b != b'\n' && b != b'\r')
        .collect();
    for form in forms(value.as_bytes()) {
        assert!(
            !contains(out, &form),
            "{:?} in {text:?}",
            String::from_utf8_lossy(&form)
        );
        assert!(
            !contains(&unwrapped, &form),
            "{:?} across lines in {text:?}",
            String::from_utf8_lossy(&form)
        );
    }
}

#[test]
fn hex_wrapped_like_xxd_p() {
    // `printf %s "$TOK" | xxd -p`: 30 bytes (60 digits) per line.
    let input = wrap(&hex(TOK.as_bytes()), 60, "\n");
    let r = redactor(&[TOK]);
    let out = redact_every_way(&r, input.as_bytes());
    assert_eq!(out, b"***\n\n", "one mask, the line structure kept");
}

#[test]
fn hex_wrapped_with_crlf_and_in_upper_case() {
    let input = format!(
        "dump:\r\n{}end\r\n",
        wrap(&hex(TOK.as_bytes()).to_uppercase(), 16, "\r\n")
    );
    let r = redactor(&[TOK]);
    let out = redact_every_way(&r, input.as_bytes());
    assert_eq!(out, b"dump:\r\n***\n\n\n\n\r\nend\r\n");
}

#[test]
fn base64_of_json_wrapped_at_76_columns() {
    // `printf '{"user":"bot","password":"%s"}' "$TOK" | base64`
    let json = format!("{{\"user\":\"bot\",\"password\":\"{TOK}\"}}");
    let r = redactor(&[TOK]);
    for sep in ["\n", "\r\n"] {
        let input = wrap(&STANDARD.encode(&json), 76, sep);
        let out = redact_every_way(&r, input.as_bytes());
        assert_gone(TOK, &out);
        assert!(
            out.starts_with(b"eyJ1c2VyIjoiYm90IiwicGFzc3dvcmQiOiJ"),
            "{out:?}"
        );
    }
}

#[test]
fn a_colour_code_inside_the_value() {
    // `printf 'TOKEN=%s\n' "$TOK" | grep --color=always Zt2`
    let input = "TOKEN=ghp_Q7x/Lm9+\x1b[01;31m\x1b[KZt2\x1b[m\x1b[K&Rw8=Kd4vNc6bYf1sHj3\n";
    let r = redactor(&[TOK]);
    assert_eq!(redact_every_way(&r, input.as_bytes()), b"TOKEN=***\n");
    // The highlighted part at the start or the end of the value.
    let input =
        "x \x1b[01;31m\x1b[Kghp\x1b[m\x1b[K_Q7x/Lm9+Zt2&Rw8=Kd4vNc6bYf1sH\x1b[1mj3\x1b[0m y";
    assert_eq!(
        redact_every_way(&r, input.as_bytes()),
        b"x \x1b[01;31m\x1b[K***\x1b[0m y"
    );
}

#[test]
fn url_encoded_keeping_slashes_as_python_quote_does() {
    // python3 -c 'import os,urllib.parse;print(urllib.parse.quote(os.environ["TOK"]))'
    let input = "GET /hook?token=ghp_Q7x/Lm9%2BZt2%26Rw8%3DKd4vNc6bYf1sHj3 HTTP/1.1\n";
    let r = redactor(&[TOK]);
    assert_eq!(
        redact_every_way(&r, input.as_bytes()),
        b"GET /hook?token=*** HTTP/1.1\n"
    );
}

#[test]
fn url_encoded_in_lower_case_twice_and_mixed() {
    let r = redactor(&[TOK]);
    for encoded in [
        "ghp_Q7x%2fLm9%2bZt2%26Rw8%3dKd4vNc6bYf1sHj3",
        // quote(quote(TOK)): `%2B` becomes `%252B`.
        "ghp_Q7x/Lm9%252BZt2%2526Rw8%253DKd4vNc6bYf1sHj3",
        "ghp_Q7x%252fLm9%25252BZt2%26Rw8=Kd4vNc6bYf1sHj3",
        // Unreserved characters encoded too, in either case.
        "%67hp%5fQ7x/Lm9%2BZt2%26Rw8%3DKd4vNc6bYf1sHj%33",
    ] {
        let input = format!("url={encoded}&next=1\n");
        assert_eq!(
            redact_every_way(&r, input.as_bytes()),
            b"url=***&next=1\n",
            "{encoded}"
        );
    }
}

#[test]
fn json_as_go_writes_it() {
    // Go's encoding/json escapes `<`, `>` and `&` as \u003c, \u003e, \u0026.
    let input = format!("{{\"token\":{}}}\n", json(TOK, true));
    assert!(input.contains("\\u0026"));
    let r = redactor(&[TOK]);
    assert_eq!(
        redact_every_way(&r, input.as_bytes()),
        b"{\"token\":\"***\"}\n"
    );
    let value = "s3cr<e>t&v4lue-99";
    let input = format!("{{\"v\":{}}}", json(value, true));
    assert!(input.contains("\\u003ce\\u003et\\u0026"));
    let r = redactor(&[value]);
    assert_eq!(redact_every_way(&r, input.as_bytes()), b"{\"v\":\"***\"}");
}

#[test]
fn json_with_escaped_slashes_and_ampersands() {
    // PHP's json_encode($v, JSON_HEX_AMP): `\/` and `\u0026`.
    let input = "{\"token\":\"ghp_Q7x\\/Lm9+Zt2\\u0026Rw8=Kd4vNc6bYf1sHj3\"}";
    let r = redactor(&[TOK]);
    assert_eq!(
        redact_every_way(&r, input.as_bytes()),
        b"{\"token\":\"***\"}"
    );
}

#[test]
fn json_inside_json() {
    let value = r#"pa"ss\word-123456"#;
    let inner = format!("{{\"password\":{}}}", json(value, false));
    let input = format!("{{\"body\":{}}}\n", json(&inner, false));
    assert_eq!(
        input,
        "{\"body\":\"{\\\"password\\\":\\\"pa\\\\\\\"ss\\\\\\\\word-123456\\\"}\"}\n"
    );
    let r = redactor(&[value]);
    assert_eq!(
        redact_every_way(&r, input.as_bytes()),
        b"{\"body\":\"{\\\"password\\\":\\\"***\\\"}\"}\n"
    );
}

#[test]
fn json_three_deep() {
    let value = r#"pa"ss\word-123456"#;
    let mut text = json(value, false);
    for _ in 0..2 {
        text = json(&format!("{{\"v\":{text}}}"), false);
    }
    let r = redactor(&[value]);
    let out = redact_every_way(&r, text.as_bytes());
    assert!(contains(&out, b"***"), "{}", String::from_utf8_lossy(&out));
    assert!(
        !contains(&out, b"word-123456"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn html_and_xml_character_references() {
    let r = redactor(&[TOK]);
    for encoded in [
        "ghp_Q7x/Lm9+Zt2&amp;Rw8=Kd4vNc6bYf1sHj3",
        "ghp_Q7x/Lm9+Zt2&#38;Rw8=Kd4vNc6bYf1sHj3",
        "ghp_Q7x/Lm9+Zt2&#x26;Rw8=Kd4vNc6bYf1sHj3",
        "ghp_Q7x&#x2F;Lm9&#43;Zt2&amp;amp;Rw8&equals;Kd4vNc6bYf1sHj3",
    ] {
        let input = format!("<input value=\"{encoded}\">");
        assert_eq!(
            redact_every_way(&r, input.as_bytes()),
            b"<input value=\"***\">",
            "{encoded}"
        );
    }
}

#[test]
fn every_character_written_its_own_way() {
    // One string, each character as some encoder could have written it.
    let input = "ghp%5FQ7x\\/Lm9%2BZt2\\u0026Rw8&#61;Kd4v&#x4E;c6bYf1sH\\u006a3";
    let r = redactor(&[TOK]);
    assert_eq!(redact_every_way(&r, input.as_bytes()), b"***");
}

#[test]
fn a_value_split_by_a_window_title() {
    // OSC 0 sets the terminal's title; the value runs on around it.
    let input = "ghp_Q7x/Lm9+\x1b]0;make: step 3/7\x07Zt2&Rw8=Kd4vNc6b\x1b]8;;https://ci.test/\x1b\\Yf1sHj3\n";
    let r = redactor(&[TOK]);
    assert_eq!(redact_every_way(&r, input.as_bytes()), b"***\n");
}

#[test]
fn a_value_inside_a_window_title() {
    let input = format!("\x1b]0;deploy --token {TOK}\x07building\n");
    let r = redactor(&[TOK]);
    assert_eq!(
        redact_every_way(&r, input.as_bytes()),
        b"\x1b]0;deploy --token ***\x07building\n"
    );
}

#[test]
fn wrapped_hex_and_base64_inside_json() {
    let r = redactor(&[TOK]);
    // A dump's lines joined with `\n` escapes in a JSON string.
    let dump = wrap(&hex(TOK.as_bytes()), 60, "\\n");
    let input = format!("{{\"dump\":\"{dump}\"}}");
    let out = redact_every_way(&r, input.as_bytes());
    assert_eq!(out, b"{\"dump\":\"***\\n\"}");
    let blob = wrap(
        &STANDARD.encode(format!("{{\"password\":\"{TOK}\"}}")),
        76,
        "\\r\\n",
    );
    let input = format!("{{\"blob\":\"{}\"}}", blob.replace('/', "\\/"));
    let out = redact_every_way(&r, input.as_bytes());
    assert_gone(TOK, &out);
}

#[test]
fn wrapped_and_indented() {
    let r = redactor(&[TOK]);
    // printf %s "$TOK" | fold -w 20 | sed 's/^/  /'
    let input = "  ghp_Q7x/Lm9+Zt2&Rw8=\n  Kd4vNc6bYf1sHj3";
    assert_eq!(redact_every_way(&r, input.as_bytes()), b"  ***\n");
    // CRLF and a tab.
    let input = "token:\r\n\tghp_Q7x/Lm9+Zt2&\r\n\tRw8=Kd4vNc6bYf1sHj3\r\n";
    assert_eq!(
        redact_every_way(&r, input.as_bytes()),
        b"token:\r\n\t***\n\r\n"
    );
    // A `git log` body: four spaces.
    let input = "commit 3f2a9c1d\n\n    rotate the token; the old one was\n    ghp_Q7x/Lm9+Zt2&Rw8=\n    Kd4vNc6bYf1sHj3 (revoked)\n";
    assert_eq!(
        redact_every_way(&r, input.as_bytes()),
        b"commit 3f2a9c1d\n\n    rotate the token; the old one was\n    ***\n (revoked)\n"
    );
    // printf %s "$V" | fold -w 7: two breaks fall right before a space of
    // the value, which then reads as indentation.
    let value = "correct horse battery staple";
    let input = "correct\n horse \nbattery\n staple";
    let r = redactor(&[value]);
    assert_eq!(redact_every_way(&r, input.as_bytes()), b"***\n\n\n");
}

#[test]
fn base64_in_a_yaml_block() {
    // A Secret manifest: base64 wrapped at 24 columns, indented by four.
    let blob = STANDARD.encode(format!("{{\"user\":\"bot\",\"password\":\"{TOK}\"}}"));
    let block: String = wrap(&blob, 24, "\n")
        .lines()
        .map(|line| format!("    {line}\n"))
        .collect();
    let input = format!("kind: Secret\ndata:\n  config.json: |\n{block}  other: x\n");
    let r = redactor(&[TOK]);
    let out = redact_every_way(&r, input.as_bytes());
    assert_gone(TOK, &out);
    assert!(out.ends_with(b"  other: x\n"));
}

#[test]
fn shell_quoted_as_bash_and_python_write_it() {
    // (the value, then what `set -x`, `${v@Q}`, `printf %q` and Python's
    // `shlex.quote` print for it, each with what is left once masked)
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "p@ss'word-123",
            &[
                // bash -c 'v=…; set -x; : "$v"' (and "${v@Q}": the same)
                ("+ : 'p@ss'\\''word-123'\n", "+ : '***'\n"),
                // printf %q
                ("p@ss\\'word-123\n", "***\n"),
                // shlex.quote
                ("'p@ss'\"'\"'word-123'\n", "'***'\n"),
                // a trace inside a JSON string
                (
                    "{\"line\":\"+ : 'p@ss'\\\\''word-123'\"}",
                    "{\"line\":\"+ : '***'\"}",
                ),
            ],
        ),
        (
            "p@ss word\\x-1'2",
            &[
                ("+ : 'p@ss word\\x-1'\\''2'\n", "+ : '***'\n"),
                ("p@ss\\ word\\\\x-1\\'2\n", "***\n"),
                ("'p@ss word\\x-1'\"'\"'2'\n", "'***'\n"),
            ],
        ),
        (
            "it's\nline2-x",
            &[
                ("+ : 'it'\\''s\nline2-x'\n", "+ : '***\n'\n"),
                // "${v@Q}" and printf %q use $'…' for a line break.
                ("$'it\\'s\\nline2-x'\n", "$'***'\n"),
            ],
        ),
        (
            // Control and non-ASCII bytes: octal in $'…' (LC_ALL=C).
            "p\u{e9}\u{1}ss'w-1234",
            &[("$'p\\303\\251\\001ss\\'w-1234'\n", "$'***'\n")],
        ),
        (
            TOK,
            &[
                ("+ : 'ghp_Q7x/Lm9+Zt2&Rw8=Kd4vNc6bYf1sHj3'\n", "+ : '***'\n"),
                ("ghp_Q7x/Lm9+Zt2\\&Rw8=Kd4vNc6bYf1sHj3\n", "***\n"),
            ],
        ),
    ];
    for (value, outputs) in cases {
        let r = redactor(&[value]);
        for (input, expected) in *outputs {
            assert_eq!(
                String::from_utf8_lossy(&redact_every_way(&r, input.as_bytes())),
                *expected,
                "{value:?} as {input:?}"
            );
        }
    }
}

/// `printf %s "$TOK" | TOOL` for each dump tool, and what is left once
/// masked: from the value's first hex digit to the end of its last line
/// (with the ASCII column, which shows the value as text).
const TOK_DUMPS: &[(&str, &str, &str)] = &[
    (
        "od -An -tx1",
        " 67 68 70 5f 51 37 78 2f 4c 6d 39 2b 5a 74 32 26\n 52 77 38 3d 4b 64 34 76 4e 63 36 62 59 66 31 73\n 48 6a 33\n",
        " ***\n\n\n",
    ),
    (
        "od -tx1",
        "0000000 67 68 70 5f 51 37 78 2f 4c 6d 39 2b 5a 74 32 26\n0000020 52 77 38 3d 4b 64 34 76 4e 63 36 62 59 66 31 73\n0000040 48 6a 33\n0000043\n",
        "0000000 ***\n\n\n0000043\n",
    ),
    (
        "hexdump -C",
        "00000000  67 68 70 5f 51 37 78 2f  4c 6d 39 2b 5a 74 32 26  |ghp_Q7x/Lm9+Zt2&|\n00000010  52 77 38 3d 4b 64 34 76  4e 63 36 62 59 66 31 73  |Rw8=Kd4vNc6bYf1s|\n00000020  48 6a 33                                          |Hj3|\n00000023\n",
        "00000000  ***\n\n\n00000023\n",
    ),
    (
        "xxd",
        "00000000: 6768 705f 5137 782f 4c6d 392b 5a74 3226  ghp_Q7x/Lm9+Zt2&\n00000010: 5277 383d 4b64 3476 4e63 3662 5966 3173  Rw8=Kd4vNc6bYf1s\n00000020: 486a 33                                  Hj3\n",
        "00000000: ***\n\n\n",
    ),
    (
        "xxd -i",
        "  0x67, 0x68, 0x70, 0x5f, 0x51, 0x37, 0x78, 0x2f, 0x4c, 0x6d, 0x39, 0x2b,\n  0x5a, 0x74, 0x32, 0x26, 0x52, 0x77, 0x38, 0x3d, 0x4b, 0x64, 0x34, 0x76,\n  0x4e, 0x63, 0x36, 0x62, 0x59, 0x66, 0x31, 0x73, 0x48, 0x6a, 0x33\n",
        "  0x***\n\n\n",
    ),
    (
        "python3 -c 'print(sys.stdin.buffer.read().hex(\":\"))'",
        "67:68:70:5f:51:37:78:2f:4c:6d:39:2b:5a:74:32:26:52:77:38:3d:4b:64:34:76:4e:63:36:62:59:66:31:73:48:6a:33\n",
        "***\n",
    ),
    (
        "python3 -c 'print(sys.stdin.buffer.read().hex(\"-\").upper())'",
        "67-68-70-5F-51-37-78-2F-4C-6D-39-2B-5A-74-32-26-52-77-38-3D-4B-64-34-76-4E-63-36-62-59-66-31-73-48-6A-33\n",
        "***\n",
    ),
];

#[test]
fn spaced_grouped_and_annotated_hex_dumps() {
    let r = redactor(&[TOK]);
    for (tool, dump, expected) in TOK_DUMPS {
        assert_eq!(
            String::from_utf8_lossy(&redact_every_way(&r, dump.as_bytes())),
            *expected,
            "{tool}"
        );
    }
    // Checked byte for byte against the tools' output for TOK.
    for (tool, text, _) in TOK_DUMPS {
        let format = match *tool {
            "od -An -tx1" => 0,
            "od -tx1" => 1,
            "hexdump -C" => 2,
            "xxd" => 3,
            "xxd -i" => 4,
            t if t.contains(":") => 5,
            _ => 6,
        };
        assert_eq!(dump(TOK.as_bytes(), format).text, *text, "{tool}");
    }
    // A value in the middle of what is dumped: printf 'key=%s\n' "$V" | xxd
    // (and hexdump -C); the ASCII columns of both lines go with it.
    let r = redactor(&["hunter2-secret"]);
    let xxd = "00000000: 6b65 793d 6875 6e74 6572 322d 7365 6372  key=hunter2-secr\n00000010: 6574 0a                                  et.\n";
    assert_eq!(
        redact_every_way(&r, xxd.as_bytes()),
        b"00000000: 6b65 793d ***\n\n"
    );
    let hexdump = "00000000  6b 65 79 3d 68 75 6e 74  65 72 32 2d 73 65 63 72  |key=hunter2-secr|\n00000010  65 74 0a                                          |et.|\n00000013\n";
    assert_eq!(
        redact_every_way(&r, hexdump.as_bytes()),
        b"00000000  6b 65 79 3d ***\n\n00000013\n"
    );
    // Coloured, indented, in CRLF lines: the same dump.
    let coloured = "  \x1b[32m00000000\x1b[0m  67 68 70 5f 51 37 78 2f  4c 6d 39 2b 5a 74 32 26  |ghp_Q7x/Lm9+Zt2&|\r\n  \x1b[32m00000010\x1b[0m  52 77 38 3d 4b 64 34 76  4e 63 36 62 59 66 31 73  |Rw8=Kd4vNc6bYf1s|\r\n  \x1b[32m00000020\x1b[0m  48 6a 33                                          |Hj3|\r\n";
    let r = redactor(&[TOK]);
    let out = redact_every_way(&r, coloured.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&out),
        "  \x1b[32m00000000\x1b[0m  ***\n\n\r\n"
    );
}

#[test]
fn a_value_cut_short_by_the_tool_that_prints_it() {
    let r = redactor(&[TOK]);
    for (input, expected) in [
        // strace -e trace=write: 32 bytes, then `"...`; -s 20 too.
        (
            "write(1, \"ghp_Q7x/Lm9+Zt2&Rw8=Kd4vNc6bYf1s\"..., 35) = 35\n",
            "write(1, \"***, 35) = 35\n",
        ),
        (
            "write(1, \"ghp_Q7x/Lm9+Zt2&Rw8=\"..., 35) = 35\n",
            "write(1, \"***, 35) = 35\n",
        ),
        // A table cell cut with an ellipsis.
        (
            "NAME   TOKEN                  AGE\nbot    ghp_Q7x/Lm9+Zt2&Rw8=Kd4\u{2026}   3d\n",
            "NAME   TOKEN                  AGE\nbot    ***   3d\n",
        ),
        // Under 16 bytes, or under half the value: not masked.
        ("ghp_Q7x/Lm9+Zt...\n", "ghp_Q7x/Lm9+Zt...\n"),
        // Ordinary ellipses.
        ("Loading... done... 3/3\n", "Loading... done... 3/3\n"),
    ] {
        assert_eq!(
            String::from_utf8_lossy(&redact_every_way(&r, input.as_bytes())),
            expected,
            "{input:?}"
        );
    }
}

#[test]
fn ordinary_output_passes_unchanged() {
    let r = redactor(&[TOK, r#"pa"ss\word-123456"#, "hunter2-secret"]);
    let log = concat!(
        "\x1b[1m\x1b[32m   Compiling\x1b[0m app v0.1.0 (/src)\r\n",
        "GET https://api.test/v1/items?q=a%20b&page=2&sort=name%2Cdesc 200\n",
        "{\"msg\":\"saved \\\"draft\\\" to C:\\\\tmp\\\\new\",\"pct\":\"100%\",\"url\":\"https:\\/\\/x.test\\/?a=1\\u0026b=2\"}\n",
        "<a href=\"/p?a=1&amp;b=2\">R&amp;D &lt;3 &#169; &#x1F600;</a> 50% &unknown; &am\n",
        "\x1b]0;~/src: cargo test\x07\x1b[?25l[=====>    ] 50%\x1b[K\r",
        "escapes: \\n \\t \\u00e9 \\x41 %zz %4 \\\\server\\share\\\n",
        "binary: \x00\x01\x1b\x7f\u{e9}\n",
        "00000000: 6865 6c6c 6f20 776f 726c 640a            hello world.\n",
        "sha256 fingerprint 5b:90:e1:33:28:c6:09:10:d3:b1 - it's 'fine'\n",
        "+ : 'it'\\''s' Loading... \u{2026}\n",
        "key: |\n  aGVsbG8gd29ybGQ=\n    indented\r\n\ttabbed\n",
    );
    assert_eq!(redact_every_way(&r, log.as_bytes()), log.as_bytes());
}

#[test]
fn every_form_is_masked() {
    let secret = "tok3n/With+Sp3cial chars";
    let r = redactor(&[secret]);
    let inputs = [
        format!("token={secret}!"),
        format!(
            "hex {} and {}",
            hex(secret.as_bytes()),
            hex(secret.as_bytes()).to_uppercase()
        ),
        format!("b64 {}", STANDARD.encode(secret)),
        format!("in a blob {}", STANDARD.encode(format!("user:{secret}:x"))),
        format!("urlsafe {}", URL_SAFE.encode(format!("ab{secret}"))),
        "q=tok3n%2FWith%2BSp3cial%20chars&x".to_string(),
        "q=tok3n%2fWith%2bSp3cial+chars&x".to_string(),
        format!("{{\"v\":{}}}", json(secret, false).replace('/', "\\/")),
    ];
    for input in inputs {
        let out = r.redact(input.as_bytes());
        assert!(
            contains(&out, b"***"),
            "{input} -> {}",
            String::from_utf8_lossy(&out)
        );
        for form in forms(secret.as_bytes()) {
            assert!(!contains(&out, &form), "{input}");
        }
    }
}

#[test]
fn each_line_of_a_multi_line_secret_is_masked() {
    let key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX\n-----END KEY-----";
    let r = redactor(&[key]);
    let out = r.redact(b"printed only the middle: MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX done");
    assert_eq!(out, b"printed only the middle: *** done");
    let out = r.redact(format!("{key}\n").as_bytes());
    assert_eq!(out, b"***\n\n\n", "whole, one mask with its line breaks");
}

#[test]
fn a_prefix_is_held_back_until_the_next_chunk() {
    let r = redactor(&["hunter2-secret"]);
    let mut out = Vec::new();
    let mut stream = r.stream();
    stream.push(b"login: hunt", &mut out);
    assert_eq!(out, b"login: ", "`hunt` could still become the secret");
    stream.push(b"er2-secr", &mut out);
    assert_eq!(out, b"login: ");
    stream.push(b"et ok\nhunter", &mut out);
    assert_eq!(out, b"login: *** ok\n");
    stream.finish(&mut out);
    assert_eq!(
        out, b"login: *** ok\nhunter",
        "a prefix that never completed is flushed at the end"
    );
}

#[test]
fn a_finished_line_is_not_held_for_the_next_one() {
    let r = redactor(&["hunter2-secret"]);
    let mut out = Vec::new();
    let mut stream = r.stream();
    // Its end could begin none of the value's forms: a live log shows the
    // line now, though the next one could still begin with indentation.
    stream.push(b"slow-started!\n", &mut out);
    assert_eq!(out, b"slow-started!\n");
    assert_eq!(stream.held(), 0);
    // Indentation after a line break is still read as a wrap of what came
    // before it.
    stream.push(b"  more\nlogin: hunter2-\n", &mut out);
    assert_eq!(out, b"slow-started!\n  more\nlogin: ");
    stream.push(b"    secret done\n", &mut out);
    stream.finish(&mut out);
    assert_eq!(
        out, b"slow-started!\n  more\nlogin: ***\n done\n",
        "the mask keeps the line break"
    );
}

#[test]
fn short_values_are_reported_not_masked() {
    let values = [
        SecretValue::from("abc"),
        SecretValue::from("long-enough"),
        SecretValue::from(""),
    ];
    let r = Redactor::new(&values).unwrap();
    assert_eq!(r.too_short(), [0, 2]);
    assert_eq!(r.redact(b"abc long-enough"), b"abc ***");
    let none = Redactor::new(&[]).unwrap();
    assert_eq!(none.redact(b"anything at all"), b"anything at all");
}

#[test]
fn a_form_written_out_where_a_token_swallows_its_start() {
    let r = redactor(&["41secret-value", "nothing-to-see"]);
    // `%41` would decode to `A` and `\n` to a line break, yet the bytes of
    // the value are there to read.
    for input in [
        "100%41secret-value",
        "C:\\nothing-to-see",
        "\x1b[41secret-value",
        "\x1b41secret-value",
    ] {
        let out = redact_every_way(&r, input.as_bytes());
        assert!(
            !contains(&out, b"secret-value") && !contains(&out, b"othing-to-see"),
            "{input} -> {out:?}"
        );
    }
}

/// A dump as a tool prints it, and for each byte dumped where its first hex
/// digit is and where a mask ending at that byte ends (its line's ASCII
/// column included).
struct Dump {
    text: String,
    digit_at: Vec<usize>,
    mask_end: Vec<usize>,
    /// Each line's ASCII column.
    columns: Vec<String>,
}

fn printable(b: u8) -> char {
    if (0x20..0x7f).contains(&b) {
        b as char
    } else {
        '.'
    }
}

/// `od -An -tx1`, `od -tx1`, `hexdump -C`, `xxd`, `xxd -i`, and one line
/// joined by `sep` (Python's `bytes.hex(sep)`), as those tools print them.
fn dump(bytes: &[u8], format: u8) -> Dump {
    let mut d = Dump {
        text: String::new(),
        digit_at: Vec::new(),
        mask_end: Vec::new(),
        columns: Vec::new(),
    };
    let per_line = if format == 4 { 12 } else { 16 };
    let lines: Vec<&[u8]> = match format {
        5 | 6 => vec![bytes],
        _ => bytes.chunks(per_line).collect(),
    };
    for (n, line) in lines.iter().enumerate() {
        let offset = n * per_line;
        let first = d.digit_at.len();
        match format {
            0 | 1 => {
                if format == 1 {
                    d.text.push_str(&format!("{offset:07o}"));
                }
                for b in *line {
                    d.text.push(' ');
                    d.digit_at.push(d.text.len());
                    d.text.push_str(&format!("{b:02x}"));
                }
            }
            2 => {
                d.text.push_str(&format!("{offset:08x} "));
                for j in 0..16 {
                    d.text.push_str(if j == 8 { "  " } else { " " });
                    match line.get(j) {
                        Some(b) => {
                            d.digit_at.push(d.text.len());
                            d.text.push_str(&format!("{b:02x}"));
                        }
                        None => d.text.push_str("  "),
                    }
                }
                let column: String = line.iter().map(|&b| printable(b)).collect();
                d.text.push_str(&format!("  |{column}|"));
                d.columns.push(format!("|{column}|"));
            }
            3 => {
                d.text.push_str(&format!("{offset:08x}:"));
                for j in 0..16 {
                    if j % 2 == 0 {
                        d.text.push(' ');
                    }
                    match line.get(j) {
                        Some(b) => {
                            d.digit_at.push(d.text.len());
                            d.text.push_str(&format!("{b:02x}"));
                        }
                        None => d.text.push_str("  "),
                    }
                }
                let column: String = line.iter().map(|&b| printable(b)).collect();
                d.text.push_str(&format!("  {column}"));
                d.columns.push(column);
            }
            4 => {
                d.text.push(' ');
                for (j, b) in line.iter().enumerate() {
                    d.text.push_str(" 0x");
                    d.digit_at.push(d.text.len());
                    d.text.push_str(&format!("{b:02x}"));
                    if offset + j + 1 < bytes.len() {
                        d.text.push(',');
                    }
                }
            }
            _ => {
                for (j, b) in line.iter().enumerate() {
                    if j > 0 {
                        d.text.push(if format == 5 { ':' } else { '-' });
                    }
                    d.digit_at.push(d.text.len());
                    let pair = format!("{b:02x}");
                    d.text.push_str(&if format == 6 {
                        pair.to_uppercase()
                    } else {
                        pair
                    });
                }
            }
        }
        let has_column = matches!(format, 2 | 3);
        for &at in &d.digit_at[first..] {
            d.mask_end
                .push(if has_column { d.text.len() } else { at + 2 });
        }
        d.text.push('\n');
    }
    match format {
        1 => d.text.push_str(&format!("{:07o}\n", bytes.len())),
        2 => d.text.push_str(&format!("{:08x}\n", bytes.len())),
        _ => {}
    }
    d
}

// ---- properties ----

/// A value with the characters encoders treat specially, and non-ASCII.
fn value() -> impl Strategy<Value = String> {
    const ALPHABET: &[char] = &[
        'a', 'b', 'k', 'Z', 'Q', '0', '7', '2', '5', 'f', 'x', 'u', 'n', '-', '_', '.', '/', '+',
        '&', '=', '%', '"', '\\', '<', '>', '\'', ' ', 'é', 'ß', '日', '😀',
    ];
    prop::collection::vec(prop::sample::select(ALPHABET), 6..24)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Per-character choices, from a stream of random numbers.
struct Choices<'a>(std::slice::Iter<'a, u8>);

impl Choices<'_> {
    fn pick(&mut self, n: u8) -> u8 {
        self.0.next().copied().unwrap_or(0) % n
    }
}

fn percent(bytes: &[u8], choices: &mut Choices<'_>) -> String {
    let mut out = String::new();
    for &b in bytes {
        if choices.pick(2) == 0 {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// URL-encoded as some encoder would: unreserved characters and `/` raw or
/// encoded, spaces as `%20` or (for the whole value) `+`, the rest `%XX` in
/// either case.
fn url_form(value: &str, choices: &mut Choices<'_>) -> String {
    let plus = choices.pick(2) == 0;
    let mut out = String::new();
    for c in value.chars() {
        let mut utf8 = [0u8; 4];
        let bytes = c.encode_utf8(&mut utf8).as_bytes();
        let keepable = c.is_ascii_alphanumeric() || "-_.~/".contains(c);
        if c == ' ' && plus {
            out.push('+');
        } else if keepable && choices.pick(2) == 0 {
            out.push(c);
        } else {
            out.push_str(&percent(bytes, choices));
        }
    }
    out
}

/// A JSON string's content as some encoder would write it: `\"` and `\\`
/// always, `\/` or `/`, and `\uXXXX` or raw for what encoders escape by
/// choice (non-ASCII, `<>&'`).
fn json_form(value: &str, choices: &mut Choices<'_>) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if choices.pick(2) == 0 => out.push_str("\\/"),
            c if (!c.is_ascii() || "<>&'".contains(c)) && choices.pick(2) == 0 => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    if choices.pick(2) == 0 {
                        out.push_str(&format!("\\u{unit:04x}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// HTML-escaped: `<>&"'` always as references, anything else as one by choice.
fn html_form(value: &str, choices: &mut Choices<'_>) -> String {
    let mut out = String::new();
    for c in value.chars() {
        let named = match c {
            '&' => Some("&amp;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            '"' => Some("&quot;"),
            '\'' => Some("&apos;"),
            _ => None,
        };
        let must = named.is_some();
        match choices.pick(if must { 3 } else { 4 }) {
            0 => out.push_str(&format!("&#{};", c as u32)),
            1 => out.push_str(&format!("&#x{:X};", c as u32)),
            2 if must => out.push_str(named.unwrap_or_default()),
            _ => out.push(c),
        }
    }
    out
}

/// One form of `value`, chosen by `kind`.
fn encode(value: &str, kind: u8, choices: &mut Choices<'_>) -> String {
    match kind {
        0 => value.to_string(),
        1 => hex(value.as_bytes()),
        2 => hex(value.as_bytes()).to_uppercase(),
        3 | 4 => {
            let mut blob = b"xyz"[..usize::from(choices.pick(3))].to_vec();
            blob.extend_from_slice(value.as_bytes());
            blob.extend_from_slice(&b"!?"[..usize::from(choices.pick(2))]);
            if kind == 3 {
                STANDARD.encode(blob)
            } else {
                URL_SAFE.encode(blob)
            }
        }
        5 => url_form(value, choices),
        6 => json_form(value, choices),
        7 => {
            let once = json_form(value, choices);
            json_form(&format!("{{\"v\":\"{once}\"}}"), choices)
        }
        _ => html_form(value, choices),
    }
}

const COLOURS: &[&str] = &[
    "\x1b[01;31m\x1b[K",
    "\x1b[m\x1b[K",
    "\x1b[0m",
    "\x1b[1;32m",
    "\x1b[38;5;208m",
];

/// Indentation a tool adds after each line break (`sed 's/^/  /'`, YAML
/// blocks, `git log` bodies).
const INDENTS: &[&str] = &["", "  ", "    ", "\t"];

/// `form` with a line break every `every` bytes, indented, and colour
/// codes at some places.
fn disturb(
    form: &str,
    every: usize,
    crlf: bool,
    indent: &str,
    colours: &[(usize, usize)],
) -> Vec<u8> {
    let bytes = form.as_bytes();
    let mut out = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        for &(at, which) in colours {
            if at % (bytes.len() + 1) == i {
                out.extend_from_slice(COLOURS[which % COLOURS.len()].as_bytes());
            }
        }
        if every > 0 && i > 0 && i % every == 0 {
            out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            out.extend_from_slice(indent.as_bytes());
        }
        out.push(b);
    }
    out
}

/// Log lines that hold no secret, with the characters decoding looks at.
const FILLER: &[&str] = &[
    "",
    " ",
    "\n",
    "ok ",
    "GET /a?x=1&y=%20z 200\n",
    "\x1b[32mPASS\x1b[0m ",
    "{\"k\":\"v\\n\"} ",
    "100% done\r\n",
    "a &amp; b ",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// Values in every form, wrapped (and indented) and coloured, in
    /// filler, cut anywhere:
    /// no form survives, and the output does not depend on the cuts.
    #[test]
    fn no_form_survives_wraps_colours_or_chunking(
        values in prop::collection::vec(value(), 1..4),
        pieces in prop::collection::vec(
            (0usize..FILLER.len(), any::<prop::sample::Index>(), 0u8..9, 0usize..24, any::<bool>(),
             0usize..INDENTS.len(), prop::collection::vec((0usize..200, 0usize..8), 0..4)),
            1..5),
        choices in prop::collection::vec(any::<u8>(), 200),
        cuts in prop::collection::vec(0usize..2000, 0..12),
    ) {
        let secrets: Vec<SecretValue> = values.iter().map(|v| SecretValue::from(v.as_str())).collect();
        let r = Redactor::new(&secrets).unwrap();
        let mut choices = Choices(choices.iter());
        let mut input = Vec::new();
        let mut inserted = Vec::new();
        for (filler, which, kind, every, crlf, indent, colours) in &pieces {
            input.extend_from_slice(FILLER[*filler].as_bytes());
            let value = &values[which.index(values.len())];
            let form = encode(value, *kind, &mut choices);
            let every = if *every < 4 { 0 } else { *every };
            let disturbed = disturb(&form, every, *crlf, INDENTS[*indent], colours);
            // The premise, checked against the encoders above rather than
            // the decoder: the disturbed form reads as what was encoded.
            let decoded = smithers_secrets::canonical(&disturbed);
            let plain = |s: &str| smithers_secrets::canonical(s.as_bytes());
            let expected = match kind {
                1..=4 => vec![form.as_bytes().to_vec()],
                5 => vec![plain(value), plain(&value.replace(' ', "+"))],
                _ => vec![plain(value)],
            };
            // A line break deletes the spaces after it (indentation), so a
            // break just before a space of the value takes that space away.
            let unblank = |bytes: &[u8]| -> Vec<u8> {
                bytes.iter().copied().filter(|&b| b != b' ' && b != b'\t').collect()
            };
            let reads_as_value = expected.iter().any(|e| contains(&decoded, e) || e.is_empty()
                || (every > 0 && contains(&unblank(&decoded), &unblank(e))));
            // Unless the spaces taken away joined escape syntax of the value
            // itself into a token (`%0` wrapped before ` a` reads `%0a`).
            let joined_syntax = every > 0
                && value.contains([' ', '\t'])
                && value.contains(['%', '&', '\\']);
            prop_assert!(
                reads_as_value || joined_syntax,
                "{:?} reads as {:?}", String::from_utf8_lossy(&disturbed), String::from_utf8_lossy(&decoded)
            );
            input.extend_from_slice(&disturbed);
            input.extend_from_slice(b" ");
            // A value that decodes to fewer than 6 bytes is masked only as
            // written (its decoding would match too much innocent text); a
            // line break before it takes its leading spaces.
            // (Kind 7 wraps the value in `{"v":"…"}`.)
            let wrapper = if *kind == 7 { 8 } else { 0 };
            let after_break = smithers_secrets::canonical(&[b"\n", &disturbed[..]].concat());
            if reads_as_value
                && !joined_syntax
                && expected.iter().all(|e| e.len() >= 6)
                && after_break.len().saturating_sub(wrapper) >= 6
            {
                inserted.push(disturbed);
            }
        }
        let mut cuts = cuts;
        cuts.sort_unstable();
        let whole = r.redact(&input);
        let mut out = Vec::new();
        let mut stream = r.stream();
        let mut at = 0;
        for cut in cuts {
            let cut = cut.min(input.len()).max(at);
            stream.push(&input[at..cut], &mut out);
            prop_assert!(stream.held() <= r.max_held());
            at = cut;
        }
        stream.push(&input[at..], &mut out);
        stream.finish(&mut out);
        prop_assert_eq!(&out, &whole, "the output does not depend on chunking");
        let shown = String::from_utf8_lossy(&out);
        for piece in &inserted {
            prop_assert!(!contains(&out, piece), "{:?} survived in {:?}", String::from_utf8_lossy(piece), shown);
        }
        let decoded = smithers_secrets::canonical(&out);
        for value in &values {
            for form in forms(value.as_bytes()) {
                prop_assert!(!contains(&out, &form), "{:?} survived in {:?}", String::from_utf8_lossy(&form), shown);
            }
            let canonical = smithers_secrets::canonical(value.as_bytes());
            prop_assert!(
                canonical.len() < 6 || !contains(&decoded, &canonical),
                "{:?} survived decoded in {:?}", String::from_utf8_lossy(&canonical), shown
            );
        }
    }

    /// A value dumped in each tool's layout among other bytes, cut
    /// anywhere: masked from its first hex digit to the end of its last
    /// line (ASCII column included), the output the same for every cut
    /// and what is held back under the bound; with colour codes and line
    /// breaks in the dump (a hostile layout), still the same for every cut
    /// and under the bound.
    #[test]
    fn dumps_are_masked_whatever_the_layout(
        value in value(),
        before in prop::collection::vec(any::<u8>(), 0..40),
        after in prop::collection::vec(any::<u8>(), 0..20),
        format in 0u8..7,
        hostile in any::<bool>(),
        colours in prop::collection::vec((0usize..2000, 0usize..8), 0..6),
        every in 0usize..40,
        cuts in prop::collection::vec(0usize..3000, 0..10),
    ) {
        let r = redactor(&[value.as_str()]);
        let bytes = [&before[..], value.as_bytes(), &after[..]].concat();
        let d = dump(&bytes, format);
        let first = before.len();
        let last = first + value.len() - 1;
        let input = if hostile {
            disturb(&d.text, every, false, "", &colours)
        } else {
            d.text.clone().into_bytes()
        };
        let whole = r.redact(&input);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut stream = r.stream();
        let mut at = 0;
        for cut in cuts {
            let cut = cut.min(input.len()).max(at);
            stream.push(&input[at..cut], &mut out);
            prop_assert!(stream.held() <= r.max_held(), "{} > {}", stream.held(), r.max_held());
            at = cut;
        }
        stream.push(&input[at..], &mut out);
        stream.finish(&mut out);
        prop_assert_eq!(&out, &whole);
        // What a dump cannot show unambiguously: an ASCII column holding
        // escape syntax (read as what it decodes to) or, in xxd's layout,
        // reading as more groups to the end of its line (`dead beef`).
        let ambiguous = d.columns.iter().any(|c| {
            c.contains(['\\', '%', '&', '\''])
                || (format == 3
                    && c.split([' ', ':', ',', '-']).all(|t| {
                        t.is_empty() || (t.len() % 2 == 0 && t.len() <= 8 && t.bytes().all(|b| b.is_ascii_hexdigit()))
                    }))
        });
        if !hostile && !ambiguous {
            let start = d.digit_at[first];
            let end = d.mask_end[last];
            let breaks = d.text[start..end].matches('\n').count();
            let expected = format!("{}***{}{}", &d.text[..start], "\n".repeat(breaks), &d.text[end..]);
            prop_assert_eq!(String::from_utf8_lossy(&out), expected);
        }
    }

    /// Long output in long chunks (a stream reads most of a chunk where it
    /// lies, joining only its start with what it holds): values in their
    /// forms, wrapped and coloured, and dumped, among long runs of filler,
    /// cut anywhere; the output is the same for every cut, what is held
    /// back stays under the bound and no literal form survives.
    #[test]
    fn long_chunks_give_the_same_output(
        values in prop::collection::vec(value(), 1..3),
        pieces in prop::collection::vec(
            (0usize..FILLER.len(), 0usize..6000, any::<prop::sample::Index>(), 0u8..10, 0usize..24,
             prop::collection::vec((0usize..200, 0usize..8), 0..3)),
            1..8),
        choices in prop::collection::vec(any::<u8>(), 200),
        cuts in prop::collection::vec(0usize..48000, 0..8),
    ) {
        let secrets: Vec<SecretValue> = values.iter().map(|v| SecretValue::from(v.as_str())).collect();
        let r = Redactor::new(&secrets).unwrap();
        let mut choices = Choices(choices.iter());
        let mut input = Vec::new();
        for (filler, length, which, kind, every, colours) in &pieces {
            let filler = FILLER[*filler].as_bytes();
            // `length` bytes of it (a whole number of fillers).
            let until = input.len() + length;
            while !filler.is_empty() && input.len() < until {
                input.extend_from_slice(filler);
            }
            let value = &values[which.index(values.len())];
            let form = if *kind == 9 {
                dump(value.as_bytes(), choices.pick(7)).text
            } else {
                encode(value, *kind, &mut choices)
            };
            let every = if *every < 4 { 0 } else { *every };
            input.extend_from_slice(&disturb(&form, every, false, "", colours));
            input.extend_from_slice(b" ");
        }
        let whole = r.redact(&input);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut stream = r.stream();
        let mut at = 0;
        for cut in cuts {
            let cut = cut.min(input.len()).max(at);
            stream.push(&input[at..cut], &mut out);
            prop_assert!(stream.held() <= r.max_held(), "{} > {}", stream.held(), r.max_held());
            at = cut;
        }
        stream.push(&input[at..], &mut out);
        stream.finish(&mut out);
        prop_assert_eq!(&out, &whole, "the output does not depend on chunking");
        for value in &values {
            for form in forms(value.as_bytes()) {
                prop_assert!(!contains(&out, &form), "{:?} survived", String::from_utf8_lossy(&form));
            }
        }
    }

    /// Text without a secret passes unchanged, whatever decoding sees in it.
    #[test]
    fn text_without_secrets_passes_unchanged(
        secrets in prop::collection::vec("[a-z0-9_-]{6,24}", 0..5),
        text in prop::collection::vec(prop::sample::select(b" .,:!()\n\r%&#;\\\x1b[]m0123456789abcdefx\x07\"/<>".to_vec()), 0..300),
        cuts in prop::collection::vec(0usize..300, 0..8),
    ) {
        let values: Vec<SecretValue> = secrets.iter().map(|s| SecretValue::from(s.as_str())).collect();
        let r = Redactor::new(&values).unwrap();
        let mut cuts = cuts;
        cuts.sort_unstable();
        prop_assert_eq!(chunked(&r, &text, &cuts), text);
    }

    /// Any bytes, any secrets, any cuts: no panic, what is held back stays
    /// under the bound, the output does not depend on the cuts, and no
    /// literal form survives.
    #[test]
    fn any_input_is_handled_within_bounds(
        secrets in prop::collection::vec(prop::collection::vec(prop::sample::select(b"ab%&\\;#xu0125n\x1b[m]\x07\r\n '\".:".to_vec()), 0..24), 0..4),
        pieces in prop::collection::vec((
            prop::collection::vec(prop_oneof![
                any::<u8>(),
                prop::sample::select(b"ab%&\\;#xu0125n\x1b[m]P\x07\r\n '\".:,-\t\xe2\x80\xa6".to_vec()),
            ], 0..40),
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
        ), 0..16),
        cuts in prop::collection::vec(0usize..800, 0..16),
    ) {
        let values: Vec<SecretValue> = secrets.into_iter().map(SecretValue::new).collect();
        let r = Redactor::new(&values).unwrap();
        // Random bytes, each run followed by some literal form of a value.
        let mut text = Vec::new();
        for (bytes, which, form) in &pieces {
            text.extend_from_slice(bytes);
            if !values.is_empty() {
                let f = forms(values[which.index(values.len())].expose());
                if !f.is_empty() {
                    text.extend_from_slice(&f[form.index(f.len())]);
                }
            }
        }
        let whole = r.redact(&text);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut stream = r.stream();
        let mut at = 0;
        for cut in cuts {
            let cut = cut.min(text.len()).max(at);
            stream.push(&text[at..cut], &mut out);
            prop_assert!(stream.held() <= r.max_held(), "{} > {}", stream.held(), r.max_held());
            at = cut;
        }
        stream.push(&text[at..], &mut out);
        stream.finish(&mut out);
        prop_assert_eq!(&out, &whole);
        // A form written out byte for byte never survives, whatever
        // surrounds it (a mask ends with `*`, so forms with `*` are left out).
        for value in &values {
            if value.len() < 6 {
                continue;
            }
            for form in forms(value.expose()) {
                prop_assert!(
                    form.contains(&b'*') || !contains(&out, &form),
                    "{:?} survived in {:?}", String::from_utf8_lossy(&form), String::from_utf8_lossy(&out)
                );
            }
        }
    }
}
