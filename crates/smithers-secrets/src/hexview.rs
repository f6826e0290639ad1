//! The hex view: hex dumps whose digits are spaced, grouped, wrapped and
//! annotated (`od -An -tx1`, `od -tx1`, `hexdump -C`, `xxd`, `xxd -i`,
//! `67:68:70`), read as one run of hex digits, so that a value's hex is
//! found however the dump lays it out.
//!
//! It reads the canonical decoding ([`crate::decode`]: colour codes,
//! escapes and indentation already gone) and the places of the line breaks
//! the decoding deleted:
//!
//! - A *group* is a token of 2, 4, 6 or 8 hex digits, possibly after `0x`,
//!   between bytes that are not letters, digits or `_` (or line breaks).
//! - On a line, groups are joined by one or two of space, tab, `:`, `,`,
//!   `-` (`67 68`, `6768 705f`, `67:68`, `0x67, 0x68`); two blanks join
//!   only groups of one width (`hexdump -C`'s middle), otherwise they begin
//!   the ASCII column.
//! - A line ends after its last group, with trailing separators
//!   (`0x2b,`), or with two or more blanks and an ASCII column up to the
//!   line break (`  |ghp_Q7x…|`, xxd's `  ghp_Q7x…`).
//! - The next line may begin with an offset column: 6 to 16 hex digits,
//!   then `:` or blanks (`00000010: `, `00000010  `, od's `0000020 `); a
//!   line holding only an offset is passed over.
//!
//! A run begins only where one line holds two or more groups spanning at
//! least [`START_SPAN`] bytes, so a test of sixteen bytes at a time
//! passes over ordinary text; anything else ends it. Between two groups of a run
//! there are at most [`MAX_HEX_GAP`] original bytes, a group spans at most
//! [`MAX_UNIT`] and a line's digits at most [`MAX_HEX_GAP`] (a longer line
//! is read in pieces): these bound what a stream holds back for the view.
//!
//! The view is the runs' digits in lower case, with [`BREAK`] after each
//! run. A line's digits join it once the line is read, each with the end of
//! what a match ending there masks: the line's ASCII column, if it has one
//! (the column shows the same bytes as text).
//!
//! The reading is deterministic and the same however the input is split:
//! a decision that needs more input is taken again once it has arrived,
//! from the last place decided, whose state is kept.

use std::cell::Cell;

use crate::decode::{Canon, MAX_NOISE_RUN, MAX_UNIT};

/// Between the end of one group of a run and the start of the next, in
/// original bytes; also the most a line's digits span before the line is
/// read in pieces.
pub(crate) const MAX_HEX_GAP: usize = MAX_NOISE_RUN;
/// How many bytes of groups and separators on one line begin a run: four
/// bytes of `od` or `hexdump -C`, three of xxd, enough for a dump of a
/// lone 6-byte value (`61 62 63 64 65 66`, `6162 6364 6566`).
pub(crate) const START_SPAN: usize = 11;
/// What follows each run in the view: no hex pattern holds it.
const BREAK: u8 = b'\n';
/// The most hex digits in a group.
const MAX_GROUP: usize = 8;
/// The most separator bytes after a group (an xxd or `hexdump -C` last
/// line pads its hex to the width of a full line before the ASCII column).
const MAX_SEPARATOR: usize = 96;
/// An offset column's digits.
const OFFSET: std::ops::RangeInclusive<usize> = 6..=16;

/// Bytes that can make up the beginning of a run.
static DENSE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_hexdigit() || matches!(c, b'x' | b'X' | b' ' | b'\t' | b':' | b',' | b'-');
        b += 1;
    }
    table
};

fn separator(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b':' | b',' | b'-')
}

fn blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// More input is needed to decide.
struct Pending;

type Look<T> = Result<T, Pending>;

/// What is expected at the place decided up to, inside a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// The run's first group.
    First,
    /// A new line of the dump.
    LineStart,
    /// A separator, after a group `width` digits wide.
    After { width: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not in a run; whether the byte before is part of a word.
    Idle { in_word: bool },
    /// In a run; where its last digit ended, in original bytes (relative to
    /// the buffer, so it may lie before it), if it has one.
    Run {
        expect: Expect,
        last_end: Option<isize>,
    },
}

impl Default for State {
    fn default() -> Self {
        State::Idle { in_word: false }
    }
}

/// The hex view of a buffer's canonical decoding, extended as it grows.
#[derive(Debug, Default)]
pub(crate) struct HexView {
    /// Hex digits in lower case, [`BREAK`] after each run.
    pub(crate) bytes: Vec<u8>,
    /// The canonical position of each byte of `bytes`.
    pub(crate) canon: Vec<usize>,
    /// For each byte, the canonical end of what a match ending there masks.
    pub(crate) ext: Vec<usize>,
    /// The canonical position read up to; `state` holds there.
    pub(crate) scanned: usize,
    state: State,
}

/// The canonical bytes being read, and what is known about them.
struct Text<'a> {
    bytes: &'a [u8],
    breaks: &'a [usize],
    canon: &'a Canon,
    ended: bool,
    /// Where the last look-up of a line break ended in `breaks`: reading
    /// moves forward, so the next one is usually there or a step on.
    hint: Cell<usize>,
}

impl Text<'_> {
    fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The first line break at or after `at`.
    fn break_from(&self, at: usize) -> Option<usize> {
        let breaks = self.breaks;
        let mut i = self.hint.get().min(breaks.len());
        if i > 0 && breaks[i - 1] >= at {
            i = breaks.partition_point(|&b| b < at);
        } else {
            let mut steps = 0;
            while i < breaks.len() && breaks[i] < at {
                i += 1;
                steps += 1;
                if steps == 8 {
                    i = breaks.partition_point(|&b| b < at);
                    break;
                }
            }
        }
        self.hint.set(i);
        breaks.get(i).copied()
    }

    /// Whether a deleted line break stands just before canonical byte `at`.
    fn break_at(&self, at: usize) -> bool {
        self.break_from(at) == Some(at)
    }

    /// The first line break after `at`.
    fn break_after(&self, at: usize) -> Option<usize> {
        self.break_from(at + 1)
    }

    fn orig_start(&self, at: usize) -> isize {
        self.canon.orig_start(at) as isize
    }

    fn orig_end(&self, at: usize) -> isize {
        self.canon.orig_end(at) as isize
    }

    /// Whether more input could reach back to within `MAX_HEX_GAP` of
    /// `since` (an original position): if not, waiting is pointless.
    fn may_wait(&self, since: isize) -> bool {
        !self.ended && self.canon.decoded as isize - since <= MAX_HEX_GAP as isize
    }

    /// The end of the token at `at` (a token start): word bytes, up to a
    /// line break. `None` when the input ends inside it.
    fn token_end(&self, at: usize) -> Option<usize> {
        let line_end = self.break_after(at);
        let limit = line_end.unwrap_or(self.len());
        let end = at
            + self.bytes[at..limit]
                .iter()
                .take_while(|&&b| word(b))
                .count();
        (end < self.len() || self.ended || line_end == Some(end)).then_some(end)
    }

    /// The group whose token starts at `at`: where its digits start, and its end.
    fn group(&self, at: usize) -> Look<Option<(usize, usize)>> {
        // Most tokens are not groups whatever the line breaks in them: a
        // group begins with two hex digits or `0x`, and a token with no
        // break in it ends at its first byte that is not a word byte.
        let rest = &self.bytes[at..];
        let starts = match rest {
            [a, b, ..] => {
                (a.is_ascii_hexdigit() && b.is_ascii_hexdigit())
                    || (*a == b'0' && matches!(b, b'x' | b'X'))
            }
            [a] => a.is_ascii_hexdigit(),
            [] => true,
        };
        if !starts {
            return Ok(None);
        }
        let Some(end) = self.token_end(at) else {
            return if could_be_group(&self.bytes[at..]) && self.may_wait(self.orig_start(at)) {
                Err(Pending)
            } else {
                Ok(None)
            };
        };
        let token = &self.bytes[at..end];
        let prefix = usize::from(token.len() > 2 && matches!(&token[..2], b"0x" | b"0X"));
        let digits = &token[2 * prefix..];
        let ok = digits.len().is_multiple_of(2)
            && (2..=MAX_GROUP).contains(&digits.len())
            && digits.iter().all(u8::is_ascii_hexdigit);
        Ok(ok.then_some((at + 2 * prefix, end)))
    }

    /// The separator bytes at `at` (after a group), up to a line break.
    fn separator_end(&self, at: usize) -> usize {
        let limit = self.break_after(at).unwrap_or(self.len());
        at + self.bytes[at..limit]
            .iter()
            .take(MAX_SEPARATOR + 1)
            .take_while(|&&b| separator(b))
            .count()
    }

    /// Whether a run begins with the group at `at` (a token start): two or
    /// more groups joined on one line spanning at least [`START_SPAN`] bytes.
    fn run_starts(&self, at: usize) -> Look<bool> {
        // Its first START_SPAN bytes are groups and separators: most
        // places fail this before anything is looked up.
        let first = &self.bytes[at..self.len().min(at + START_SPAN)];
        if !first.iter().all(|&b| DENSE[usize::from(b)]) {
            return Ok(false);
        }
        let Some((digits, mut end)) = self.group(at)? else {
            return Ok(false);
        };
        if self.break_at(at) && OFFSET.contains(&(end - at)) {
            // A line's first long token is its offset; the run may begin
            // after it.
            return Ok(false);
        }
        let mut width = end - digits;
        let mut groups = 1;
        while groups < 2 || end - at < START_SPAN {
            if self.break_at(end) {
                return Ok(false);
            }
            let next = self.separator_end(end);
            if next == self.len() {
                return if self.may_wait(self.orig_start(at)) {
                    Err(Pending)
                } else {
                    Ok(false)
                };
            }
            let sep = &self.bytes[end..next];
            let two_blanks = sep.len() == 2 && sep.iter().all(|&b| blank(b));
            if sep.is_empty() || sep.len() > 2 || self.break_at(next) {
                return Ok(false);
            }
            let Some((d, e)) = self.group(next)? else {
                return Ok(false);
            };
            if two_blanks && e - d != width {
                return Ok(false);
            }
            width = e - d;
            end = e;
            groups += 1;
        }
        Ok(true)
    }
}

/// Whether `prefix` (where the input ends) could still become a group.
fn could_be_group(prefix: &[u8]) -> bool {
    let digits = match prefix {
        [b'0', b'x' | b'X', rest @ ..] => rest,
        _ => prefix,
    };
    digits.len() <= MAX_GROUP && digits.iter().all(u8::is_ascii_hexdigit)
}

/// The first place at or after `from` whose next [`START_SPAN`] bytes (or
/// all that is left, if fewer) are in [`DENSE`]: only there can a run
/// begin. `bytes.len()` if none.
///
/// Sixteen bytes at a time, classified with comparisons over an array
/// (which the compiler turns into vector compares) and read as four lanes
/// of four bytes: START_SPAN bytes in a row always cover two whole lanes
/// side by side, which ordinary text seldom has, so only there is a place
/// looked at closer.
fn next_dense_start(bytes: &[u8], from: usize) -> usize {
    let n = bytes.len();
    let mut at = from;
    // Whether the last lane of the block before is dense, as bit 0.
    let mut last_lane = 0;
    while let Some(block) = bytes.get(at..at + 16) {
        let mut w = [0u8; 16];
        w.copy_from_slice(block);
        let lanes = dense_lanes(&w);
        // Bit `i`: lane `i - 1` and lane `i` are dense (lane -1 is the
        // block before's last).
        let with_last = lanes << 1 | last_lane;
        let pairs = with_last & (with_last >> 1);
        if pairs == 0 {
            last_lane = lanes >> 3;
            at += 16;
            continue;
        }
        // The dense stretch through the first two dense lanes: its start
        // (not before `from`) begins a run if START_SPAN bytes follow.
        let lane = at + 4 * pairs.trailing_zeros() as usize - 4;
        let start = lane
            - bytes[from..lane]
                .iter()
                .rev()
                .take_while(|&&b| dense(b))
                .count();
        let end = n.min(start + START_SPAN);
        match bytes[start..end].iter().position(|&b| !dense(b)) {
            None => return start,
            // Nothing from `start` to there can begin a run.
            Some(gap) => {
                at = start + gap + 1;
                last_lane = 0;
            }
        }
    }
    // Fewer than sixteen bytes left: a place whose START_SPAN bytes reach
    // into them is looked at byte by byte.
    let mut start = at.saturating_sub(START_SPAN - 1).max(from);
    while start < n {
        let end = n.min(start + START_SPAN);
        match bytes[start..end].iter().position(|&b| !dense(b)) {
            None => return start,
            Some(gap) => start += gap + 1,
        }
    }
    n
}

fn dense(b: u8) -> bool {
    DENSE[usize::from(b)]
}

/// Bit `i` set when the four bytes of lane `i` of `w` are all in [`DENSE`].
#[inline(always)]
fn dense_lanes(w: &[u8; 16]) -> u32 {
    let mut hits = [0u8; 16];
    for i in 0..16 {
        let b = w[i];
        let lower = b | 0x20;
        // Digits and `:`; `a`-`f` in either case; `x` in either case;
        // space, tab, `,` and `-`.
        let is = (b.wrapping_sub(b'0') < 11)
            | (lower.wrapping_sub(b'a') < 6)
            | (lower == b'x')
            | (b == b' ')
            | (b == b'\t')
            | (b.wrapping_sub(b',') < 2);
        hits[i] = if is { 0xff } else { 0 };
    }
    let mut lanes = [0u32; 4];
    for i in 0..4 {
        let four = [
            hits[4 * i],
            hits[4 * i + 1],
            hits[4 * i + 2],
            hits[4 * i + 3],
        ];
        lanes[i] = u32::from_le_bytes(four);
    }
    let mut dense = 0;
    for (i, &lane) in lanes.iter().enumerate() {
        dense |= u32::from(lane == u32::MAX) << i;
    }
    dense
}

/// The ASCII column from `next` to the line break, after a group ending
/// at `at` whose last digit ended at `last` (original).
fn column(text: &Text<'_>, at: usize, next: usize, last: isize) -> Look<Ending> {
    match text.break_after(next) {
        Some(end) if text.orig_end(end - 1) - last <= MAX_HEX_GAP as isize => {
            if text.bytes[next..end].contains(&b'\n') {
                return Ok(Ending::Run { at });
            }
            Ok(Ending::Line {
                next: end,
                column: Some(end),
            })
        }
        Some(_) => Ok(Ending::Run { at }),
        None if text.ended => Ok(Ending::Line {
            next: text.len(),
            column: Some(text.len()),
        }),
        None if text.may_wait(last) => Err(Pending),
        None => Ok(Ending::Run { at }),
    }
}

/// How a line's reading ended.
enum Ending {
    /// At a line break: the next line starts at `next`.
    Line { next: usize, column: Option<usize> },
    /// The line is long: its digits so far join the view, and reading goes
    /// on after the group ending at `at`, `width` digits wide.
    Piece { at: usize, width: usize },
    /// The run ends at `at`.
    Run { at: usize },
}

impl HexView {
    /// Reads what `canon` decoded since the last call; with `ended`, to
    /// the end.
    pub(crate) fn scan(&mut self, canon: &Canon, ended: bool) {
        let text = Text {
            bytes: &canon.bytes,
            breaks: &canon.breaks,
            canon,
            ended,
            hint: Cell::new(0),
        };
        loop {
            let before = self.bytes.len();
            let step = match self.state {
                State::Idle { in_word } => self.idle(&text, in_word),
                State::Run { expect, last_end } => self.line(&text, expect, last_end),
            };
            match step {
                Ok(true) => {}
                Ok(false) => break,
                Err(Pending) => {
                    // Nothing read since the last decision counts.
                    self.bytes.truncate(before);
                    self.canon.truncate(before);
                    self.ext.truncate(before);
                    break;
                }
            }
        }
    }

    /// Outside a run: finds where the next one begins. `Ok(true)` if it
    /// does within the input, `Ok(false)` once all is read or more input is
    /// needed.
    fn idle(&mut self, text: &Text<'_>, in_word: bool) -> Look<bool> {
        let from = self.scanned;
        let n = text.len();
        // The line breaks at or after the place looked at, which only
        // moves forward.
        let mut breaks = text.breaks[text.breaks.partition_point(|&b| b < from)..].iter();
        let mut next_break = breaks.next().copied();
        let mut in_word_at = |at: usize| {
            let before = if at == from {
                in_word
            } else {
                word(text.bytes[at - 1])
            };
            if !before {
                return false;
            }
            while next_break.is_some_and(|b| b < at) {
                next_break = breaks.next().copied();
            }
            next_break != Some(at)
        };
        // A run's first START_SPAN bytes are dense: only the places where
        // such a stretch begins need a closer look.
        let mut at = from;
        loop {
            at = next_dense_start(text.bytes, at);
            if at >= n {
                break;
            }
            // A group (or its `0x`) begins with a hex digit.
            if text.bytes[at].is_ascii_hexdigit() && !in_word_at(at) {
                match text.run_starts(at) {
                    Ok(true) => {
                        self.scanned = at;
                        self.state = State::Run {
                            expect: Expect::First,
                            last_end: None,
                        };
                        return Ok(true);
                    }
                    Ok(false) => {}
                    Err(Pending) => {
                        self.scanned = at;
                        self.state = State::Idle {
                            in_word: in_word_at(at),
                        };
                        return Ok(false);
                    }
                }
            }
            at += 1;
        }
        self.state = State::Idle {
            in_word: in_word_at(n),
        };
        self.scanned = n;
        Ok(false)
    }

    /// Inside a run: reads one line (or piece of one) from `self.scanned`
    /// and adds its digits. `Ok(true)` when it was decided.
    fn line(&mut self, text: &Text<'_>, expect: Expect, mut last_end: Option<isize>) -> Look<bool> {
        let first_digit = self.bytes.len();
        let mut line_start: Option<isize> = None;
        let mut at = self.scanned;
        let mut width = match expect {
            Expect::After { width } => width,
            _ => 0,
        };
        // Where a group is expected next; `None` after a group.
        let mut group_at = match expect {
            Expect::First => Some(at),
            Expect::After { .. } => None,
            Expect::LineStart => match self.line_start(text, at, last_end)? {
                Ok(next) => Some(next),
                Err(ending) => return Ok(self.end_line(text, ending, first_digit, last_end)),
            },
        };
        // Where the line went on after two blanks, taking what follows
        // for one more group: the digits before, and where the ASCII
        // column would begin if the line does not hold up.
        let mut after_gap: Option<(usize, usize, Option<isize>)> = None;
        let ending = loop {
            if let Some(token) = group_at.take() {
                let Some((digits, end)) = text.group(token)? else {
                    break Ending::Run { at: token };
                };
                // A group is a dump's, not noise's: one unit's span at most.
                if text.orig_end(end - 1) - text.orig_start(token) > MAX_UNIT as isize {
                    break Ending::Run { at: token };
                }
                if let Some(last) = last_end
                    && text.orig_start(digits) - last > MAX_HEX_GAP as isize
                {
                    break Ending::Run { at: token };
                }
                let start = *line_start.get_or_insert(text.orig_start(digits));
                if self.bytes.len() > first_digit
                    && text.orig_end(end - 1) - start > MAX_HEX_GAP as isize
                {
                    break Ending::Piece { at, width };
                }
                for c in digits..end {
                    self.bytes.push(text.bytes[c].to_ascii_lowercase());
                    self.canon.push(c);
                    self.ext.push(c + 1);
                }
                last_end = Some(text.orig_end(end - 1));
                width = end - digits;
                at = end;
                continue;
            }
            // After a group ending at `at`.
            let last = last_end.unwrap_or(0);
            if text.break_at(at) {
                break Ending::Line {
                    next: at,
                    column: None,
                };
            }
            // Two or more blanks are a gap (before the ASCII column, or
            // `hexdump -C`'s middle), whatever follows them.
            let gap = text.bytes[at..]
                .iter()
                .take(MAX_SEPARATOR)
                .take_while(|&&b| blank(b))
                .count();
            let next = if gap >= 2 {
                at + gap
            } else {
                text.separator_end(at)
            };
            if next == text.len() && !text.break_at(next) {
                if text.may_wait(last) {
                    return Err(Pending);
                }
                break Ending::Run { at };
            }
            if text.break_at(next) {
                // Trailing separators (`0x2b,`, `00:c3:`), or blanks: an
                // ASCII column of spaces looks no different.
                break Ending::Line {
                    next,
                    column: (gap >= 2).then_some(next),
                };
            }
            let sep = &text.bytes[at..next];
            if gap < 2 {
                if sep.is_empty() || sep.len() > 2 {
                    break Ending::Run { at };
                }
                group_at = Some(next);
                continue;
            }
            if sep.len() == 2
                && after_gap.is_none()
                && let Some((d, e)) = text.group(next)?
                && e - d == width
            {
                after_gap = Some((self.bytes.len(), next, last_end));
                group_at = Some(next);
                continue;
            }
            break column(text, at, next, last)?;
        };
        let ending = match (ending, after_gap) {
            // The line did not hold up after the gap: what followed it was
            // the ASCII column (xxd's, beginning with four hex digits).
            (Ending::Run { .. }, Some((digits, next, last))) => {
                self.bytes.truncate(digits);
                self.canon.truncate(digits);
                self.ext.truncate(digits);
                last_end = last;
                column(text, next, next, last.unwrap_or(0))?
            }
            (ending, _) => ending,
        };
        Ok(self.end_line(text, ending, first_digit, last_end))
    }

    /// At a new line of a run: the offset column, if any. `Ok(Ok(at))`: a
    /// group is expected at `at`; `Ok(Err(ending))`: the line ends so.
    fn line_start(
        &self,
        text: &Text<'_>,
        at: usize,
        last_end: Option<isize>,
    ) -> Look<Result<usize, Ending>> {
        let last = last_end.unwrap_or(0);
        if at == text.len() {
            return if text.may_wait(last) {
                Err(Pending)
            } else {
                Ok(Err(Ending::Run { at }))
            };
        }
        let Some(end) = text.token_end(at) else {
            return if text.may_wait(last) {
                Err(Pending)
            } else {
                Ok(Err(Ending::Run { at }))
            };
        };
        let token = &text.bytes[at..end];
        if !OFFSET.contains(&token.len()) || !token.iter().all(u8::is_ascii_hexdigit) {
            return Ok(Ok(at));
        }
        if text.break_at(end) || end == text.len() && text.ended {
            // A line that is only an offset (the dump's length, at its end).
            return Ok(Err(Ending::Line {
                next: end,
                column: None,
            }));
        }
        let mut next = end;
        while next < text.len() && next - end < 3 && matches!(text.bytes[next], b':' | b' ' | b'\t')
        {
            next += 1;
        }
        if next == text.len() {
            return if text.may_wait(last) {
                Err(Pending)
            } else {
                Ok(Err(Ending::Run { at }))
            };
        }
        if next == end || text.break_at(next) {
            return Ok(Err(Ending::Run { at }));
        }
        Ok(Ok(next))
    }

    /// Records how a line ended: its digits (pushed from `first_digit` on)
    /// stay, with the column's end if it has one; the state moves on.
    fn end_line(
        &mut self,
        text: &Text<'_>,
        ending: Ending,
        first_digit: usize,
        last_end: Option<isize>,
    ) -> bool {
        match ending {
            Ending::Line { next, column } => {
                if let Some(column) = column {
                    for ext in &mut self.ext[first_digit..] {
                        *ext = column;
                    }
                }
                self.scanned = next;
                self.state = State::Run {
                    expect: Expect::LineStart,
                    last_end,
                };
                if next == text.len() && text.ended {
                    self.end_run(text, next);
                }
            }
            Ending::Piece { at, width } => {
                self.scanned = at;
                self.state = State::Run {
                    expect: Expect::After { width },
                    last_end,
                };
            }
            Ending::Run { at } => self.end_run(text, at),
        }
        true
    }

    fn end_run(&mut self, text: &Text<'_>, at: usize) {
        if self.bytes.last().is_some_and(|&b| b != BREAK) {
            self.bytes.push(BREAK);
            self.canon.push(at);
            self.ext.push(at);
        }
        self.scanned = at;
        self.state = State::Idle {
            in_word: at > 0 && word(text.bytes[at - 1]) && !text.break_at(at),
        };
    }

    /// The first byte of the view at or after canonical position `c`.
    pub(crate) fn from(&self, c: usize) -> usize {
        self.canon.partition_point(|&at| at < c)
    }

    /// Forgets what comes before canonical position `c` (the decoding was
    /// rebased there) and original position `orig` (the buffer's new start).
    pub(crate) fn rebase(&mut self, c: usize, orig: usize) {
        let i = self.from(c);
        self.bytes.drain(..i);
        self.canon.drain(..i);
        self.ext.drain(..i);
        for at in &mut self.canon {
            *at -= c;
        }
        for ext in &mut self.ext {
            *ext = ext.saturating_sub(c);
        }
        self.scanned = self.scanned.saturating_sub(c);
        if let State::Run {
            last_end: Some(last),
            ..
        } = &mut self.state
        {
            *last -= orig as isize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Input;

    /// The view of `text` read at once, as a string.
    fn view(text: &str) -> String {
        let mut canon = Canon::default();
        canon.decode(text.as_bytes(), Input::Ended);
        let mut hex = HexView::default();
        hex.scan(&canon, true);
        String::from_utf8_lossy(&hex.bytes).into_owned()
    }

    #[test]
    fn the_lane_test_agrees_with_the_table() {
        for b in 0..=255u8 {
            let mut w = [b'z'; 16];
            w[4..8].fill(b);
            assert_eq!(dense_lanes(&w) == 2, DENSE[usize::from(b)], "{b:#x}");
        }
        let text = b"Compiling serde  67 68 70 ok and more text: 12 ab";
        assert_eq!(next_dense_start(text, 0), 13, "`de  67 68 70 `");
        assert_eq!(next_dense_start(text, 14), 14);
        assert_eq!(
            next_dense_start(text, 16),
            42,
            "`: 12 ab`: all that is left"
        );
        assert_eq!(next_dense_start(b"ab 12", 0), 0);
    }

    /// The first place at or after `from` a byte-by-byte reading would
    /// look at.
    fn dense_start_by_bytes(bytes: &[u8], from: usize) -> usize {
        (from..bytes.len())
            .find(|&at| {
                bytes[at..bytes.len().min(at + START_SPAN)]
                    .iter()
                    .all(|&b| DENSE[usize::from(b)])
            })
            .unwrap_or(bytes.len())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// The lane search finds what a byte-by-byte one finds, wherever
        /// the lanes fall, in text with long and short dense stretches.
        #[test]
        fn the_lane_search_agrees_with_a_byte_search(
            runs in proptest::collection::vec((0usize..16, 0usize..4), 0..24),
            from in 0usize..200,
        ) {
            let mut bytes = Vec::new();
            for (dense, words) in runs {
                bytes.extend(std::iter::repeat_n(b"0a :-,\tX"[dense % 8], dense));
                bytes.extend(std::iter::repeat_n(b'z', words));
            }
            let from = from.min(bytes.len());
            proptest::prop_assert_eq!(
                next_dense_start(&bytes, from),
                dense_start_by_bytes(&bytes, from)
            );
        }
    }

    #[test]
    fn dumps_read_as_their_digits() {
        let od = " 67 68 70 5f 51 37 78 2f 4c 6d 39 2b 5a 74 32 26\n 52 77 38\n";
        assert_eq!(view(od), "6768705f5137782f4c6d392b5a743226527738\n");
        let od = "0000000 67 68 70 5f 51 37 78 2f\n0000010 4c 6d\n0000012\n";
        assert_eq!(view(od), "6768705f5137782f4c6d\n");
        let hexdump = "00000000  67 68 70 5f 51 37 78 2f  4c 6d 39 2b 5a 74 32 26  |ghp_Q7x/Lm9+Zt2&|\n00000010  52 77                                             |Rw|\n00000012\n";
        assert_eq!(view(hexdump), "6768705f5137782f4c6d392b5a7432265277\n");
        let xxd = "00000000: 6768 705f 5137 782f 4c6d 392b 5a74 3226  ghp_Q7x/Lm9+Zt2&\n00000010: 5277                                     Rw\n";
        // The first offset, with no line break before it, reads as a
        // group: digits before a value's hex do not hide it.
        assert_eq!(view(xxd), "000000006768705f5137782f4c6d392b5a7432265277\n");
        assert_eq!(
            view(&format!("$ xxd\n{xxd}")),
            "6768705f5137782f4c6d392b5a7432265277\n"
        );
        let xxd_i = "  0x67, 0x68, 0x70, 0x5f,\n  0x51, 0x37\n";
        assert_eq!(view(xxd_i), "6768705f5137\n");
        assert_eq!(view("fp=67:68:70:5F:51:37 ok"), "6768705f5137\n");
    }

    #[test]
    fn the_ascii_column_is_masked_with_its_line() {
        let xxd = "00000000: 6768 705f 5137  ghp_Q7\nnext\n";
        let mut canon = Canon::default();
        canon.decode(xxd.as_bytes(), Input::Ended);
        let mut hex = HexView::default();
        hex.scan(&canon, true);
        let column_end = canon.bytes.iter().position(|&b| b == b'n').unwrap_or(0);
        assert_eq!(hex.ext[..12], [column_end; 12]);
    }

    #[test]
    fn ordinary_text_starts_no_run() {
        for text in [
            "Compiling serde v1.0.219 in 1.2s; error[E0599] --> src/main.rs:12:5",
            "GET /a 200 3f2a",
            "a deed of a bad cafe",
            "id 12345678 and 9abcdef0",
        ] {
            assert_eq!(view(text), "", "{text}");
        }
        // Numbers with separators do read as groups: harmless, they match
        // only the hex of a value.
        assert_eq!(view("at 2024-01-15 12:34:56"), "20240115123456\n");
    }

    #[test]
    fn runs_end_at_anything_else() {
        assert_eq!(view("67 68 70 5f zz 51 37 78 2f"), "6768705f\n5137782f\n");
        assert_eq!(view("67 68 70 5f\nnot hex\n"), "6768705f\n");
        assert_eq!(view("67 68 70 5f 51 3"), "6768705f51\n", "an odd token");
        assert_eq!(view("67 68 70 zz"), "", "too short to begin a run");
    }
}
