//! Password hashes as Auth0's bulk-import job takes them (`password_hash`, bcrypt, and
//! `custom_password_hash`): checked before a record is sent, and, in the sandbox, verified
//! against a password at sign-in.
//!
//! SKELETON: the signatures the import and the sandbox build on; the checks and the
//! verification are being written (issue 13). Until then `check` accepts any object and
//! `verify` says no.

use serde_json::Value;

/// Why a record's hash cannot be sent. Never holds a hash value, nor any part of one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HashError {
    /// The path of the field at fault, e.g. `custom_password_hash.salt.encoding`.
    pub field: String,
    pub message: String,
}

/// Checks one record's hash fields: `password_hash` (a bcrypt string) or
/// `custom_password_hash` (an object), never both. `None` for both means no hash.
pub fn check(
    password_hash: Option<&Value>,
    custom_password_hash: Option<&Value>,
) -> Result<(), HashError> {
    let _ = (password_hash, custom_password_hash);
    Ok(())
}

/// Whether `password` is the one `password_hash` or `custom_password_hash` (one of them, as a
/// record carries it, already [`check`]ed) was made from.
#[cfg(feature = "sandbox")]
pub fn verify(
    password_hash: Option<&Value>,
    custom_password_hash: Option<&Value>,
    password: &str,
) -> bool {
    let _ = (password_hash, custom_password_hash, password);
    false
}
