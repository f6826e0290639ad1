//! The canonical decoding: output bytes turned into the text a reader sees,
//! with every escape undone, one unit at a time, each unit keeping the span
//! of original bytes it came from.
//!
//! Encoders offer per-character choices (`&` raw, `%26`, `%2526`, `\u0026`,
//! `&amp;`, `&#38;`…), so the forms of a value cannot be listed; instead
//! output and values are both decoded, and values are searched for in the
//! decoding. The decoding is deterministic, needs a bounded lookahead and is
//! the same however the input is split.
//!
//! Layers, innermost first (each reads the units of the one before):
//!
//! 1. HTML/XML character references: `&name;` for the names in
//!    [`ENTITIES`], `&#DDD;`, `&#xHH;`, and nested `&amp;`: `&amp;amp;lt;` is
//!    `<` (at most [`MAX_NESTING`] extra levels). The semicolon is required.
//! 2. Percent-encoding over layer 1: `%HH` in either case, nested `%25`:
//!    `%2541` is `A` (at most [`MAX_NESTING`] extra levels). Entities are
//!    below so that `&#37;&#52;&#49;` is `%41` is `A`, as `%41` itself is.
//! 3. Backslash escapes over layer 2 (JSON, nested JSON, C-style hex, the
//!    shell's `$'…'`): a run of backslashes produces nothing and arms the
//!    next unit: `n`, `r` become line breaks, `t` `b` `f` those controls,
//!    `u` + 4 hex a code point (surrogate pairs joined, a lone surrogate is
//!    U+FFFD), `x` + 2 hex a byte, three octal digits (`\101`, as bash's
//!    `${v@Q}` and `printf %q` write control and non-ASCII bytes) a byte,
//!    anything else itself (`\"` is `"`, `\/` is `/`, `\'` is `'`). Dropping the
//!    backslashes is deliberately lossy: a value and its JSON string, at any
//!    nesting depth, decode alike, and a value ending in `\` still matches
//!    inside a JSON string. A run longer than [`MAX_BACKSLASHES`] is kept as
//!    backslashes.
//! 4. Terminal noise over layer 3, deleted: CR, LF and BEL (raw or decoded),
//!    the spaces and tabs right after an LF (indentation: `sed 's/^/  /'`,
//!    YAML blocks, `git log` bodies),
//!    ECMA-48 escape sequences (CSI `ESC [` params intermediates final, and
//!    `ESC` intermediates final, within [`MAX_ESCAPE`] bytes; `ESC` alone
//!    when the sequence is malformed). Control strings (OSC `ESC ]`, DCS
//!    `ESC P`, SOS `ESC X`, PM `ESC ^`, APC `ESC _`) up to their terminator
//!    (BEL or `ESC \`) within [`MAX_STRING`] bytes are deleted as a whole,
//!    their content kept aside to be searched on its own (a window title
//!    can hold a secret; a title set in the middle of a value must not
//!    split it); an unterminated one loses only its introducer.
//!
//! Inside a token (after its first byte) raw CR, LF (with the indentation
//! after it), BEL and raw CSI sequences are skipped, so `%4` LF `1` and
//! `\u00` colour `26` still decode: wrapping and colouring do not break a
//! token apart.
//!
//! Bounds: a unit spans at most [`MAX_UNIT`] original bytes (beyond, the
//! token is not recognised); after [`MAX_NOISE_RUN`] bytes of deleted noise
//! in a row, the next noise unit is kept as a line break, which no pattern
//! contains. Together these bound what a stream holds back.

/// The original bytes one unit may span; longer tokens are not tokens.
pub const MAX_UNIT: usize = 256;
/// Deleted noise in a row, in original bytes, before noise is kept.
pub const MAX_NOISE_RUN: usize = 512;
/// An escape sequence's length in original bytes, `ESC` included.
pub const MAX_ESCAPE: usize = 64;
/// A control string's length in original bytes, introducer and terminator included.
pub const MAX_STRING: usize = 256;
/// Extra levels of `&amp;` and of `%25` understood.
pub const MAX_NESTING: usize = 4;
/// The longest run of backslashes that arms the next unit (JSON nested six deep needs 63).
pub const MAX_BACKSLASHES: usize = 64;

/// The named references understood: XML's five, the upper-case forms HTML
/// keeps, and HTML5's names for ASCII punctuation (what escaping libraries
/// emit for URL and JSON syntax).
pub const ENTITIES: &[(&str, char)] = &[
    ("amp", '&'),
    ("AMP", '&'),
    ("lt", '<'),
    ("LT", '<'),
    ("gt", '>'),
    ("GT", '>'),
    ("quot", '"'),
    ("QUOT", '"'),
    ("apos", '\''),
    ("sol", '/'),
    ("bsol", '\\'),
    ("percnt", '%'),
    ("plus", '+'),
    ("equals", '='),
    ("colon", ':'),
    ("semi", ';'),
    ("comma", ','),
    ("period", '.'),
    ("num", '#'),
    ("excl", '!'),
    ("quest", '?'),
    ("commat", '@'),
    ("dollar", '$'),
    ("ast", '*'),
    ("lowbar", '_'),
    ("grave", '`'),
    ("Hat", '^'),
    ("verbar", '|'),
    ("lpar", '('),
    ("rpar", ')'),
    ("lsqb", '['),
    ("rsqb", ']'),
    ("lcub", '{'),
    ("rcub", '}'),
    ("tilde", '~'),
    ("nbsp", '\u{a0}'),
];

const LF: u8 = b'\n';
const CR: u8 = b'\r';
const BEL: u8 = 0x07;
const ESC: u8 = 0x1b;

/// Bytes that may start something other than themselves.
static SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'&' as usize] = true;
    table[b'%' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'\'' as usize] = true;
    table[ESC as usize] = true;
    table[CR as usize] = true;
    table[LF as usize] = true;
    table[BEL as usize] = true;
    table
};

/// The first byte at or after `at` that may start something other than
/// itself; `data.len()` if none. Sixteen bytes at a time, written as
/// comparisons over an array, which the compiler turns into vector
/// compares: plain text is most of any output.
fn next_special(data: &[u8], mut at: usize) -> usize {
    while let Some(block) = data.get(at..at + 16) {
        let mut w = [0u8; 16];
        w.copy_from_slice(block);
        let mut hits = [0u8; 16];
        for i in 0..16 {
            // Bytes below 0x1C (BEL, LF, CR, ESC and the controls that
            // stand for themselves), `%`, `&`, `'` and `\`.
            let b = w[i];
            let maybe = (b < 0x1c) | (b.wrapping_sub(b'%') < 3) | (b == b'\\');
            hits[i] = if maybe { 0xff } else { 0 };
        }
        let hits = u128::from_le_bytes(hits);
        if hits == 0 {
            at += 16;
            continue;
        }
        let first = at + (hits.trailing_zeros() / 8) as usize;
        if SPECIAL[usize::from(data[first])] {
            return first;
        }
        at = first + 1;
    }
    while at < data.len() && !SPECIAL[usize::from(data[at])] {
        at += 1;
    }
    at
}

/// Why a token cannot be read further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// More input may change the answer.
    Pending,
    /// The stream has ended.
    End,
    /// The unit would be longer than allowed.
    Limit,
}

type Read<T> = Result<T, Stop>;

/// The bytes one unit is read from.
#[derive(Clone, Copy)]
struct Src<'a> {
    data: &'a [u8],
    /// Positions at or past this are beyond the unit's bound.
    cap: usize,
    at_end: bool,
}

impl Src<'_> {
    #[inline]
    fn byte(&self, at: usize) -> Read<u8> {
        if at >= self.cap {
            Err(Stop::Limit)
        } else if let Some(&b) = self.data.get(at) {
            Ok(b)
        } else if self.at_end {
            Err(Stop::End)
        } else {
            Err(Stop::Pending)
        }
    }

    fn capped(&self, cap: usize) -> Self {
        Src {
            cap: self.cap.min(cap),
            ..*self
        }
    }
}

/// A decoded character: up to four bytes (one code point as UTF-8, or one byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Val {
    bytes: [u8; 4],
    len: u8,
}

impl Val {
    fn byte(b: u8) -> Val {
        Val {
            bytes: [b, 0, 0, 0],
            len: 1,
        }
    }

    fn char(c: char) -> Val {
        let mut bytes = [0u8; 4];
        let len = c.encode_utf8(&mut bytes).len() as u8;
        Val { bytes, len }
    }

    fn code_point(cp: u32) -> Val {
        Val::char(char::from_u32(cp).unwrap_or('\u{fffd}'))
    }

    fn single(self) -> Option<u8> {
        (self.len == 1).then_some(self.bytes[0])
    }

    fn is(self, b: u8) -> bool {
        self.single() == Some(b)
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A value read from `..end`.
#[derive(Clone, Copy, Debug)]
struct Atom {
    val: Val,
    end: usize,
}

/// What one unit stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Val(Val),
    /// A run of backslashes too long to arm anything, kept as it is.
    Backslashes(usize),
    /// Deleted: CR, BEL, an escape sequence, or backslashes at the very end.
    Noise,
    /// Deleted: an LF and the indentation after it.
    LineBreak,
    /// A control string, deleted; its content `start..end` is searched apart.
    String {
        start: usize,
        end: usize,
    },
}

#[derive(Clone, Copy, Debug)]
struct Unit {
    out: Out,
    end: usize,
}

/// Raw noise a token may contain after its first byte: CR, LF and the
/// indentation after it, BEL, CSI. (Only tools that wrap output put noise
/// inside a token, and they write it raw.)
fn skip(src: &Src<'_>, mut at: usize) -> Read<usize> {
    loop {
        match src.byte(at) {
            Ok(LF) => at = raw_indentation(src, at + 1)?,
            Ok(CR | BEL) => at += 1,
            Ok(ESC) => match raw_csi(src, at) {
                Ok(Some(end)) => at = end,
                Ok(None) => return Ok(at),
                Err(stop) => return Err(stop),
            },
            Ok(_) | Err(Stop::End | Stop::Limit) => return Ok(at),
            Err(Stop::Pending) => return Err(Stop::Pending),
        }
    }
}

/// The end of the raw spaces and tabs at `at` (what follows a line break
/// when a tool indents its lines); stops at the unit's bound.
fn raw_indentation(src: &Src<'_>, mut at: usize) -> Read<usize> {
    loop {
        match src.byte(at) {
            Ok(b' ' | b'\t') => at += 1,
            Ok(_) | Err(Stop::End | Stop::Limit) => return Ok(at),
            Err(Stop::Pending) => return Err(Stop::Pending),
        }
    }
}

/// The end of the indentation at `at`, after a line break: spaces and
/// tabs, raw or escaped (`%20`, `\t`, `&#32;`: an encoder may escape the
/// spaces after an escaped line break, and every way it may write them must
/// read alike), with raw colour codes among them (a highlighter may colour
/// from any byte on, so a colour code can stand between an escaped line
/// break and the spaces after it; what the colour code covers reads the
/// same without it). The end is after the last space or tab: a colour
/// code after them is a unit of its own. Stops at the unit's bound.
fn indentation(src: &Src<'_>, mut at: usize) -> Read<usize> {
    let mut end = at;
    loop {
        match src.byte(at) {
            Ok(b' ' | b'\t') => {
                at += 1;
                end = at;
            }
            Ok(b'%' | b'&' | b'\\') => match char3(src, at) {
                Ok(Unit {
                    out: Out::Val(val),
                    end: after,
                }) if val.is(b' ') || val.is(b'\t') => {
                    at = after;
                    end = at;
                }
                Ok(_) | Err(Stop::End | Stop::Limit) => return Ok(end),
                Err(Stop::Pending) => return Err(Stop::Pending),
            },
            Ok(ESC) => match raw_csi(src, at) {
                Ok(Some(after)) => at = after,
                Ok(None) => return Ok(end),
                Err(stop) => return Err(stop),
            },
            Ok(_) | Err(Stop::End | Stop::Limit) => return Ok(end),
            Err(Stop::Pending) => return Err(Stop::Pending),
        }
    }
}

/// A CSI of raw bytes at `at` (an ESC): its end, `None` if it is not one.
/// Only `Err(Pending)` is returned as an error.
fn raw_csi(src: &Src<'_>, at: usize) -> Read<Option<usize>> {
    let src = src.capped(at + MAX_ESCAPE);
    let byte = |i: usize| match src.byte(i) {
        Ok(b) => Ok(Some(b)),
        Err(Stop::Pending) => Err(Stop::Pending),
        Err(_) => Ok(None),
    };
    if byte(at + 1)? != Some(b'[') {
        return Ok(None);
    }
    let mut i = at + 2;
    let mut phase = 0; // 0 params, 1 intermediates
    loop {
        let Some(b) = byte(i)? else {
            return Ok(None);
        };
        match b {
            0x30..=0x3f if phase == 0 => {}
            0x20..=0x2f => phase = 1,
            0x40..=0x7e => return Ok(Some(i + 1)),
            _ => return Ok(None),
        }
        i += 1;
    }
}

/// A CSI at `at` (an ESC) of raw bytes that stand for themselves (no `%`
/// or `&`, which may begin an escape), wholly in `data` and within
/// [`MAX_ESCAPE`] bytes: its end. It reads the same byte by byte as atom by
/// atom, so the layers need not be gone through.
fn plain_csi(data: &[u8], at: usize) -> Option<usize> {
    let rest = data.get(at..)?;
    let sequence = &rest[..rest.len().min(MAX_ESCAPE)];
    if sequence.get(..2) != Some(&[ESC, b'['][..]) {
        return None;
    }
    let mut params = true;
    for (i, &b) in sequence.iter().enumerate().skip(2) {
        match b {
            0x30..=0x3f if params => {}
            b'%' | b'&' => return None,
            0x20..=0x2f => params = false,
            0x40..=0x7e => return Some(at + i + 1),
            _ => return None,
        }
    }
    None
}

/// The commonest tokens, written out plainly and followed by a byte that
/// continues none of them: `%HH` and `&amp;`, `&lt;`, `&gt;`, `&quot;`,
/// standing for a byte no outer layer reads further. Its value and end.
/// They read the same byte by byte as atom by atom, so the layers need not
/// be gone through.
fn plain_token(data: &[u8], at: usize) -> Option<(u8, usize)> {
    let rest = data.get(at..)?;
    let (byte, len) = match *rest {
        [b'%', high, low, ..] => {
            let digit = |b: u8| char::from(b).to_digit(16);
            let byte = (digit(high)? << 4 | digit(low)?) as u8;
            (byte, 3)
        }
        [b'&', b'a', b'm', b'p', b';', next, ..] => {
            // `&amp;` may be nested: what follows must begin no reference.
            if next.is_ascii_alphabetic() || matches!(next, b'#' | LF | CR | BEL | ESC) {
                return None;
            }
            (b'&', 5)
        }
        [b'&', b'l', b't', b';', ..] => (b'<', 4),
        [b'&', b'g', b't', b';', ..] => (b'>', 4),
        [b'&', b'q', b'u', b'o', b't', b';', ..] => (b'"', 6),
        _ => return None,
    };
    // `%25` nests, a backslash and a quote begin more at the next layer,
    // and noise is read at the last.
    if matches!(byte, b'%' | b'\\' | b'\'' | LF | CR | BEL | ESC) {
        return None;
    }
    Some((byte, at + len))
}

/// Layer 1: a raw byte or a character reference.
fn atom1(src: &Src<'_>, at: usize) -> Read<Atom> {
    let b = src.byte(at)?;
    if b == b'&'
        && let Some(atom) = entity(src, at)?
    {
        return Ok(atom);
    }
    Ok(Atom {
        val: Val::byte(b),
        end: at + 1,
    })
}

/// A reference at `at` (an `&`), nested `&amp;` included; `None` if it is not one.
fn entity(src: &Src<'_>, at: usize) -> Read<Option<Atom>> {
    let mut best = None;
    let mut next = at + 1;
    for _ in 0..=MAX_NESTING {
        match reference(src, next)? {
            None => return Ok(best),
            Some((val, end, is_amp)) => {
                best = Some(Atom { val, end });
                if !is_amp {
                    return Ok(best);
                }
                next = end;
            }
        }
    }
    Ok(best)
}

/// What follows an `&`: a name or number and `;`. Returns the value, the
/// end, and whether it was `amp` (which may nest). Only `Err(Pending)`.
fn reference(src: &Src<'_>, at: usize) -> Read<Option<(Val, usize, bool)>> {
    let byte = |i: usize| match src.byte(i) {
        Ok(b) => Ok(Some(b)),
        Err(Stop::Pending) => Err(Stop::Pending),
        Err(_) => Ok(None),
    };
    let mut i = skip(src, at)?;
    let Some(first) = byte(i)? else {
        return Ok(None);
    };
    if first == b'#' {
        i = skip(src, i + 1)?;
        let (radix, max_digits) = match byte(i)? {
            Some(b'x' | b'X') => {
                i = skip(src, i + 1)?;
                (16, 6)
            }
            _ => (10, 7),
        };
        let mut value: u32 = 0;
        let mut digits = 0;
        loop {
            let Some(b) = byte(i)? else {
                return Ok(None);
            };
            if b == b';' && digits > 0 {
                let valid = (1..=0x10ffff).contains(&value) && !(0xd800..=0xdfff).contains(&value);
                return Ok(valid.then(|| (Val::code_point(value), i + 1, false)));
            }
            let Some(d) = char::from(b).to_digit(radix) else {
                return Ok(None);
            };
            if digits == max_digits {
                return Ok(None);
            }
            value = value * radix + d;
            digits += 1;
            i = skip(src, i + 1)?;
        }
    }
    if !first.is_ascii_alphabetic() {
        return Ok(None);
    }
    let mut name = [0u8; 8];
    let mut len = 0;
    loop {
        let b = match src.byte(i) {
            Ok(b) => b,
            // Wait for more only if what was read may still become a name.
            Err(Stop::Pending) if is_name_prefix(&name[..len]) => return Err(Stop::Pending),
            Err(_) => return Ok(None),
        };
        if b == b';' {
            return Ok(
                entity_value(&name[..len]).map(|c| (Val::char(c), i + 1, &name[..len] == b"amp"))
            );
        }
        if !b.is_ascii_alphabetic() || len == name.len() {
            return Ok(None);
        }
        name[len] = b;
        len += 1;
        i = match skip(src, i + 1) {
            Err(Stop::Pending) if !is_name_prefix(&name[..len]) => return Ok(None),
            other => other?,
        };
    }
}

fn entity_value(name: &[u8]) -> Option<char> {
    ENTITIES
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
        .map(|&(_, c)| c)
}

fn is_name_prefix(prefix: &[u8]) -> bool {
    ENTITIES
        .iter()
        .any(|(n, _)| n.as_bytes().starts_with(prefix))
}

/// A layer-1 atom that is one hex digit, after skipped noise: its value and end.
/// Only `Err(Pending)`.
fn raw_hex(src: &Src<'_>, at: usize) -> Read<Option<(u8, usize)>> {
    let at = skip(src, at)?;
    match atom1(src, at) {
        Ok(atom) => Ok(hex_value(atom.val).map(|d| (d, atom.end))),
        Err(Stop::Pending) => Err(Stop::Pending),
        Err(_) => Ok(None),
    }
}

/// One digit of a `%HH`: a layer-1 atom, or such a digit percent-encoded
/// once more (`%25%37%61` is `%7a` encoded by an encoder that encodes every
/// character, and is `z` as `%257a` is). Only `Err(Pending)`.
fn hex_atom(src: &Src<'_>, at: usize) -> Read<Option<(u8, usize)>> {
    let at = skip(src, at)?;
    let atom = match atom1(src, at) {
        Ok(atom) => atom,
        Err(Stop::Pending) => return Err(Stop::Pending),
        Err(_) => return Ok(None),
    };
    if let Some(d) = hex_value(atom.val) {
        return Ok(Some((d, atom.end)));
    }
    if !atom.val.is(b'%') {
        return Ok(None);
    }
    let Some((high, end)) = raw_hex(src, atom.end)? else {
        return Ok(None);
    };
    let Some((low, end)) = raw_hex(src, end)? else {
        return Ok(None);
    };
    Ok(hex_value(Val::byte(high << 4 | low)).map(|d| (d, end)))
}

fn hex_value(val: Val) -> Option<u8> {
    val.single()
        .and_then(|b| char::from(b).to_digit(16))
        .map(|d| d as u8)
}

/// Layer 2: a layer-1 atom, or `%HH` over layer-1 atoms with nested `%25`.
fn atom2(src: &Src<'_>, at: usize) -> Read<Atom> {
    let first = atom1(src, at)?;
    if !first.val.is(b'%') {
        return Ok(first);
    }
    let mut best = first;
    let mut next = first.end;
    for _ in 0..=MAX_NESTING {
        let Some((high, end)) = hex_atom(src, next)? else {
            break;
        };
        let Some((low, end)) = hex_atom(src, end)? else {
            break;
        };
        let byte = high << 4 | low;
        best = Atom {
            val: Val::byte(byte),
            end,
        };
        if byte != b'%' {
            break;
        }
        next = end;
    }
    Ok(best)
}

/// A layer-2 atom after skipped noise, or `None` where the input stops
/// (end or bound). Only `Err(Pending)`.
fn next_atom2(src: &Src<'_>, at: usize) -> Read<Option<Atom>> {
    let at = skip(src, at)?;
    match atom2(src, at) {
        Ok(atom) => Ok(Some(atom)),
        Err(Stop::Pending) => Err(Stop::Pending),
        Err(_) => Ok(None),
    }
}

/// A layer-2 atom inside an escape sequence, after skipped line breaks (not
/// after a CSI: an ESC there ends the sequence). Only `Err(Pending)`.
fn escape_atom(src: &Src<'_>, mut at: usize) -> Read<Option<Atom>> {
    loop {
        match src.byte(at) {
            Ok(LF | CR) => at += 1,
            Ok(_) => break,
            Err(Stop::Pending) => return Err(Stop::Pending),
            Err(_) => return Ok(None),
        }
    }
    match atom2(src, at) {
        Ok(atom) => Ok(Some(atom)),
        Err(Stop::Pending) => Err(Stop::Pending),
        Err(_) => Ok(None),
    }
}

/// `n` hex digits as layer-2 atoms: their value and end. Only `Err(Pending)`.
fn hex_digits(src: &Src<'_>, mut at: usize, n: usize) -> Read<Option<(u32, usize)>> {
    let mut value = 0u32;
    for _ in 0..n {
        let Some(atom) = next_atom2(src, at)? else {
            return Ok(None);
        };
        let Some(d) = hex_value(atom.val) else {
            return Ok(None);
        };
        value = value << 4 | u32::from(d);
        at = atom.end;
    }
    Ok(Some((value, at)))
}

/// The two octal digits after the first of a `\\NNN`, as layer-2 atoms:
/// their value and end. Only `Err(Pending)`.
fn octal_digits(src: &Src<'_>, mut at: usize) -> Read<Option<(u8, usize)>> {
    let mut value = 0u8;
    for _ in 0..2 {
        let Some(atom) = next_atom2(src, at)? else {
            return Ok(None);
        };
        match atom.val.single() {
            Some(d @ b'0'..=b'7') => value = value << 3 | (d - b'0'),
            _ => return Ok(None),
        }
        at = atom.end;
    }
    Ok(Some((value, at)))
}

/// Layer 3: a layer-2 atom, a shell's quoted `'`, or a backslash run and
/// what it arms.
fn char3(src: &Src<'_>, at: usize) -> Read<Unit> {
    let first = atom2(src, at)?;
    if first.val.is(b'\'') {
        let end = shell_quote(src, first.end)?.unwrap_or(first.end);
        return Ok(Unit {
            out: Out::Val(first.val),
            end,
        });
    }
    if !first.val.is(b'\\') {
        return Ok(Unit {
            out: Out::Val(first.val),
            end: first.end,
        });
    }
    let mut run = 1;
    let mut run_end = first.end;
    loop {
        let armed = match skip(src, run_end).and_then(|i| atom2(src, i)) {
            Ok(atom) => atom,
            Err(Stop::Pending) => return Err(Stop::Pending),
            // Backslashes ending the stream arm nothing: a value ending in
            // `\` decodes as it does inside a JSON string.
            Err(Stop::End) => {
                return Ok(Unit {
                    out: Out::Noise,
                    end: run_end,
                });
            }
            Err(Stop::Limit) => {
                return Ok(Unit {
                    out: Out::Backslashes(run),
                    end: run_end,
                });
            }
        };
        if armed.val.is(b'\\') {
            if run == MAX_BACKSLASHES {
                return Ok(Unit {
                    out: Out::Backslashes(run),
                    end: run_end,
                });
            }
            run += 1;
            run_end = armed.end;
            continue;
        }
        return escaped(src, armed);
    }
}

/// What follows a `'` when a shell wrote a `'` inside single quotes: `\\''`
/// (bash: close, escaped quote, reopen) or `"'"'` (Python's
/// `shlex.quote`); the end of the whole, `None` if neither. The inner
/// quotes may carry backslashes of their own (the trace inside a JSON
/// string). Only `Err(Pending)`.
fn shell_quote(src: &Src<'_>, at: usize) -> Read<Option<usize>> {
    if let Some(end) = quoted_byte(src, at, b'\'', 1..=MAX_BACKSLASHES)? {
        return quoted_byte(src, end, b'\'', 0..=0);
    }
    let Some(end) = quoted_byte(src, at, b'"', 0..=MAX_BACKSLASHES)? else {
        return Ok(None);
    };
    let Some(end) = quoted_byte(src, end, b'\'', 0..=0)? else {
        return Ok(None);
    };
    let Some(end) = quoted_byte(src, end, b'"', 0..=MAX_BACKSLASHES)? else {
        return Ok(None);
    };
    quoted_byte(src, end, b'\'', 0..=0)
}

/// `want` as a layer-2 atom after a run of backslashes whose length is in
/// `run`, noise skipped: where it ends. Only `Err(Pending)`.
fn quoted_byte(
    src: &Src<'_>,
    mut at: usize,
    want: u8,
    run: std::ops::RangeInclusive<usize>,
) -> Read<Option<usize>> {
    let mut backslashes = 0;
    loop {
        let Some(atom) = next_atom2(src, at)? else {
            return Ok(None);
        };
        if atom.val.is(b'\\') && backslashes < *run.end() {
            backslashes += 1;
            at = atom.end;
            continue;
        }
        return Ok((run.contains(&backslashes) && atom.val.is(want)).then_some(atom.end));
    }
}

/// What a backslash run followed by `armed` stands for.
fn escaped(src: &Src<'_>, armed: Atom) -> Read<Unit> {
    let val = |val: Val, end: usize| {
        Ok(Unit {
            out: Out::Val(val),
            end,
        })
    };
    match armed.val.single() {
        Some(b'n') => val(Val::byte(LF), armed.end),
        Some(b'r') => val(Val::byte(CR), armed.end),
        Some(b't') => val(Val::byte(b'\t'), armed.end),
        Some(b'b') => val(Val::byte(0x08), armed.end),
        Some(b'f') => val(Val::byte(0x0c), armed.end),
        Some(high @ b'0'..=b'3') => match octal_digits(src, armed.end)? {
            Some((low, end)) => val(Val::byte((high - b'0') << 6 | low), end),
            None => val(armed.val, armed.end),
        },
        Some(b'x') => match hex_digits(src, armed.end, 2)? {
            Some((byte, end)) => val(Val::byte(byte as u8), end),
            None => val(armed.val, armed.end),
        },
        Some(b'u') => match hex_digits(src, armed.end, 4)? {
            None => val(armed.val, armed.end),
            Some((high @ 0xd800..=0xdbff, end)) => match low_surrogate(src, end)? {
                Some((low, end)) => val(
                    Val::code_point(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)),
                    end,
                ),
                None => val(Val::char('\u{fffd}'), end),
            },
            Some((cp, end)) => val(Val::code_point(cp), end),
        },
        _ => val(armed.val, armed.end),
    }
}

/// A backslash run, `u` and four hex digits making a low surrogate at `at`.
fn low_surrogate(src: &Src<'_>, at: usize) -> Read<Option<(u32, usize)>> {
    let mut at = at;
    let mut run = 0;
    let u = loop {
        let Some(atom) = next_atom2(src, at)? else {
            return Ok(None);
        };
        if atom.val.is(b'\\') && run < MAX_BACKSLASHES {
            run += 1;
            at = atom.end;
            continue;
        }
        break atom;
    };
    if run == 0 || !u.val.is(b'u') {
        return Ok(None);
    }
    Ok(hex_digits(src, u.end, 4)?.filter(|(low, _)| (0xdc00..=0xdfff).contains(low)))
}

/// Layer 4: one unit at `at`.
fn unit(src: &Src<'_>, at: usize) -> Read<Unit> {
    let c = char3(src, at)?;
    let Out::Val(val) = c.out else {
        return Ok(c);
    };
    match val.single() {
        Some(LF) => Ok(Unit {
            out: Out::LineBreak,
            end: indentation(src, c.end)?,
        }),
        Some(CR | BEL) => Ok(Unit {
            out: Out::Noise,
            end: c.end,
        }),
        Some(ESC) => escape(src, at, c.end),
        _ => Ok(c),
    }
}

/// What follows an ESC that spans `start..after`.
fn escape(src: &Src<'_>, start: usize, after: usize) -> Read<Unit> {
    let alone = Ok(Unit {
        out: Out::Noise,
        end: after,
    });
    let short = src.capped(start + MAX_ESCAPE);
    let Some(next) = escape_atom(&short, after)? else {
        return alone;
    };
    let noise_to = |end| {
        Ok(Unit {
            out: Out::Noise,
            end,
        })
    };
    match next.val.single() {
        Some(b'[') => {
            let mut at = next.end;
            let mut phase = 0;
            loop {
                let Some(atom) = escape_atom(&short, at)? else {
                    return alone;
                };
                match atom.val.single() {
                    Some(0x30..=0x3f) if phase == 0 => {}
                    Some(0x20..=0x2f) => phase = 1,
                    Some(0x40..=0x7e) => return noise_to(atom.end),
                    _ => return alone,
                }
                at = atom.end;
            }
        }
        Some(b']' | b'P' | b'X' | b'^' | b'_') => {
            let long = src.capped(start + MAX_STRING);
            match control_string(&long, next.end)? {
                Some((content_end, end)) => Ok(Unit {
                    out: Out::String {
                        start: next.end,
                        end: content_end,
                    },
                    end,
                }),
                None => noise_to(next.end),
            }
        }
        Some(0x20..=0x2f) => {
            let mut at = next.end;
            loop {
                let Some(atom) = escape_atom(&short, at)? else {
                    return alone;
                };
                match atom.val.single() {
                    Some(0x20..=0x2f) => {}
                    Some(0x30..=0x7e) => return noise_to(atom.end),
                    _ => return alone,
                }
                at = atom.end;
            }
        }
        Some(0x30..=0x7e) => noise_to(next.end),
        _ => alone,
    }
}

/// A control string's content from `at` to its terminator: where the
/// content ends and where the terminator ends; `None` if unterminated.
fn control_string(src: &Src<'_>, mut at: usize) -> Read<Option<(usize, usize)>> {
    loop {
        let atom = match atom2(src, at) {
            Ok(atom) => atom,
            Err(Stop::Pending) => return Err(Stop::Pending),
            Err(_) => return Ok(None),
        };
        if atom.val.is(BEL) {
            return Ok(Some((at, atom.end)));
        }
        if atom.val.is(ESC) {
            return match atom2(src, atom.end) {
                Ok(st) if st.val.is(b'\\') => Ok(Some((at, st.end))),
                Err(Stop::Pending) => Err(Stop::Pending),
                _ => Ok(None),
            };
        }
        at = atom.end;
    }
}

/// Whether more input may follow what is being decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Input {
    /// More may follow: a token the input ends inside is left for later.
    Continues,
    /// The stream has ended: a token it ends inside is not a token.
    Ended,
}

/// One decoded unit that is not a plain byte standing for itself:
/// original bytes `orig..orig_end` became canonical bytes `canon..canon_end`.
/// Between two recorded units, original and canonical bytes correspond
/// one to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) orig: usize,
    pub(crate) orig_end: usize,
    pub(crate) canon: usize,
    pub(crate) canon_end: usize,
}

/// A control string: the unit `orig..orig_end` and its content `content..content_end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ControlString {
    pub(crate) orig: usize,
    pub(crate) orig_end: usize,
    pub(crate) content: usize,
    pub(crate) content_end: usize,
}

/// The canonical decoding of a buffer's first `decoded` bytes, extended as
/// bytes arrive; offsets are relative to the buffer.
#[derive(Debug, Default)]
pub(crate) struct Canon {
    pub(crate) bytes: Vec<u8>,
    /// Every unit that is not a plain byte, in order.
    pub(crate) spans: Vec<Span>,
    pub(crate) strings: Vec<ControlString>,
    /// Where deleted line breaks stand in `bytes`: each is the position of
    /// the first canonical byte after one (ascending, without repeats).
    pub(crate) breaks: Vec<usize>,
    /// How much of the buffer is decoded; always a unit boundary.
    pub(crate) decoded: usize,
    /// Deleted noise since the last unit that was not noise, in original bytes.
    noise_run: usize,
}

impl Canon {
    /// Decodes `data[self.decoded..]`: up to the last unit more input could
    /// not change, or everything when `at_end`.
    pub(crate) fn decode(&mut self, data: &[u8], input: Input) {
        let at_end = input == Input::Ended;
        let mut at = self.decoded;
        while at < data.len() {
            let plain = next_special(data, at);
            if plain > at {
                self.bytes.extend_from_slice(&data[at..plain]);
                self.noise_run = 0;
                at = plain;
                if at == data.len() {
                    break;
                }
            }
            if matches!(data[at], CR | BEL) {
                self.noise(at, at + 1);
                at += 1;
                continue;
            }
            if data[at] == LF {
                // Most lines begin with a byte that is neither indentation
                // nor escaped indentation.
                if let Some(&next) = data.get(at + 1)
                    && !matches!(next, b' ' | b'\t' | b'%' | b'&' | b'\\' | ESC)
                {
                    self.line_break(at, at + 1);
                    at += 1;
                    continue;
                }
            }
            if data[at] == ESC {
                // A colour code of plain bytes reads the same byte by byte
                // as atom by atom: the common case, without the layers.
                if let Some(end) = plain_csi(data, at) {
                    self.noise(at, end);
                    at = end;
                    continue;
                }
            }
            if let Some((byte, end)) = plain_token(data, at) {
                self.push_span(at, end, &[byte]);
                self.noise_run = 0;
                at = end;
                continue;
            }
            let src = Src {
                data,
                cap: at + MAX_UNIT,
                at_end,
            };
            if data[at] == LF {
                let Ok(end) = indentation(&src, at + 1) else {
                    break;
                };
                self.line_break(at, end);
                at = end;
                continue;
            }
            let Ok(unit) = unit(&src, at) else {
                // Pending (the only error a unit returns): wait for more.
                break;
            };
            match unit.out {
                Out::Noise => {
                    self.noise(at, unit.end);
                }
                Out::LineBreak => self.line_break(at, unit.end),
                Out::String { start, end } => {
                    self.strings.push(ControlString {
                        orig: at,
                        orig_end: unit.end,
                        content: start,
                        content_end: end,
                    });
                    self.noise(at, unit.end);
                }
                Out::Val(val) => {
                    if unit.end == at + 1 && val.is(data[at]) {
                        self.bytes.push(data[at]);
                    } else {
                        self.push_span(at, unit.end, val.as_bytes());
                    }
                    self.noise_run = 0;
                }
                Out::Backslashes(n) => {
                    let canon = self.bytes.len();
                    self.bytes.resize(canon + n, b'\\');
                    self.spans.push(Span {
                        orig: at,
                        orig_end: unit.end,
                        canon,
                        canon_end: canon + n,
                    });
                    self.noise_run = 0;
                }
            }
            at = unit.end;
        }
        self.decoded = at;
    }

    fn push_span(&mut self, orig: usize, orig_end: usize, out: &[u8]) {
        let canon = self.bytes.len();
        self.bytes.extend_from_slice(out);
        self.spans.push(Span {
            orig,
            orig_end,
            canon,
            canon_end: canon + out.len(),
        });
    }

    /// Deleted noise; whether it was deleted (rather than kept, past the
    /// bound on noise in a row).
    fn noise(&mut self, orig: usize, orig_end: usize) -> bool {
        let len = orig_end - orig;
        if self.noise_run + len <= MAX_NOISE_RUN {
            self.noise_run += len;
            self.push_span(orig, orig_end, &[]);
            true
        } else {
            // Kept as a line break, which no pattern holds: the match is
            // broken and the stream need not hold back more noise.
            self.noise_run = 0;
            self.push_span(orig, orig_end, &[LF]);
            false
        }
    }

    /// An LF and its indentation: noise, whose place is remembered so the
    /// hex view can tell where a line of a dump ends.
    fn line_break(&mut self, orig: usize, orig_end: usize) {
        if self.noise(orig, orig_end) && self.breaks.last() != Some(&self.bytes.len()) {
            self.breaks.push(self.bytes.len());
        }
    }

    /// Where the unit that produced canonical byte `c` starts.
    pub(crate) fn orig_start(&self, c: usize) -> usize {
        let i = self.spans.partition_point(|s| s.canon_end <= c);
        match self.spans.get(i) {
            Some(s) if s.canon <= c => s.orig,
            _ => self.identity(i, c),
        }
    }

    /// Where the unit that produced canonical byte `c` ends.
    pub(crate) fn orig_end(&self, c: usize) -> usize {
        let i = self.spans.partition_point(|s| s.canon_end <= c);
        match self.spans.get(i) {
            Some(s) if s.canon <= c => s.orig_end,
            _ => self.identity(i, c) + 1,
        }
    }

    /// The original position of canonical byte `c`, a plain byte after the
    /// first `before` spans.
    fn identity(&self, before: usize, c: usize) -> usize {
        match before.checked_sub(1).map(|i| self.spans[i]) {
            Some(s) => s.orig_end + (c - s.canon_end),
            None => c,
        }
    }

    /// The first canonical byte produced by a unit starting at or after
    /// original position `pos`.
    pub(crate) fn canon_from(&self, pos: usize) -> usize {
        if pos >= self.decoded {
            return self.bytes.len();
        }
        let i = self.spans.partition_point(|s| s.orig_end <= pos);
        match self.spans.get(i) {
            Some(s) if s.orig < pos => s.canon_end,
            _ => match i.checked_sub(1).map(|i| self.spans[i]) {
                Some(s) => s.canon_end + (pos - s.orig_end),
                None => pos,
            },
        }
    }

    /// The start of the unit holding original position `pos` (`pos` itself
    /// on a boundary); past the decoded part, where decoding resumes.
    pub(crate) fn boundary_before(&self, pos: usize) -> usize {
        if pos >= self.decoded {
            return self.decoded;
        }
        let i = self.spans.partition_point(|s| s.orig_end <= pos);
        match self.spans.get(i) {
            Some(s) if s.orig < pos => s.orig,
            _ => pos,
        }
    }

    /// Forgets the buffer's first `at` bytes (`at` a unit boundary at or
    /// before `decoded`); offsets become relative to `at`.
    pub(crate) fn rebase(&mut self, at: usize) {
        if at == 0 {
            return;
        }
        let c = self.canon_from(at);
        let i = self.spans.partition_point(|s| s.orig_end <= at);
        self.spans.drain(..i);
        for s in &mut self.spans {
            s.orig -= at;
            s.orig_end -= at;
            s.canon -= c;
            s.canon_end -= c;
        }
        let i = self.breaks.partition_point(|&b| b < c);
        self.breaks.drain(..i);
        for b in &mut self.breaks {
            *b -= c;
        }
        let i = self.strings.partition_point(|s| s.orig_end <= at);
        self.strings.drain(..i);
        for s in &mut self.strings {
            s.orig -= at;
            s.orig_end -= at;
            s.content -= at;
            s.content_end -= at;
        }
        self.bytes.drain(..c);
        self.decoded -= at;
    }
}

/// The canonical decoding of `bytes` as a whole stream (its end is the
/// stream's end); control strings' contents are left out.
pub fn canonical(bytes: &[u8]) -> Vec<u8> {
    let mut canon = Canon::default();
    canon.decode(bytes, Input::Ended);
    canon.bytes
}

/// How `form` decodes when more output may follow: its canonical bytes up
/// to where a token may still be completed by what follows, and that place
/// (`form.len()` if nothing is open).
pub(crate) fn open_decoding(form: &[u8]) -> (Vec<u8>, usize) {
    let mut canon = Canon::default();
    canon.decode(form, Input::Continues);
    (canon.bytes, canon.decoded)
}

/// The part of `form` between its leading and trailing noise (as decoded on
/// its own), so that what comes before a form cannot change how it decodes.
pub(crate) fn trim_noise(form: &[u8]) -> &[u8] {
    let mut canon = Canon::default();
    canon.decode(form, Input::Ended);
    if canon.bytes.is_empty() {
        return &[];
    }
    let start = canon.orig_start(0);
    let end = canon.orig_end(canon.bytes.len() - 1);
    &form[start..end]
}

/// How many leading bytes of `form` a unit begun by `context` swallows
/// (0 if the unit ends with the context), in the two possible
/// continuations: more output after the form, and the form ending the
/// stream (which decides like any byte that completes no token). `None`
/// where the unit is still open at the form's end.
pub(crate) fn absorbed(context: &[u8], form: &[u8]) -> [Option<usize>; 2] {
    [
        absorbed_in(context, form, Input::Continues),
        absorbed_in(context, form, Input::Ended),
    ]
}

/// [`absorbed`] for one continuation.
pub(crate) fn absorbed_in(context: &[u8], form: &[u8], input: Input) -> Option<usize> {
    // The unit begun at 0 ends within `MAX_UNIT` bytes: no more is needed.
    let mut buffer = [0u8; MAX_UNIT];
    let context = &context[..context.len().min(MAX_UNIT)];
    let form = &form[..form.len().min(MAX_UNIT - context.len())];
    buffer[..context.len()].copy_from_slice(context);
    buffer[context.len()..context.len() + form.len()].copy_from_slice(form);
    let joined = &buffer[..context.len() + form.len()];
    let last = context.len().saturating_sub(1);
    let mut at = 0;
    loop {
        let src = Src {
            data: joined,
            cap: at + MAX_UNIT,
            at_end: input == Input::Ended,
        };
        let unit = unit(&src, at).ok()?;
        if unit.end > last {
            return Some(unit.end.saturating_sub(context.len()));
        }
        at = unit.end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        String::from_utf8_lossy(&canonical(s.as_bytes())).into_owned()
    }

    #[test]
    fn escapes_are_undone() {
        assert_eq!(c("a%2Fb%2fc"), "a/b/c");
        assert_eq!(c("%2541 %252541 %25zz %4 %zz 100%"), "A A %zz %4 %zz 100%");
        assert_eq!(c("%25%37%61 %25%37a"), "z z", "digits encoded once more");
        assert_eq!(
            c("&amp; &#38; &#x26; &amp;amp;lt; &am &foo; &#0; &#xD800;"),
            "& & & < &am &foo; &#0; &#xD800;"
        );
        assert_eq!(
            c(r#"\"q\" \/ \\\" \u0026\u003c \ud83d\ude00 \ud83d x"#),
            "\"q\" / \" &< 😀 \u{fffd} x"
        );
        assert_eq!(
            c(r"a\nb\r\n\tc \x41 \u12 \q"),
            "abc A u12 q",
            "`\t` indents"
        );
        assert_eq!(c(r"a\tc"), "a\tc");
        assert_eq!(c("%5Cn&bsol;n&#92;\"x"), "\"x");
        assert_eq!(
            c("&#37;&#52;&#49;"),
            "A",
            "entities decode beneath percent-encoding"
        );
        assert_eq!(c("ends with \\"), "ends with ");
    }

    #[test]
    fn terminal_noise_is_deleted() {
        assert_eq!(c("a\r\nb\x07c"), "abc");
        assert_eq!(c("x\x1b[01;31m\x1b[KZt2\x1b[m\x1b[Ky"), "xZt2y");
        assert_eq!(c("a\x1b(Bb\x1b7c\x1b\\d"), "abcd");
        assert_eq!(
            c("a\x1b]0;title\x07b"),
            "ab",
            "control strings are deleted as a whole"
        );
        assert_eq!(
            c("a\x1b]0;title"),
            "a0;title",
            "unterminated: only the introducer"
        );
        assert_eq!(
            c("a\x1b\x01b"),
            "a\x01b",
            "a malformed escape loses only its ESC"
        );
        assert_eq!(
            c("a\\u001b[31mb"),
            "ab",
            "an escaped ESC starts a sequence too"
        );
    }

    #[test]
    fn indentation_after_a_line_break_is_noise() {
        assert_eq!(c("ab\n  cd\r\n\t\tef\n    gh"), "abcdefgh");
        assert_eq!(c("a b\tc  d"), "a b\tc  d", "not after a line break");
        assert_eq!(c("%2\n    B \\u00\n  26"), "+ &", "inside a token too");
        assert_eq!(
            c("{\"k\":\"a\\n  b\"}"),
            "{\"k\":\"ab\"}",
            "after an escaped LF"
        );
        assert_eq!(c("a&#10;&#32;%20\\u0020\\tb"), "ab", "escaped indentation");
        assert_eq!(
            c("a%20\n%20b"),
            "a b",
            "an escaped space before the break stays"
        );
        assert_eq!(
            c("a%5C%6E\x1b[01;31m\x1b[K%20b"),
            "ab",
            "colour codes among the indentation"
        );
        assert_eq!(c("a\n\x1b[0m  b\n  \x1b[0mc"), "abc", "before or after it");
        let mut canon = Canon::default();
        canon.decode(b"ab\n  cd\n\nef", Input::Ended);
        assert_eq!(canon.breaks, [2, 4]);
    }

    #[test]
    fn the_shells_quoted_quote_is_one_quote() {
        // `set -x`, `${v@Q}`; Python's shlex.quote; both inside JSON.
        assert_eq!(c("+ : 'it'\\''s'"), "+ : 'it's'");
        assert_eq!(c("'it'\"'\"'s'"), "'it's'");
        assert_eq!(c("\"'it'\\\\''s'\""), "\"'it's'\"");
        assert_eq!(c("\"'it'\\\"'\\\"'s'\""), "\"'it's'\"");
        assert_eq!(
            c("it's 'quoted' ''"),
            "it's 'quoted' ''",
            "other quotes stay"
        );
        // `$'…'`: `\'`, `\n`, `\t` and three octal digits.
        assert_eq!(c("$'p\\303\\251\\001s\\'s\\tx'"), "$'p\u{e9}\u{1}s's\tx'");
        assert_eq!(
            c("\\0 \\08 \\400 \\12"),
            "0 08 400 12",
            "not three octal digits"
        );
    }

    #[test]
    fn tokens_survive_wraps_and_colours_inside() {
        assert_eq!(
            c("%4\n1 %2\r\n5\x1b[1m41 &#3\n8; \\u00\x1b[31m26 \\\n\""),
            "A A & & \""
        );
    }

    #[test]
    fn special_bytes_are_found_eight_at_a_time() {
        for special in [b'%', b'&', b'\\', ESC, CR, LF, BEL] {
            for at in 0..20 {
                let mut data = vec![b'a'; 20];
                data[3] = b'\t';
                data[at] = special;
                assert_eq!(next_special(&data, 0), at);
                assert_eq!(next_special(&data, at + 1), 20);
            }
        }
        let all: Vec<u8> = (0..=255).collect();
        let expected: Vec<usize> = (0..256).filter(|&b| SPECIAL[b]).collect();
        let mut found = Vec::new();
        let mut at = 0;
        while at < all.len() {
            at = next_special(&all, at);
            if at < all.len() {
                found.push(at);
                at += 1;
            }
        }
        assert_eq!(found, expected);
    }

    #[test]
    fn noise_in_a_row_is_bounded() {
        let mut input = b"a".to_vec();
        input.extend(std::iter::repeat_n(b'\n', MAX_NOISE_RUN + 1));
        input.push(b'b');
        assert_eq!(canonical(&input), b"a\nb");
    }

    #[test]
    fn long_backslash_runs_are_kept() {
        // The first 64 are kept; the 65th and `n` are a line break.
        let run = "\\".repeat(MAX_BACKSLASHES + 1);
        assert_eq!(c(&format!("{run}n")), "\\".repeat(MAX_BACKSLASHES));
    }

    #[test]
    fn open_tokens_are_left_for_more_input() {
        assert_eq!(open_decoding(b"abc%4"), (b"abc".to_vec(), 3));
        assert_eq!(open_decoding(b"abc&am"), (b"abc".to_vec(), 3));
        assert_eq!(open_decoding(b"abc\\"), (b"abc".to_vec(), 3));
        assert_eq!(open_decoding(b"abc%41"), (b"abcA".to_vec(), 6));
        assert_eq!(
            open_decoding(b"abc%25"),
            (b"abc".to_vec(), 3),
            "%2541 may follow"
        );
        assert_eq!(trim_noise(b"\n\x1b[1mabc\r\n"), b"abc");
    }

    #[test]
    fn what_a_context_swallows() {
        assert_eq!(absorbed(b"%", b"41rest"), [Some(2), Some(2)]);
        assert_eq!(absorbed(b"\\", b"nrest"), [Some(1), Some(1)]);
        assert_eq!(absorbed(b"\x1b", b"grest"), [Some(1), Some(1)]);
        assert_eq!(absorbed(b"\x1b[", b"12mrest"), [Some(3), Some(3)]);
        assert_eq!(absorbed(b"\x1b[", b"1234"), [None, Some(0)]);
        assert_eq!(absorbed(b"&am", b"p;x"), [Some(2), Some(2)]);
        assert_eq!(absorbed(b"%", b"zz"), [Some(0), Some(0)]);
    }

    #[test]
    fn the_map_points_back_at_the_original() {
        let data = b"ab%41\ncd";
        let mut canon = Canon::default();
        canon.decode(data, Input::Ended);
        assert_eq!(canon.bytes, b"abAcd");
        assert_eq!(canon.orig_start(2), 2);
        assert_eq!(canon.orig_end(2), 5);
        assert_eq!(canon.orig_start(3), 6);
        assert_eq!(canon.canon_from(3), 3, "inside %41: the next unit's byte");
        assert_eq!(canon.canon_from(5), 3);
        assert_eq!(canon.canon_from(6), 3);
        assert_eq!(canon.boundary_before(4), 2);
        canon.rebase(2);
        assert_eq!(canon.bytes, b"Acd");
        assert_eq!(canon.orig_end(0), 3);
        assert_eq!(canon.orig_start(1), 4);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// The shortcuts for colour codes and line breaks read what the
        /// layers read: the same unit, the same end.
        #[test]
        fn shortcuts_read_as_the_layers_do(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "\x1b[", "\x1b", "[", "0", "1", ";", "m", "K", " ", "!", "~", "a", "\x07",
                "%6d", "%4d", "%25", "%", "&#109;", "&amp;", "&", "\\", "\\t", "\n", "\t", "\r",
                "%5c", "%27", "%0A", "%1b", "%2", "41", "&lt;", "&gt;", "&quot;", "lt;", "amp", "'", "\"", "#38;", "amp;",
            ]), 0..16),
            at_end in proptest::bool::ANY,
        ) {
            let data = pieces.concat().into_bytes();
            let src = Src { data: &data, cap: MAX_UNIT, at_end };
            for at in 0..data.len() {
                let src = Src { cap: at + MAX_UNIT, ..src };
                if let Some(end) = plain_csi(&data, at) {
                    let read = unit(&src, at).map(|u| (u.out, u.end));
                    proptest::prop_assert_eq!(read, Ok((Out::Noise, end)));
                }
                if let Some((byte, end)) = plain_token(&data, at) {
                    let read = unit(&src, at).map(|u| (u.out, u.end));
                    proptest::prop_assert_eq!(read, Ok((Out::Val(Val::byte(byte)), end)));
                }
                if data[at] == LF
                    && let Some(&next) = data.get(at + 1)
                        && !matches!(next, b' ' | b'\t' | b'%' | b'&' | b'\\' | ESC) {
                            proptest::prop_assert_eq!(indentation(&src, at + 1), Ok(at + 1));
                        }
            }
        }

        /// Decoding in pieces gives the same units as decoding at once.
        #[test]
        fn decoding_does_not_depend_on_chunking(
            data in proptest::collection::vec(proptest::sample::select(b"%&\\;#x5Cc0a1un\x1b[m]\x07\r\n25amp;lt' \t\"".to_vec()), 0..120),
            cuts in proptest::collection::vec(0usize..120, 0..6),
        ) {
            let mut whole = Canon::default();
            whole.decode(&data, Input::Ended);
            let mut parts = Canon::default();
            let mut cuts = cuts;
            cuts.sort_unstable();
            for cut in cuts {
                parts.decode(&data[..cut.min(data.len())], Input::Continues);
                proptest::prop_assert!(data.len().min(cut) - parts.decoded.min(cut) <= MAX_UNIT);
            }
            parts.decode(&data, Input::Ended);
            proptest::prop_assert_eq!(&parts.bytes, &whole.bytes);
            proptest::prop_assert_eq!(&parts.spans, &whole.spans);
            proptest::prop_assert_eq!(&parts.strings, &whole.strings);
            proptest::prop_assert_eq!(&parts.breaks, &whole.breaks);
        }
    }
}
