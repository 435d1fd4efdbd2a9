//! Auth0's documented limits that both sides of this crate follow: the importer checks them
//! before sending, the sandbox enforces them as Auth0 does.

/// Facts ("Metadata rules"): names `app_metadata` must not use at its top level.
pub const RESERVED_APP_METADATA: &[&str] = &[
    "__tenant",
    "_id",
    "blocked",
    "clientID",
    "created_at",
    "email_verified",
    "email",
    "globalClientID",
    "global_client_id",
    "identities",
    "lastIP",
    "lastLogin",
    "loginsCount",
    "metadata",
    "multifactor_last_modified",
    "multifactor",
    "updated_at",
    "user_id",
];

/// Facts ("PATCH"): field pairs Auth0 refuses in one update.
pub const REFUSED_TOGETHER: &[(&str, &str)] = &[
    ("password", "email"),
    ("password", "email_verified"),
    ("username", "email"),
    ("username", "email_verified"),
    ("username", "password"),
];

/// Spec: `CreateUserRequestContent.phone_number` pattern.
pub const PHONE_PATTERN: &str = r"^\+[0-9]{1,15}$";

/// The email shape both the importer and the sandbox accept, so they agree on every address.
pub const EMAIL_PATTERN: &str = r"^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$";

/// The deepest a record may nest, counting the record object as level 1: serde_json's
/// recursion limit (it refuses a 128th level of `[` or `{`), which the importer's reader, the
/// client reading users back and the sandbox's request bodies all hit. Auth0 documents no
/// depth; a user nested deeper could be written by another client but not read back by this
/// tool's export, so the importer refuses it before sending.
pub const MAX_JSON_DEPTH: usize = 127;
