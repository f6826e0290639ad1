//! A multi-pattern index for thousands of patterns: every pattern is
//! filed under its first `width` bytes (its "window", at most 8, so a
//! window is one `u64`); a bit filter over hashed windows rules out almost
//! every input position with one load, one multiply and one bit test, and
//! the few that pass are confirmed by comparing whole patterns.
//!
//! Aho-Corasick's fast automata do not fit thousands of patterns (the
//! crate falls back to a slower NFA); this index keeps the per-byte cost
//! flat in the number of patterns.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// log2 of the filter's size in bits: 2^20 bits = 128 KiB, a few hundred
/// bits per pattern at ten thousand patterns (about 1% false positives).
const FILTER_BITS: u32 = 20;

#[derive(Debug)]
pub(crate) struct WindowIndex {
    width: usize,
    mask: u64,
    filter: Vec<u64>,
    /// Window → indexes into `patterns`, longest pattern first.
    buckets: HashMap<u64, Vec<usize>, BuildHasherDefault<WindowHasher>>,
    patterns: Vec<Vec<u8>>,
}

/// Hashes a window with one multiply: the keys are filled in from the
/// patterns, never from the output, so a keyed hash buys nothing, and the
/// default one costs more than the rest of a filter hit.
#[derive(Default)]
struct WindowHasher(u64);

impl Hasher for WindowHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let h = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }
}

fn slot(key: u64) -> usize {
    // Fibonacci hashing: the top bits of the product mix every input byte.
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FILTER_BITS)) as usize
}

/// The eight bytes at `at` as a little-endian number; `at + 8 <= data.len()`.
#[inline(always)]
fn load(data: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(word)
}

impl WindowIndex {
    /// Indexes `patterns`; `None` if there are none or one is empty.
    pub(crate) fn new(patterns: Vec<Vec<u8>>) -> Option<WindowIndex> {
        let width = patterns.iter().map(Vec::len).min()?.min(8);
        if width == 0 {
            return None;
        }
        let mask = if width == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * width)) - 1
        };
        let mut index = WindowIndex {
            width,
            mask,
            filter: vec![0; (1usize << FILTER_BITS) / 64],
            buckets: HashMap::default(),
            patterns: Vec::new(),
        };
        let mut order: Vec<usize> = (0..patterns.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(patterns[i].len()));
        for &i in &order {
            let key = index.key_of(&patterns[i], 0);
            let s = slot(key);
            index.filter[s / 64] |= 1 << (s % 64);
            index.buckets.entry(key).or_default().push(i);
        }
        index.patterns = patterns;
        Some(index)
    }

    /// The `width` bytes at `at` as a number; `at + width <= data.len()`.
    #[inline(always)]
    fn key_of(&self, data: &[u8], at: usize) -> u64 {
        match data.get(at..at + 8) {
            Some(eight) => {
                let mut word = [0u8; 8];
                word.copy_from_slice(eight);
                u64::from_le_bytes(word) & self.mask
            }
            None => {
                let mut word = [0u8; 8];
                let end = (at + self.width).min(data.len());
                word[..end - at].copy_from_slice(&data[at..end]);
                u64::from_le_bytes(word) & self.mask
            }
        }
    }

    /// The leftmost pattern occurrence in `data` starting in `from..before`,
    /// the longest one at that start: `(start, end)`.
    pub(crate) fn find(&self, data: &[u8], from: usize, before: usize) -> Option<(usize, usize)> {
        let last = data.len().checked_sub(self.width)?;
        let stop = before.min(last + 1);
        let filter = &self.filter[..];
        let mut at = from;
        // Where eight bytes can be read: one unaligned load per position,
        // no bounds to juggle, four positions per turn so the loads and
        // filter probes of neighbours overlap.
        let wide = stop.saturating_sub(3).min(data.len().saturating_sub(7 + 3));
        while at < wide {
            let mut hits = 0u32;
            for k in 0..4 {
                let key = load(data, at + k) & self.mask;
                let s = slot(key);
                hits |= (((filter[s >> 6] >> (s & 63)) & 1) as u32) << k;
            }
            while hits != 0 {
                let k = hits.trailing_zeros() as usize;
                let key = load(data, at + k) & self.mask;
                if let Some(found) = self.confirm(data, at + k, key) {
                    return Some(found);
                }
                hits &= hits - 1;
            }
            at += 4;
        }
        while at < stop {
            if let Some(found) = self.match_at(data, at) {
                return Some(found);
            }
            at += 1;
        }
        None
    }

    /// The longest pattern starting exactly at `at`: its end.
    pub(crate) fn longest_at(&self, data: &[u8], at: usize) -> Option<usize> {
        if at + self.width > data.len() {
            return None;
        }
        self.match_at(data, at).map(|(_, end)| end)
    }

    #[inline]
    fn match_at(&self, data: &[u8], at: usize) -> Option<(usize, usize)> {
        let key = self.key_of(data, at);
        let s = slot(key);
        if self.filter[s >> 6] & (1 << (s & 63)) != 0 {
            self.confirm(data, at, key)
        } else {
            None
        }
    }

    /// The longest pattern filed under `key` that `data` holds at `at`.
    #[cold]
    fn confirm(&self, data: &[u8], at: usize, key: u64) -> Option<(usize, usize)> {
        let ids = self.buckets.get(&key)?;
        let rest = &data[at..];
        let id = ids
            .iter()
            .find(|&&id| rest.starts_with(&self.patterns[id]))?;
        Some((at, at + self.patterns[*id].len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_leftmost_then_longest() {
        let index = WindowIndex::new(vec![
            b"secret".to_vec(),
            b"secret-longer".to_vec(),
            b"cretin".to_vec(),
        ])
        .unwrap();
        let text = b"a secret-longer and a cretin";
        assert_eq!(index.find(text, 0, text.len()), Some((2, 15)));
        assert_eq!(index.find(text, 3, text.len()), Some((22, 28)));
        assert_eq!(index.find(text, 3, 22), None);
        assert_eq!(index.find(b"secre", 0, 5), None);
        assert_eq!(index.find(b"", 0, 0), None);
        assert!(WindowIndex::new(Vec::new()).is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Same matches as Aho-Corasick's leftmost-longest search, over a
        /// small alphabet so that patterns overlap and share windows.
        #[test]
        fn agrees_with_aho_corasick(
            patterns in proptest::collection::vec(proptest::collection::vec(b'a'..=b'd', 6..14), 1..12),
            text in proptest::collection::vec(b'a'..=b'd', 0..200),
        ) {
            let ac = aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&patterns)
                .unwrap();
            let index = WindowIndex::new(patterns.clone()).unwrap();
            let mut pos = 0;
            loop {
                let expected = ac.find(&text[pos..]).map(|m| (pos + m.start(), pos + m.end()));
                let got = index.find(&text, pos, text.len());
                proptest::prop_assert_eq!(got, expected);
                match got {
                    Some((_, end)) => pos = end,
                    None => break,
                }
            }
        }
    }
}
