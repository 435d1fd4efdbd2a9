//! A record's password hash (`password_hash` or `custom_password_hash`): checked by
//! [`crate::hashes`], kept out of every Management API body, and taken only where Auth0's
//! bulk-import job creates the user (facts: "A hash is taken only when the job creates the
//! user"; `POST /api/v2/users` takes a clear-text password only). Messages never show a hash.

use serde_json::Value;

use super::{Engine, Invalid, Mode, Passwords, PlanOptions, User, code, invalid};
use crate::hashes::PasswordHash;

/// Takes the record's hash out of its fields, checked (a `null` field is no hash). A record
/// that also has a clear-text password (in `--password-field`) is refused: a user gets one.
pub(super) fn take_hash(
    fields: &mut User,
    password: Option<&Value>,
    options: &PlanOptions,
) -> Result<Option<PasswordHash>, Invalid> {
    let hash = PasswordHash::take(fields)
        .map_err(|e| invalid(code::INVALID_PASSWORD_HASH, e.field, e.message))?;
    let Some(hash) = hash else {
        return Ok(None);
    };
    let has_password = !matches!(password, None | Some(Value::Null))
        && password.and_then(Value::as_str) != Some("");
    if let Passwords::Field(name) = &options.passwords
        && has_password
    {
        return Err(invalid(
            code::CONFLICTING_FIELDS,
            name.clone(),
            format!(
                "the record has both a password (in `{name}`, --password-field) and a password \
                 hash (`{}`), and a user is created with one of them: remove the one that is \
                 not the user's",
                hash.name()
            ),
        ));
    }
    Ok(Some(hash))
}

/// Whether a record with `hash` can be applied as `options` say: only a job that creates the
/// user takes a hash, so an update (which never creates) refuses it, and so does the API
/// engine (whose create cannot carry it). The hash is never dropped silently: an upsert
/// through jobs that finds the user says the hash was not applied (`job::handoff`).
pub(super) fn hash_applies(hash: &PasswordHash, options: &PlanOptions) -> Result<(), Invalid> {
    let field = hash.name();
    match (options.mode, options.engine) {
        (Mode::Update, _) => Err(invalid(
            code::UNSUPPORTED_FIELD,
            field,
            format!(
                "`{field}`: a password hash is taken only when Auth0's bulk-import job creates \
                 the user, and --mode update never creates; remove it to update the user's \
                 other fields (the password stays as it is), or create the users with --mode \
                 create --engine job"
            ),
        )),
        (_, Engine::Api) => Err(invalid(
            code::NEEDS_JOB_ENGINE,
            field,
            format!(
                "`{field}`: a user can be created with a password hash only through Auth0's \
                 bulk-import job (POST /api/v2/users takes a clear-text password only): run \
                 with --engine job, or remove the hash and pass --passwords random (the users \
                 then set their own password through a reset)"
            ),
        )),
        (Mode::Create | Mode::Upsert, Engine::Job) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use super::super::*;

    const SECRET_SALT: &str = "SALTVALUE-never-shown";

    fn with_hash(record: Value) -> Value {
        let mut record = user(record);
        record.insert(
            "custom_password_hash".into(),
            json!({"algorithm": "sha1", "hash": {"value": "a9993e364706816aba3e25717850c26c9cd0d89d", "encoding": "hex"},
                   "salt": {"value": SECRET_SALT}}),
        );
        Value::Object(record)
    }

    fn base() -> Value {
        json!({"user_id": "abc", "email": "a@example.com", "connection": "db"})
    }

    fn job(mode: Mode) -> PlanOptions {
        let mut o = options(mode, MatchBy::UserId);
        o.engine = Engine::Job;
        o
    }

    #[test]
    fn a_hash_goes_with_a_job_create_and_never_into_the_api_body() {
        for mode in [Mode::Create, Mode::Upsert] {
            for passwords in [Passwords::None, Passwords::Random] {
                let mut o = job(mode);
                o.passwords = passwords;
                let p = planned(with_hash(base()), &o);
                let hash = p.hash.as_ref().expect("the hash is planned");
                assert_eq!(hash.name(), "custom_password_hash");
                assert_eq!(hash.value()["salt"]["value"], SECRET_SALT);
                // No clear-text password is made up for it, and none is missing.
                let body = p.create.as_ref().expect("a create body");
                assert!(body.get("password").is_none(), "{body}");
                assert!(!body.to_string().contains("password_hash"), "{body}");
                assert!(p.create_refused.is_none());
                assert!(!p.profile.contains_key("custom_password_hash"));
            }
        }
        // A bcrypt password_hash too; `null` is no hash.
        let mut record = user(base());
        record.insert(
            "password_hash".into(),
            "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K".into(),
        );
        record.insert("custom_password_hash".into(), Value::Null);
        let p = planned(Value::Object(record), &job(Mode::Create));
        assert_eq!(p.hash.unwrap().name(), "password_hash");
        let mut record = user(base());
        record.insert("password_hash".into(), Value::Null);
        let p = planned(
            Value::Object(record),
            &options(Mode::Create, MatchBy::UserId),
        );
        assert!(p.hash.is_none() && p.create.unwrap().get("password").is_some());
    }

    #[test]
    fn the_api_engine_and_update_mode_refuse_a_hash_rather_than_drop_it() {
        for mode in [Mode::Create, Mode::Upsert] {
            let e = refused(with_hash(base()), &options(mode, MatchBy::UserId));
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("needs_job_engine", Some("custom_password_hash"))
            );
            assert!(e.message.contains("--engine job"), "{}", e.message);
        }
        for engine in [Engine::Api, Engine::Job] {
            let mut o = update_opts();
            o.engine = engine;
            let e = refused(with_hash(json!({"user_id": "abc", "name": "A"})), &o);
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("unsupported_field", Some("custom_password_hash"))
            );
            assert!(
                e.message.contains("--mode update never creates"),
                "{}",
                e.message
            );
        }
        // What the record lacks for a create is said first.
        let e = refused(
            with_hash(json!({"user_id": "abc", "connection": "db"})),
            &create_opts(),
        );
        assert_eq!(e.code, "missing_field");
    }

    #[test]
    fn a_bad_hash_is_refused_by_its_field_path_without_showing_it() {
        let mut record = user(with_hash(base()));
        record["custom_password_hash"]["salt"]["position"] = "middle".into();
        let e = refused(Value::Object(record), &job(Mode::Create));
        assert_eq!(
            (e.code, e.field.as_deref()),
            (
                "invalid_password_hash",
                Some("custom_password_hash.salt.position")
            )
        );
        assert!(!e.message.contains(SECRET_SALT), "{}", e.message);
        // Both fields at once.
        let mut record = user(with_hash(base()));
        record.insert(
            "password_hash".into(),
            "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K".into(),
        );
        let e = refused(Value::Object(record), &job(Mode::Create));
        assert_eq!(e.code, "invalid_password_hash");
        assert!(e.message.contains("both"), "{}", e.message);
        // A typo of the field name is still caught.
        let e = refused(
            json!({"user_id": "abc", "custom_pasword_hash": {}}),
            &update_opts(),
        );
        assert_eq!(e.code, "unknown_field");
        assert!(
            e.message.contains("did you mean custom_password_hash?"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_hash_and_a_clear_text_password_conflict() {
        let mut o = job(Mode::Create);
        o.passwords = Passwords::Field("pw".into());
        let mut record = user(with_hash(base()));
        record.insert("pw".into(), "Corr3ct-Horse".into());
        let e = refused(Value::Object(record.clone()), &o);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("conflicting_fields", Some("pw"))
        );
        assert!(!e.message.contains("Corr3ct-Horse"), "{}", e.message);
        // An empty or null password field is no password.
        for empty in [json!(""), Value::Null] {
            record.insert("pw".into(), empty);
            assert!(planned(Value::Object(record.clone()), &o).hash.is_some());
        }
    }

    #[test]
    fn debug_never_shows_a_hash() {
        let p = planned(with_hash(base()), &job(Mode::Create));
        let shown = format!("{p:?} {p:#?}");
        assert!(!shown.contains(SECRET_SALT), "{shown}");
        assert!(!shown.contains("a9993e36"), "{shown}");
        assert!(shown.contains("custom_password_hash") && shown.contains("<redacted>"));
    }
}
