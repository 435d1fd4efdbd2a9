//! Auth0's rules for a record's hash fields, one algorithm at a time: `password_hash` or
//! `custom_password_hash` becomes a [`Parsed`] hash (what [`super::verify`] computes with), or
//! a [`HashError`] that names the field at fault and never shows any part of a value.
//!
//! The rules and their sources are listed in the module docs of [`super`]. The checks run in a
//! fixed order (the object's keys, `algorithm`, `hash`, then the algorithm's own rules), so a
//! hash with several faults is always refused for the same one.

use crate::format::csv::describe_value;
use serde_json::{Map, Value};

use super::encoding::{self, Encoding, PasswordEncoding};
use super::{Algorithm, CUSTOM_PASSWORD_HASH, HashError, PASSWORD_HASH};

// What a hash holds is read only to verify it (the sandbox); no `Debug`, so that nothing can
// print a decoded hash, salt or key.

/// A hash that passed every rule, decoded.
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub(super) struct Parsed {
    pub algorithm: Algorithm,
    pub scheme: Scheme,
    /// How the password was encoded before it was hashed (`password.encoding`).
    pub password: PasswordEncoding,
}

/// What each algorithm needs to verify a password (bytes decoded from their encodings).
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub(super) enum Scheme {
    /// The modular-crypt string (`$2a$`, `$2b$` or `$2y$`), and a salt added to the password.
    Bcrypt { hash: String, salt: Option<Salt> },
    Argon2 {
        id: bool,
        memory_kib: u32,
        passes: u32,
        lanes: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Pbkdf2 {
        digest: Digest,
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// RFC 2307 `{SCHEME}`: the digest of the password followed by the salt (empty when the
    /// scheme is not salted).
    Ldap {
        digest: Digest,
        hash: Vec<u8>,
        salt: Vec<u8>,
    },
    /// md4, md5, sha1, sha256, sha512: the digest of the password, salted or not.
    Plain {
        digest: Digest,
        hash: Vec<u8>,
        salt: Option<Salt>,
    },
    Hmac {
        digest: Digest,
        key: Vec<u8>,
        hash: Vec<u8>,
        salt: Option<Salt>,
    },
    Scrypt {
        log_n: u8,
        block_size: u32,
        parallelization: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

/// A salt joined to the password before it is hashed.
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub(super) struct Salt {
    pub bytes: Vec<u8>,
    pub position: Position,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Position {
    Prefix,
    Suffix,
}

/// The digests an HMAC, a PBKDF2 or an LDAP hash is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Digest {
    Md4,
    Md5,
    /// Only through pbkdf2's OpenSSL names; nothing here computes it (see the module docs).
    Mdc2,
    Ripemd160,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Whirlpool,
}

impl Digest {
    /// The digest's output, in bytes.
    pub fn len(self) -> usize {
        match self {
            Digest::Md4 | Digest::Md5 | Digest::Mdc2 => 16,
            Digest::Ripemd160 | Digest::Sha1 => 20,
            Digest::Sha224 => 28,
            Digest::Sha256 => 32,
            Digest::Sha384 => 48,
            Digest::Sha512 | Digest::Whirlpool => 64,
        }
    }

    /// Auth0's `hash.digest` names for HMAC.
    const HMAC: [(&'static str, Digest); 9] = [
        ("md4", Digest::Md4),
        ("md5", Digest::Md5),
        ("ripemd160", Digest::Ripemd160),
        ("sha1", Digest::Sha1),
        ("sha224", Digest::Sha224),
        ("sha256", Digest::Sha256),
        ("sha384", Digest::Sha384),
        ("sha512", Digest::Sha512),
        ("whirlpool", Digest::Whirlpool),
    ];

    /// The OpenSSL names Auth0 takes in a `pbkdf2-<digest>` PHC id (compared ignoring case,
    /// as OpenSSL looks them up).
    const PBKDF2: [(&'static str, Digest); 33] = [
        ("RSA-MD4", Digest::Md4),
        ("RSA-MD5", Digest::Md5),
        ("RSA-MDC2", Digest::Mdc2),
        ("RSA-RIPEMD160", Digest::Ripemd160),
        ("RSA-SHA1", Digest::Sha1),
        ("RSA-SHA1-2", Digest::Sha1),
        ("RSA-SHA224", Digest::Sha224),
        ("RSA-SHA256", Digest::Sha256),
        ("RSA-SHA384", Digest::Sha384),
        ("RSA-SHA512", Digest::Sha512),
        ("md4", Digest::Md4),
        ("md4WithRSAEncryption", Digest::Md4),
        ("md5", Digest::Md5),
        ("md5WithRSAEncryption", Digest::Md5),
        ("mdc2", Digest::Mdc2),
        ("mdc2WithRSA", Digest::Mdc2),
        ("ripemd", Digest::Ripemd160),
        ("ripemd160", Digest::Ripemd160),
        ("ripemd160WithRSA", Digest::Ripemd160),
        ("rmd160", Digest::Ripemd160),
        ("sha1", Digest::Sha1),
        ("sha1WithRSAEncryption", Digest::Sha1),
        ("sha224", Digest::Sha224),
        ("sha224WithRSAEncryption", Digest::Sha224),
        ("sha256", Digest::Sha256),
        ("sha256WithRSAEncryption", Digest::Sha256),
        ("sha384", Digest::Sha384),
        ("sha384WithRSAEncryption", Digest::Sha384),
        ("sha512", Digest::Sha512),
        ("sha512WithRSAEncryption", Digest::Sha512),
        ("ssl3-md5", Digest::Md5),
        ("ssl3-sha1", Digest::Sha1),
        ("whirlpool", Digest::Whirlpool),
    ];
}

/// The keys of `custom_password_hash` (Auth0's schema: `additionalProperties: false`).
const CUSTOM_KEYS: [&str; 8] = [
    "algorithm",
    "hash",
    "salt",
    "password",
    "keylen",
    "cost",
    "blockSize",
    "parallelization",
];
const HASH_KEYS: [&str; 4] = ["value", "encoding", "digest", "key"];
const SALT_KEYS: [&str; 3] = ["value", "encoding", "position"];
/// The keys only scrypt takes.
const SCRYPT_KEYS: [&str; 4] = ["keylen", "cost", "blockSize", "parallelization"];
/// RFC 7914: r * p < 2^30.
const SCRYPT_MAX_RP: u64 = 1 << 30;

/// The record's hash, checked: `None` when it carries none.
pub(super) fn parse(
    password_hash: Option<&Value>,
    custom_password_hash: Option<&Value>,
) -> Result<Option<Parsed>, HashError> {
    match (password_hash, custom_password_hash) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(HashError::new(
            CUSTOM_PASSWORD_HASH,
            "the record has both `password_hash` and `custom_password_hash`, and Auth0 takes \
             one or the other: keep the one the hash belongs in (a bcrypt hash fits either)",
        )),
        (Some(value), None) => bcrypt_field(value).map(Some),
        (None, Some(value)) => custom(value).map(Some),
    }
}

/// `password_hash`: a bcrypt string (Auth0: "$2a$ or $2b$").
fn bcrypt_field(value: &Value) -> Result<Parsed, HashError> {
    let Value::String(hash) = value else {
        return Err(HashError::new(
            PASSWORD_HASH,
            format!(
                "`password_hash` must be a bcrypt hash, as a string, not {}",
                describe_value(value)
            ),
        ));
    };
    if !is_bcrypt(hash, &["2a", "2b"]) {
        return Err(HashError::new(
            PASSWORD_HASH,
            format!(
                "`password_hash` is not a bcrypt hash Auth0 takes there: {BCRYPT_FORM}, with \
                 $2a$ or $2b$. Give a $2y$ hash as custom_password_hash {{\"algorithm\": \
                 \"bcrypt\", \"hash\": {{\"value\": ...}}}}, and a hash of another algorithm \
                 as custom_password_hash with its algorithm"
            ),
        ));
    }
    Ok(Parsed {
        algorithm: Algorithm::Bcrypt,
        scheme: Scheme::Bcrypt {
            hash: hash.clone(),
            salt: None,
        },
        password: PasswordEncoding::Utf8,
    })
}

/// How a bcrypt hash is written, for messages.
const BCRYPT_FORM: &str = "a bcrypt hash is 60 characters: the version between $ signs, a \
                           two-digit cost from 04 to 31, a $, then 53 characters of bcrypt's \
                           base64 (./A-Za-z0-9)";

/// True when `hash` is a modular-crypt bcrypt string of one of `versions` (`2a`, ...).
fn is_bcrypt(hash: &str, versions: &[&str]) -> bool {
    let b = hash.as_bytes();
    b.len() == 60
        && hash.is_ascii()
        && b[0] == b'$'
        && versions.contains(&&hash[1..3])
        && b[3] == b'$'
        && hash[4..6]
            .parse::<u32>()
            .is_ok_and(|cost| (4..=31).contains(&cost) && b[4].is_ascii_digit())
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/'))
}

/// `custom_password_hash`: the object, then the rules of its algorithm.
fn custom(value: &Value) -> Result<Parsed, HashError> {
    let top = Obj::of(
        value,
        CUSTOM_PASSWORD_HASH.into(),
        "an object such as {\"algorithm\": \"sha256\", \"hash\": {\"value\": ..., \"encoding\": \
         \"hex\"}}",
    )?;
    top.only(&CUSTOM_KEYS)?;
    let algorithm = algorithm(&top)?;
    let hash = top.object("hash", "an object {\"value\": ..., \"encoding\": ...}")?;
    let Some(hash) = hash else {
        return Err(top.missing(
            "hash",
            "give the hash as {\"value\": ..., \"encoding\": ...}",
        ));
    };
    hash.only(&HASH_KEYS)?;
    let text = match hash.string("value")? {
        Some("") => return Err(hash.error("value", "is empty: give the hash")),
        Some(text) => text,
        None => return Err(hash.missing("value", "give the hash")),
    };
    let encoding = hash.encoding("encoding")?;
    let password = password_encoding(&top)?;
    // Keys that belong to another algorithm would be silently ignored by a login.
    if algorithm != Algorithm::Hmac {
        for key in ["digest", "key"] {
            if hash.has(key) {
                return Err(hash.error(
                    key,
                    &format!(
                        "applies to algorithm hmac only; remove it for {}",
                        algorithm.name()
                    ),
                ));
            }
        }
    }
    if algorithm != Algorithm::Scrypt {
        for key in SCRYPT_KEYS {
            if top.has(key) {
                return Err(top.error(
                    key,
                    &format!(
                        "applies to algorithm scrypt only; remove it for {}",
                        algorithm.name()
                    ),
                ));
            }
        }
    }
    let salt = top.object(
        "salt",
        "an object {\"value\": ..., \"encoding\": ..., \"position\": ...}",
    )?;
    let scheme = match algorithm {
        Algorithm::Argon2 => {
            text_only(&hash, encoding, algorithm)?;
            no_salt(
                &top,
                salt.as_ref(),
                "the salt is inside the PHC string in hash.value",
            )?;
            argon2(text, &hash.at("value"))?
        }
        Algorithm::Bcrypt => {
            text_only(&hash, encoding, algorithm)?;
            if !is_bcrypt(text, &["2a", "2b", "2y"]) {
                return Err(hash.error(
                    "value",
                    &format!(
                        "is not a bcrypt hash Auth0 takes: {BCRYPT_FORM}, with $2a$, $2b$ or \
                         $2y$ (not $2$, $2x$ or $sha1$)"
                    ),
                ));
            }
            Scheme::Bcrypt {
                hash: text.to_string(),
                salt: salt.as_ref().map(salt_of).transpose()?,
            }
        }
        Algorithm::Hmac => {
            let bytes = binary(&hash, text, encoding, algorithm)?;
            let (name, digest) = hmac_digest(&hash)?;
            same_length(
                &hash,
                bytes.len(),
                digest.len(),
                &format!("hmac hashes of digest {name} are"),
            )?;
            Scheme::Hmac {
                digest,
                key: hmac_key(&hash)?,
                hash: bytes,
                salt: salt.as_ref().map(salt_of).transpose()?,
            }
        }
        Algorithm::Ldap => {
            text_only(&hash, encoding, algorithm)?;
            no_salt(
                &top,
                salt.as_ref(),
                "a salted scheme ({SSHA}, {SMD5}) holds it in hash.value",
            )?;
            ldap(text, &hash.at("value"))?
        }
        Algorithm::Md4
        | Algorithm::Md5
        | Algorithm::Sha1
        | Algorithm::Sha256
        | Algorithm::Sha512 => {
            let digest = match algorithm {
                Algorithm::Md4 => Digest::Md4,
                Algorithm::Md5 => Digest::Md5,
                Algorithm::Sha1 => Digest::Sha1,
                Algorithm::Sha256 => Digest::Sha256,
                _ => Digest::Sha512,
            };
            let bytes = binary(&hash, text, encoding, algorithm)?;
            same_length(
                &hash,
                bytes.len(),
                digest.len(),
                &format!("{} hashes are", algorithm.name()),
            )?;
            Scheme::Plain {
                digest,
                hash: bytes,
                salt: salt.as_ref().map(salt_of).transpose()?,
            }
        }
        Algorithm::Pbkdf2 => {
            text_only(&hash, encoding, algorithm)?;
            no_salt(
                &top,
                salt.as_ref(),
                "the salt is inside the PHC string in hash.value",
            )?;
            pbkdf2(text, &hash.at("value"))?
        }
        Algorithm::Scrypt => {
            let bytes = binary(&hash, text, encoding, algorithm)?;
            scrypt(&top, &hash, bytes, salt.as_ref())?
        }
    };
    Ok(Parsed {
        algorithm,
        scheme,
        password,
    })
}

fn algorithm(top: &Obj<'_>) -> Result<Algorithm, HashError> {
    let names = Algorithm::ALL.map(Algorithm::name).join(", ");
    let Some(name) = top.string("algorithm")? else {
        return Err(top.missing(
            "algorithm",
            &format!("name the algorithm the hash was made with: {names}"),
        ));
    };
    Algorithm::from_name(name).ok_or_else(|| {
        let hint = crate::suggest::closest(name, Algorithm::ALL.map(Algorithm::name))
            .map(|known| format!(" (did you mean {known}?)"))
            .unwrap_or_default();
        top.error(
            "algorithm",
            &format!(
                "is {}, not an algorithm Auth0 takes{hint}: one of {names}",
                shown(name)
            ),
        )
    })
}

/// `password.encoding`, `utf8` when not given.
fn password_encoding(top: &Obj<'_>) -> Result<PasswordEncoding, HashError> {
    let Some(password) = top.object("password", "an object {\"encoding\": ...}")? else {
        return Ok(PasswordEncoding::Utf8);
    };
    password.only(&["encoding"])?;
    match password.string("encoding")? {
        None => Ok(PasswordEncoding::Utf8),
        Some(name) => PasswordEncoding::from_name(name).ok_or_else(|| {
            password.error(
                "encoding",
                &format!(
                    "is {}, not one of {}",
                    shown(name),
                    PasswordEncoding::NAMES.join(", ")
                ),
            )
        }),
    }
}

/// Argon2, bcrypt, ldap and pbkdf2 hashes are text: `hash.encoding` is `utf8` or left out.
fn text_only(
    hash: &Obj<'_>,
    encoding: Option<Encoding>,
    algorithm: Algorithm,
) -> Result<(), HashError> {
    match encoding {
        None | Some(Encoding::Utf8) => Ok(()),
        Some(other) => Err(hash.error(
            "encoding",
            &format!(
                "is {}, but {} hashes are text: set it to utf8, or leave it out",
                other.name(),
                algorithm.name()
            ),
        )),
    }
}

/// The other algorithms' hashes are bytes: `hash.encoding` says how they are written.
fn binary(
    hash: &Obj<'_>,
    text: &str,
    encoding: Option<Encoding>,
    algorithm: Algorithm,
) -> Result<Vec<u8>, HashError> {
    let encoding = match encoding {
        Some(e @ (Encoding::Hex | Encoding::Base64)) => e,
        Some(Encoding::Utf8) => {
            return Err(hash.error(
                "encoding",
                &format!(
                    "is utf8, but {} hashes are bytes: set it to hex or base64, as the hash is \
                     written",
                    algorithm.name()
                ),
            ));
        }
        None => {
            return Err(hash.missing(
                "encoding",
                &format!(
                    "{} hashes are bytes: set it to hex or base64, as the hash is written",
                    algorithm.name()
                ),
            ));
        }
    };
    encoding.decode(text).ok_or_else(|| {
        hash.error(
            "value",
            &format!("is not valid {}: check hash.encoding", encoding.name()),
        )
    })
}

/// A decoded hash must be as long as what the algorithm makes, or no password can match it.
/// `what` ends with its verb: "sha256 hashes are".
fn same_length(hash: &Obj<'_>, found: usize, expected: usize, what: &str) -> Result<(), HashError> {
    if found == expected {
        return Ok(());
    }
    Err(hash.error(
        "value",
        &format!(
            "is {found} bytes once decoded, but {what} {expected} bytes: check the algorithm \
             and hash.encoding"
        ),
    ))
}

fn no_salt(top: &Obj<'_>, salt: Option<&Obj<'_>>, why: &str) -> Result<(), HashError> {
    match salt {
        None => Ok(()),
        Some(_) => Err(top.error(
            "salt",
            &format!("is not allowed with this algorithm: {why}"),
        )),
    }
}

/// `salt`: its value (required), encoding (`utf8` by default) and position (`prefix` by
/// default).
fn salt_of(salt: &Obj<'_>) -> Result<Salt, HashError> {
    salt.only(&SALT_KEYS)?;
    let Some(text) = salt.string("value")? else {
        return Err(salt.missing(
            "value",
            "give the salt, or leave `salt` out when the hash has none",
        ));
    };
    let encoding = salt.encoding("encoding")?.unwrap_or(Encoding::Utf8);
    let bytes = encoding.decode(text).ok_or_else(|| {
        salt.error(
            "value",
            &format!("is not valid {}: check salt.encoding", encoding.name()),
        )
    })?;
    let position = match salt.string("position")? {
        None | Some("prefix") => Position::Prefix,
        Some("suffix") => Position::Suffix,
        Some(other) => {
            return Err(salt.error(
                "position",
                &format!(
                    "is {}, not prefix or suffix (where the salt was joined to the password)",
                    shown(other)
                ),
            ));
        }
    };
    Ok(Salt { bytes, position })
}

fn hmac_digest(hash: &Obj<'_>) -> Result<(&'static str, Digest), HashError> {
    let names = Digest::HMAC.map(|(name, _)| name).join(", ");
    let Some(name) = hash.string("digest")? else {
        return Err(hash.missing(
            "digest",
            &format!("an hmac hash needs the digest it was made with: one of {names}"),
        ));
    };
    Digest::HMAC
        .iter()
        .find(|(known, _)| *known == name)
        .copied()
        .ok_or_else(|| hash.error("digest", &format!("is {}, not one of {names}", shown(name))))
}

fn hmac_key(hash: &Obj<'_>) -> Result<Vec<u8>, HashError> {
    let Some(key) = hash.object("key", "an object {\"value\": ..., \"encoding\": ...}")? else {
        return Err(hash.missing(
            "key",
            "an hmac hash needs the key it was made with: {\"value\": ..., \"encoding\": ...}",
        ));
    };
    key.only(&["value", "encoding"])?;
    let Some(text) = key.string("value")? else {
        return Err(key.missing("value", "give the HMAC key"));
    };
    let encoding = key.encoding("encoding")?.unwrap_or(Encoding::Utf8);
    encoding.decode(text).ok_or_else(|| {
        key.error(
            "value",
            &format!("is not valid {}: check hash.key.encoding", encoding.name()),
        )
    })
}

/// `keylen` (required), `cost`, `blockSize`, `parallelization` and the salt, which scrypt takes
/// as its own input (so `position` does not apply).
fn scrypt(
    top: &Obj<'_>,
    hash: &Obj<'_>,
    bytes: Vec<u8>,
    salt: Option<&Obj<'_>>,
) -> Result<Scheme, HashError> {
    let Some(keylen) = top.whole("keylen")? else {
        return Err(top.missing(
            "keylen",
            "a scrypt hash needs its key length in bytes (an integer greater than zero)",
        ));
    };
    let cost = top.whole("cost")?.unwrap_or(16_384);
    if cost < 2 || !cost.is_power_of_two() || cost >= 1 << 63 {
        return Err(top.error(
            "cost",
            "must be a power of two greater than one (16384 when left out)",
        ));
    }
    let block_size = top.whole("blockSize")?.unwrap_or(8);
    let parallelization = top.whole("parallelization")?.unwrap_or(1);
    if block_size.saturating_mul(parallelization) >= SCRYPT_MAX_RP {
        return Err(top.error(
            "parallelization",
            "times blockSize must be less than 2^30 (RFC 7914)",
        ));
    }
    if bytes.len() as u64 != keylen {
        return Err(hash.error(
            "value",
            &format!(
                "is {} bytes once decoded, but keylen says {keylen}: check keylen and \
                 hash.encoding",
                bytes.len()
            ),
        ));
    }
    let salt = match salt {
        None => Vec::new(),
        Some(salt) => salt_of(salt)?.bytes,
    };
    Ok(Scheme::Scrypt {
        log_n: cost.trailing_zeros() as u8,
        block_size: block_size as u32,
        parallelization: parallelization as u32,
        salt,
        hash: bytes,
    })
}

/// RFC 2307 `{SCHEME}base64`: the schemes OpenLDAP writes, md5 and sha family, salted or not
/// (Auth0: "md5|smd5|sha*|ssha*"; `{CRYPT}` is not supported).
fn ldap(value: &str, field: &str) -> Result<Scheme, HashError> {
    const SCHEMES: &str = "{MD5}, {SMD5}, {SHA}, {SSHA}, {SHA256}, {SSHA256}, {SHA384}, \
                           {SSHA384}, {SHA512} or {SSHA512}";
    let bad = |what: &str| {
        HashError::new(
            field,
            format!(
                "`{field}` is not an LDAP password Auth0 takes: {what}. It must be RFC 2307's \
                 {{SCHEME}} followed by base64, the scheme one of {SCHEMES}"
            ),
        )
    };
    let Some((scheme, data)) = value
        .strip_prefix('{')
        .and_then(|rest| rest.split_once('}'))
    else {
        return Err(bad("it does not start with a {SCHEME}"));
    };
    let (digest, salted) = match scheme.to_ascii_uppercase().as_str() {
        "MD5" => (Digest::Md5, false),
        "SMD5" => (Digest::Md5, true),
        "SHA" => (Digest::Sha1, false),
        "SSHA" => (Digest::Sha1, true),
        "SHA256" => (Digest::Sha256, false),
        "SSHA256" => (Digest::Sha256, true),
        "SHA384" => (Digest::Sha384, false),
        "SSHA384" => (Digest::Sha384, true),
        "SHA512" => (Digest::Sha512, false),
        "SSHA512" => (Digest::Sha512, true),
        "CRYPT" => {
            return Err(bad(
                "Auth0 does not support the {CRYPT} scheme (its result depends on the system \
                 that made it)",
            ));
        }
        _ => return Err(bad("its scheme is not one Auth0 takes")),
    };
    let Some(mut bytes) = encoding::base64(data) else {
        return Err(bad("what follows the scheme is not valid base64"));
    };
    let len = digest.len();
    let fits = if salted {
        bytes.len() > len
    } else {
        bytes.len() == len
    };
    if !fits {
        return Err(bad(&format!(
            "it holds {} bytes once decoded, but the scheme's digest is {len} bytes{}",
            bytes.len(),
            if salted { " followed by the salt" } else { "" }
        )));
    }
    let salt = bytes.split_off(len);
    Ok(Scheme::Ldap {
        digest,
        hash: bytes,
        salt,
    })
}

/// A PHC string, split (`$<id>[$v=<version>][$<param>=<value>(,...)][$<salt>[$<hash>]]`);
/// `Err` says which part is wrong, never what it holds.
struct Phc<'a> {
    id: &'a str,
    version: Option<&'a str>,
    params: Vec<(&'a str, &'a str)>,
    salt: Option<&'a str>,
    hash: Option<&'a str>,
}

impl<'a> Phc<'a> {
    fn split(value: &'a str) -> Result<Phc<'a>, &'static str> {
        let Some(rest) = value.strip_prefix('$') else {
            return Err("it does not start with $");
        };
        let mut parts = rest.split('$').peekable();
        let id = parts.next().unwrap_or_default();
        if id.is_empty()
            || id.len() > 32
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("its id (after the first $) is not a PHC id (a-z, 0-9 and -)");
        }
        let version = parts
            .next_if(|part| part.starts_with("v="))
            .map(|part| &part["v=".len()..]);
        let params = match parts.next_if(|part| part.contains('=')) {
            None => Vec::new(),
            Some(part) => part
                .split(',')
                .map(|pair| pair.split_once('=').ok_or("a parameter is not name=value"))
                .collect::<Result<_, _>>()?,
        };
        let salt = parts.next();
        let hash = parts.next();
        if parts.next().is_some() {
            return Err("it has more $-separated parts than a PHC string has");
        }
        if salt.is_some_and(str::is_empty) || hash.is_some_and(str::is_empty) {
            return Err("it has an empty part between two $");
        }
        Ok(Phc {
            id,
            version,
            params,
            salt,
            hash,
        })
    }
}

/// A decimal PHC value.
fn decimal(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Argon2 as Auth0 verifies it (auth0/magic, which calls libsodium's
/// `crypto_pwhash_str_verify`): `$argon2i$` or `$argon2id$`, `v=19`, then `m`, `t` and `p` in
/// that order, a salt of at least 8 bytes and a hash of at least 16, in PHC's B64.
fn argon2(value: &str, field: &str) -> Result<Scheme, HashError> {
    let bad = |what: &str| {
        HashError::new(
            field,
            format!(
                "`{field}` is not an argon2 hash Auth0 takes: {what}. It must be a PHC string \
                 as libsodium writes it: $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash> \
                 (or $argon2i$), salt and hash in base64 without padding"
            ),
        )
    };
    let phc = Phc::split(value).map_err(bad)?;
    let id = match phc.id {
        "argon2id" => true,
        "argon2i" => false,
        "argon2d" => {
            return Err(bad(
                "Auth0 verifies argon2 hashes with libsodium, which takes argon2i and argon2id, \
                 not argon2d",
            ));
        }
        _ => return Err(bad("its id is not argon2i or argon2id")),
    };
    if phc.version != Some("19") {
        return Err(bad(
            "it needs the version v=19 (Argon2 1.3), the only one libsodium takes",
        ));
    }
    let names: Vec<&str> = phc.params.iter().map(|(name, _)| *name).collect();
    if names != ["m", "t", "p"] {
        return Err(bad("its parameters must be m, t and p, in that order"));
    }
    let [memory_kib, passes, lanes] = [0, 1, 2].map(|i| decimal(phc.params[i].1));
    let (Some(memory_kib), Some(passes), Some(lanes)) = (memory_kib, passes, lanes) else {
        return Err(bad("m, t and p must be whole numbers (below 2^32)"));
    };
    if passes < 1
        || !(1..=0x00ff_ffff).contains(&lanes)
        || u64::from(memory_kib) < 8 * u64::from(lanes)
    {
        return Err(bad(
            "t must be at least 1, p from 1 to 16777215, and m at least 8 times p",
        ));
    }
    let salt = phc.salt.and_then(encoding::phc_b64);
    let hash = phc.hash.and_then(encoding::phc_b64);
    let (Some(salt), Some(hash)) = (salt, hash) else {
        return Err(bad(
            "it must end with the salt and the hash, each in base64 without padding",
        ));
    };
    if salt.len() < 8 || hash.len() < 16 {
        return Err(bad(
            "its salt must be at least 8 bytes and its hash at least 16",
        ));
    }
    Ok(Scheme::Argon2 {
        id,
        memory_kib,
        passes,
        lanes,
        salt,
        hash,
    })
}

/// PBKDF2 as Auth0 takes it: `$pbkdf2-<digest>$i=<iterations>,l=<keylen>$<salt>$<hash>`, the
/// digest one of OpenSSL's names, `i` 100000 and `l` 64 when left out, the hash `l` bytes.
fn pbkdf2(value: &str, field: &str) -> Result<Scheme, HashError> {
    let bad = |what: &str| {
        HashError::new(
            field,
            format!(
                "`{field}` is not a pbkdf2 hash Auth0 takes: {what}. It must be a PHC string: \
                 $pbkdf2-<digest>$i=<iterations>,l=<key length>$<salt>$<hash>, e.g. \
                 $pbkdf2-sha512$i=100000,l=64$..., salt and hash in base64 without padding"
            ),
        )
    };
    let phc = Phc::split(value).map_err(bad)?;
    let digest = phc
        .id
        .strip_prefix("pbkdf2-")
        .and_then(|name| {
            Digest::PBKDF2
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(name))
        })
        .map(|(_, digest)| *digest);
    let Some(digest) = digest else {
        return Err(bad(
            "its id must be pbkdf2-<digest>, the digest one of OpenSSL's names (sha1, sha256, \
             sha512, md5, RSA-SHA256, ...)",
        ));
    };
    if phc.version.is_some() {
        return Err(bad("pbkdf2 has no version (v=)"));
    }
    let (mut iterations, mut keylen) = (None, None);
    for (name, text) in &phc.params {
        let slot = match *name {
            "i" => &mut iterations,
            "l" => &mut keylen,
            _ => return Err(bad("its only parameters are i and l")),
        };
        if slot.is_some() {
            return Err(bad("it gives a parameter twice"));
        }
        match decimal(text) {
            Some(n) if n > 0 => *slot = Some(n),
            _ => return Err(bad("i and l must be whole numbers greater than zero")),
        }
    }
    let salt = phc.salt.and_then(encoding::phc_b64);
    let hash = phc.hash.and_then(encoding::phc_b64);
    let (Some(salt), Some(hash)) = (salt, hash) else {
        return Err(bad(
            "it must end with the salt and the hash, each in base64 without padding",
        ));
    };
    let keylen = keylen.unwrap_or(64) as usize;
    if hash.len() != keylen {
        return Err(bad(&format!(
            "its hash is {} bytes once decoded, but l says {keylen} (64 when left out)",
            hash.len()
        )));
    }
    Ok(Scheme::Pbkdf2 {
        digest,
        iterations: iterations.unwrap_or(100_000),
        salt,
        hash,
    })
}

/// A name the record gave (an algorithm, an encoding, a key) as a message may show it: quoted
/// when it is short and plain, else not at all (a value put in the wrong place must not be
/// echoed).
fn shown(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 24
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        format!("`{name}`")
    } else {
        "a name that is none of them".into()
    }
}

/// An object inside a hash field, with the path that names it in messages.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn of(value: &'a Value, path: String, shape: &str) -> Result<Obj<'a>, HashError> {
        match value {
            Value::Object(map) => Ok(Obj { path, map }),
            other => Err(HashError::new(
                &path,
                format!("`{path}` must be {shape}, not {}", describe_value(other)),
            )),
        }
    }

    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn error(&self, key: &str, what: &str) -> HashError {
        let path = self.at(key);
        HashError::new(&path, format!("`{path}` {what}"))
    }

    fn missing(&self, key: &str, what: &str) -> HashError {
        let path = self.at(key);
        HashError::new(&path, format!("`{path}` is missing: {what}"))
    }

    /// Refuses a key this object does not have (a typo would otherwise be ignored, and the
    /// user's sign-in fail).
    fn only(&self, keys: &[&str]) -> Result<(), HashError> {
        let Some(unknown) = self.map.keys().find(|key| !keys.contains(&key.as_str())) else {
            return Ok(());
        };
        let hint = crate::suggest::closest(unknown, keys.iter().copied())
            .map(|known| format!(" (did you mean {known}?)"))
            .unwrap_or_default();
        let name = shown(unknown);
        Err(HashError::new(
            &self.path,
            format!(
                "`{}` has a key it does not take, {name}{hint}: its keys are {}",
                self.path,
                keys.join(", ")
            ),
        ))
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, HashError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(self.error(
                key,
                &format!("must be a string, not {}", describe_value(other)),
            )),
        }
    }

    fn object(&self, key: &str, shape: &str) -> Result<Option<Obj<'a>>, HashError> {
        self.get(key)
            .map(|value| Obj::of(value, self.at(key), shape))
            .transpose()
    }

    /// A whole number greater than zero.
    fn whole(&self, key: &str) -> Result<Option<u64>, HashError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => Ok(n.as_u64()),
            Some(other) => Err(self.error(
                key,
                &format!(
                    "must be a whole number greater than zero, not {}",
                    match other {
                        Value::Number(n) => n.to_string(),
                        other => describe_value(other).to_string(),
                    }
                ),
            )),
        }
    }

    /// An encoding name (`base64`, `hex`, `utf8`), if given.
    fn encoding(&self, key: &str) -> Result<Option<Encoding>, HashError> {
        match self.string(key)? {
            None => Ok(None),
            Some(name) => Encoding::from_name(name).map(Some).ok_or_else(|| {
                self.error(
                    key,
                    &format!(
                        "is {}, not one of {}",
                        shown(name),
                        Encoding::NAMES.join(", ")
                    ),
                )
            }),
        }
    }
}
