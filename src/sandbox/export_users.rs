//! The file a bulk-export job writes: its users as NDJSON or CSV, gzipped.
//!
//! Facts ("Bulk export jobs"): NDJSON for `json`; CSV holds at most 30 fields, leaves whole
//! objects and arrays blank, and guards strings against CSV injection; `blocked_for` and
//! `guardian_authenticators` are never included. Auth0's "Bulk User Exports" page says how the
//! strings are guarded (OWASP's advice): a double quote is doubled, every string is prefixed
//! with a single quote and wrapped in double quotes; Auth0-generated ISO 8601 dates are not.
//! A field is a root property (`email`), a dotted path (`user_metadata.country`) or one with
//! array indexes (`identities[0].connection`), as Auth0's examples name them.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Map, Value};

use super::store::User;

/// Facts: a CSV export holds at most 30 fields.
pub(super) const MAX_CSV_FIELDS: usize = 30;

/// Facts: never part of an export.
const NEVER: &[&str] = &["blocked_for", "guardian_authenticators"];

/// Spec: without `fields`, "a predefined set of fields": the sandbox's is the scalar fields of
/// Auth0's normalized profile.
const DEFAULT_CSV_FIELDS: &[&str] = &[
    "user_id",
    "email",
    "email_verified",
    "username",
    "phone_number",
    "phone_verified",
    "name",
    "nickname",
    "given_name",
    "family_name",
    "picture",
    "created_at",
    "updated_at",
    "last_login",
    "logins_count",
    "blocked",
];

/// Profile dates Auth0 itself writes: CSV leaves them unguarded (facts).
const AUTH0_DATES: &[&str] = &[
    "created_at",
    "updated_at",
    "last_login",
    "last_password_reset",
];

/// The spec's two formats (`JobFileFormatEnum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileFormat {
    Json,
    Csv,
}

impl FileFormat {
    pub(super) fn name(self) -> &'static str {
        match self {
            FileFormat::Json => "json",
            FileFormat::Csv => "csv",
        }
    }
}

/// One requested field: its path in the profile and its name in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExportField {
    pub name: String,
    pub export_as: Option<String>,
}

impl ExportField {
    fn column(&self) -> &str {
        self.export_as.as_deref().unwrap_or(&self.name)
    }
}

/// The value at `path` (`a.b`, `identities[0].connection`), if there is one.
fn resolve<'a>(user: &'a User, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let first = segments.next()?;
    let (key, indexes) = split_indexes(first)?;
    let mut value = index_into(user.get(key)?, &indexes)?;
    for segment in segments {
        let (key, indexes) = split_indexes(segment)?;
        value = index_into(value.as_object()?.get(key)?, &indexes)?;
    }
    Some(value)
}

/// `name[0][2]` → (`name`, [0, 2]); `None` for a malformed index.
fn split_indexes(segment: &str) -> Option<(&str, Vec<usize>)> {
    let Some(open) = segment.find('[') else {
        return Some((segment, Vec::new()));
    };
    let (key, mut rest) = segment.split_at(open);
    let mut indexes = Vec::new();
    while let Some(inner) = rest.strip_prefix('[') {
        let close = inner.find(']')?;
        indexes.push(inner[..close].parse().ok()?);
        rest = &inner[close + 1..];
    }
    rest.is_empty().then_some((key, indexes))
}

fn index_into<'a>(mut value: &'a Value, indexes: &[usize]) -> Option<&'a Value> {
    for index in indexes {
        value = value.as_array()?.get(*index)?;
    }
    Some(value)
}

/// One user as a line of the NDJSON file: the whole profile without `fields`, else each
/// field's value under its `export_as` (or its name); a field the user lacks is left out.
fn json_line(user: &User, fields: Option<&[ExportField]>) -> Value {
    let mut line = Map::new();
    match fields {
        None => {
            for (key, value) in user {
                if !NEVER.contains(&key.as_str()) {
                    line.insert(key.clone(), value.clone());
                }
            }
        }
        Some(fields) => {
            for field in fields {
                let root = field.name.split(['.', '[']).next().unwrap_or_default();
                if NEVER.contains(&root) {
                    continue;
                }
                if let Some(value) = resolve(user, &field.name) {
                    line.insert(field.column().to_string(), value.clone());
                }
            }
        }
    }
    Value::Object(line)
}

/// Facts: one CSV cell. Strings guarded (quote doubled, `'` prefix, wrapped in quotes) except
/// Auth0's own dates; numbers and booleans as they are; objects, arrays and nulls blank.
fn csv_cell(field: &str, value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) if AUTH0_DATES.contains(&field) => s.clone(),
        Some(Value::String(s)) => format!("\"'{}\"", s.replace('"', "\"\"")),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// A header cell: a column name, guarded as any string is.
fn csv_header(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The whole file, gzipped.
pub(super) fn write_file(
    users: &[User],
    format: FileFormat,
    fields: Option<&[ExportField]>,
) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    match format {
        FileFormat::Json => {
            for user in users {
                serde_json::to_writer(&mut gz, &json_line(user, fields))?;
                gz.write_all(b"\n")?;
            }
        }
        FileFormat::Csv => {
            let defaults: Vec<ExportField>;
            let fields = match fields {
                Some(fields) => fields,
                None => {
                    defaults = DEFAULT_CSV_FIELDS
                        .iter()
                        .map(|name| ExportField {
                            name: (*name).to_string(),
                            export_as: None,
                        })
                        .collect();
                    &defaults
                }
            };
            let header: Vec<String> = fields.iter().map(|f| csv_header(f.column())).collect();
            writeln!(gz, "{}", header.join(","))?;
            for user in users {
                let cells: Vec<String> = fields
                    .iter()
                    .map(|f| {
                        let root = f.name.split(['.', '[']).next().unwrap_or_default();
                        let value = if NEVER.contains(&root) {
                            None
                        } else {
                            resolve(user, &f.name)
                        };
                        csv_cell(&f.name, value)
                    })
                    .collect();
                writeln!(gz, "{}", cells.join(","))?;
            }
        }
    }
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(value: Value) -> User {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn paths_reach_into_objects_and_arrays() {
        let u = user(json!({
            "email": "a@example.com",
            "identities": [{"connection": "db"}, {"connection": "google"}],
            "user_metadata": {"address": {"city": "Paris"}},
        }));
        assert_eq!(resolve(&u, "email"), Some(&json!("a@example.com")));
        assert_eq!(
            resolve(&u, "identities[1].connection"),
            Some(&json!("google"))
        );
        assert_eq!(
            resolve(&u, "user_metadata.address.city"),
            Some(&json!("Paris"))
        );
        assert_eq!(resolve(&u, "identities[2].connection"), None);
        assert_eq!(resolve(&u, "identities[x]"), None);
        assert_eq!(resolve(&u, "nope.deeper"), None);
    }

    #[test]
    fn csv_cells_guard_strings_but_not_auth0_dates_and_blank_objects() {
        assert_eq!(csv_cell("name", Some(&json!("=1+2"))), "\"'=1+2\"");
        assert_eq!(
            csv_cell("name", Some(&json!("say \"hi\""))),
            "\"'say \"\"hi\"\"\""
        );
        assert_eq!(
            csv_cell("created_at", Some(&json!("2024-01-01T00:00:00.000Z"))),
            "2024-01-01T00:00:00.000Z"
        );
        assert_eq!(csv_cell("logins_count", Some(&json!(3))), "3");
        assert_eq!(csv_cell("blocked", Some(&json!(false))), "false");
        assert_eq!(csv_cell("app_metadata", Some(&json!({"a": 1}))), "");
        assert_eq!(csv_cell("roles", Some(&json!(["a"]))), "");
        assert_eq!(csv_cell("x", None), "");
    }
}
