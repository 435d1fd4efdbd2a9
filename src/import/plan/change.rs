//! What an update changes, path by path: each root field and metadata path with its old and
//! new value, as dry-run plans and logs show it (`app_metadata.plan "free" → "pro"`).
//!
//! The paths are those [`diff`](super::diff) finds: a root field (`name`), or a metadata path
//! that goes as deep as both values are objects (`user_metadata.address.city`). A password's
//! values are never kept, only that it changes; access (roles, organizations, permissions) is
//! worded by the access stage.
//!
//! In a `--plan` file each change is one object:
//! - `{"path": "app_metadata.plan", "old": "free", "new": "pro"}`; no `old` when the path was
//!   absent before;
//! - `{"path": "user_metadata.theme", "old": "dark", "new": null, "deleted": true}`;
//! - `{"path": "password", "changed": true}` (no value, ever);
//! - `{"path": "roles", "change": "+admin -viewer"}`.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// One change an update makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A root field or a metadata path: `old` is `None` when it was absent, `new` is `None`
    /// when the update deletes it.
    Value {
        path: String,
        old: Option<Value>,
        new: Option<Value>,
    },
    /// A secret (the password): that it changes, never its values.
    Secret { path: String },
    /// Roles, organizations or direct permissions, as the access stage words them
    /// (`path` `roles`, `change` `+admin -viewer`).
    Access { path: String, change: String },
}

/// The longest value a log line shows whole; longer ones are cut with `…` (the plan file
/// keeps them whole).
const SHOWN: usize = 60;

impl Change {
    /// The path changed.
    pub fn path(&self) -> &str {
        match self {
            Change::Value { path, .. } | Change::Secret { path } | Change::Access { path, .. } => {
                path
            }
        }
    }

    /// An access change as the access stage words it: `roles +admin -viewer`.
    pub fn access(words: String) -> Change {
        match words.split_once(' ') {
            Some((path, change)) => Change::Access {
                path: path.to_string(),
                change: change.to_string(),
            },
            None => Change::Access {
                path: words,
                change: String::new(),
            },
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Value { path, old, new } => {
                let old = old.as_ref().map_or("(absent)".into(), shown);
                let new = new.as_ref().map_or("(deleted)".into(), shown);
                write!(f, "{path} {old} → {new}")
            }
            Change::Secret { path } => write!(f, "{path} (changed)"),
            Change::Access { path, change } => write!(f, "{path} {change}"),
        }
    }
}

/// A value as a log line shows it: compact JSON, cut at [`SHOWN`] characters.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

impl Serialize for Change {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("path", self.path())?;
        match self {
            Change::Value { old, new, .. } => {
                if let Some(old) = old {
                    map.serialize_entry("old", old)?;
                }
                map.serialize_entry("new", new)?;
                if new.is_none() {
                    map.serialize_entry("deleted", &true)?;
                }
            }
            Change::Secret { .. } => map.serialize_entry("changed", &true)?,
            Change::Access { change, .. } => map.serialize_entry("change", change)?,
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changes_read_old_to_new_and_a_secret_never_shows_its_value() {
        let cases = [
            (
                Change::Value {
                    path: "app_metadata.plan".into(),
                    old: Some(json!("free")),
                    new: Some(json!("pro")),
                },
                r#"app_metadata.plan "free" → "pro""#,
                json!({"path": "app_metadata.plan", "old": "free", "new": "pro"}),
            ),
            (
                Change::Value {
                    path: "user_metadata.theme".into(),
                    old: Some(json!("dark")),
                    new: None,
                },
                r#"user_metadata.theme "dark" → (deleted)"#,
                json!({"path": "user_metadata.theme", "old": "dark", "new": null, "deleted": true}),
            ),
            (
                Change::Value {
                    path: "name".into(),
                    old: None,
                    new: Some(json!("Ann")),
                },
                r#"name (absent) → "Ann""#,
                json!({"path": "name", "new": "Ann"}),
            ),
            (
                Change::Secret {
                    path: "password".into(),
                },
                "password (changed)",
                json!({"path": "password", "changed": true}),
            ),
            (
                Change::access("roles +admin -viewer".into()),
                "roles +admin -viewer",
                json!({"path": "roles", "change": "+admin -viewer"}),
            ),
        ];
        for (change, line, plan) in cases {
            assert_eq!(change.to_string(), line);
            assert_eq!(serde_json::to_value(&change).unwrap(), plan);
        }
    }

    #[test]
    fn a_long_value_is_cut_in_logs_only() {
        let long = "x".repeat(100);
        let change = Change::Value {
            path: "name".into(),
            old: None,
            new: Some(json!(long)),
        };
        let line = change.to_string();
        assert!(line.ends_with('…') && line.chars().count() < 80, "{line}");
        assert_eq!(serde_json::to_value(&change).unwrap()["new"], json!(long));
    }
}
