//! The hashes' tests: Auth0's own examples and other published vectors, hashes made here with
//! the RustCrypto crates for every algorithm, salt position and encoding (each verifying its
//! password and refusing a wrong one), and the rules' refusals (each naming its field, none
//! showing a value).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::Digest as _;

use super::encoding::to_phc_b64;
use super::*;

/// Not ASCII, so that every password encoding gives other bytes.
const PASSWORD: &str = "Corr3ct-Hörse-€";
const WRONG: &str = "Corr3ct-Hörse-$";

/// Checks `hash` (a custom_password_hash), and verifies `password` and a wrong one.
fn verifies(hash: &Value, password: &str) {
    check(None, Some(hash)).unwrap_or_else(|e| panic!("{hash} was refused: {e:?}"));
    assert!(
        verify(None, Some(hash), password),
        "{hash} refused its password"
    );
    assert!(
        !verify(None, Some(hash), WRONG),
        "{hash} took a wrong password"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest named `name`, straight from its crate.
fn crate_digest(name: &str, data: &[u8]) -> Vec<u8> {
    match name {
        "md4" => md4::Md4::digest(data).to_vec(),
        "md5" => md5_digest::Md5::digest(data).to_vec(),
        "ripemd160" => ripemd::Ripemd160::digest(data).to_vec(),
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        "sha224" => sha2::Sha224::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha384" => sha2::Sha384::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        "whirlpool" => whirlpool::Whirlpool::digest(data).to_vec(),
        other => panic!("no digest {other}"),
    }
}

macro_rules! by_digest {
    ($name:expr, $f:ident($($arg:expr),*)) => {
        match $name {
            "md4" => $f::<md4::Md4>($($arg),*),
            "md5" => $f::<md5_digest::Md5>($($arg),*),
            "ripemd160" => $f::<ripemd::Ripemd160>($($arg),*),
            "sha1" => $f::<sha1::Sha1>($($arg),*),
            "sha224" => $f::<sha2::Sha224>($($arg),*),
            "sha256" => $f::<sha2::Sha256>($($arg),*),
            "sha384" => $f::<sha2::Sha384>($($arg),*),
            "sha512" => $f::<sha2::Sha512>($($arg),*),
            "whirlpool" => $f::<whirlpool::Whirlpool>($($arg),*),
            other => panic!("no digest {other}"),
        }
    };
}

fn crate_hmac(name: &str, key: &[u8], message: &[u8]) -> Vec<u8> {
    fn run<D: hmac::EagerHash>(key: &[u8], message: &[u8]) -> Vec<u8> {
        use hmac::{KeyInit, Mac};
        let mut mac = <hmac::Hmac<D> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
    by_digest!(name, run(key, message))
}

fn crate_pbkdf2(name: &str, password: &[u8], salt: &[u8], rounds: u32, len: usize) -> Vec<u8> {
    fn run<D: hmac::EagerHash>(password: &[u8], salt: &[u8], rounds: u32, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        pbkdf2::pbkdf2_hmac::<D>(password, salt, rounds, &mut out);
        out
    }
    by_digest!(name, run(password, salt, rounds, len))
}

// ---- published vectors ----------------------------------------------------------------------

#[test]
fn auth0s_own_examples_verify_with_their_passwords() {
    // The custom_password_hash examples of Auth0's "Bulk User Import Database Schema and
    // Examples", with the passwords they were made from.
    let examples = [
        (
            json!({"algorithm": "md4", "hash": {"value": "AbuUujgF0pPPkJPSFRTpmA==", "encoding": "base64"}}),
            "shh",
        ),
        (
            json!({"algorithm": "sha256", "hash": {"value": "d24e794fce503c3ddb1cd1ba1dd5d9b250cf9917336a0316fefd87fecf79200f", "encoding": "hex"},
                   "salt": {"value": "abc123", "position": "prefix"}}),
            "shh",
        ),
        (
            json!({"algorithm": "bcrypt", "hash": {"value": "$2b$10$C9hB01.YxRSTcn/ZOOo4j.TW7xCKKFKBSF.C7E0xiUwumqIDqWUXG"}}),
            "shh",
        ),
        (
            json!({"algorithm": "bcrypt", "hash": {"value": "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K"}}),
            "hello",
        ),
        (
            json!({"algorithm": "argon2", "hash": {"value": "$argon2id$v=19$m=65536,t=2,p=1$J6Q/82PCyaNpYKRELJyTZg$m04qUAB8rexWDR4+/0f+SFB+4XMFxt7YAvAq2UycYos"}}),
            "shh",
        ),
        (
            json!({"algorithm": "pbkdf2", "hash": {"value": "$pbkdf2-md4$i=100000,l=64$+N375B8q0Fw$fp2R9KAM4hK/votGHC5Fu+jhqbxUD8+Nic/EMSGvNC3UP/k7wSHI0uXluHRSkZfl/BOheYqNOemayG90ZaSSQw", "encoding": "utf8"}}),
            "shh",
        ),
        (
            json!({"algorithm": "pbkdf2", "hash": {"value": "$pbkdf2-sha512$i=100000,l=64$KNyFsA2rWoE$I2CQGI9H0JxdDf3kERRI97kPCGxh0KWBIV3MxyaS191gDGfzVBGyS4BibhgqWQ0/ails8mHuU9ckASxHOOq58w"}}),
            "shh",
        ),
        (
            json!({"algorithm": "ldap", "hash": {"value": "{SSHA384}/cgEjdoZh85DhurDeOQEMO1rMlAur93SVPbYe5XSD4lF7nNuvrBju5hUeg9A6agRemgSXGl5YuE=", "encoding": "utf8"}}),
            "shh",
        ),
        (
            json!({"algorithm": "hmac", "hash": {"value": "cg7f42jH39/2EaAU4wNd4s2lKIk=", "encoding": "base64", "digest": "sha1",
                   "key": {"value": "736868", "encoding": "hex"}}}),
            "test",
        ),
        (
            json!({"algorithm": "scrypt", "hash": {"value": "097f6197e1b41538f723e32aa7a68e8d76227d8e432ce5faa4882a913032db29", "encoding": "hex"},
                   "salt": {"value": "abc123", "encoding": "utf8"}, "keylen": 32, "cost": 4096}),
            "password",
        ),
        // The docs' salt-position example: MD5('salt' + 'password'), "position": "prefix".
        (
            json!({"algorithm": "md5", "hash": {"value": "67A1E09BB1F83F5007DC119C14D663AA", "encoding": "hex"},
                   "salt": {"value": "salt", "position": "prefix"}}),
            "password",
        ),
    ];
    for (hash, password) in &examples {
        verifies(hash, password);
    }
    // And the password_hash example: "$2b$10$nFgu…" was made from `hello`.
    let bcrypt = json!("$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K");
    check(Some(&bcrypt), None).unwrap();
    assert!(verify(Some(&bcrypt), None, "hello"));
    assert!(!verify(Some(&bcrypt), None, "hellO"));
}

#[test]
fn other_published_vectors_verify() {
    let vectors = [
        // md5("password"), sha1("password") as OpenLDAP writes them.
        (
            json!({"algorithm": "ldap", "hash": {"value": "{MD5}X03MO1qnZdYdgyfeuILPmQ=="}}),
            "password",
        ),
        (
            json!({"algorithm": "ldap", "hash": {"value": "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="}}),
            "password",
        ),
        (
            json!({"algorithm": "md5", "hash": {"value": "5f4dcc3b5aa765d61d8327deb882cf99", "encoding": "hex"}}),
            "password",
        ),
        // RFC 4231-style HMAC-SHA256 and HMAC-MD5 of the quick brown fox under the key `key`.
        (
            json!({"algorithm": "hmac", "hash": {"value": "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
                   "encoding": "hex", "digest": "sha256", "key": {"value": "key"}}}),
            "The quick brown fox jumps over the lazy dog",
        ),
        (
            json!({"algorithm": "hmac", "hash": {"value": "80070713463e7749b90c2dc24911e275",
                   "encoding": "hex", "digest": "md5", "key": {"value": "key", "encoding": "utf8"}}}),
            "The quick brown fox jumps over the lazy dog",
        ),
        // RFC 6070: PBKDF2-HMAC-SHA1("password", "salt", 2, 20).
        (
            json!({"algorithm": "pbkdf2", "hash": {"value": format!("$pbkdf2-sha1$i=2,l=20${}${}",
                to_phc_b64(b"salt"), to_phc_b64(&[0xea, 0x6c, 0x01, 0x4d, 0xc7, 0x2d, 0x6f, 0x8c, 0xcd, 0x1e, 0xd9, 0x2a, 0xce, 0x1d, 0x41, 0xf0, 0xd8, 0xde, 0x89, 0x57]))}}),
            "password",
        ),
        // RFC 7914: scrypt("password", "NaCl", N=1024, r=8, p=16, 64).
        (
            json!({"algorithm": "scrypt", "hash": {"value": "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
                   "encoding": "hex"}, "salt": {"value": "NaCl"}, "keylen": 64, "cost": 1024, "blockSize": 8, "parallelization": 16}),
            "password",
        ),
    ];
    for (hash, password) in &vectors {
        verifies(hash, password);
    }
}

// ---- vectors made here ----------------------------------------------------------------------

/// A salt as the record gives it, its bytes, and whether it goes before the password.
struct SaltCase {
    json: Option<Value>,
    bytes: Vec<u8>,
    prefix: bool,
}

fn salt_cases() -> Vec<SaltCase> {
    vec![
        SaltCase {
            json: None,
            bytes: vec![],
            prefix: true,
        },
        // Defaults: utf8, prefix.
        SaltCase {
            json: Some(json!({"value": "s4lt-é"})),
            bytes: "s4lt-é".as_bytes().to_vec(),
            prefix: true,
        },
        SaltCase {
            json: Some(json!({"value": "73616C74", "encoding": "hex", "position": "suffix"})),
            bytes: b"salt".to_vec(),
            prefix: false,
        },
        SaltCase {
            json: Some(json!({"value": "AAEC/w==", "encoding": "base64", "position": "prefix"})),
            bytes: vec![0, 1, 2, 255],
            prefix: true,
        },
        SaltCase {
            json: Some(json!({"value": "AAEC_w", "encoding": "base64", "position": "suffix"})),
            bytes: vec![0, 1, 2, 255],
            prefix: false,
        },
    ]
}

impl SaltCase {
    fn join(&self, password: &[u8]) -> Vec<u8> {
        if self.prefix {
            [self.bytes.as_slice(), password].concat()
        } else {
            [password, self.bytes.as_slice()].concat()
        }
    }

    fn put(&self, hash: &mut Value) {
        if let Some(salt) = &self.json {
            hash["salt"] = salt.clone();
        }
    }
}

/// Each way a byte hash may be written, and its `hash.encoding`.
fn written(bytes: &[u8]) -> [(String, &'static str); 4] {
    [
        (hex(bytes), "hex"),
        (hex(bytes).to_uppercase(), "hex"),
        (STANDARD.encode(bytes), "base64"),
        (URL_SAFE_NO_PAD.encode(bytes), "base64"),
    ]
}

/// `password.encoding` (none: utf8), and the bytes it makes of [`PASSWORD`].
fn password_cases() -> [(Option<&'static str>, Vec<u8>); 4] {
    let utf16: Vec<u8> = PASSWORD.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let latin1: Vec<u8> = PASSWORD.encode_utf16().map(|u| u as u8).collect();
    [
        (None, PASSWORD.as_bytes().to_vec()),
        (Some("utf8"), PASSWORD.as_bytes().to_vec()),
        (Some("utf16le"), utf16),
        (Some("latin1"), latin1),
    ]
}

fn with_password_encoding(hash: &mut Value, encoding: Option<&str>) {
    if let Some(encoding) = encoding {
        hash["password"] = json!({"encoding": encoding});
    }
}

#[test]
fn md_and_sha_hashes_verify_with_every_salt_position_and_encoding() {
    for algorithm in ["md4", "md5", "sha1", "sha256", "sha512"] {
        for salt in salt_cases() {
            for (encoding, password) in password_cases() {
                let bytes = crate_digest(algorithm, &salt.join(&password));
                for (value, written_as) in written(&bytes) {
                    let mut hash = json!({"algorithm": algorithm, "hash": {"value": value, "encoding": written_as}});
                    salt.put(&mut hash);
                    with_password_encoding(&mut hash, encoding);
                    verifies(&hash, PASSWORD);
                }
            }
        }
    }
}

#[test]
fn hmac_hashes_verify_for_every_digest_key_encoding_and_salt() {
    let key = [0x6b, 0x65, 0x79, 0xff, 0x00];
    let keys = [
        (json!({"value": hex(&key), "encoding": "hex"}), key.to_vec()),
        (
            json!({"value": STANDARD.encode(key), "encoding": "base64"}),
            key.to_vec(),
        ),
        (json!({"value": "k€y"}), "k€y".as_bytes().to_vec()),
    ];
    for digest in [
        "md4",
        "md5",
        "ripemd160",
        "sha1",
        "sha224",
        "sha256",
        "sha384",
        "sha512",
        "whirlpool",
    ] {
        for (key_json, key_bytes) in &keys {
            for salt in salt_cases() {
                let bytes = crate_hmac(digest, key_bytes, &salt.join(PASSWORD.as_bytes()));
                let (value, written_as) = &written(&bytes)[2];
                let mut hash = json!({"algorithm": "hmac", "hash": {"value": value, "encoding": written_as,
                                      "digest": digest, "key": key_json}});
                salt.put(&mut hash);
                verifies(&hash, PASSWORD);
            }
        }
    }
}

#[test]
fn ldap_passwords_verify_for_every_scheme_salted_or_not() {
    let salt = [7u8, 1, 2, 3, 4, 5, 6, 8];
    for (scheme, digest, salted) in [
        ("MD5", "md5", false),
        ("SMD5", "md5", true),
        ("SHA", "sha1", false),
        ("SSHA", "sha1", true),
        ("SHA256", "sha256", false),
        ("SSHA256", "sha256", true),
        ("SHA384", "sha384", false),
        ("ssha384", "sha384", true),
        ("SHA512", "sha512", false),
        ("SSHA512", "sha512", true),
    ] {
        let salt: &[u8] = if salted { &salt } else { &[] };
        for (encoding, password) in password_cases() {
            let stored = [
                crate_digest(digest, &[password.as_slice(), salt].concat()),
                salt.to_vec(),
            ]
            .concat();
            let mut hash = json!({"algorithm": "ldap", "hash": {"value": format!("{{{scheme}}}{}", STANDARD.encode(&stored))}});
            with_password_encoding(&mut hash, encoding);
            verifies(&hash, PASSWORD);
        }
    }
}

#[test]
fn pbkdf2_hashes_verify_for_every_digest_and_its_openssl_names() {
    let salt = b"pbkdf2-salt!";
    // (the PHC id's digest, the crate's digest)
    for (name, digest) in [
        ("sha1", "sha1"),
        ("RSA-SHA1-2", "sha1"),
        ("ssl3-sha1", "sha1"),
        ("sha224", "sha224"),
        ("sha256", "sha256"),
        ("sha256WithRSAEncryption", "sha256"),
        ("RSA-SHA384", "sha384"),
        ("sha512", "sha512"),
        ("md4", "md4"),
        ("RSA-MD5", "md5"),
        ("ssl3-md5", "md5"),
        ("rmd160", "ripemd160"),
        ("ripemd", "ripemd160"),
        ("whirlpool", "whirlpool"),
    ] {
        let id = format!("pbkdf2-{}", name.to_lowercase());
        for (params, rounds, len) in [
            ("i=1000,l=32", 1000, 32),
            ("l=20,i=3", 3, 20),
            ("i=500", 500, 64),
        ] {
            let bytes = crate_pbkdf2(digest, PASSWORD.as_bytes(), salt, rounds, len);
            let value = format!("${id}${params}${}${}", to_phc_b64(salt), to_phc_b64(&bytes));
            verifies(
                &json!({"algorithm": "pbkdf2", "hash": {"value": value}}),
                PASSWORD,
            );
        }
    }
    // Without parameters: i=100000, l=64.
    let bytes = crate_pbkdf2("sha256", PASSWORD.as_bytes(), salt, 100_000, 64);
    let value = format!("$pbkdf2-sha256${}${}", to_phc_b64(salt), to_phc_b64(&bytes));
    let hash = json!({"algorithm": "pbkdf2", "hash": {"value": value, "encoding": "utf8"}});
    check(None, Some(&hash)).unwrap();
    assert!(verify(None, Some(&hash), PASSWORD));
    // An mdc2 digest is Auth0's to take, but the sandbox cannot compute it.
    let mdc2 = format!(
        "$pbkdf2-mdc2$i=1,l=16${}${}",
        to_phc_b64(salt),
        to_phc_b64(&[0; 16])
    );
    let hash = json!({"algorithm": "pbkdf2", "hash": {"value": mdc2}});
    check(None, Some(&hash)).unwrap();
    assert!(!verify(None, Some(&hash), PASSWORD));
}

#[test]
fn argon2_hashes_verify_for_both_variants_libsodium_takes() {
    let salt = b"sixteen byte slt";
    for (id, algorithm) in [
        ("argon2id", argon2::Algorithm::Argon2id),
        ("argon2i", argon2::Algorithm::Argon2i),
    ] {
        for (m, t, p, len) in [(64, 1, 1, 32), (256, 3, 2, 16)] {
            for (encoding, password) in password_cases() {
                let params = argon2::Params::new(m, t, p, Some(len)).unwrap();
                let mut out = vec![0; len];
                argon2::Argon2::new(algorithm, argon2::Version::V0x13, params)
                    .hash_password_into(&password, salt, &mut out)
                    .unwrap();
                let value = format!(
                    "${id}$v=19$m={m},t={t},p={p}${}${}",
                    to_phc_b64(salt),
                    to_phc_b64(&out)
                );
                let mut hash = json!({"algorithm": "argon2", "hash": {"value": value}});
                with_password_encoding(&mut hash, encoding);
                verifies(&hash, PASSWORD);
            }
        }
    }
}

#[test]
fn scrypt_hashes_verify_with_their_parameters_and_salt() {
    let salts = [
        (None, vec![]),
        (Some(json!({"value": "NaCl"})), b"NaCl".to_vec()),
        (
            Some(json!({"value": "00ff10", "encoding": "hex", "position": "suffix"})),
            vec![0, 255, 16],
        ),
    ];
    for (salt_json, salt) in &salts {
        for (cost, block_size, parallelization, keylen) in [
            (16u64, 1u32, 1u32, 32usize),
            (1024, 8, 2, 64),
            (16384, 8, 1, 16),
        ] {
            let log_n = cost.trailing_zeros() as u8;
            let params = scrypt::Params::new(log_n, block_size, parallelization).unwrap();
            let mut out = vec![0; keylen];
            scrypt::scrypt(PASSWORD.as_bytes(), salt, &params, &mut out).unwrap();
            for (value, written_as) in written(&out) {
                let mut hash = json!({"algorithm": "scrypt", "hash": {"value": value, "encoding": written_as},
                                      "keylen": keylen});
                // The defaults (16384, 8, 1) are left out where they apply.
                if cost != 16384 {
                    hash["cost"] = cost.into();
                }
                if block_size != 8 {
                    hash["blockSize"] = block_size.into();
                }
                if parallelization != 1 {
                    hash["parallelization"] = parallelization.into();
                }
                if let Some(salt) = salt_json {
                    hash["salt"] = salt.clone();
                }
                verifies(&hash, PASSWORD);
            }
        }
    }
}

#[test]
fn bcrypt_hashes_verify_in_each_form_with_a_salt_before_or_after() {
    let parts = bcrypt::hash_with_result(PASSWORD, 4).unwrap();
    for version in [
        bcrypt::Version::TwoA,
        bcrypt::Version::TwoB,
        bcrypt::Version::TwoY,
    ] {
        let value = parts.format_for_version(version);
        verifies(
            &json!({"algorithm": "bcrypt", "hash": {"value": value}}),
            PASSWORD,
        );
        verifies(
            &json!({"algorithm": "bcrypt", "hash": {"value": value, "encoding": "utf8"}}),
            PASSWORD,
        );
    }
    for salt in salt_cases() {
        let value = bcrypt::hash(salt.join(PASSWORD.as_bytes()), 4).unwrap();
        let mut hash = json!({"algorithm": "bcrypt", "hash": {"value": value}});
        salt.put(&mut hash);
        verifies(&hash, PASSWORD);
    }
    // password_hash takes $2a$ and $2b$.
    for version in [bcrypt::Version::TwoA, bcrypt::Version::TwoB] {
        let value = json!(parts.format_for_version(version));
        check(Some(&value), None).unwrap();
        assert!(verify(Some(&value), None, PASSWORD));
        assert!(!verify(Some(&value), None, WRONG));
    }
    // Past 72 bytes, bcrypt (and so Auth0) reads no further.
    let long = "x".repeat(72);
    let value = json!(bcrypt::hash(&long, 4).unwrap());
    assert!(verify(Some(&value), None, &format!("{long}and more")));
}

#[test]
fn nothing_to_verify_or_a_refused_hash_never_verifies() {
    assert!(!verify(None, None, PASSWORD));
    let bcrypt = json!(bcrypt::hash(PASSWORD, 4).unwrap());
    let sha = json!({"algorithm": "sha1", "hash": {"value": hex(&crate_digest("sha1", PASSWORD.as_bytes())), "encoding": "hex"}});
    assert!(!verify(Some(&bcrypt), Some(&sha), PASSWORD), "both fields");
    let mut typo = sha.clone();
    typo["hash"]["encodng"] = "hex".into();
    assert!(!verify(None, Some(&typo), PASSWORD));
    assert!(verify(None, Some(&sha), PASSWORD));
}

#[test]
fn a_hash_too_costly_for_the_sandbox_is_not_verified() {
    // m = 4 GiB: the check takes it (Auth0 might), the sandbox does not compute it.
    let value = format!(
        "$argon2id$v=19$m=4194304,t=1,p=1${}${}",
        to_phc_b64(&[1; 16]),
        to_phc_b64(&[2; 32])
    );
    let hash = json!({"algorithm": "argon2", "hash": {"value": value}});
    check(None, Some(&hash)).unwrap();
    assert!(!verify(None, Some(&hash), PASSWORD));
    let hash = json!({"algorithm": "scrypt", "hash": {"value": hex(&[0; 32]), "encoding": "hex"},
                      "keylen": 32, "cost": 1u64 << 24, "blockSize": 8});
    check(None, Some(&hash)).unwrap();
    assert!(!verify(None, Some(&hash), PASSWORD));
}

// ---- the rules' refusals --------------------------------------------------------------------

/// Valid hashes of each algorithm, to break one rule at a time.
fn valid(algorithm: &str) -> Value {
    let sha256 = crate_digest("sha256", PASSWORD.as_bytes());
    match algorithm {
        "sha256" => {
            json!({"algorithm": "sha256", "hash": {"value": hex(&sha256), "encoding": "hex"}})
        }
        "hmac" => {
            json!({"algorithm": "hmac", "hash": {"value": hex(&sha256), "encoding": "hex", "digest": "sha256",
                         "key": {"value": "k3y-for-the-hmac-VALUE"}}})
        }
        "scrypt" => {
            json!({"algorithm": "scrypt", "hash": {"value": hex(&sha256), "encoding": "hex"}, "keylen": 32})
        }
        "bcrypt" => {
            json!({"algorithm": "bcrypt", "hash": {"value": "$2b$04$abcdefghijklmnopqrstuuVALUEVALUEVALUEVALUEVALUEVALUE."}})
        }
        "argon2" => {
            json!({"algorithm": "argon2", "hash": {"value": format!("$argon2id$v=19$m=64,t=1,p=1${}${}",
                           to_phc_b64(b"SALTVALUE-16byte"), to_phc_b64(b"HASHVALUE-32-bytes-long-enough!!"))}})
        }
        "pbkdf2" => {
            json!({"algorithm": "pbkdf2", "hash": {"value": format!("$pbkdf2-sha256$i=1000,l=32${}${}",
                           to_phc_b64(b"SALTVALUE-pbkdf2"), to_phc_b64(&sha256))}})
        }
        "ldap" => {
            json!({"algorithm": "ldap", "hash": {"value": format!("{{SSHA}}{}", STANDARD.encode(b"HASHVALUE-20-bytes!!SALTVALUE"))}})
        }
        other => panic!("no valid {other}"),
    }
}

fn put(mut value: Value, path: &[&str], new: Value) -> Value {
    let (last, parents) = path.split_last().unwrap();
    let mut at = &mut value;
    for key in parents {
        at = &mut at[*key];
    }
    at[*last] = new;
    value
}

fn remove(mut value: Value, path: &[&str]) -> Value {
    let (last, parents) = path.split_last().unwrap();
    let mut at = &mut value;
    for key in parents {
        at = &mut at[*key];
    }
    at.as_object_mut().unwrap().shift_remove(*last);
    value
}

/// Every string in `value` of 6 characters or more, but key and algorithm names: what a
/// message must never show.
fn values_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.len() >= 6 => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| values_in(v, out)),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| {
                !matches!(k.as_str(), "algorithm" | "digest" | "encoding" | "position")
            })
            .for_each(|(_, v)| values_in(v, out)),
        _ => {}
    }
}

#[test]
fn each_rule_refuses_naming_the_field_and_showing_no_value() {
    let s = |text: &str| Value::String(text.into());
    // (custom_password_hash, field, words the message has)
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            s("$2b$04$abcdefghijklmnopqrstuuVALUEVALUEVALUEVALUEVALUEVALUE."),
            "custom_password_hash",
            "must be an object",
        ),
        (
            put(valid("sha256"), &["salt_prefix"], s("SALTVALUE")),
            "custom_password_hash",
            "salt_prefix",
        ),
        (
            remove(valid("sha256"), &["algorithm"]),
            "custom_password_hash.algorithm",
            "is missing",
        ),
        (
            put(valid("sha256"), &["algorithm"], s("sha-256")),
            "custom_password_hash.algorithm",
            "did you mean sha256?",
        ),
        (
            put(valid("sha256"), &["algorithm"], s("SHA256")),
            "custom_password_hash.algorithm",
            "did you mean sha256?",
        ),
        (
            put(valid("sha256"), &["algorithm"], json!(256)),
            "custom_password_hash.algorithm",
            "must be a string",
        ),
        (
            remove(valid("sha256"), &["hash"]),
            "custom_password_hash.hash",
            "is missing",
        ),
        (
            put(valid("sha256"), &["hash"], s("HASHVALUE-as-a-string")),
            "custom_password_hash.hash",
            "must be an object",
        ),
        (
            remove(valid("sha256"), &["hash", "value"]),
            "custom_password_hash.hash.value",
            "is missing",
        ),
        (
            put(valid("sha256"), &["hash", "value"], s("")),
            "custom_password_hash.hash.value",
            "is empty",
        ),
        (
            put(valid("sha256"), &["hash", "encoding"], s("latin1")),
            "custom_password_hash.hash.encoding",
            "base64, hex, utf8",
        ),
        (
            remove(valid("sha256"), &["hash", "encoding"]),
            "custom_password_hash.hash.encoding",
            "hex or base64",
        ),
        (
            put(valid("sha256"), &["hash", "encoding"], s("utf8")),
            "custom_password_hash.hash.encoding",
            "hex or base64",
        ),
        (
            put(valid("sha256"), &["hash", "value"], s("zzHASHVALUEzz")),
            "custom_password_hash.hash.value",
            "not valid hex",
        ),
        (
            put(valid("sha256"), &["hash", "encoding"], s("base64")),
            "custom_password_hash.hash.value",
            "48 bytes once decoded, but sha256 hashes are 32",
        ),
        (
            put(valid("sha256"), &["algorithm"], s("sha512")),
            "custom_password_hash.hash.value",
            "sha512 hashes are 64",
        ),
        (
            put(valid("sha256"), &["hash", "digest"], s("sha256")),
            "custom_password_hash.hash.digest",
            "hmac only",
        ),
        (
            put(valid("sha256"), &["keylen"], json!(32)),
            "custom_password_hash.keylen",
            "scrypt only",
        ),
        (
            put(valid("sha256"), &["salt"], json!({"encoding": "utf8"})),
            "custom_password_hash.salt.value",
            "is missing",
        ),
        (
            put(
                valid("sha256"),
                &["salt"],
                json!({"value": "SALTVALUE", "encoding": "ucs2"}),
            ),
            "custom_password_hash.salt.encoding",
            "not one of",
        ),
        (
            put(
                valid("sha256"),
                &["salt"],
                json!({"value": "SALTVALUE", "position": "middle"}),
            ),
            "custom_password_hash.salt.position",
            "prefix or suffix",
        ),
        (
            put(
                valid("sha256"),
                &["salt"],
                json!({"value": "SALTVALUE*", "encoding": "base64"}),
            ),
            "custom_password_hash.salt.value",
            "not valid base64",
        ),
        (
            put(
                valid("sha256"),
                &["salt"],
                json!({"value": "SALTVALUE", "postion": "suffix"}),
            ),
            "custom_password_hash.salt",
            "did you mean position?",
        ),
        (
            put(valid("sha256"), &["salt"], Value::Null),
            "custom_password_hash.salt",
            "not null",
        ),
        (
            put(
                valid("sha256"),
                &["password"],
                json!({"encoding": "utf-16"}),
            ),
            "custom_password_hash.password.encoding",
            "utf16le",
        ),
        (
            remove(valid("hmac"), &["hash", "digest"]),
            "custom_password_hash.hash.digest",
            "is missing",
        ),
        (
            put(valid("hmac"), &["hash", "digest"], s("sha3-256")),
            "custom_password_hash.hash.digest",
            "whirlpool",
        ),
        (
            remove(valid("hmac"), &["hash", "key"]),
            "custom_password_hash.hash.key",
            "is missing",
        ),
        (
            put(
                valid("hmac"),
                &["hash", "key"],
                json!({"value": "KEYVALUEzz", "encoding": "hex"}),
            ),
            "custom_password_hash.hash.key.value",
            "not valid hex",
        ),
        (
            put(valid("hmac"), &["hash", "digest"], s("sha1")),
            "custom_password_hash.hash.value",
            "32 bytes",
        ),
        (
            remove(valid("scrypt"), &["keylen"]),
            "custom_password_hash.keylen",
            "is missing",
        ),
        (
            put(valid("scrypt"), &["keylen"], json!(0)),
            "custom_password_hash.keylen",
            "greater than zero",
        ),
        (
            put(valid("scrypt"), &["keylen"], json!(1.5)),
            "custom_password_hash.keylen",
            "whole number",
        ),
        (
            put(valid("scrypt"), &["keylen"], json!(16)),
            "custom_password_hash.hash.value",
            "keylen says 16",
        ),
        (
            put(valid("scrypt"), &["cost"], json!(1000)),
            "custom_password_hash.cost",
            "power of two",
        ),
        (
            put(
                put(valid("scrypt"), &["blockSize"], json!(1 << 15)),
                &["parallelization"],
                json!(1 << 15),
            ),
            "custom_password_hash.parallelization",
            "2^30",
        ),
        (
            put(
                valid("bcrypt"),
                &["hash", "value"],
                s("$2x$04$abcdefghijklmnopqrstuuVALUEVALUEVALUEVALUEVALUEVALUE."),
            ),
            "custom_password_hash.hash.value",
            "not $2$, $2x$",
        ),
        (
            put(
                valid("bcrypt"),
                &["hash", "value"],
                s("$2b$4$abcdefghijklmnopqrstuuVALUEVALUEVALUEVALUEVALUEVALUE."),
            ),
            "custom_password_hash.hash.value",
            "60 characters",
        ),
        (
            put(valid("bcrypt"), &["hash", "encoding"], s("hex")),
            "custom_password_hash.hash.encoding",
            "are text",
        ),
        (
            put(valid("argon2"), &["salt"], json!({"value": "SALTVALUE"})),
            "custom_password_hash.salt",
            "inside the PHC string",
        ),
        (
            put(
                valid("argon2"),
                &["hash", "value"],
                s(&valid("argon2")["hash"]["value"]
                    .as_str()
                    .unwrap()
                    .replace("argon2id", "argon2d")),
            ),
            "custom_password_hash.hash.value",
            "not argon2d",
        ),
        (
            put(
                valid("argon2"),
                &["hash", "value"],
                s(&valid("argon2")["hash"]["value"]
                    .as_str()
                    .unwrap()
                    .replace("$v=19", "")),
            ),
            "custom_password_hash.hash.value",
            "v=19",
        ),
        (
            put(
                valid("argon2"),
                &["hash", "value"],
                s(&valid("argon2")["hash"]["value"]
                    .as_str()
                    .unwrap()
                    .replace("m=64,t=1", "t=1,m=64")),
            ),
            "custom_password_hash.hash.value",
            "in that order",
        ),
        (
            put(
                valid("argon2"),
                &["hash", "value"],
                s(&valid("argon2")["hash"]["value"]
                    .as_str()
                    .unwrap()
                    .replace("m=64", "m=7")),
            ),
            "custom_password_hash.hash.value",
            "at least 8 times p",
        ),
        (
            put(
                valid("argon2"),
                &["hash", "value"],
                s(&format!(
                    "$argon2id$v=19$m=64,t=1,p=1${}${}",
                    to_phc_b64(b"SALTVAL"),
                    to_phc_b64(b"HASHVALUE-32-bytes-long-enough!!")
                )),
            ),
            "custom_password_hash.hash.value",
            "at least 8 bytes",
        ),
        (
            put(valid("argon2"), &["hash", "value"], s("argon2id-HASHVALUE")),
            "custom_password_hash.hash.value",
            "does not start with $",
        ),
        (
            put(
                valid("pbkdf2"),
                &["hash", "value"],
                s(&valid("pbkdf2")["hash"]["value"]
                    .as_str()
                    .unwrap()
                    .replace("sha256", "sha3")),
            ),
            "custom_password_hash.hash.value",
            "OpenSSL",
        ),
        (
            put(
                valid("pbkdf2"),
                &["hash", "value"],
                s(&valid("pbkdf2")["hash"]["value"]
                    .as_str()
                    .unwrap()
                    .replace("l=32", "l=32,x=1")),
            ),
            "custom_password_hash.hash.value",
            "only parameters are i and l",
        ),
        (
            put(
                valid("pbkdf2"),
                &["hash", "value"],
                s(&valid("pbkdf2")["hash"]["value"]
                    .as_str()
                    .unwrap()
                    .replace("l=32", "l=64")),
            ),
            "custom_password_hash.hash.value",
            "but l says 64",
        ),
        (
            put(
                valid("pbkdf2"),
                &["hash", "value"],
                s(&format!(
                    "{}=",
                    valid("pbkdf2")["hash"]["value"].as_str().unwrap()
                )),
            ),
            "custom_password_hash.hash.value",
            "without padding",
        ),
        (
            put(valid("pbkdf2"), &["salt"], json!({"value": "SALTVALUE"})),
            "custom_password_hash.salt",
            "not allowed",
        ),
        (
            put(
                valid("ldap"),
                &["hash", "value"],
                s("{CRYPT}HASHVALUEVALUE"),
            ),
            "custom_password_hash.hash.value",
            "{CRYPT}",
        ),
        (
            put(
                valid("ldap"),
                &["hash", "value"],
                s("{PBKDF2}HASHVALUEVALUE"),
            ),
            "custom_password_hash.hash.value",
            "not one Auth0 takes",
        ),
        (
            put(
                valid("ldap"),
                &["hash", "value"],
                s(&format!(
                    "{{SSHA}}{}",
                    STANDARD.encode(b"HASHVALUE-20-bytes!!")
                )),
            ),
            "custom_password_hash.hash.value",
            "followed by the salt",
        ),
        (
            put(
                valid("ldap"),
                &["hash", "value"],
                s("HASHVALUE-without-scheme"),
            ),
            "custom_password_hash.hash.value",
            "{SCHEME}",
        ),
        (
            put(valid("ldap"), &["salt"], json!({"value": "SALTVALUE"})),
            "custom_password_hash.salt",
            "not allowed",
        ),
    ];
    for (hash, field, words) in cases {
        let e = check(None, Some(&hash)).expect_err(&hash.to_string());
        assert_eq!(e.field, field, "{hash}: {}", e.message);
        assert!(
            e.message.contains(words),
            "{hash}: {:?} lacks {words:?}",
            e.message
        );
        assert!(
            e.message.contains(&format!("`{field}`")) || field == "custom_password_hash",
            "{}",
            e.message
        );
        let mut secrets = Vec::new();
        values_in(&hash, &mut secrets);
        for secret in secrets {
            assert!(
                !e.message.contains(&secret),
                "{:?} shows {secret:?}",
                e.message
            );
        }
        assert!(
            !e.message.contains("VALUE"),
            "{:?} shows part of a value",
            e.message
        );
    }
    // Each valid hash passes.
    for algorithm in [
        "sha256", "hmac", "scrypt", "bcrypt", "argon2", "pbkdf2", "ldap",
    ] {
        check(None, Some(&valid(algorithm))).unwrap_or_else(|e| panic!("{algorithm}: {e:?}"));
    }
}

#[test]
fn password_hash_is_a_bcrypt_string_and_excludes_custom_password_hash() {
    let bcrypt = json!("$2b$04$abcdefghijklmnopqrstuuVALUEVALUEVALUEVALUEVALUEVALUE.");
    check(Some(&bcrypt), None).unwrap();
    let cases = [
        (
            Some(json!(42)),
            None,
            "password_hash",
            "must be a bcrypt hash",
        ),
        (
            Some(json!(
                "$2y$04$abcdefghijklmnopqrstuuVALUEVALUEVALUEVALUEVALUEVALUE."
            )),
            None,
            "password_hash",
            "custom_password_hash",
        ),
        (
            Some(json!("{SSHA}HASHVALUE")),
            None,
            "password_hash",
            "$2a$ or $2b$",
        ),
        (
            Some(bcrypt.clone()),
            Some(valid("sha256")),
            "custom_password_hash",
            "both",
        ),
        (None, Some(json!(null)), "custom_password_hash", "not null"),
    ];
    for (bcrypt_field, custom, field, words) in cases {
        let e = check(bcrypt_field.as_ref(), custom.as_ref()).unwrap_err();
        assert_eq!(e.field, field, "{}", e.message);
        assert!(e.message.contains(words), "{:?} lacks {words:?}", e.message);
        assert!(
            !e.message.contains("VALUE"),
            "{:?} shows part of a value",
            e.message
        );
    }
    check(None, None).unwrap();
}

#[test]
fn a_taken_hash_says_its_field_and_algorithm_and_never_shows_its_value() {
    let mut record: Map<String, Value> = serde_json::from_value(json!({
        "email": "a@example.com", "custom_password_hash": valid("hmac"), "password_hash": null
    }))
    .unwrap();
    let hash = PasswordHash::take(&mut record).unwrap().unwrap();
    assert_eq!(
        record.keys().collect::<Vec<_>>(),
        ["email"],
        "both fields are taken out"
    );
    assert_eq!(
        (hash.name(), hash.algorithm()),
        ("custom_password_hash", Algorithm::Hmac)
    );
    assert_eq!(hash.value(), &valid("hmac"));
    let shown = format!("{hash:?} {hash:#?}");
    assert!(
        shown.contains("<redacted>") && shown.contains("hmac"),
        "{shown}"
    );
    assert!(
        !shown.contains("VALUE") && !shown.contains("k3y"),
        "{shown}"
    );

    let mut record: Map<String, Value> =
        serde_json::from_value(json!({"password_hash": null, "custom_password_hash": null}))
            .unwrap();
    assert_eq!(PasswordHash::take(&mut record).unwrap(), None);
    assert!(record.is_empty());

    let bcrypt = json!("$2b$04$abcdefghijklmnopqrstuuVALUEVALUEVALUEVALUEVALUEVALUE.");
    let hash = PasswordHash::new(HashField::PasswordHash, bcrypt.clone()).unwrap();
    assert_eq!(
        (hash.field(), hash.algorithm()),
        (HashField::PasswordHash, Algorithm::Bcrypt)
    );
    assert_eq!(hash.into_value(), bcrypt);
    let e =
        PasswordHash::new(HashField::CustomPasswordHash, json!({"algorithm": "sha1"})).unwrap_err();
    assert_eq!(e.field, "custom_password_hash.hash");
    for field in [HashField::PasswordHash, HashField::CustomPasswordHash] {
        assert_eq!(HashField::from_name(field.name()), Some(field));
    }
    for algorithm in Algorithm::ALL {
        assert_eq!(Algorithm::from_name(algorithm.name()), Some(algorithm));
    }
}
