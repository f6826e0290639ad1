//! Secrets at rest: the keyring and envelope encryption.
//!
//! Each secret version gets its own random 256-bit data key; the value is
//! sealed with AES-256-GCM under that data key, and the data key is sealed
//! (wrapped) under the keyring's primary key. Both seals carry associated
//! data binding organization, environment, name and version, so a
//! ciphertext copied to another row, organization or environment fails to
//! open. Rotating the keyring key only re-wraps data keys: values are never
//! decrypted for it.
//!
//! The [`Redactor`] masks every form of every secret (raw, per line, base64
//! and base64url at each alignment, hex, URL-encoded, JSON-escaped, HTML
//! entities, each character written any way its encoder allows, nested) in
//! output streamed in chunks of any size, across line breaks (indented or
//! not) and terminal escape sequences inserted anywhere: it searches the
//! output's [`canonical`] decoding, a hex view of it that reads spaced,
//! grouped and annotated hex dumps as plain hex, and the starts of values
//! cut short before `...` or `…`.
//!
//! A run's [`HistoryKey`] seals what models generated for the run under one
//! data key of its own, wrapped the same way; deleting the wrapped key when
//! the run ends leaves that history unreadable.
//!
//! Pure: no I/O, no clock. Plaintext lives in [`SecretValue`], which is
//! wiped on drop and never printed.

mod decode;
mod envelope;
mod forms;
mod hexview;
mod history;
mod keyring;
pub mod names;
mod patterns;
mod redact;
mod truncated;
mod value;
mod window;

pub use decode::canonical;
pub use envelope::{FORMAT_VERSION, Scope, SealedSecret};
pub use forms::{MIN_SECRET_LEN, forms};
pub use history::{HISTORY_FORMAT, HistoryKey, WrappedHistoryKey};
pub use keyring::{KEYRING_ENV, Keyring};
pub use redact::{MASK, Redactor, StreamRedactor};
pub use value::SecretValue;

/// Everything that can go wrong in this crate. No variant ever holds a key
/// or a secret value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The keyring configuration is missing or wrong; the message names the
    /// bad entry by position and id, never its value.
    #[error("{KEYRING_ENV}: {0}")]
    Keyring(String),
    /// A sealed secret names a key the keyring does not hold.
    #[error("the secret is wrapped by key {0:?}, which is not in the keyring")]
    UnknownKey(String),
    /// A sealed secret of a format this version cannot read.
    #[error("unsupported secret format version {0}")]
    Format(u8),
    /// Decryption failed: a wrong key, a damaged ciphertext, or a ciphertext
    /// that belongs to another organization, environment, name or version.
    #[error(
        "the secret cannot be opened: wrong key, damaged ciphertext, or it belongs to another scope"
    )]
    Decrypt,
    /// The redactor could not be compiled for these secrets.
    #[error("the redactor cannot be built: {0}")]
    Redactor(String),
    /// The system's random number generator failed.
    #[error("no randomness available")]
    Random,
}
