//! Turns batches of users into output bytes: NDJSON lines or CSV rows, after the field
//! selection and renames the job asked for.

use serde_json::{Map, Value};

use crate::api::{Listed, User};
use crate::format::csv::{CsvShape, LeafColumns};

/// Which fields reach the output, and under what names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// Only these fields (in the API's order), when given: root fields, or dotted paths in a
    /// metadata object (`user_metadata.country`), checked by [`crate::format::fields::check_selection`].
    pub include: Option<Vec<String>>,
    /// These fields (root fields or metadata paths) are left out.
    pub exclude: Vec<String>,
    /// Root fields renamed on output (`app_metadata` → `metadata` for a custom database script).
    pub rename: Vec<(String, String)>,
}

impl Shape {
    /// The `fields`/`include_fields` to ask the API for. The walk needs `user_id` and
    /// `created_at`, so they are always requested (and dropped again if not selected). A
    /// metadata path asks for its whole object (the API selects root fields only).
    pub fn request_fields(&self) -> Option<(String, bool)> {
        if let Some(include) = &self.include {
            let mut fields: Vec<&str> = Vec::new();
            for root in include
                .iter()
                .map(|f| root_of(f))
                // `--include`'s keys are added to the user, not asked of the tenant.
                .filter(|f| !crate::export::authz::KEYS.contains(f))
                .chain(["user_id", "created_at"])
            {
                if !fields.contains(&root) {
                    fields.push(root);
                }
            }
            return Some((fields.join(","), true));
        }
        let exclude: Vec<&str> = self
            .exclude
            .iter()
            .map(String::as_str)
            .filter(|f| !f.contains('.') && !matches!(*f, "user_id" | "created_at"))
            .collect();
        if exclude.is_empty() {
            None
        } else {
            Some((exclude.join(","), false))
        }
    }

    /// Applies the selection and renames to one user. A selected metadata path keeps its
    /// place nested under its object (`{"user_metadata":{"country":"NZ"}}`); an object none of
    /// whose selected paths the user has is left out.
    /// The user is taken by value: what is kept is moved, not copied.
    pub fn apply(&self, user: User) -> User {
        let mut out = Map::with_capacity(user.len());
        for (key, value) in user {
            let Some(value) = self.select(&key, value) else {
                continue;
            };
            let name = self
                .rename
                .iter()
                .find(|(from, _)| *from == key)
                .map_or(key, |(_, to)| to.clone());
            out.insert(name, value);
        }
        out
    }

    /// What of the root field `key` reaches the output.
    fn select(&self, key: &str, value: Value) -> Option<Value> {
        let below = |list: &'_ [String]| -> Vec<Vec<String>> {
            list.iter()
                .filter_map(|f| f.strip_prefix(key)?.strip_prefix('.'))
                .map(|path| path.split('.').map(str::to_string).collect())
                .collect()
        };
        let mut value = match &self.include {
            Some(include) if !include.iter().any(|f| f == key) => {
                let paths = below(include);
                let Value::Object(object) = value else {
                    return None;
                };
                let mut picked = Map::new();
                for path in &paths {
                    if let Some(found) = get_path(&object, path) {
                        set_path(&mut picked, path, found.clone());
                    }
                }
                if picked.is_empty() {
                    return None;
                }
                Value::Object(picked)
            }
            _ => value,
        };
        if self.exclude.iter().any(|f| f == key) {
            return None;
        }
        if let Value::Object(object) = &mut value {
            for path in below(&self.exclude) {
                remove_path(object, &path);
            }
        }
        Some(value)
    }

    fn is_identity(&self) -> bool {
        self.include.is_none() && self.keeps_what_it_selects()
    }

    /// True when every field that is kept is kept whole and under its name: then a CSV shape of
    /// the selected root fields reads the tenant's text directly (see `Encoder::encode`).
    fn keeps_what_it_selects(&self) -> bool {
        self.exclude.is_empty() && self.rename.is_empty()
    }
}

/// The output format.
#[derive(Debug, Clone)]
pub enum Format {
    Ndjson,
    /// CSV with each metadata object in one JSON cell.
    Csv {
        shape: CsvShape,
        escape_formulas: bool,
    },
    /// CSV with one column per metadata leaf: the columns are known only once every user has
    /// been read, so the walk writes NDJSON first and [`flatten`] turns it into CSV.
    CsvFlatten {
        escape_formulas: bool,
    },
}

/// Encodes batches of users.
#[derive(Debug, Clone)]
pub struct Encoder {
    pub shape: Shape,
    pub format: Format,
}

impl Encoder {
    pub fn ndjson(shape: Shape) -> Encoder {
        Encoder {
            shape,
            format: Format::Ndjson,
        }
    }

    pub fn csv(shape: Shape, flatten: bool, escape_formulas: bool) -> Result<Encoder, String> {
        let format = if flatten {
            CsvShape::flatten(shape.include.as_deref(), &LeafColumns::default())
                .map_err(|e| e.to_string())?;
            Format::CsvFlatten { escape_formulas }
        } else {
            let csv = CsvShape::json(shape.include.as_deref()).map_err(|e| e.to_string())?;
            Format::Csv {
                shape: csv,
                escape_formulas,
            }
        };
        Ok(Encoder { shape, format })
    }

    /// The encoder the walk writes with: NDJSON for a flattened CSV's first pass.
    pub fn walk_encoder(&self) -> Encoder {
        match self.format {
            Format::CsvFlatten { .. } => Encoder::ndjson(self.shape.clone()),
            _ => self.clone(),
        }
    }

    /// True when the output is made from the walk's NDJSON in a second, local pass.
    pub fn needs_second_pass(&self) -> bool {
        matches!(self.format, Format::CsvFlatten { .. })
    }

    pub fn request_fields(&self) -> Option<(String, bool)> {
        self.shape.request_fields()
    }

    /// Bytes that open the output (the CSV header); empty for NDJSON.
    pub fn header(&self) -> Vec<u8> {
        match &self.format {
            Format::Csv { shape, .. } => csv_rows(std::iter::once(shape.header().to_vec())),
            _ => Vec::new(),
        }
    }

    /// One batch as bytes.
    pub fn encode(&self, users: &[Listed]) -> Result<Vec<u8>, String> {
        let capacity = users.iter().map(|u| u.json_bytes().len() + 1).sum();
        if let Format::Csv {
            shape,
            escape_formulas,
        } = &self.format
        {
            let mut writer = csv_writer(Vec::with_capacity(capacity));
            let mut cells = Vec::new();
            for listed in users {
                // Without renames or exclusions a CSV shape of root fields is filled from the
                // tenant's text; a metadata path or an odd user takes the map.
                let read = self.shape.keeps_what_it_selects()
                    && shape.encode_json_text(listed.json(), *escape_formulas, &mut cells);
                if !read {
                    let user = self.shape.apply(listed.user()?);
                    cells = shape
                        .encode(&user, *escape_formulas)
                        .map_err(|e| format!("cannot write user {} as CSV: {e}", user_id(&user)))?;
                }
                writer
                    .write_record(&cells)
                    .expect("writing to memory cannot fail");
            }
            return Ok(writer.into_inner().expect("writing to memory cannot fail"));
        }
        let mut out = Vec::with_capacity(capacity);
        for listed in users {
            let json = listed.json_bytes();
            // The tenant's own text, unless a selection applies or it spans lines.
            if self.shape.is_identity() && memchr::memchr2(b'\n', b'\r', json).is_none() {
                out.extend_from_slice(json);
            } else {
                let user = self.shape.apply(listed.user()?);
                serde_json::to_writer(&mut out, &user)
                    .map_err(|e| format!("cannot encode a user as JSON: {e}"))?;
            }
            out.push(b'\n');
        }
        Ok(out)
    }

    /// `ndjson`, `csv` (metadata as JSON cells) or `csv --csv-metadata flatten`, with
    /// `--csv-escape-formulas` when on: the format as the user chose it.
    pub fn format_name(&self) -> String {
        match &self.format {
            Format::Ndjson => "ndjson".into(),
            Format::Csv {
                escape_formulas, ..
            } => format!("csv{}", escape_flag(*escape_formulas)),
            Format::CsvFlatten { escape_formulas } => {
                format!(
                    "csv --csv-metadata flatten{}",
                    escape_flag(*escape_formulas)
                )
            }
        }
    }

    /// A readable description for the state's fingerprint.
    pub fn describe(&self) -> String {
        let format = match &self.format {
            Format::Ndjson => "ndjson".to_string(),
            Format::Csv {
                escape_formulas, ..
            } => format!("csv(json, escape={escape_formulas})"),
            Format::CsvFlatten { escape_formulas } => {
                format!("csv(flatten, escape={escape_formulas})")
            }
        };
        format!("{format} {:?}", self.shape)
    }
}

fn escape_flag(on: bool) -> &'static str {
    if on { " --csv-escape-formulas" } else { "" }
}

/// `user_metadata.country` → `user_metadata`.
fn root_of(field: &str) -> &str {
    field.split_once('.').map_or(field, |(root, _)| root)
}

fn get_path<'a>(object: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (last, parents) = path.split_last()?;
    let mut object = object;
    for key in parents {
        object = object.get(key)?.as_object()?;
    }
    object.get(last)
}

/// Puts `value` at `path`, creating the objects on the way.
fn set_path(object: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut object = object;
    for key in parents {
        let entry = object
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(inner) = entry else {
            return;
        };
        object = inner;
    }
    object.insert(last.clone(), value);
}

fn remove_path(object: &mut Map<String, Value>, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut object = object;
    for key in parents {
        match object.get_mut(key) {
            Some(Value::Object(inner)) => object = inner,
            _ => return,
        }
    }
    object.shift_remove(last);
}

fn user_id(user: &User) -> &str {
    user.get("user_id")
        .and_then(Value::as_str)
        .unwrap_or("(no user_id)")
}

/// The CSV writer of every row: RFC 4180 quoting, `\n` line ends.
fn csv_writer(out: Vec<u8>) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().flexible(false).from_writer(out)
}

/// Rows as CSV bytes.
fn csv_rows(rows: impl Iterator<Item = Vec<String>>) -> Vec<u8> {
    let mut writer = csv_writer(Vec::new());
    for row in rows {
        writer
            .write_record(&row)
            .expect("writing to memory cannot fail");
    }
    writer.into_inner().expect("writing to memory cannot fail")
}

/// The second pass of a flattened CSV: reads the walk's NDJSON twice (once for the columns,
/// once for the rows) and hands CSV bytes to `write` in batches. Memory stays flat.
pub fn flatten(
    ndjson: &std::path::Path,
    shape: &Shape,
    escape_formulas: bool,
    write: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<u64, String> {
    use std::io::BufRead;
    let read = || -> Result<_, String> {
        let file = std::fs::File::open(ndjson)
            .map_err(|e| format!("cannot read {}: {e}", ndjson.display()))?;
        Ok(std::io::BufReader::new(file).lines())
    };
    let parse = |line: std::io::Result<String>| -> Result<User, String> {
        let line = line.map_err(|e| format!("cannot read {}: {e}", ndjson.display()))?;
        serde_json::from_str(&line).map_err(|e| format!("{}: {e}", ndjson.display()))
    };
    let mut leaves = LeafColumns::default();
    for line in read()? {
        let user = parse(line)?;
        leaves
            .collect(&user)
            .map_err(|e| format!("user {}: {e}", user_id(&user)))?;
    }
    let csv = CsvShape::flatten(shape.include.as_deref(), &leaves).map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| format!("cannot write the CSV: {e}");
    write(&csv_rows(std::iter::once(csv.header().to_vec()))).map_err(io)?;
    let mut rows = Vec::with_capacity(1000);
    let mut count = 0u64;
    for line in read()? {
        let user = parse(line)?;
        rows.push(
            csv.encode(&user, escape_formulas)
                .map_err(|e| format!("user {}: {e}", user_id(&user)))?,
        );
        count += 1;
        if rows.len() == 1000 {
            write(&csv_rows(rows.drain(..))).map_err(io)?;
        }
    }
    if !rows.is_empty() {
        write(&csv_rows(rows.drain(..))).map_err(io)?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> User {
        json!({"created_at": "2020-01-01T00:00:00.000Z", "email": "a@example.com", "user_id": "auth0|1", "app_metadata": {"plan": "pro"}})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn selected_fields_always_request_the_walk_keys() {
        let shape = Shape {
            include: Some(vec!["email".into()]),
            ..Default::default()
        };
        assert_eq!(
            shape.request_fields(),
            Some(("email,user_id,created_at".into(), true))
        );
        assert_eq!(
            Value::Object(shape.apply(user())),
            json!({"email": "a@example.com"})
        );
    }

    #[test]
    fn excluded_fields_never_drop_the_walk_keys_from_the_request() {
        let shape = Shape {
            exclude: vec!["created_at".into(), "email".into()],
            ..Default::default()
        };
        assert_eq!(shape.request_fields(), Some(("email".into(), false)));
        let out = shape.apply(user());
        assert!(out.get("created_at").is_none() && out.get("email").is_none());
    }

    #[test]
    fn renames_keep_the_order() {
        let shape = Shape {
            rename: vec![("app_metadata".into(), "metadata".into())],
            ..Default::default()
        };
        let out = serde_json::to_string(&shape.apply(user())).unwrap();
        assert_eq!(
            out,
            r#"{"created_at":"2020-01-01T00:00:00.000Z","email":"a@example.com","user_id":"auth0|1","metadata":{"plan":"pro"}}"#
        );
    }
}
