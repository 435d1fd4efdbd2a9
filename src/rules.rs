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
