//! The streaming redactor: masks every form of every registered secret in
//! output that arrives in chunks of any size.
//!
//! Output is decoded into its canonical form ([`crate::decode`]) as it
//! arrives, each canonical unit keeping the span of original bytes it came
//! from; the canonical patterns ([`crate::patterns`]) are searched there and
//! a match masks the original bytes it came from. Literal forms are also
//! checked where a token may have swallowed their start, so a form written
//! out byte for byte is always masked.
//!
//! The stream never emits a byte that more input could still make part of
//! a match: it holds back the longest decoded tail that begins a pattern
//! (and the tails that begin a literal form inside a token, or begin a form
//! searched everywhere), plus an undecoded token. Cuts fall on unit starts
//! and the decoder's state is carried across them, so the output does not
//! depend on how the input was split. What is held back is bounded
//! ([`Redactor::max_held`]).
//!
//! Two more searches run beside the canonical one: hex patterns in the hex
//! view of the decoding ([`crate::hexview`]), which reads spaced, grouped
//! and annotated dumps as plain hex (a match there masks the dump's lines
//! from its first digit to the end of its last line's ASCII column), and
//! the starts of values cut short before a marker ([`crate::truncated`]).
//! Each holds back what more input could still make part of a match: the
//! view's tail that begins a hex pattern and what it has not yet decided,
//! and a value's start followed by the beginning of a marker.
//!
//! Why a form written out byte for byte is always masked: an occurrence
//! that starts and ends on unit boundaries decodes in place as the form
//! decodes alone (a unit is decided with bounded lookahead, and a unit
//! start carries no decoder state but the noise run, which a form trimmed
//! of noise resets), so the canonical search finds it; one that starts
//! inside a token is found by the literal check inside tokens; one that
//! ends inside a token is of a form whose end is open, which is searched
//! for everywhere.

use crate::decode::{Canon, Input, MAX_NOISE_RUN, MAX_UNIT};
use crate::forms::MIN_SECRET_LEN;
use crate::hexview::{HexView, MAX_HEX_GAP};
use crate::patterns::Patterns;
use crate::truncated::Truncated;
use crate::window::WindowIndex;
use crate::{Error, SecretValue};

/// How many bytes of a chunk are joined with what a stream holds before
/// the rest is read in place.
const JOIN: usize = 4096;

/// What replaces a secret. A masked span's line breaks follow it, so a log
/// keeps its lines.
pub const MASK: &[u8] = b"***";

/// The compiled set of patterns to mask.
#[derive(Debug)]
pub struct Redactor {
    /// Searched in the canonical decoding.
    canonical: Option<WindowIndex>,
    /// Literal forms, checked inside decoded tokens.
    literal: Option<WindowIndex>,
    /// Literal forms searched at every position of the original bytes.
    anywhere: Option<WindowIndex>,
    /// Hex of each value, searched in the hex view.
    hex: Option<WindowIndex>,
    /// Values whose start is masked before a truncation marker.
    truncated: Option<Truncated>,
    too_short: Vec<usize>,
    max_held: usize,
}

fn index(patterns: Vec<Vec<u8>>) -> Result<Option<WindowIndex>, Error> {
    if patterns.is_empty() {
        return Ok(None);
    }
    // Refusing to build is the only safe failure: a redactor that cannot
    // search would pass secrets through.
    WindowIndex::new(patterns)
        .map(Some)
        .ok_or_else(|| Error::Redactor("an empty pattern".to_string()))
}

impl Redactor {
    /// Compiles the patterns of `secrets`. Values shorter than
    /// [`MIN_SECRET_LEN`] bytes are not masked; their positions are in
    /// [`Redactor::too_short`]. Fails only if the pattern automaton cannot
    /// be built ([`Error::Redactor`]), never with a value in the message.
    pub fn new(secrets: &[SecretValue]) -> Result<Redactor, Error> {
        let mut patterns = Patterns::default();
        let mut too_short = Vec::new();
        for (i, secret) in secrets.iter().enumerate() {
            if secret.len() < MIN_SECRET_LEN {
                too_short.push(i);
                continue;
            }
            patterns.add(secret.expose());
        }
        let canonical = index(std::mem::take(&mut patterns.canonical))?;
        let literal = index(std::mem::take(&mut patterns.literal))?;
        let anywhere = index(std::mem::take(&mut patterns.anywhere))?;
        let hex = index(std::mem::take(&mut patterns.hex))?;
        let truncated = Truncated::new(std::mem::take(&mut patterns.values));
        let longest = |index: &Option<WindowIndex>| index.as_ref().map_or(0, WindowIndex::longest);
        let per_byte = MAX_UNIT + MAX_NOISE_RUN;
        // A held canonical tail is shorter than the longest pattern; each of
        // its bytes comes from one unit, after at most a noise run. So is a
        // cut value's start with the beginning of its marker.
        let canonical_held = longest(&canonical) * per_byte + MAX_UNIT;
        let truncated_held = truncated
            .as_ref()
            .map_or(0, |t| (t.longest() + 4) * per_byte);
        // A held tail of the hex view: digits at most a unit and a noise run
        // apart within a group, a gap and a unit between groups; then the
        // line being read (its digits span a gap and a group), the way to
        // it and what is looked ahead at, each within a gap.
        let hex_held = hex.as_ref().map_or(0, |ix| {
            ix.longest() * per_byte.max(MAX_HEX_GAP + MAX_UNIT) + 3 * (MAX_HEX_GAP + MAX_UNIT)
        });
        let max_held = canonical_held
            .max(truncated_held)
            .max(hex_held)
            .max(longest(&literal))
            .max(longest(&anywhere));
        Ok(Redactor {
            canonical,
            literal,
            anywhere,
            hex,
            truncated,
            too_short,
            max_held,
        })
    }

    /// Indexes of the secrets too short to mask safely.
    pub fn too_short(&self) -> &[usize] {
        &self.too_short
    }

    /// The most bytes a stream can hold back, waiting to know whether they
    /// belong to a secret: at most this many bytes of input are not yet in
    /// the output after any [`StreamRedactor::push`].
    pub fn max_held(&self) -> usize {
        self.max_held
    }

    /// A redactor for one stream.
    pub fn stream(&self) -> StreamRedactor<'_> {
        StreamRedactor {
            redactor: self,
            held: Vec::new(),
            canon: Canon::default(),
            hex: HexView::default(),
            emitted: 0,
        }
    }

    /// Redacts a whole buffer at once.
    pub fn redact(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        let mut stream = self.stream();
        stream.push(input, &mut out);
        stream.finish(&mut out);
        out
    }

    fn is_empty(&self) -> bool {
        self.canonical.is_none()
            && self.literal.is_none()
            && self.anywhere.is_none()
            && self.hex.is_none()
            && self.truncated.is_none()
    }
}

/// Redacts one stream: feed chunks with [`StreamRedactor::push`], then
/// [`StreamRedactor::finish`].
pub struct StreamRedactor<'r> {
    redactor: &'r Redactor,
    /// Input from the start of the first unit not wholly emitted.
    held: Vec<u8>,
    /// The decoding of `held`.
    canon: Canon,
    /// The hex view of `canon`.
    hex: HexView,
    /// How much of `held` is already in the output.
    emitted: usize,
}

impl StreamRedactor<'_> {
    /// Redacts `chunk`, appending what is safe to emit to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.redactor.is_empty() {
            out.extend_from_slice(chunk);
            return;
        }
        let mut data = std::mem::take(&mut self.held);
        let mut rest = chunk;
        if !data.is_empty() {
            // What is held is joined with the start of the chunk only: it
            // is nearly always settled within a few bytes of new input, and
            // the rest of the chunk is then read where it lies, uncopied.
            let head = chunk.len().min(data.len().max(JOIN));
            let held = data.len();
            data.extend_from_slice(&chunk[..head]);
            let keep = self.run(&data, out, Input::Continues);
            if keep < held || head == chunk.len() {
                data.drain(..keep);
                if head < chunk.len() {
                    // Still waiting on what was held: the rest of the
                    // chunk joins it.
                    data.extend_from_slice(&chunk[head..]);
                    let keep = self.run(&data, out, Input::Continues);
                    data.drain(..keep);
                }
                self.held = data;
                return;
            }
            // The buffer now starts inside the chunk.
            rest = &chunk[keep - held..];
            data.clear();
        }
        let keep = self.run(rest, out, Input::Continues);
        data.extend_from_slice(&rest[keep..]);
        self.held = data;
    }

    /// Ends the stream: redacts and emits what was held back.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        let data = std::mem::take(&mut self.held);
        if !data.is_empty() {
            self.run(&data, out, Input::Ended);
        }
    }

    /// How many bytes pushed so far are not yet in the output.
    pub fn held(&self) -> usize {
        self.held.len() - self.emitted
    }

    /// Decodes `data` (what is held followed by new input), emits what is
    /// safe, masked, and returns how much of `data` need not be kept.
    fn run(&mut self, data: &[u8], out: &mut Vec<u8>, input: Input) -> usize {
        self.canon.decode(data, input);
        if self.redactor.hex.is_some() {
            self.hex.scan(&self.canon, input == Input::Ended);
        }
        let Stops {
            canon: canon_stop,
            hex: hex_stop,
            out: stop,
        } = self.stops(data, input);
        let r = self.redactor;
        let canon = &self.canon;
        let hex = &self.hex;
        let mut pos = self.emitted;
        let mut next = [Cached::Unknown; 6];
        while pos < stop {
            let candidates = [
                next[0].get(pos, || {
                    r.canonical
                        .as_ref()
                        .and_then(|ix| canonical_match(ix, canon, pos, canon_stop, stop))
                }),
                next[1].get(pos, || {
                    r.literal
                        .as_ref()
                        .and_then(|ix| literal_match(ix, canon, data, pos, stop))
                }),
                next[2].get(pos, || {
                    r.canonical
                        .as_ref()
                        .and_then(|ix| string_match(ix, canon, data, pos, stop))
                }),
                next[3].get(pos, || {
                    r.anywhere.as_ref().and_then(|ix| ix.find(data, pos, stop))
                }),
                next[4].get(pos, || {
                    r.hex
                        .as_ref()
                        .and_then(|ix| hex_match(ix, hex, canon, pos, hex_stop, stop))
                }),
                next[5].get(pos, || {
                    r.truncated
                        .as_ref()
                        .and_then(|t| truncated_match(t, canon, pos, stop))
                }),
            ];
            // Leftmost, then longest.
            let best = candidates
                .into_iter()
                .flatten()
                .min_by_key(|&(start, end)| (start, std::cmp::Reverse(end)));
            match best {
                Some((start, end)) => {
                    out.extend_from_slice(&data[pos..start]);
                    mask(out, &data[start..end]);
                    pos = end;
                }
                None => {
                    out.extend_from_slice(&data[pos..stop]);
                    pos = stop;
                }
            }
        }
        let keep = self.canon.boundary_before(pos);
        let c = self.canon.canon_from(keep);
        self.canon.rebase(keep);
        self.hex.rebase(c, keep);
        self.emitted = pos - keep;
        keep
    }

    /// How far the canonical search and the hex view's may look for match
    /// starts, and how far output may go: the earliest place more input
    /// could still change.
    fn stops(&self, data: &[u8], input: Input) -> Stops {
        let canon = &self.canon;
        if input == Input::Ended {
            return Stops {
                canon: canon.bytes.len(),
                hex: self.hex.bytes.len(),
                out: data.len(),
            };
        }
        let r = self.redactor;
        let pos = self.emitted;
        // A line break the input ends on waits for the next byte to know
        // whether indentation follows, but it is noise either way: it may
        // be emitted (and is kept, to be decoded again with what follows)
        // unless a match could begin before it, which the holds below
        // decide. Otherwise a live log would show a line only once the
        // next one began.
        let mut stop = canon.decoded;
        if data.len() == stop + 1 && data[stop] == b'\n' {
            stop += 1;
        }
        let mut canon_stop = canon.bytes.len();
        if let Some(ix) = &r.canonical {
            canon_stop = ix.hold_from(&canon.bytes, canon.canon_from(pos));
            if canon_stop < canon.bytes.len() {
                stop = stop.min(canon.orig_start(canon_stop));
            }
        }
        if let Some(ix) = &r.anywhere {
            stop = stop.min(ix.hold_from(data, pos));
        }
        if let Some(ix) = &r.literal {
            stop = stop.min(literal_hold(ix, canon, data, pos));
        }
        if let Some(t) = &r.truncated
            && let Some(start) = t.hold(&canon.bytes, canon.canon_from(pos))
        {
            stop = stop.min(canon.orig_start(start));
        }
        let hex = &self.hex;
        let mut hex_stop = hex.bytes.len();
        if let Some(ix) = &r.hex {
            hex_stop = ix.hold_from(&hex.bytes, hex.from(canon.canon_from(pos)));
            if hex_stop < hex.bytes.len() {
                stop = stop.min(canon.orig_start(hex.canon[hex_stop]));
            }
            if hex.scanned < canon.bytes.len() {
                stop = stop.min(canon.orig_start(hex.scanned));
            }
        }
        Stops {
            canon: canon_stop,
            hex: hex_stop,
            out: stop,
        }
    }
}

/// Where each search may look for match starts, and where output must stop.
struct Stops {
    /// In the canonical decoding.
    canon: usize,
    /// In the hex view.
    hex: usize,
    /// In the original bytes.
    out: usize,
}

/// The leftmost candidate of one kind at or after some position, kept
/// while the position has not passed it.
#[derive(Clone, Copy)]
enum Cached {
    Unknown,
    Nothing,
    At(usize, usize),
}

impl Cached {
    fn get(
        &mut self,
        pos: usize,
        find: impl FnOnce() -> Option<(usize, usize)>,
    ) -> Option<(usize, usize)> {
        match *self {
            Cached::Nothing => None,
            Cached::At(start, end) if start >= pos => Some((start, end)),
            _ => {
                let found = find();
                *self = found.map_or(Cached::Nothing, |(s, e)| Cached::At(s, e));
                found
            }
        }
    }
}

/// The leftmost canonical match whose unit starts at or after `pos` and
/// before `stop`, as an original span.
fn canonical_match(
    ix: &WindowIndex,
    canon: &Canon,
    pos: usize,
    canon_stop: usize,
    stop: usize,
) -> Option<(usize, usize)> {
    let from = canon.canon_from(pos);
    let (start, end) = ix.find(&canon.bytes, from, canon_stop)?;
    let orig = canon.orig_start(start);
    (orig < stop).then(|| (orig, canon.orig_end(end - 1)))
}

/// The leftmost hex pattern in the hex view whose first digit comes from
/// at or after `pos`, starting before `hex_stop` (in the view) and `stop`:
/// the original span from that digit to the end of what the last one masks
/// (its line's ASCII column, if any).
fn hex_match(
    ix: &WindowIndex,
    hex: &HexView,
    canon: &Canon,
    pos: usize,
    hex_stop: usize,
    stop: usize,
) -> Option<(usize, usize)> {
    let from = hex.from(canon.canon_from(pos));
    let (start, end) = ix.find(&hex.bytes, from, hex_stop)?;
    let orig = canon.orig_start(hex.canon[start]);
    (orig < stop).then(|| (orig, canon.orig_end(hex.ext[end - 1] - 1)))
}

/// The first value cut short before a marker, starting at or after `pos`
/// and before `stop`, with its marker.
fn truncated_match(
    t: &Truncated,
    canon: &Canon,
    pos: usize,
    stop: usize,
) -> Option<(usize, usize)> {
    let (start, end) = t.find(&canon.bytes, canon.canon_from(pos))?;
    let orig = canon.orig_start(start);
    (orig < stop).then(|| (orig, canon.orig_end(end - 1)))
}

/// The leftmost literal form starting strictly inside a decoded token, at
/// or after `pos` and before `stop`.
fn literal_match(
    ix: &WindowIndex,
    canon: &Canon,
    data: &[u8],
    pos: usize,
    stop: usize,
) -> Option<(usize, usize)> {
    let first = canon.spans.partition_point(|s| s.orig_end <= pos);
    for span in &canon.spans[first..] {
        if span.orig >= stop {
            break;
        }
        if span.orig_end - span.orig < 2 {
            continue;
        }
        for at in (span.orig + 1).max(pos)..span.orig_end.min(stop) {
            if let Some(end) = ix.longest_at(data, at) {
                return Some((at, end));
            }
        }
    }
    None
}

/// Where the earliest position inside a decoded token, at or after `pos`,
/// begins a literal form that more input could complete; `data.len()` if none.
fn literal_hold(ix: &WindowIndex, canon: &Canon, data: &[u8], pos: usize) -> usize {
    let from = data.len().saturating_sub(ix.longest() - 1).max(pos);
    let first = canon.spans.partition_point(|s| s.orig_end <= from);
    for span in &canon.spans[first..] {
        if span.orig_end - span.orig < 2 {
            continue;
        }
        for at in (span.orig + 1).max(from)..span.orig_end {
            if ix.begins(&data[at..]) {
                return at;
            }
        }
    }
    data.len()
}

/// The leftmost canonical match inside a control string's content (a
/// window title, a hyperlink), at or after `pos` and before `stop`.
fn string_match(
    ix: &WindowIndex,
    canon: &Canon,
    data: &[u8],
    pos: usize,
    stop: usize,
) -> Option<(usize, usize)> {
    let first = canon.strings.partition_point(|s| s.orig_end <= pos);
    for string in &canon.strings[first..] {
        if string.orig >= stop {
            break;
        }
        let from = string.content.max(pos);
        if from >= string.content_end {
            continue;
        }
        let content = canonical_of(&data[from..string.content_end]);
        if let Some((start, end)) = ix.find(&content.bytes, 0, content.bytes.len()) {
            let orig = from + content.orig_start(start);
            return (orig < stop).then(|| (orig, from + content.orig_end(end - 1)));
        }
    }
    None
}

fn canonical_of(bytes: &[u8]) -> Canon {
    let mut canon = Canon::default();
    canon.decode(bytes, Input::Ended);
    canon
}

/// Appends the mask for `span`: [`MASK`], then the span's line breaks.
fn mask(out: &mut Vec<u8>, span: &[u8]) {
    out.extend_from_slice(MASK);
    let breaks = span.iter().filter(|&&b| b == b'\n').count();
    out.resize(out.len() + breaks, b'\n');
}
