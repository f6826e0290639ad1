//! Values cut short by the tool that prints them: `strace` shows the first
//! 32 bytes of a buffer then `"...`, a table ends a long cell with `…`.
//!
//! The start of a value is masked, with the marker, where the canonical
//! decoding holds at least [`MIN_TRUNCATED`] bytes that begin the value and
//! make at least half of it, right before `...` or `…` (possibly after a
//! closing `"` or `'`). Both bounds keep ordinary text safe: a prefix that
//! long is the value's own, and a marker must follow it. Shorter cuts are
//! not masked.
//!
//! Searched from the markers, which are rare in output: at each, the text
//! before it is looked up by its first [`MIN_TRUNCATED`] bytes for every
//! length a prefix could have.

use std::collections::HashMap;

/// The fewest bytes of a value's start that are masked before a marker.
pub(crate) const MIN_TRUNCATED: usize = 16;

/// What a tool writes where it cut a value.
const MARKERS: &[&[u8]] = &[b"...", "\u{2026}".as_bytes()];

/// What may close a quoted value before the marker (`strace` writes `"...`).
const QUOTES: &[u8] = b"\"'";

/// The values whose start is masked before a marker.
#[derive(Debug)]
pub(crate) struct Truncated {
    /// Value indexes by their first [`MIN_TRUNCATED`] bytes.
    by_start: HashMap<[u8; MIN_TRUNCATED], Vec<usize>>,
    /// Canonical decodings, each longer than [`MIN_TRUNCATED`].
    values: Vec<Vec<u8>>,
    longest: usize,
}

impl Truncated {
    /// For the canonical decodings of values; `None` if none is long enough.
    pub(crate) fn new(values: Vec<Vec<u8>>) -> Option<Truncated> {
        let values: Vec<Vec<u8>> = values
            .into_iter()
            .filter(|v| v.len() > MIN_TRUNCATED)
            .collect();
        let mut by_start: HashMap<[u8; MIN_TRUNCATED], Vec<usize>> = HashMap::new();
        for (i, value) in values.iter().enumerate() {
            let mut key = [0u8; MIN_TRUNCATED];
            key.copy_from_slice(&value[..MIN_TRUNCATED]);
            by_start.entry(key).or_default().push(i);
        }
        let longest = values.iter().map(Vec::len).max()?;
        Some(Truncated {
            by_start,
            values,
            longest,
        })
    }

    /// The longest value's length.
    pub(crate) fn longest(&self) -> usize {
        self.longest
    }

    /// The earliest `start` in `from..end` such that `bytes[start..end]`
    /// begins a value, is [`MIN_TRUNCATED`] bytes or more, at least half of
    /// it and not all of it.
    fn start_before(&self, bytes: &[u8], end: usize, from: usize) -> Option<usize> {
        let most = (self.longest - 1).min(end.saturating_sub(from));
        (MIN_TRUNCATED..=most).rev().find_map(|len| {
            let start = end - len;
            let mut key = [0u8; MIN_TRUNCATED];
            key.copy_from_slice(&bytes[start..start + MIN_TRUNCATED]);
            let ids = self.by_start.get(&key)?;
            ids.iter()
                .any(|&id| {
                    let value = &self.values[id];
                    len < value.len() && 2 * len >= value.len() && value[..len] == bytes[start..end]
                })
                .then_some(start)
        })
    }

    /// The cut value before the marker at `at`, if any: its start.
    fn before_marker(&self, bytes: &[u8], at: usize, from: usize) -> Option<usize> {
        let plain = self.start_before(bytes, at, from);
        let quoted = (at > 0 && QUOTES.contains(&bytes[at - 1]))
            .then(|| self.start_before(bytes, at - 1, from))
            .flatten();
        plain.into_iter().chain(quoted).min()
    }

    /// The first cut value, with its marker, starting at or after `from`
    /// in `bytes` (a canonical decoding): `(start, end)`.
    pub(crate) fn find(&self, bytes: &[u8], from: usize) -> Option<(usize, usize)> {
        let mut at = from + MIN_TRUNCATED;
        while at < bytes.len() {
            let (marker, len) = next_marker(bytes, at)?;
            if let Some(start) = self.before_marker(bytes, marker, from) {
                return Some((start, marker + len));
            }
            at = marker + 1;
        }
        None
    }

    /// Where a tail of `bytes` that is a cut value followed by the
    /// beginning of a marker starts (more input may complete the marker);
    /// `None` if there is none.
    pub(crate) fn hold(&self, bytes: &[u8], from: usize) -> Option<usize> {
        let n = bytes.len();
        let mut earliest: Option<usize> = None;
        for marker in MARKERS {
            for len in 0..marker.len() {
                if !bytes.ends_with(&marker[..len]) {
                    continue;
                }
                let at = n - len;
                // A bare prefix (`len == 0`) waits only for a quote: without
                // one it is held as the beginning of the value itself.
                let found = if len == 0 {
                    (at > 0 && QUOTES.contains(&bytes[at - 1]))
                        .then(|| self.start_before(bytes, at - 1, from))
                        .flatten()
                } else {
                    self.before_marker(bytes, at, from)
                };
                if let Some(start) = found {
                    earliest = Some(earliest.map_or(start, |e| e.min(start)));
                }
            }
        }
        earliest
    }
}

/// The first marker at or after `at`: its place and length.
fn next_marker(bytes: &[u8], mut at: usize) -> Option<(usize, usize)> {
    loop {
        at = next_start(bytes, at);
        if at >= bytes.len() {
            return None;
        }
        if let Some(marker) = MARKERS.iter().find(|m| bytes[at..].starts_with(m)) {
            return Some((at, marker.len()));
        }
        at += 1;
    }
}

/// The first `..` or 0xE2 (how a marker begins) at or after `at`;
/// `bytes.len()` if none. Sixty-four bytes at a time, written as
/// comparisons over arrays, which the compiler turns into vector compares,
/// and tested at once (the byte-by-byte search then finds the place in
/// them): most output holds no marker, and this pass reads all of it.
fn next_start(bytes: &[u8], mut at: usize) -> usize {
    // Each block of sixteen reads one byte past its end, for a pair
    // across two.
    while let Some(window) = bytes.get(at..at + 65) {
        let mut w = [0u8; 65];
        w.copy_from_slice(window);
        let (a, b) = (marker_starts(&w, 0), marker_starts(&w, 16));
        let (c, d) = (marker_starts(&w, 32), marker_starts(&w, 48));
        let mut any = [0u8; 16];
        for i in 0..16 {
            any[i] = a[i] | b[i] | c[i] | d[i];
        }
        if u128::from_le_bytes(any) != 0 {
            break;
        }
        at += 64;
    }
    let rest = bytes.get(at..).unwrap_or_default();
    at + (0..rest.len())
        .find(|&i| rest[i] == 0xe2 || rest[i..].starts_with(b".."))
        .unwrap_or(rest.len())
}

/// For each of the sixteen bytes of `w` from `at`, 0xFF if it begins `..`
/// or is 0xE2, else 0.
#[inline(always)]
fn marker_starts(w: &[u8; 65], at: usize) -> [u8; 16] {
    let mut hits = [0u8; 16];
    for i in 0..16 {
        let (this, next) = (w[at + i], w[at + i + 1]);
        let hit = (this == b'.') & (next == b'.') | (this == 0xe2);
        hits[i] = if hit { 0xff } else { 0 };
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOK: &[u8] = b"ghp_Q7x/Lm9+Zt2&Rw8=Kd4vNc6bYf1sHj3";

    fn truncated() -> Truncated {
        Truncated::new(vec![TOK.to_vec(), b"short-value".to_vec()]).unwrap()
    }

    #[test]
    fn a_long_enough_start_before_a_marker() {
        let t = truncated();
        let strace = b"write(1, \"ghp_Q7x/Lm9+Zt2&Rw8=Kd4vNc6bYf1s\"..., 35) = 35";
        assert_eq!(t.find(strace, 0), Some((10, 46)));
        let table = "| ghp_Q7x/Lm9+Zt2&Rw\u{2026} |";
        assert_eq!(t.find(table.as_bytes(), 0), Some((2, 23)));
        assert_eq!(
            t.find(b"ghp_Q7x/Lm9+Zt2&Rw8=Kd4vNc6bYf1sHj3...", 0),
            None,
            "whole"
        );
        assert_eq!(t.find(b"ghp_Q7x/Lm9+Zt2&...", 0), None, "under half");
        assert_eq!(
            t.find(b"ghp_Q7x/Lm9+Zt2&Rw8=Kd4v and more...", 0),
            None,
            "no marker after"
        );
        assert_eq!(t.find(b"loading... done...", 0), None);
    }

    #[test]
    fn markers_are_found_wherever_they_fall() {
        for at in 0..40 {
            // Single dots before it, but not right before it.
            let mut line = b"a.b".repeat(at)[..at].to_vec();
            if let Some(last) = line.last_mut() {
                *last = b'c';
            }
            line.extend_from_slice(b"..x.y.z and more text after it");
            assert_eq!(next_start(&line, 0), at, "a pair at {at}");
            line[at] = 0xe2;
            assert_eq!(next_start(&line, 0), at, "an ellipsis at {at}");
        }
        assert_eq!(next_start(b"v1.0.219 main.rs a.b", 0), 20);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// The block search finds what a byte-by-byte one finds, wherever
        /// the blocks fall.
        #[test]
        fn the_block_search_agrees_with_a_byte_search(
            bytes in proptest::collection::vec(proptest::sample::select(b"..a\xe2\x80 ".to_vec()), 0..120),
            from in 0usize..120,
        ) {
            let from = from.min(bytes.len());
            let expected = (from..bytes.len())
                .find(|&i| bytes[i] == 0xe2 || bytes[i..].starts_with(b".."))
                .unwrap_or(bytes.len());
            proptest::prop_assert_eq!(next_start(&bytes, from), expected);
        }
    }

    #[test]
    fn a_start_waiting_for_its_marker_is_held() {
        let t = truncated();
        let start = b"x \"ghp_Q7x/Lm9+Zt2&Rw8=Kd4vNc6bYf1s";
        assert_eq!(t.hold(&[&start[..], b"\""].concat(), 0), Some(3));
        assert_eq!(t.hold(&[&start[..], b"\".."].concat(), 0), Some(3));
        assert_eq!(t.hold(&[&start[..], b"\xe2\x80"].concat(), 0), Some(3));
        assert_eq!(t.hold(&[&start[..], b"\"x"].concat(), 0), None);
        assert_eq!(t.hold(start, 0), None, "held as the value's own start");
    }
}
