//! What a sandbox user signs in with: a salted digest of a password set through the API, or the
//! hash a bulk-import job gave. Kept beside the user, never in it, so no response shows it.
//!
//! Facts ("Other bulk needs"): password hashes are never returned by the API. Facts ("Bulk
//! import jobs"): a job is the only way to give a user a hash; `POST /users` takes a clear-text
//! password, which the sandbox keeps only as a salted SHA-256 (Auth0 keeps bcrypt; the sandbox
//! only needs to tell a right password from a wrong one, not to resist cracking for long).

use rand::Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One user's credential.
#[derive(Clone)]
pub enum Credential {
    /// A password set through `POST /users` or `PATCH /users/{id}`.
    Password { salt: [u8; 16], digest: [u8; 32] },
    /// The hash fields of a bulk-import record, as the file gave them (one of the two).
    Hash {
        password_hash: Option<Value>,
        custom_password_hash: Option<Value>,
    },
}

impl std::fmt::Debug for Credential {
    /// Never prints a digest, a salt or a hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Password { .. } => f.write_str("Credential::Password(*****)"),
            Credential::Hash { .. } => f.write_str("Credential::Hash(*****)"),
        }
    }
}

impl Credential {
    /// The credential of a clear-text password: a fresh random salt and the digest.
    pub fn from_password(password: &str) -> Credential {
        let salt: [u8; 16] = rand::rng().random();
        Credential::Password {
            salt,
            digest: digest(&salt, password),
        }
    }

    /// Whether `password` is the one this credential was made from. A hash from a job is
    /// verified by [`crate::hashes::verify`], the same code the import engine checks hashes
    /// with.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Credential::Password { salt, digest: kept } => {
                // Compared in full, not stopping at the first difference.
                let given = digest(salt, password);
                given
                    .iter()
                    .zip(kept)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            }
            Credential::Hash {
                password_hash,
                custom_password_hash,
            } => crate::hashes::verify(
                password_hash.as_ref(),
                custom_password_hash.as_ref(),
                password,
            ),
        }
    }
}

fn digest(salt: &[u8; 16], password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_credential_accepts_only_its_password_and_is_salted() {
        let a = Credential::from_password("Correct-Horse-9");
        let b = Credential::from_password("Correct-Horse-9");
        assert!(a.verify("Correct-Horse-9"));
        assert!(!a.verify("correct-horse-9"));
        assert!(!a.verify(""));
        let (Credential::Password { digest: da, .. }, Credential::Password { digest: db, .. }) =
            (&a, &b)
        else {
            panic!("password credentials");
        };
        assert_ne!(da, db, "two salts, two digests");
        assert!(!format!("{a:?}").contains("Horse"));
    }
}
