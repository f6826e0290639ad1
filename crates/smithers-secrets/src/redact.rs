//! The streaming redactor: masks every form of every registered secret in
//! output that arrives in chunks of any size.
//!
//! It never emits a prefix of a form that a later chunk could complete: at
//! the end of each chunk it holds back exactly the longest tail that is
//! still the beginning of some form, and finishes it at the end of the
//! stream. The output does not depend on how the input was split.

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, MatchKind};

use crate::forms::{MIN_SECRET_LEN, forms};
use crate::window::WindowIndex;
use crate::{Error, SecretValue};

/// What replaces a secret.
pub const MASK: &[u8] = b"***";

/// The compiled set of forms to mask.
#[derive(Debug)]
pub struct Redactor {
    /// Finds forms in the output; `None` when there is nothing to mask.
    search: Option<WindowIndex>,
    /// For walking the forms anchored at a position: is this tail the start of a form?
    prefixes: Option<NFA>,
    longest: usize,
    too_short: Vec<usize>,
}

impl Redactor {
    /// Compiles the forms of `secrets`. Values shorter than 6 bytes are not
    /// masked; their positions are in [`Redactor::too_short`].
    pub fn new(secrets: &[SecretValue]) -> Result<Redactor, Error> {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut too_short = Vec::new();
        for (i, secret) in secrets.iter().enumerate() {
            if secret.len() < MIN_SECRET_LEN {
                too_short.push(i);
                continue;
            }
            for form in forms(secret.expose()) {
                if seen.insert(form.clone()) {
                    patterns.push(form);
                }
            }
        }
        let longest = patterns.iter().map(Vec::len).max().unwrap_or(0);
        let prefixes = if patterns.is_empty() {
            None
        } else {
            // Refusing to build is the only safe failure: a redactor that
            // cannot tell what to hold back would leak split secrets.
            let nfa = NFA::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .map_err(|e| Error::Redactor(e.to_string()))?;
            Some(nfa)
        };
        Ok(Redactor {
            search: WindowIndex::new(patterns),
            prefixes,
            longest,
            too_short,
        })
    }

    /// Indexes of the secrets too short to mask safely.
    pub fn too_short(&self) -> &[usize] {
        &self.too_short
    }

    /// A redactor for one stream.
    pub fn stream(&self) -> StreamRedactor<'_> {
        StreamRedactor {
            redactor: self,
            held: Vec::new(),
            scratch: Vec::new(),
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

    /// Where the longest tail of `data` (starting at or after `from`) that
    /// is the beginning of some form starts; `data.len()` if none.
    fn hold_from(&self, data: &[u8], from: usize) -> usize {
        let Some(nfa) = &self.prefixes else {
            return data.len();
        };
        let Ok(start) = nfa.start_state(Anchored::Yes) else {
            return data.len();
        };
        let earliest = data
            .len()
            .saturating_sub(self.longest.saturating_sub(1))
            .max(from);
        for begin in earliest..data.len() {
            let mut sid = start;
            let alive = data[begin..].iter().all(|&b| {
                sid = nfa.next_state(Anchored::Yes, sid, b);
                !nfa.is_dead(sid)
            });
            if alive {
                return begin;
            }
        }
        data.len()
    }
}

/// Redacts one stream: feed chunks with [`StreamRedactor::push`], then
/// [`StreamRedactor::finish`].
pub struct StreamRedactor<'r> {
    redactor: &'r Redactor,
    /// The tail that could still become a form.
    held: Vec<u8>,
    scratch: Vec<u8>,
}

impl StreamRedactor<'_> {
    /// Redacts `chunk`, appending what is safe to emit to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.held.is_empty() {
            // The usual case: nothing pending, so no copy of the chunk.
            let hold = self.emit(chunk, out, false);
            self.held.extend_from_slice(&chunk[hold..]);
            return;
        }
        // A pending tail may be completed by this chunk: scan them joined,
        // in a buffer kept across calls so pushes do not allocate.
        let mut data = std::mem::take(&mut self.scratch);
        data.clear();
        data.extend_from_slice(&self.held);
        data.extend_from_slice(chunk);
        let hold = self.emit(&data, out, false);
        self.held.clear();
        self.held.extend_from_slice(&data[hold..]);
        self.scratch = data;
    }

    /// Ends the stream: redacts and emits what was held back.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        let held = std::mem::take(&mut self.held);
        self.emit(&held, out, true);
    }

    /// Masks and emits `data` up to the tail that must wait for more input
    /// (none at the end of the stream); returns where that tail starts.
    fn emit(&self, data: &[u8], out: &mut Vec<u8>, at_end: bool) -> usize {
        let Some(search) = &self.redactor.search else {
            out.extend_from_slice(data);
            return data.len();
        };
        let mut pos = 0;
        loop {
            let hold = if at_end {
                data.len()
            } else {
                self.redactor.hold_from(data, pos)
            };
            match search.find(data, pos, hold) {
                Some((start, end)) => {
                    out.extend_from_slice(&data[pos..start]);
                    out.extend_from_slice(MASK);
                    pos = end;
                }
                None => {
                    out.extend_from_slice(&data[pos..hold]);
                    return hold;
                }
            }
        }
    }
}
