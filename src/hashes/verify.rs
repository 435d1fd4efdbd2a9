//! Verifying a password against a checked hash, as Auth0 does at a migrated user's first
//! sign-in: the sandbox's `/__sandbox/login`.
//!
//! The password is first encoded as `password.encoding` says; a salt is joined to it before
//! it is hashed (`prefix`: salt then password). Every comparison of computed and stored bytes
//! takes the same time whatever they hold.
//!
//! The sandbox is a test tenant: a hash whose cost would take it more than
//! [`MAX_MEMORY_BYTES`] of memory or [`MAX_ITERATIONS`] rounds is not verified (the password is
//! refused) rather than let one sign-in take the machine down. An `mdc2` digest (only reachable
//! through pbkdf2's OpenSSL names) has no implementation here and is refused too.

use hmac::{EagerHash, KeyInit, Mac};

use super::rules::{Digest, Parsed, Position, Salt, Scheme};

/// The most memory one verification may take (argon2's `m`, scrypt's 128·N·r·p).
const MAX_MEMORY_BYTES: u64 = 1 << 30;
/// The most rounds one verification may take (pbkdf2's `i`, argon2's `t`).
const MAX_ITERATIONS: u32 = 10_000_000;

/// Whether `password` is the one the hash was made from.
pub(super) fn verify(parsed: &Parsed, password: &str) -> bool {
    let password = parsed.password.bytes(password);
    match &parsed.scheme {
        Scheme::Bcrypt { hash, salt } => {
            // The crate truncates at bcrypt's 72 bytes, as Auth0 does (the salt counts).
            bcrypt::verify(salted(&password, salt.as_ref()), hash).unwrap_or(false)
        }
        Scheme::Argon2 {
            id,
            memory_kib,
            passes,
            lanes,
            salt,
            hash,
        } => {
            if u64::from(*memory_kib) * 1024 > MAX_MEMORY_BYTES || *passes > MAX_ITERATIONS {
                return false;
            }
            let algorithm = if *id {
                argon2::Algorithm::Argon2id
            } else {
                argon2::Algorithm::Argon2i
            };
            let Ok(params) = argon2::Params::new(*memory_kib, *passes, *lanes, Some(hash.len()))
            else {
                return false;
            };
            let mut out = vec![0; hash.len()];
            argon2::Argon2::new(algorithm, argon2::Version::V0x13, params)
                .hash_password_into(&password, salt, &mut out)
                .is_ok()
                && same(&out, hash)
        }
        Scheme::Pbkdf2 {
            digest,
            iterations,
            salt,
            hash,
        } => {
            if *iterations > MAX_ITERATIONS {
                return false;
            }
            let mut out = vec![0; hash.len()];
            pbkdf2(*digest, &password, salt, *iterations, &mut out) && same(&out, hash)
        }
        // RFC 2307 salted schemes hash the password, then the salt.
        Scheme::Ldap { digest, hash, salt } => {
            let input = [password.as_slice(), salt].concat();
            digest_of(*digest, &input).is_some_and(|out| same(&out, hash))
        }
        Scheme::Plain { digest, hash, salt } => {
            digest_of(*digest, &salted(&password, salt.as_ref()))
                .is_some_and(|out| same(&out, hash))
        }
        Scheme::Hmac {
            digest,
            key,
            hash,
            salt,
        } => hmac_of(*digest, key, &salted(&password, salt.as_ref()))
            .is_some_and(|out| same(&out, hash)),
        Scheme::Scrypt {
            log_n,
            block_size,
            parallelization,
            salt,
            hash,
        } => {
            let memory = 128u64
                .saturating_mul(1u64.checked_shl(u32::from(*log_n)).unwrap_or(u64::MAX))
                .saturating_mul(u64::from(*block_size))
                .saturating_mul(u64::from(*parallelization));
            if memory > MAX_MEMORY_BYTES {
                return false;
            }
            let Ok(params) = scrypt::Params::new(*log_n, *block_size, *parallelization) else {
                return false;
            };
            let mut out = vec![0; hash.len()];
            scrypt::scrypt(&password, salt, &params, &mut out).is_ok() && same(&out, hash)
        }
    }
}

/// The password with its salt joined where the hash had it.
fn salted(password: &[u8], salt: Option<&Salt>) -> Vec<u8> {
    match salt {
        None => password.to_vec(),
        Some(Salt {
            bytes,
            position: Position::Prefix,
        }) => [bytes.as_slice(), password].concat(),
        Some(Salt {
            bytes,
            position: Position::Suffix,
        }) => [password, bytes.as_slice()].concat(),
    }
}

/// Equal bytes, compared in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Calls `$f::<D>($args)` with `D` the RustCrypto type of `$digest`; `None` for mdc2.
macro_rules! with_digest {
    ($digest:expr, $f:ident($($arg:expr),*)) => {
        match $digest {
            Digest::Md4 => Some($f::<md4::Md4>($($arg),*)),
            Digest::Md5 => Some($f::<md5_digest::Md5>($($arg),*)),
            Digest::Mdc2 => None,
            Digest::Ripemd160 => Some($f::<ripemd::Ripemd160>($($arg),*)),
            Digest::Sha1 => Some($f::<sha1::Sha1>($($arg),*)),
            Digest::Sha224 => Some($f::<sha2::Sha224>($($arg),*)),
            Digest::Sha256 => Some($f::<sha2::Sha256>($($arg),*)),
            Digest::Sha384 => Some($f::<sha2::Sha384>($($arg),*)),
            Digest::Sha512 => Some($f::<sha2::Sha512>($($arg),*)),
            Digest::Whirlpool => Some($f::<whirlpool::Whirlpool>($($arg),*)),
        }
    };
}

pub(super) fn digest_of(digest: Digest, data: &[u8]) -> Option<Vec<u8>> {
    fn run<D: EagerHash>(data: &[u8]) -> Vec<u8> {
        D::digest(data).to_vec()
    }
    with_digest!(digest, run(data))
}

pub(super) fn hmac_of(digest: Digest, key: &[u8], message: &[u8]) -> Option<Vec<u8>> {
    fn run<D: EagerHash>(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac =
            <hmac::Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
    with_digest!(digest, run(key, message))
}

/// Fills `out` with PBKDF2-HMAC-`digest`; false when the digest has no implementation.
pub(super) fn pbkdf2(
    digest: Digest,
    password: &[u8],
    salt: &[u8],
    rounds: u32,
    out: &mut [u8],
) -> bool {
    fn run<D: EagerHash>(password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        pbkdf2::pbkdf2_hmac::<D>(password, salt, rounds, out);
    }
    with_digest!(digest, run(password, salt, rounds, out)).is_some()
}
