//! A multi-pattern index for tens of thousands of patterns.
//!
//! Every pattern is filed under its first `width` bytes (its "window", at
//! most 8, so a window is one `u64`); a bit filter over hashed windows
//! rules out almost every start position with one load, one multiply and
//! one bit test, and the few that pass are confirmed by comparing whole
//! patterns.
//!
//! When every pattern is longer than its window, not every position needs
//! that test: with the shortest pattern `m` bytes long, the 4-byte grams at
//! offsets `0..stride` (`stride = m - 3`, at most 8) of every pattern go
//! into a second filter, and only one position per `stride` is looked at.
//! An occurrence starting anywhere in a block of `stride` positions covers
//! the block's last position with one of those grams, so a block whose last
//! gram is not in the filter holds no start; the others are checked
//! position by position. (This is q-gram sampling, as in Wu–Manber.)
//!
//! Aho-Corasick's fast automata do not fit thousands of patterns (the
//! crate falls back to a slower NFA); this index keeps the per-byte cost
//! flat in the number of patterns.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// log2 of the window filter's size in bits: 2^20 bits = 128 KiB, about
/// fifty bits per pattern at twenty thousand patterns.
const FILTER_BITS: u32 = 20;

/// The most positions one sample stands for.
const MAX_STRIDE: usize = 8;

#[derive(Debug)]
pub(crate) struct WindowIndex {
    width: usize,
    mask: u64,
    filter: Vec<u64>,
    /// One position in `stride` is sampled (1: every position is tested).
    stride: usize,
    /// log2 of `grams`' size in bits.
    gram_bits: u32,
    /// The 4-byte grams at offsets `0..stride` of every pattern.
    grams: Vec<u64>,
    /// Window → indexes into `patterns`, longest pattern first.
    buckets: HashMap<u64, Vec<usize>, BuildHasherDefault<WindowHasher>>,
    patterns: Vec<Vec<u8>>,
    /// Indexes into `patterns`, in byte order: is a tail some pattern's start?
    sorted: Vec<usize>,
    /// The first eight bytes of each pattern of `sorted` (zero after a
    /// shorter one's end), big-endian: their order is the patterns' order
    /// but for ties, so a search in byte order reads the patterns
    /// themselves only where these are equal.
    sorted_keys: Vec<u64>,
    /// Which pairs of bytes begin a pattern: a check that stays in the
    /// first-level cache, before an anchored lookup probes the filter.
    pairs: Vec<u64>,
    longest: usize,
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

/// Fibonacci hashing: the top `bits` bits of the product mix every input byte.
#[inline(always)]
fn hash(key: u64, bits: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

#[inline(always)]
fn test(filter: &[u64], s: usize) -> bool {
    filter[s >> 6] & (1 << (s & 63)) != 0
}

fn set(filter: &mut [u64], s: usize) {
    filter[s >> 6] |= 1 << (s & 63);
}

fn pair(a: u8, b: u8) -> usize {
    usize::from(a) << 8 | usize::from(b)
}

/// The eight bytes at `at` as a little-endian number; `at + 8 <= data.len()`.
#[inline(always)]
fn load(data: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The first eight bytes of `bytes` as a big-endian number, zero after
/// its end if it is shorter: numbers compare as the bytes do.
fn prefix_key(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(word)
}

/// The four bytes at `at`; `at + 4 <= data.len()`.
#[inline(always)]
fn gram(data: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&data[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

impl WindowIndex {
    /// Indexes `patterns`; `None` if there are none or one is empty.
    pub(crate) fn new(patterns: Vec<Vec<u8>>) -> Option<WindowIndex> {
        let shortest = patterns.iter().map(Vec::len).min()?;
        let width = shortest.min(8);
        if width == 0 {
            return None;
        }
        let mask = if width == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * width)) - 1
        };
        let stride = shortest.saturating_sub(3).clamp(1, MAX_STRIDE);
        // About sixteen bits per gram: a few percent of false positives.
        let grams = if stride > 1 {
            patterns.len() * stride * 16
        } else {
            0
        };
        let gram_bits = grams.next_power_of_two().trailing_zeros().clamp(12, 23);
        let mut order: Vec<usize> = (0..patterns.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(patterns[i].len()));
        let mut index = WindowIndex {
            width,
            mask,
            filter: vec![0; (1usize << FILTER_BITS) / 64],
            stride,
            gram_bits,
            grams: vec![
                0;
                if stride > 1 {
                    (1usize << gram_bits) / 64
                } else {
                    0
                }
            ],
            buckets: HashMap::default(),
            patterns: Vec::new(),
            sorted: Vec::new(),
            sorted_keys: Vec::new(),
            pairs: vec![0; (1 << 16) / 64],
            longest: patterns.iter().map(Vec::len).max().unwrap_or(0),
        };
        for &i in &order {
            let pattern = &patterns[i];
            let key = index.key_of(pattern, 0);
            set(&mut index.filter, hash(key, FILTER_BITS));
            if let [a, b, ..] = pattern[..] {
                set(&mut index.pairs, pair(a, b));
            }
            index.buckets.entry(key).or_default().push(i);
            if stride > 1 {
                for offset in 0..stride {
                    set(&mut index.grams, hash(gram(pattern, offset), gram_bits));
                }
            }
        }
        order.sort_by(|&a, &b| patterns[a].cmp(&patterns[b]));
        index.sorted_keys = order.iter().map(|&i| prefix_key(&patterns[i])).collect();
        index.sorted = order;
        index.patterns = patterns;
        Some(index)
    }

    /// The longest pattern's length.
    pub(crate) fn longest(&self) -> usize {
        self.longest
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
        let mut at = from;
        if self.stride > 1 {
            let stride = self.stride;
            // Blocks `at..at + stride`, sampled at their last position,
            // which must have four bytes to read.
            let blocks_end = stop.min((data.len() + 1).saturating_sub(4));
            while at + stride <= blocks_end {
                at = self.next_block(data, at, blocks_end);
                if at + stride > blocks_end {
                    break;
                }
                if let Some(found) = self.scan(data, at, at + stride) {
                    return Some(found);
                }
                at += stride;
            }
        }
        self.scan(data, at, stop)
    }

    /// The first block from `at` on, in steps of `stride`, ending at or
    /// before `blocks_end` (`blocks_end + 3 <= data.len()`), whose sample
    /// is in the gram filter; past the last such block if none is. A loop
    /// of its own, so that all it needs stays in registers.
    #[inline(never)]
    fn next_block(&self, data: &[u8], at: usize, blocks_end: usize) -> usize {
        let stride = self.stride;
        let grams = &self.grams[..];
        let words = grams.len().max(1) - 1;
        let shift = 64 - self.gram_bits;
        // Samples are read up to here.
        let data = &data[..blocks_end + 3];
        let mut sample = at + stride - 1;
        while let Some(four) = data.get(sample..sample + 4) {
            let gram = u32::from_le_bytes([four[0], four[1], four[2], four[3]]);
            let h = (u64::from(gram).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize;
            if grams[(h >> 6) & words] & (1 << (h & 63)) != 0 {
                break;
            }
            sample += stride;
        }
        sample + 1 - stride
    }

    /// `find`, testing every start position in `from..stop`.
    fn scan(&self, data: &[u8], from: usize, stop: usize) -> Option<(usize, usize)> {
        let filter = &self.filter[..];
        let mut at = from;
        // Where eight bytes can be read: one unaligned load per position,
        // four positions per turn so the loads and probes of neighbours
        // overlap.
        let wide = stop.saturating_sub(3).min(data.len().saturating_sub(7 + 3));
        while at < wide {
            let mut hits = 0u32;
            for k in 0..4 {
                let key = load(data, at + k) & self.mask;
                hits |= u32::from(test(filter, hash(key, FILTER_BITS))) << k;
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
    #[inline]
    pub(crate) fn longest_at(&self, data: &[u8], at: usize) -> Option<usize> {
        if at + self.width > data.len() || !test(&self.pairs, pair(data[at], data[at + 1])) {
            return None;
        }
        self.match_at(data, at).map(|(_, end)| end)
    }

    #[inline]
    fn match_at(&self, data: &[u8], at: usize) -> Option<(usize, usize)> {
        let key = self.key_of(data, at);
        if test(&self.filter, hash(key, FILTER_BITS)) {
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

    /// Whether `tail` is the beginning of some pattern (or a whole one).
    pub(crate) fn begins(&self, tail: &[u8]) -> bool {
        // A tail as long as a window begins a pattern only if its window
        // is filed, and one of two bytes or more only if its first two
        // begin one: a probe or two rule out most.
        if tail.len() >= self.width && !test(&self.filter, hash(self.key_of(tail, 0), FILTER_BITS))
        {
            return false;
        }
        if let [a, b, ..] = *tail
            && !test(&self.pairs, pair(a, b))
        {
            return false;
        }
        // The first pattern not below `tail` in byte order starts with it
        // if any does. A pattern whose first eight bytes differ from the
        // tail's is below it exactly when its key is: only a tie reads
        // the pattern.
        let key = prefix_key(tail);
        let i = self.sorted_keys.partition_point(|&k| k < key);
        let ties = self.sorted_keys[i..].partition_point(|&k| k == key);
        let j =
            i + self.sorted[i..i + ties].partition_point(|&id| self.patterns[id].as_slice() < tail);
        self.sorted
            .get(j)
            .is_some_and(|&id| self.patterns[id].starts_with(tail))
    }

    /// Where the earliest tail of `data` starting at or after `from` that
    /// begins a pattern starts; `data.len()` if none.
    pub(crate) fn hold_from(&self, data: &[u8], from: usize) -> usize {
        let earliest = data.len().saturating_sub(self.longest - 1).max(from);
        (earliest..data.len())
            .find(|&at| self.begins(&data[at..]))
            .unwrap_or(data.len())
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

    #[test]
    fn tells_which_tails_begin_a_pattern() {
        let index = WindowIndex::new(vec![b"secret".to_vec(), b"seize-it".to_vec()]).unwrap();
        assert!(index.begins(b"se"));
        assert!(index.begins(b"sec"));
        assert!(index.begins(b"secret"));
        assert!(index.begins(b"seiz"));
        assert!(!index.begins(b"secrets"));
        assert!(!index.begins(b"sea"));
        assert_eq!(index.longest_at(b"a secret", 2), Some(8));
        assert_eq!(index.longest_at(b"a secret", 1), None);
        assert_eq!(index.longest_at(b"a secre", 2), None);
        assert_eq!(index.hold_from(b"a secr", 0), 2);
        assert_eq!(index.hold_from(b"a secr", 3), 6);
        assert_eq!(index.hold_from(b"a b s", 0), 4);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Same matches as Aho-Corasick's leftmost-longest search, over a
        /// small alphabet so that patterns overlap and share windows and
        /// grams, with and without sampling.
        #[test]
        fn agrees_with_aho_corasick(
            patterns in proptest::collection::vec(proptest::collection::vec(b'a'..=b'd', 6..24), 1..12),
            text in proptest::collection::vec(b'a'..=b'd', 0..300),
            from in 0usize..300,
        ) {
            let ac = aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&patterns)
                .unwrap();
            let index = WindowIndex::new(patterns.clone()).unwrap();
            let mut pos = from.min(text.len());
            loop {
                let expected = ac.find(&text[pos..]).map(|m| (pos + m.start(), pos + m.end()));
                let got = index.find(&text, pos, text.len());
                proptest::prop_assert_eq!(got, expected);
                match got {
                    Some((_, end)) => pos = end,
                    None => break,
                }
            }
            for at in 0..text.len() {
                let expected = patterns.iter().any(|p| p.starts_with(&text[at..]));
                proptest::prop_assert_eq!(index.begins(&text[at..]), expected);
            }
        }

        /// Whether a tail begins a pattern, with zero bytes (which a short
        /// pattern's key is padded with) and patterns sharing their first
        /// eight bytes.
        #[test]
        fn tells_tails_as_a_scan_does(
            patterns in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(vec![0u8, 1, b'a']), 1..14), 1..16),
            tails in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(vec![0u8, 1, b'a']), 0..14), 1..16),
        ) {
            let index = WindowIndex::new(patterns.clone()).unwrap();
            for tail in tails {
                let expected = patterns.iter().any(|p| p.starts_with(&tail));
                proptest::prop_assert_eq!(index.begins(&tail), expected);
            }
        }
    }
}
