//! Password hashes as Auth0's bulk-import job takes them (`password_hash`, bcrypt, and
//! `custom_password_hash`): checked before a record is sent ([`check`], [`PasswordHash`]), and,
//! in the sandbox, verified against a password at sign-in ([`verify`]).
//!
//! Only the bulk-import job takes a hash (`POST /api/v2/users` takes a clear-text password
//! only), and only when the job creates the user. A hash is a credential: no message, log line
//! or `Debug` output here shows any part of a hash value, a salt or an HMAC key.
//!
//! # The rules
//!
//! From Auth0's "Bulk User Import Database Schema and Examples" (the user schema and its
//! "Supported hash algorithms" sections), the PHC string format (P-H-C/phc-string-format) and
//! auth0/magic, whose argon2 verification is libsodium's `crypto_pwhash_str_verify`:
//!
//! | algorithm | `hash.encoding` | `salt` | `hash.value` |
//! |---|---|---|---|
//! | `argon2` | `utf8` (or left out) | not allowed | PHC: `$argon2id$` or `$argon2i$` (libsodium takes no `argon2d`), `v=19`, then `m`, `t`, `p` in that order; salt ≥ 8 bytes and hash ≥ 16, in B64 |
//! | `bcrypt` | `utf8` (or left out) | allowed, joined to the password | `$2a$`, `$2b$` or `$2y$`, cost 04–31, 53 characters of bcrypt's base64 |
//! | `hmac` | `hex` or `base64` | allowed | the digest's length; `hash.digest` (md4, md5, ripemd160, sha1, sha224, sha256, sha384, sha512, whirlpool) and `hash.key.value` required, `hash.key.encoding` `base64`, `hex` or `utf8` (default) |
//! | `ldap` | `utf8` (or left out) | not allowed | RFC 2307 `{SCHEME}base64`: `{MD5}`, `{SMD5}`, `{SHA}`, `{SSHA}`, `{SHA256}`, `{SSHA256}`, `{SHA384}`, `{SSHA384}`, `{SHA512}`, `{SSHA512}`; not `{CRYPT}` |
//! | `md4`, `md5`, `sha1`, `sha256`, `sha512` | `hex` or `base64` | allowed | the digest's length |
//! | `pbkdf2` | `utf8` (or left out) | not allowed | PHC: `$pbkdf2-<digest>$i=…,l=…$<salt>$<hash>`, the digest one of OpenSSL's names Auth0 lists, `i` 100000 and `l` 64 when left out, the hash `l` bytes |
//! | `scrypt` | `hex` or `base64` | allowed (scrypt's own salt input) | `keylen` bytes; `keylen` required (> 0), `cost` a power of two > 1 (16384), `blockSize` (8) and `parallelization` (1) > 0, their product < 2^30 (RFC 7914) |
//!
//! Everywhere: `algorithm` and `hash.value` are required; `hash.encoding`, `salt.encoding` and
//! `hash.key.encoding` are `base64` (standard or URL-safe alphabet, padded or not), `hex` (either
//! case) or `utf8`, and the value must decode; `salt.value` is required in a `salt`;
//! `salt.position` is `prefix` (default) or `suffix`; `password.encoding` is one of `ascii`,
//! `utf8` (default), `utf16le`, `ucs2`, `latin1`, `binary` (Node's encodings: the password is
//! turned into bytes that way before it is hashed). `password_hash` is a bcrypt string with
//! `$2a$` or `$2b$` ("Passwords should be hashed using bcrypt $2a$ or $2b$"); a record has it
//! or `custom_password_hash`, never both ("mutually exclusive").
//!
//! # Decisions (stricter than the documentation, where it says nothing)
//!
//! - **Unknown keys are refused** at every level of `custom_password_hash`, not only at its
//!   top (where the schema has `additionalProperties: false`): `"postion": "suffix"` would
//!   otherwise be ignored, and every migrated user's sign-in would fail without a word.
//! - **Keys of another algorithm are refused**: `hash.digest` and `hash.key` outside `hmac`,
//!   `keylen`, `cost`, `blockSize`, `parallelization` outside `scrypt`.
//! - **The decoded length must fit** the algorithm (a sha256 hash is 32 bytes, an scrypt hash
//!   `keylen`, a pbkdf2 hash `l`): a hex hash marked `base64` decodes, but no password could
//!   ever match it. Checking the length catches it before the import, not at sign-in.
//! - **`hash.encoding` is required** for the byte-valued algorithms (hmac, md*, sha*, scrypt):
//!   there is no default, and hex text is also valid base64.
//! - **`null` is not "absent"** inside `custom_password_hash` (the schema types every key).
//!   The import treats a record's root `password_hash: null` as no hash (see
//!   `import::plan`), but [`check`] given `null` refuses it, as a job would.
//! - **`salt.position` for scrypt** is accepted and has no effect: scrypt takes the salt as an
//!   input of its own.

mod encoding;
mod rules;
#[cfg(all(test, feature = "sandbox"))]
mod tests;
#[cfg(feature = "sandbox")]
mod verify;

use std::fmt;

use serde_json::{Map, Value};

/// The record field that holds a bcrypt hash.
pub const PASSWORD_HASH: &str = "password_hash";
/// The record field that holds a hash of any algorithm Auth0 takes, with its parameters.
pub const CUSTOM_PASSWORD_HASH: &str = "custom_password_hash";
/// Both hash fields.
pub const FIELDS: [&str; 2] = [PASSWORD_HASH, CUSTOM_PASSWORD_HASH];

/// Why a record's hash cannot be sent. Never holds a hash value, nor any part of one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HashError {
    /// The path of the field at fault, e.g. `custom_password_hash.salt.encoding`.
    pub field: String,
    pub message: String,
}

impl HashError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> HashError {
        HashError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Checks one record's hash fields: `password_hash` (a bcrypt string) or
/// `custom_password_hash` (an object), never both. `None` for both means no hash.
pub fn check(
    password_hash: Option<&Value>,
    custom_password_hash: Option<&Value>,
) -> Result<(), HashError> {
    rules::parse(password_hash, custom_password_hash).map(|_| ())
}

/// Whether `password` is the one `password_hash` or `custom_password_hash` (one of them, as a
/// record carries it, already [`check`]ed) was made from. False for a hash that does not pass
/// [`check`], and for the few the sandbox declines to compute (see `verify.rs`: an `mdc2`
/// digest, a cost over 1 GiB of memory or 10 million rounds).
#[cfg(feature = "sandbox")]
pub fn verify(
    password_hash: Option<&Value>,
    custom_password_hash: Option<&Value>,
    password: &str,
) -> bool {
    match rules::parse(password_hash, custom_password_hash) {
        Ok(Some(parsed)) => verify::verify(&parsed, password),
        _ => false,
    }
}

/// The algorithms of `custom_password_hash.algorithm` (a `password_hash` is bcrypt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Argon2,
    Bcrypt,
    Hmac,
    Ldap,
    Md4,
    Md5,
    Sha1,
    Sha256,
    Sha512,
    Pbkdf2,
    Scrypt,
}

impl Algorithm {
    pub const ALL: [Algorithm; 11] = [
        Algorithm::Argon2,
        Algorithm::Bcrypt,
        Algorithm::Hmac,
        Algorithm::Ldap,
        Algorithm::Md4,
        Algorithm::Md5,
        Algorithm::Sha1,
        Algorithm::Sha256,
        Algorithm::Sha512,
        Algorithm::Pbkdf2,
        Algorithm::Scrypt,
    ];

    /// The name Auth0 gives it in `custom_password_hash.algorithm`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Argon2 => "argon2",
            Algorithm::Bcrypt => "bcrypt",
            Algorithm::Hmac => "hmac",
            Algorithm::Ldap => "ldap",
            Algorithm::Md4 => "md4",
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
            Algorithm::Pbkdf2 => "pbkdf2",
            Algorithm::Scrypt => "scrypt",
        }
    }

    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Which of a record's two fields holds its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashField {
    /// `password_hash`: a bcrypt string.
    PasswordHash,
    /// `custom_password_hash`: an object naming its algorithm.
    CustomPasswordHash,
}

impl HashField {
    /// The field's name in a record (and in a bulk-import job's user).
    pub fn name(self) -> &'static str {
        match self {
            HashField::PasswordHash => PASSWORD_HASH,
            HashField::CustomPasswordHash => CUSTOM_PASSWORD_HASH,
        }
    }

    pub fn from_name(name: &str) -> Option<HashField> {
        match name {
            PASSWORD_HASH => Some(HashField::PasswordHash),
            CUSTOM_PASSWORD_HASH => Some(HashField::CustomPasswordHash),
            _ => None,
        }
    }
}

/// A record's password hash that passed [`check`]: the field it goes in and its value, as a
/// bulk-import job's user carries it. Made only through [`PasswordHash::new`] or
/// [`PasswordHash::take`], so holding one means the hash was checked. `Debug` shows the field
/// and the algorithm, never the value; there is no `Serialize`, so it cannot reach a file by
/// accident: a job engine writes [`PasswordHash::value`] under [`PasswordHash::name`] itself.
#[derive(Clone, PartialEq)]
pub struct PasswordHash {
    field: HashField,
    algorithm: Algorithm,
    value: Value,
}

impl PasswordHash {
    /// Checks `value` as the content of `field`.
    pub fn new(field: HashField, value: Value) -> Result<PasswordHash, HashError> {
        let parsed = match field {
            HashField::PasswordHash => rules::parse(Some(&value), None),
            HashField::CustomPasswordHash => rules::parse(None, Some(&value)),
        }?
        .expect("a field was given");
        Ok(PasswordHash {
            field,
            algorithm: parsed.algorithm,
            value,
        })
    }

    /// Takes both hash fields out of `record` and checks them: `None` when it has neither. A
    /// field that is `null` counts as absent (and is taken out too).
    pub fn take(record: &mut Map<String, Value>) -> Result<Option<PasswordHash>, HashError> {
        let mut take = |name: &str| record.shift_remove(name).filter(|v| !v.is_null());
        let bcrypt = take(PASSWORD_HASH);
        let custom = take(CUSTOM_PASSWORD_HASH);
        let Some(parsed) = rules::parse(bcrypt.as_ref(), custom.as_ref())? else {
            return Ok(None);
        };
        // `parse` refuses both at once, so exactly one is here.
        let (field, value) = match (bcrypt, custom) {
            (Some(value), _) => (HashField::PasswordHash, value),
            (None, value) => (
                HashField::CustomPasswordHash,
                value.expect("parse found a hash"),
            ),
        };
        Ok(Some(PasswordHash {
            field,
            algorithm: parsed.algorithm,
            value,
        }))
    }

    /// Which field the hash goes in.
    pub fn field(&self) -> HashField {
        self.field
    }

    /// The name of that field: `password_hash` or `custom_password_hash`.
    pub fn name(&self) -> &'static str {
        self.field.name()
    }

    /// The algorithm (bcrypt for a `password_hash`); not a secret, fit for messages.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The field's value, as the record gave it. A credential: never log or print it.
    pub fn value(&self) -> &Value {
        &self.value
    }

    pub fn into_value(self) -> Value {
        self.value
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("field", &self.field.name())
            .field("algorithm", &self.algorithm.name())
            .field("value", &"<redacted>")
            .finish()
    }
}
