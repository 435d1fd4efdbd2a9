//! Passwords, only ever set on create: taken from the record's field and checked against
//! Auth0's "good" policy, or random and strong. Messages never show one.

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::Value;

use super::{Engine, Invalid, Passwords, code, invalid};

/// The password a create sends: random, or the record's field (checked, never echoed).
pub(super) fn creation_password(
    field_value: Option<Value>,
    passwords: &Passwords,
    connection: &str,
    engine: Engine,
) -> Result<String, Invalid> {
    match passwords {
        Passwords::Random => Ok(random_password()),
        // An import job takes no clear-text password (so no --password-field): a hash, or none.
        Passwords::None if engine == Engine::Job => Err(invalid(
            code::MISSING_PASSWORD,
            "password",
            format!(
                "creating a user in database connection {connection} through an import job \
                 needs a password hash (`password_hash`, `custom_password_hash`, or \
                 --password-hashes FILE); or pass --passwords random to create users without \
                 one, who set theirs through a password-change ticket (--tickets)"
            ),
        )),
        Passwords::None => Err(invalid(
            code::MISSING_PASSWORD,
            "password",
            format!(
                "creating a user in database connection {connection} needs a password, and \
                 exports carry none: pass --passwords random (each created user gets a strong \
                 random password and sets their own through a password reset), or \
                 --password-field NAME to read it from the input"
            ),
        )),
        Passwords::Field(name) => match field_value {
            Some(Value::String(p)) if !p.is_empty() => {
                if meets_good_policy(&p) {
                    Ok(p)
                } else {
                    Err(invalid(
                        code::WEAK_PASSWORD,
                        name.clone(),
                        format!(
                            "the password in `{name}` is too weak for Auth0's \"good\" policy: \
                             it needs at least 8 characters and three of lower case, upper \
                             case, digits and special characters; fix it, or use --passwords \
                             random"
                        ),
                    ))
                }
            }
            None | Some(Value::Null) | Some(Value::String(_)) => Err(invalid(
                code::MISSING_PASSWORD,
                name.clone(),
                format!(
                    "the record has no password in `{name}` (--password-field), and creating \
                     a user in database connection {connection} needs one; add it, or use \
                     --passwords random"
                ),
            )),
            Some(other) => Err(invalid(
                code::INVALID_FIELD,
                name.clone(),
                format!(
                    "the password field `{name}` must hold a string, not {}",
                    match other {
                        Value::Number(_) => "a number",
                        Value::Bool(_) => "a boolean",
                        Value::Array(_) => "an array",
                        _ => "an object",
                    }
                ),
            )),
        },
    }
}

/// Auth0's "good" policy (store.rs `PasswordPolicy::Good`): at least 8 characters with three
/// of lower case, upper case, digits and special characters.
pub(super) fn meets_good_policy(password: &str) -> bool {
    let classes = [
        password.chars().any(char::is_lowercase),
        password.chars().any(char::is_uppercase),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    password.chars().count() >= 8 && classes.iter().filter(|x| **x).count() >= 3
}

/// A strong random password that satisfies Auth0's "good" and "fair" policies (≥ 16 chars,
/// lower, upper, digit, special), and "excellent" too (no character three times in a row).
///
/// 24 characters from 90 (about 155 bits), drawn with `rand::rng()`: a ChaCha generator
/// seeded from the operating system, fit for secrets.
pub fn random_password() -> String {
    const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"0123456789";
    const SPECIAL: &[u8] = b"!#$%&()*+,-./:;<=>?@[]^_{}~";
    const LENGTH: usize = 24;
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, SPECIAL].concat();
    let mut rng = rand::rng();
    loop {
        let mut chars: Vec<u8> = [LOWER, UPPER, DIGITS, SPECIAL]
            .iter()
            .map(|set| set[rng.random_range(0..set.len())])
            .collect();
        while chars.len() < LENGTH {
            chars.push(all[rng.random_range(0..all.len())]);
        }
        chars.shuffle(&mut rng);
        if chars.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])) {
            return chars.into_iter().map(char::from).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::import::plan::testing::*;
    use crate::import::plan::*;

    // ---------------------------------------------------------------------------------------
    // plan: passwords

    const GOOD: &str = "Corr3ct-Horse";

    #[test]
    fn passwords_come_from_the_chosen_source() {
        let record =
            json!({"user_id": "abc", "email": "a@example.com", "connection": "db", "pw": GOOD});
        let mut o = create_opts();
        o.passwords = Passwords::Field("pw".into());
        let p = planned(record.clone(), &o);
        assert_eq!(p.create.as_ref().unwrap()["password"], GOOD);
        assert!(!p.profile.contains_key("pw"));
        // Update mode: the field is taken out and never sent.
        o.mode = Mode::Update;
        let p = planned(record.clone(), &o);
        assert!(p.create.is_none() && !p.profile.contains_key("pw"));
        let p = update_body(
            &user(json!({"user_id": "auth0|abc"})),
            &p,
            MetadataStrategy::Merge,
        );
        assert!(!p.unwrap().to_string().contains(GOOD));

        o.mode = Mode::Create;
        o.passwords = Passwords::Random;
        let record = json!({"user_id": "abc", "email": "a@example.com", "connection": "db"});
        let a = planned(record.clone(), &o).create.unwrap()["password"].clone();
        let b = planned(record, &o).create.unwrap()["password"].clone();
        assert_ne!(a, b, "each user gets their own");
    }

    #[test]
    fn missing_and_weak_passwords_are_refused_without_showing_them() {
        let base = json!({"user_id": "abc", "email": "a@example.com", "connection": "db"});
        let with = |pw: Value| {
            let mut r = user(base.clone());
            r.insert("pw".into(), pw);
            Value::Object(r)
        };
        let field = Passwords::Field("pw".into());
        // (passwords, record, mode, code)
        let cases = [
            (
                Passwords::None,
                base.clone(),
                Mode::Create,
                "missing_password",
            ),
            // Upsert: only a create needs one, known after the lookup.
            (Passwords::None, base.clone(), Mode::Upsert, "deferred"),
            (
                field.clone(),
                base.clone(),
                Mode::Create,
                "missing_password",
            ),
            (
                field.clone(),
                with(json!("")),
                Mode::Create,
                "missing_password",
            ),
            (field.clone(), with(json!(null)), Mode::Upsert, "deferred"),
            (field.clone(), base.clone(), Mode::Upsert, "deferred"),
            // A password that is there but weak is the record's fault whatever the lookup finds.
            (
                field.clone(),
                with(json!("short1A")),
                Mode::Upsert,
                "weak_password",
            ),
            (
                field.clone(),
                with(json!(12345678)),
                Mode::Create,
                "invalid_field",
            ),
            (
                field.clone(),
                with(json!("short1A")),
                Mode::Create,
                "weak_password",
            ),
            (
                field.clone(),
                with(json!("alllowercase")),
                Mode::Create,
                "weak_password",
            ),
            (
                field.clone(),
                with(json!("lower+digits123")),
                Mode::Upsert,
                "ok",
            ),
        ];
        for (passwords, record, mode, code) in cases {
            let mut o = options(mode, MatchBy::UserId);
            o.passwords = passwords.clone();
            match plan(&user(record.clone()), &o) {
                Ok(p) if code == "deferred" => {
                    let refused = p.create_refused.expect("why it cannot be created");
                    assert_eq!(refused.code, "missing_password", "{record}");
                    assert!(p.create.is_none(), "{record}");
                }
                Ok(p) => {
                    assert_eq!(code, "ok", "{record}");
                    assert!(p.create_refused.is_none() && p.create.is_some());
                }
                Err(e) => {
                    assert_eq!(e.code, code, "{record}: {}", e.message);
                    if let Some(pw) = record.get("pw").and_then(Value::as_str)
                        && !pw.is_empty()
                    {
                        assert!(!e.message.contains(pw), "{}", e.message);
                    }
                    if passwords == Passwords::None {
                        assert!(e.message.contains("--passwords random"), "{}", e.message);
                        assert!(e.message.contains("--password-field"), "{}", e.message);
                    }
                }
            }
        }
        // Updates never need one.
        let mut o = update_opts();
        o.passwords = Passwords::None;
        planned(base, &o);
    }

    #[test]
    fn a_password_field_not_named_by_password_field_is_refused() {
        let record = json!({"user_id": "abc", "email": "a@example.com", "connection": "db", "password": GOOD});
        for passwords in [
            Passwords::None,
            Passwords::Random,
            Passwords::Field("pw".into()),
        ] {
            let mut o = create_opts();
            o.passwords = passwords;
            let e = refused(record.clone(), &o);
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("unknown_field", Some("password"))
            );
            assert!(!e.message.contains(GOOD));
        }
        let mut o = create_opts();
        o.passwords = Passwords::Field("password".into());
        assert_eq!(planned(record, &o).create.unwrap()["password"], GOOD);
    }

    #[test]
    fn debug_never_shows_a_password() {
        let mut o = create_opts();
        o.passwords = Passwords::Field("pw".into());
        let p = planned(
            json!({"user_id": "abc", "email": "a@example.com", "connection": "db", "pw": GOOD}),
            &o,
        );
        let shown = format!("{p:?} {p:#?}");
        assert!(!shown.contains(GOOD), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("auth0|abc"));
        o.passwords = Passwords::Random;
        let p = planned(
            json!({"user_id": "abc", "email": "a@example.com", "connection": "db"}),
            &o,
        );
        let password = p.create.as_ref().unwrap()["password"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(!format!("{p:?}").contains(&password));
    }

    #[test]
    fn random_passwords_meet_every_policy() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let p = random_password();
            assert!(p.chars().count() >= 16, "{p}");
            assert!(p.chars().any(|c| c.is_ascii_lowercase()), "{p}");
            assert!(p.chars().any(|c| c.is_ascii_uppercase()), "{p}");
            assert!(p.chars().any(|c| c.is_ascii_digit()), "{p}");
            assert!(p.chars().any(|c| !c.is_alphanumeric()), "{p}");
            assert!(p.is_ascii() && !p.contains(char::is_whitespace), "{p}");
            assert!(meets_good_policy(&p));
            // "Excellent": no character three times in a row.
            let c: Vec<char> = p.chars().collect();
            assert!(c.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])), "{p}");
            assert!(seen.insert(p));
        }
    }
}
