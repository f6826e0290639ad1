//! The stack block of a chained pull request's body: every member of the
//! chain, its state, this pull request marked. Smithers rewrites only its
//! own block and leaves whatever people wrote around it as it was.
//!
//! ```text
//! <!-- smithers-stack v1 STACK THIS MAC -->
//! **Stack** (Smithers keeps this list current):
//! - #11 Add the parser (merged)
//! - #12 Use the parser (open) ← this pull request
//! <!-- /smithers-stack -->
//! ```
//!
//! `MAC` is HMAC-SHA256 (RFC 2104) under the App's marker key over the
//! stack id, the pull request's number and the block's lines, in
//! unpadded base64url. Anyone can write the same comments into a body,
//! and a body is often edited; a block whose MAC does not verify (forged,
//! edited, or copied from another pull request) is not Smithers' and is
//! left alone like any other text. Titles are neutralized (no mentions,
//! closing keywords or HTML), so no title can close the block early.

use std::ops::Range;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::neutral::neutralize_line;

/// The opening marker's start.
const BEGIN: &str = "<!-- smithers-stack v1 ";
/// The closing marker.
const END: &str = "<!-- /smithers-stack -->";
/// The longest title shown, in characters.
const TITLE_MAX: usize = 80;

/// The key the stack blocks' MACs are made with (32 bytes or more; kept
/// in zeroizing memory, never shown by `Debug`).
pub struct MarkerKey(Zeroizing<Vec<u8>>);

impl MarkerKey {
    /// A key of `bytes`.
    pub fn new(bytes: &[u8]) -> MarkerKey {
        MarkerKey(Zeroizing::new(bytes.to_vec()))
    }

    /// A key of its own for `purpose`, derived from `secret` (the App's
    /// webhook secret): HMAC-SHA256(secret, purpose ‖ 0x01), the first
    /// block of HKDF-Expand (RFC 5869) with `secret` as the pseudorandom
    /// key. A MAC made with it says nothing of the secret, and no webhook
    /// signature is ever a valid marker.
    ///
    /// Errors: [`crate::Error::Settings`] if HKDF refuses (it does only
    /// for more than 255 blocks of output; this is one).
    pub fn derive(secret: &[u8], purpose: &str) -> Result<MarkerKey, crate::Error> {
        let refused = |_| crate::Error::Settings("the stack marker key cannot be derived".into());
        let prk = ring::hkdf::Prk::new_less_safe(ring::hkdf::HKDF_SHA256, secret);
        let info = [purpose.as_bytes()];
        let mut key = Zeroizing::new(vec![0u8; 32]);
        prk.expand(&info, ring::hkdf::HKDF_SHA256)
            .map_err(refused)?
            .fill(&mut key)
            .map_err(refused)?;
        Ok(MarkerKey(key))
    }

    fn mac(&self, stack: &str, this: u64, lines: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let signed = format!("smithers-stack v1\n{stack}\n{this}\n{lines}");
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(ring::hmac::sign(&key, signed.as_bytes()).as_ref())
    }
}

impl std::fmt::Debug for MarkerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarkerKey(…)")
    }
}

/// Where a member of a stack stands on GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Open,
    Merged,
    Closed,
}

impl MemberState {
    fn as_str(self) -> &'static str {
        match self {
            MemberState::Open => "open",
            MemberState::Merged => "merged",
            MemberState::Closed => "closed",
        }
    }
}

/// One pull request of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackMember {
    pub number: u64,
    /// As written (an agent's words): neutralized when shown.
    pub title: String,
    pub state: MemberState,
}

/// The stack as pull request `this` shows it, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackBlock {
    /// The stack's id (`[A-Za-z0-9_-]`, as Smithers makes them).
    pub stack: String,
    pub members: Vec<StackMember>,
    pub this: u64,
}

impl StackBlock {
    /// The block's lines between its markers.
    fn lines(&self) -> String {
        let mut lines = String::from("**Stack** (Smithers keeps this list current):\n");
        for m in &self.members {
            let here = if m.number == self.this {
                " ← this pull request"
            } else {
                ""
            };
            lines.push_str(&format!(
                "- #{} {} ({}){here}\n",
                m.number,
                neutralize_line(&m.title, TITLE_MAX),
                m.state.as_str()
            ));
        }
        lines
    }

    /// The whole block, markers included, ending in a newline.
    pub fn render(&self, key: &MarkerKey) -> String {
        let lines = self.lines();
        let mac = key.mac(&self.stack, self.this, &lines);
        format!(
            "{BEGIN}{} {} {mac} -->\n{lines}{END}\n",
            self.stack, self.this
        )
    }
}

/// `body` with `block` in it: Smithers' block for the same pull request
/// (one whose MAC verifies) replaced where it stands, or `block` appended
/// after a blank line when the body has none. Every other byte of `body`
/// is kept as it was.
pub fn with_block(body: &str, block: &StackBlock, key: &MarkerKey) -> String {
    let rendered = block.render(key);
    match find_block(body, key, block.this) {
        Some(span) => format!("{}{rendered}{}", &body[..span.start], &body[span.end..]),
        None if body.is_empty() => rendered,
        None => {
            let sep = if body.ends_with("\n\n") {
                ""
            } else if body.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{body}{sep}{rendered}")
        }
    }
}

/// `body` without pull request `this`'s verified block (a body carried
/// over to the pull request that replaces it); every other byte kept.
pub fn without_block(body: &str, key: &MarkerKey, this: u64) -> String {
    match find_block(body, key, this) {
        Some(span) => format!("{}{}", &body[..span.start], &body[span.end..]),
        None => body.to_string(),
    }
}

/// The span of the first block in `body` whose MAC verifies under `key`
/// for pull request `this`, its closing marker's line end included.
pub fn find_block(body: &str, key: &MarkerKey, this: u64) -> Option<Range<usize>> {
    let mut from = 0;
    while let Some(at) = body[from..].find(BEGIN) {
        let start = from + at;
        from = start + BEGIN.len();
        // Only at the start of a line.
        if start > 0 && !body[..start].ends_with('\n') {
            continue;
        }
        let header_end = body[start..].find('\n').map(|i| start + i)?;
        // GitHub's web editor saves a body with CRLF line ends: the block
        // is the same block.
        let header = body[start + BEGIN.len()..header_end].trim_end_matches('\r');
        let Some(fields) = header.strip_suffix(" -->") else {
            continue;
        };
        let mut fields = fields.split(' ');
        let (Some(stack), Some(number), Some(mac), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if number != this.to_string() {
            continue;
        }
        let lines_start = header_end + 1;
        let Some(end_at) = body[lines_start..].find(END).map(|i| lines_start + i) else {
            continue;
        };
        let lines = body[lines_start..end_at].replace("\r\n", "\n");
        let expected = key.mac(stack, this, &lines);
        if !constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
            continue;
        }
        let mut end = end_at + END.len();
        if body[end..].starts_with("\r\n") {
            end += 2;
        } else if body[end..].starts_with('\n') {
            end += 1;
        }
        return Some(start..end);
    }
    None
}

/// Whether `a` and `b` are equal, compared in time that does not depend
/// on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> MarkerKey {
        MarkerKey::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn the_derived_key_is_hkdf_expands_first_block() {
        // RFC 5869 §2.3: T(1) = HMAC-Hash(PRK, info | 0x01).
        let secret = b"a webhook secret";
        let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let t1 = ring::hmac::sign(&hmac, b"purpose\x01");
        let derived = MarkerKey::derive(secret, "purpose").unwrap();
        assert_eq!(derived.0.as_slice(), t1.as_ref());
    }

    #[test]
    fn a_carried_over_body_loses_only_its_own_block() {
        let body = format!(
            "Reviewers: see below.\n\n{}after\n",
            block(12).render(&key())
        );
        assert_eq!(
            without_block(&body, &key(), 12),
            "Reviewers: see below.\n\nafter\n"
        );
        // Another pull request's block, or a forged one, is text.
        assert_eq!(without_block(&body, &key(), 11), body);
        let other = MarkerKey::new(b"another key, another App, 32 byte");
        assert_eq!(without_block(&body, &other, 12), body);
    }

    fn block(this: u64) -> StackBlock {
        StackBlock {
            stack: "run-7".into(),
            members: vec![
                StackMember {
                    number: 11,
                    title: "Add the parser".into(),
                    state: MemberState::Merged,
                },
                StackMember {
                    number: 12,
                    title: "Use the parser".into(),
                    state: MemberState::Open,
                },
            ],
            this,
        }
    }

    #[test]
    fn a_block_is_appended_then_replaced_in_place() {
        let body = "Why: the parser was slow.\n\nReviewers: see the bench.";
        let first = with_block(body, &block(12), &key());
        assert!(first.starts_with("Why: the parser was slow.\n\nReviewers: see the bench.\n\n"));
        assert!(first.contains("- #12 Use the parser (open) ← this pull request\n"));
        // A person adds a line after the block; the state changes.
        let edited = format!("{first}\nThanks!\n");
        let mut later = block(12);
        later.members[1].state = MemberState::Merged;
        let second = with_block(&edited, &later, &key());
        assert!(second.contains("- #12 Use the parser (merged) ← this pull request\n"));
        assert!(!second.contains("(open)"));
        assert!(second.starts_with("Why: the parser was slow."));
        assert!(second.ends_with("\nThanks!\n"));
        assert_eq!(second.matches(END).count(), 1);
    }

    #[test]
    fn a_body_saved_with_crlf_line_ends_keeps_its_block() {
        let body = with_block("Why: speed.", &block(12), &key()).replace('\n', "\r\n");
        let span = find_block(&body, &key(), 12).expect("still Smithers' block");
        assert!(body[span.clone()].ends_with("-->\r\n"));
        let updated = with_block(&body, &block(12), &key());
        assert_eq!(updated.matches(END).count(), 1);
        assert!(updated.starts_with("Why: speed.\r\n\r\n"));
    }

    #[test]
    fn an_edited_forged_or_copied_block_is_left_alone() {
        let ours = block(12).render(&key());
        // Edited: a member's line changed.
        let edited = ours.replace("(merged)", "(open)");
        assert_eq!(find_block(&edited, &key(), 12), None);
        // Forged: the same text under another key.
        let forged = block(12).render(&MarkerKey::new(b"another key, 32 bytes long......"));
        assert_eq!(find_block(&forged, &key(), 12), None);
        // Copied from another pull request of the stack.
        let copied = block(11).render(&key());
        assert_eq!(find_block(&copied, &key(), 12), None);
        // Each stays, and Smithers' own block is added beside it.
        let body = with_block(&edited, &block(12), &key());
        assert!(body.starts_with(&edited));
        assert!(find_block(&body, &key(), 12).is_some());
    }

    #[test]
    fn titles_cannot_end_the_block_or_mention_anyone() {
        let mut b = block(12);
        b.members[0].title = "<!-- /smithers-stack --> fixes #1 @octocat".into();
        let rendered = b.render(&key());
        assert_eq!(rendered.matches(END).count(), 1);
        assert!(!rendered.contains("@octocat"));
        assert!(find_block(&rendered, &key(), 12).is_some());
    }

    proptest! {
        #[test]
        fn people_s_text_around_the_block_is_kept(
            before in "[^\u{0}]{0,200}",
            after in "[^\u{0}]{0,200}",
            merged in any::<bool>(),
        ) {
            let with = with_block(&before, &block(12), &key());
            let span = find_block(&with, &key(), 12).expect("the block is found");
            let body = format!("{}{}", with, after);
            let mut next = block(12);
            if merged {
                next.members[1].state = MemberState::Merged;
            }
            let updated = with_block(&body, &next, &key());
            // Everything outside the block is byte for byte what it was.
            prop_assert_eq!(&updated[..span.start], &body[..span.start]);
            prop_assert!(updated.ends_with(&after));
            prop_assert_eq!(
                updated.len() - next.render(&key()).len(),
                body.len() - block(12).render(&key()).len()
            );
        }
    }
}
