//! Metadata objects: checked as the tenant checks them (objects, clean keys, depth), and
//! merged into a user's under a [`MetadataStrategy`] (the strategies are in the `plan`
//! module docs, with an example each).

use serde_json::{Map, Value};

use super::fields::describe;
use super::patch::same;
use super::{Invalid, MetadataStrategy, User, code, invalid};
use crate::rules::{MAX_JSON_DEPTH, RESERVED_APP_METADATA};

/// A metadata object of the record, checked (facts: "Metadata rules"). `source` is the
/// record's field, `field` the one it is sent as.
pub(super) fn metadata_object(
    fields: &User,
    source: &str,
    field: &str,
) -> Result<Option<Map<String, Value>>, Invalid> {
    let mapped = if source == field {
        String::new()
    } else {
        format!(" (the record's `{source}`, sent as {field})")
    };
    let object = match fields.get(source) {
        None => return Ok(None),
        Some(Value::Object(object)) => object,
        Some(other) => {
            return Err(invalid(
                code::INVALID_FIELD,
                source,
                format!(
                    "`{source}` must be an object{mapped}, not {}; {{}} clears it",
                    describe(other)
                ),
            ));
        }
    };
    if deeper_than(&Value::Object(object.clone()), MAX_JSON_DEPTH - 1) {
        return Err(invalid(
            code::INVALID_FIELD,
            source,
            format!(
                "`{source}`{mapped} nests more than {MAX_JSON_DEPTH} levels of objects and \
                 arrays, counting the user as one: JSON readers (this tool's export among them) \
                 cannot read such a user back; make the deepest part flatter"
            ),
        ));
    }
    if field == "app_metadata"
        && let Some(key) = object
            .keys()
            .find(|k| RESERVED_APP_METADATA.contains(&k.as_str()))
    {
        return Err(invalid(
            code::RESERVED_METADATA_KEY,
            format!("app_metadata.{key}"),
            format!(
                "app_metadata.{key}{mapped} uses a name Auth0 reserves in app_metadata ({}); \
                 rename the key or move it to user_metadata",
                RESERVED_APP_METADATA.join(", ")
            ),
        ));
    }
    check_metadata_keys(field, object).map_err(|(path, key)| {
        let bad = if key.contains('.') { "." } else { "$" };
        invalid(
            code::INVALID_METADATA_KEY,
            path.clone(),
            format!(
                "metadata key {key:?} at {path}{mapped} contains \"{bad}\": Auth0 refuses \
                 keys with \".\" or \"$\" at any depth; rename it"
            ),
        )
    })?;
    Ok(Some(object.clone()))
}

/// Whether `value` nests more than `levels` levels of objects and arrays (a scalar is none).
/// The walk goes at most `levels` deep, so the stack stays small whatever the value.
pub(super) fn deeper_than(value: &Value, levels: usize) -> bool {
    let mut children: Box<dyn Iterator<Item = &Value>> = match value {
        Value::Object(map) => Box::new(map.values()),
        Value::Array(items) => Box::new(items.iter()),
        _ => return false,
    };
    levels == 0 || children.any(|child| deeper_than(child, levels - 1))
}

/// Facts ("Metadata rules"): keys must not contain `.` or `$`, checked at every depth and
/// inside arrays (as the sandbox does). The error is the key's path and the key.
pub(super) fn check_metadata_keys(
    path: &str,
    object: &Map<String, Value>,
) -> Result<(), (String, String)> {
    fn walk(path: &str, value: &Value) -> Result<(), (String, String)> {
        match value {
            Value::Object(map) => check_metadata_keys(path, map),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| walk(&format!("{path}[{i}]"), item)),
            _ => Ok(()),
        }
    }
    for (key, value) in object {
        let here = format!("{path}.{key}");
        if key.contains('.') || key.contains('$') {
            return Err((here, key.clone()));
        }
        walk(&here, value)?;
    }
    Ok(())
}

/// What a metadata object becomes under `strategy` (the `plan` module docs' examples).
pub(super) fn intended(
    current: &Map<String, Value>,
    record: &Map<String, Value>,
    strategy: MetadataStrategy,
) -> Map<String, Value> {
    match strategy {
        MetadataStrategy::Merge => {
            let mut patched = current.clone();
            merge_one_level(&mut patched, record);
            patched
        }
        MetadataStrategy::Deep => deep_merge(current, record),
        MetadataStrategy::Replace => record
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// The smallest one-level patch that takes `current` to the strategy's result, or None.
pub(super) fn metadata_patch(
    current: &Map<String, Value>,
    record: &Map<String, Value>,
    strategy: MetadataStrategy,
) -> Option<Map<String, Value>> {
    match strategy {
        MetadataStrategy::Merge => {
            // Auth0's own semantics, so the record's keys only (never a computed `{}`: keys a
            // concurrent writer adds survive).
            if record.is_empty() {
                return (!current.is_empty()).then(Map::new);
            }
            let patch: Map<String, Value> = record
                .iter()
                .filter(|(k, v)| match v {
                    Value::Null => current.contains_key(*k),
                    v => !current.get(*k).is_some_and(|c| same(c, v)),
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (!patch.is_empty()).then_some(patch)
        }
        MetadataStrategy::Deep => one_level_patch(current, &deep_merge(current, record)),
        MetadataStrategy::Replace => {
            let target = intended(current, record, strategy);
            if target.is_empty() {
                // `{}` clears the object in one go.
                return (!current.is_empty()).then(Map::new);
            }
            one_level_patch(current, &target)
        }
    }
}

/// Under Auth0's one-level merge: each top-level key whose value changes (sent whole), and
/// `null` for each key to remove.
pub(super) fn one_level_patch(
    current: &Map<String, Value>,
    target: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let mut patch = Map::new();
    for (key, value) in target {
        if !current.get(key).is_some_and(|c| same(c, value)) {
            patch.insert(key.clone(), value.clone());
        }
    }
    for key in current.keys() {
        if !target.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    (!patch.is_empty()).then_some(patch)
}

/// Deep merge: objects merge recursively, arrays and scalars replace, `null` removes the key.
pub(super) fn deep_merge(
    base: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = base.clone();
    for (key, value) in patch {
        match value {
            Value::Null => {
                out.shift_remove(key);
            }
            Value::Object(inner) => {
                let merged = match out.get(key) {
                    Some(Value::Object(existing)) => deep_merge(existing, inner),
                    _ => deep_merge(&Map::new(), inner),
                };
                out.insert(key.clone(), Value::Object(merged));
            }
            other => {
                out.insert(key.clone(), other.clone());
            }
        }
    }
    out
}

/// Facts ("PATCH"): one-level merge; `null` deletes a key; `{}` clears the object.
pub(super) fn merge_one_level(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    if patch.is_empty() {
        target.clear();
        return;
    }
    for (key, value) in patch {
        if value.is_null() {
            target.shift_remove(key);
        } else {
            target.insert(key.clone(), value.clone());
        }
    }
}

/// The record's `user_metadata` and `app_metadata`, checked. Facts ("Metadata rules"):
/// Management API v1 and custom database scripts named app metadata `metadata`.
pub(super) fn metadata_objects(fields: &User) -> Result<(Option<Object>, Option<Object>), Invalid> {
    let mapped = fields.contains_key("metadata");
    if mapped && fields.contains_key("app_metadata") {
        return Err(invalid(
            code::AMBIGUOUS_FIELD,
            "metadata",
            "the record has both `metadata` (app metadata, as Management API v1 and custom \
             database scripts named it) and `app_metadata`; keep only one of them",
        ));
    }
    let user_metadata = metadata_object(fields, "user_metadata", "user_metadata")?;
    let app_metadata = if mapped {
        metadata_object(fields, "metadata", "app_metadata")?
    } else {
        metadata_object(fields, "app_metadata", "app_metadata")?
    };
    Ok((user_metadata, app_metadata))
}

/// A metadata object.
type Object = Map<String, Value>;
