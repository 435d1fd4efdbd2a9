//! What a finished import job did to each member of its chunk, read from the job's error
//! list (a job reports counts, not user ids: facts, "Bulk import jobs").
//!
//! Pure: a member the errors do not name was created; one they name for an existing user
//! (`DUPLICATED_USER`) is a conflict the engine settles with a lookup (ours from a job whose
//! acceptance was lost, or somebody else's); any other error rejects the record with the
//! job's code and message. So does a `DUPLICATED_USER` for a member whose email an earlier
//! member of the same file has: the file held that user twice (facts: an error), and the
//! user the tenant has is the other record's, not this one's.

use serde_json::Value;

use super::chunk::Member;
use crate::api::JobUserError;

/// What the job's report says of one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Created,
    /// The tenant already had a user with this id, or this email in the connection.
    Conflict {
        message: String,
    },
    Rejected {
        code: String,
        message: String,
        field: Option<String>,
    },
}

/// The error code of a user the tenant already has (facts: "Bulk import jobs").
pub const DUPLICATED_USER: &str = "DUPLICATED_USER";

/// One verdict per member, in the members' order; and how many error entries named no member
/// (the tenant's report and ours disagree: logged, never silently).
pub fn verdicts(members: &[Member], errors: &[JobUserError]) -> (Vec<Verdict>, usize) {
    let mut verdicts = vec![Verdict::Created; members.len()];
    let mut unmatched = 0;
    for entry in errors {
        let Some(index) = member_of(members, &entry.user) else {
            unmatched += 1;
            continue;
        };
        let secrets = &members[index].secrets;
        let message = entry
            .errors
            .iter()
            .map(|e| scrub(&e.message, secrets))
            .collect::<Vec<_>>()
            .join("; ");
        let duplicated = entry.errors.iter().any(|e| e.code == DUPLICATED_USER);
        verdicts[index] = if duplicated && let Some(first) = same_email_before(members, index) {
            Verdict::Rejected {
                code: DUPLICATED_USER.into(),
                message: format!(
                    "{message} (line {} has the same email in this users file; a job takes a \
                     user once)",
                    first.line
                ),
                field: Some("email".into()),
            }
        } else if duplicated {
            Verdict::Conflict { message }
        } else {
            let first = entry.errors.first();
            Verdict::Rejected {
                code: first
                    .map(|e| e.code.clone())
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| "job_error".into()),
                message: if message.is_empty() {
                    "the import job refused the user without saying why".into()
                } else {
                    message
                },
                field: first.and_then(|e| e.path.clone()).filter(|p| !p.is_empty()),
            }
        };
    }
    (verdicts, unmatched)
}

/// The first member before `index` with the email of the member at `index` (emails are
/// compared as the tenant stores them, lower-cased).
fn same_email_before(members: &[Member], index: usize) -> Option<&Member> {
    let email = members[index].email.as_deref()?.to_lowercase();
    members[..index].iter().find(|m| {
        m.email
            .as_deref()
            .is_some_and(|e| e.to_lowercase() == email)
    })
}

/// The member an error entry's user is: by user id (every user we send has one; the entry
/// shows it as sent, without the `auth0|` the tenant adds, or else as the tenant knows it),
/// else by email.
fn member_of(members: &[Member], user: &Value) -> Option<usize> {
    if let Some(id) = user.get("user_id").and_then(Value::as_str) {
        let sent = |m: &Member| m.user_id.strip_prefix("auth0|") == Some(id);
        if let Some(index) = members
            .iter()
            .position(sent)
            .or_else(|| members.iter().position(|m| m.user_id == id))
        {
            return Some(index);
        }
    }
    let email = user.get("email").and_then(Value::as_str)?.to_lowercase();
    members.iter().position(|m| {
        m.email
            .as_deref()
            .is_some_and(|e| e.to_lowercase() == email)
    })
}

/// A tenant's message with any of the member's secrets (hash values, salts, keys) taken out:
/// the job masks them in the user it shows, and a message must not bring them back.
fn scrub(message: &str, secrets: &[String]) -> String {
    let mut message = message.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        message = message.replace(secret.as_str(), "*****");
    }
    message
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::JobErrorDetail;

    fn member(ordinal: u64, id: &str, email: &str) -> Member {
        Member {
            ordinal,
            line: ordinal,
            original: "{}".into(),
            user_id: format!("auth0|{id}"),
            email: Some(email.into()),
            secrets: vec!["$2b$10$abcdefghijklmnopqrstuv".into()],
            access: None,
        }
    }

    fn error(user: Value, code: &str, message: &str) -> JobUserError {
        JobUserError {
            user,
            errors: vec![JobErrorDetail {
                code: code.into(),
                message: message.into(),
                path: Some("email".into()),
            }],
        }
    }

    #[test]
    fn an_id_sent_with_a_prefix_of_its_own_names_its_member_not_the_one_without() {
        // `auth0|auth0|x` is sent as `auth0|x`; `auth0|x` is sent as `x`.
        let members = [
            member(1, "auth0|x", "a@example.com"),
            member(2, "x", "b@example.com"),
        ];
        let rejected = |v: &Verdict| matches!(v, Verdict::Rejected { .. });
        let errors = [error(
            json!({"user_id": "auth0|x"}),
            "INVALID_FORMAT",
            "bad",
        )];
        let (first, unmatched) = verdicts(&members, &errors);
        assert_eq!(unmatched, 0);
        assert!(
            rejected(&first[0]) && first[1] == Verdict::Created,
            "{first:?}"
        );
        let errors = [error(json!({"user_id": "x"}), "INVALID_FORMAT", "bad")];
        let (second, _) = verdicts(&members, &errors);
        assert!(
            second[0] == Verdict::Created && rejected(&second[1]),
            "{second:?}"
        );
    }

    #[test]
    fn a_user_twice_in_one_file_is_rejected_and_a_user_already_there_is_a_conflict() {
        let members = [
            member(1, "a", "twin@example.com"),
            member(2, "b", "Twin@Example.com"),
            member(3, "c", "there@example.com"),
        ];
        let errors = [
            error(
                json!({"user_id": "b"}),
                DUPLICATED_USER,
                "A user with this email was already provided.",
            ),
            error(
                json!({"user_id": "c"}),
                DUPLICATED_USER,
                "The user already exist and upsert parameter is false",
            ),
        ];
        let (verdicts, _) = verdicts(&members, &errors);
        assert_eq!(verdicts[0], Verdict::Created);
        assert_eq!(
            verdicts[1],
            Verdict::Rejected {
                code: DUPLICATED_USER.into(),
                message: "A user with this email was already provided. (line 1 has the same \
                          email in this users file; a job takes a user once)"
                    .into(),
                field: Some("email".into()),
            }
        );
        assert!(matches!(verdicts[2], Verdict::Conflict { .. }));
    }

    #[test]
    fn each_member_gets_the_verdict_its_error_entry_says() {
        let members = [
            member(1, "a", "a@example.com"),
            member(2, "b", "b@example.com"),
            member(3, "c", "c@example.com"),
        ];
        let errors = [
            error(
                json!({"user_id": "b"}),
                DUPLICATED_USER,
                "The user already exist.",
            ),
            error(
                json!({"email": "C@example.com"}),
                "INVALID_FORMAT",
                "Bad hash $2b$10$abcdefghijklmnopqrstuv here",
            ),
            error(json!({"user_id": "zzz"}), "INVALID_FORMAT", "nobody"),
        ];
        let (verdicts, unmatched) = verdicts(&members, &errors);
        assert_eq!(unmatched, 1);
        assert_eq!(verdicts[0], Verdict::Created);
        assert_eq!(
            verdicts[1],
            Verdict::Conflict {
                message: "The user already exist.".into()
            }
        );
        assert_eq!(
            verdicts[2],
            Verdict::Rejected {
                code: "INVALID_FORMAT".into(),
                message: "Bad hash ***** here".into(),
                field: Some("email".into()),
            },
            "matched by email, whatever its case; the hash scrubbed"
        );
    }
}
