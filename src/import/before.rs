//! Before-images: what each update is about to change, kept in the run state before the PATCH
//! is sent, so that `auth0-bulk undo STATE` (or an import of the file) puts it back.
//!
//! `before-images.ndjson` (0600) holds one line per updated record:
//! `{"_before":{"record":12,"line":12},"user_id":"auth0|abc","name":"Old","app_metadata":{"plan":"free","trial":null}}`:
//! the user's previous value of exactly the root fields the PATCH sets, and of exactly the
//! top-level metadata keys it sets (`null` for a key the user did not have). That is a record
//! `import --mode update --match user_id --metadata merge` restores exactly (facts: "PATCH"
//! replaces top-level metadata keys whole and deletes a key set to `null`); the importer
//! ignores `_before`, which names the record whose update it undoes.
//!
//! What cannot come back exactly:
//! - a root text field the user did not have is `null` in the image, which deletes it again;
//!   a boolean field (`blocked`, `email_verified`, `phone_verified`) the user did not have is
//!   `false`, its default (spec: those fields are not nullable, so a PATCH cannot remove them);
//! - a metadata object the user did not have comes back empty (`{}`): a PATCH cannot remove
//!   the object itself, and the importer, as Auth0's merge, counts no object as `{}`;
//! - a password is never read back (the API returns none), so it is not in the image;
//! - roles and organizations that `--create-missing` made stay (undo takes the user's
//!   assignments back, not the tenant's roles);
//! - what the tenant changes as a side effect of an update (Auth0 may reset `email_verified`
//!   when `email` changes) is not the update's, and is not put back.
//!
//! **Access images.** A record whose `roles`, `organizations` or `permissions` change a user
//! the run did not create keeps, before the first of those writes, a line of its own:
//! `{"_before":{"record":12,"line":12,"access":true},"user_id":"auth0|abc","roles":["Reader"]}`,
//! everything the user had of each kind the record names, in the record's shape (every
//! membership with its member roles), which an import with `--authz replace` brings back
//! exactly (see [`super::access`]). A record has at most one image of each kind.
//!
//! **Exactly once across crashes.** An image is durable (fsynced, with the group-commit
//! writer the ledger uses) before its PATCH is sent. A resumed run looks the user up again; a
//! record whose update was sent finds the user changed (unchanged: no PATCH, no image), and one
//! whose image exists but whose PATCH was not sent must not get a second image: that one would
//! still be right, but once the PATCH is sent a third run's would hold the new values. So the
//! file is read once on open into a bitset of the records it holds (a bit a record), and a
//! record already there gets no new line.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::plan::User;
use crate::state::log::{Appender, open_log};

/// The file's name in the run state.
pub const FILE: &str = "before-images.ndjson";

/// Spec (`UpdateUserRequestContent`): the root fields that cannot be `null`; `false` is their
/// default.
const BOOLEAN_FIELDS: [&str; 3] = ["blocked", "email_verified", "phone_verified"];

/// Fields of a PATCH body that steer side effects and are not stored on the user; and the
/// password, which is never read back.
const NOT_RESTORED: [&str; 5] = [
    "connection",
    "client_id",
    "verify_email",
    "verify_phone_number",
    "password",
];

/// Which input record an image undoes: its position (the ledger's key) and its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub record: u64,
    pub line: u64,
}

/// The start of a line of the file, as read back.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "_before")]
    before: Mark,
}

/// `_before`: the record, and whether the line is its access image. (Not a flattened
/// [`Origin`]: with serde_json's `arbitrary_precision` a flattened number does not read back.)
#[derive(Serialize, Deserialize)]
struct Mark {
    record: u64,
    line: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    access: bool,
}

impl Mark {
    fn origin(&self) -> Origin {
        Origin {
            record: self.record,
            line: self.line,
        }
    }
}

/// Which record a line of the file undoes.
pub fn origin_of(line: &[u8]) -> Result<Origin, serde_json::Error> {
    serde_json::from_slice::<Head>(line).map(|head| head.before.origin())
}

/// Whether the file at `path` holds an access image (none when it does not exist): undo then
/// restores with `--authz replace`, which needs scopes a restore of fields alone does not.
pub fn holds_access(path: &Path) -> std::io::Result<bool> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    for line in std::io::BufRead::split(std::io::BufReader::new(file), b'\n') {
        // (A torn last line is no image.)
        if serde_json::from_slice::<Head>(&line?).is_ok_and(|head| head.before.access) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The user's previous values of what `body` (a PATCH) changes on `current`: see the module
/// docs.
pub fn image(current: &User, body: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in body.as_object().into_iter().flatten() {
        match key.as_str() {
            "user_metadata" | "app_metadata" => {
                let now = current.get(key).and_then(Value::as_object);
                let previous = match value.as_object() {
                    Some(patch) if !patch.is_empty() => patch
                        .keys()
                        .map(|k| {
                            let was = now.and_then(|n| n.get(k)).cloned();
                            (k.clone(), was.unwrap_or(Value::Null))
                        })
                        .collect(),
                    // `{}` clears the object: all of it comes back.
                    _ => now.cloned().unwrap_or_default(),
                };
                out.insert(key.clone(), Value::Object(previous));
            }
            name if NOT_RESTORED.contains(&name) => {}
            name => {
                let previous = match current.get(name) {
                    Some(v) if !v.is_null() => v.clone(),
                    _ if BOOLEAN_FIELDS.contains(&name) => Value::Bool(false),
                    _ => Value::Null,
                };
                out.insert(key.clone(), previous);
            }
        }
    }
    out
}

/// The open before-images file of a run.
pub struct BeforeImages {
    path: PathBuf,
    writer: Appender,
    /// The records with an image in the file, a bit each: of their fields, of their access.
    written: Mutex<[Vec<u64>; 2]>,
}

impl BeforeImages {
    /// Reads which records have an image (a torn last line is dropped) and opens the file for
    /// appending. A damaged whole line is `InvalidData`.
    pub fn open(path: &Path) -> std::io::Result<BeforeImages> {
        let mut written = [Vec::new(), Vec::new()];
        let (file, len) = open_log(path, "a before-image", |head: Head| {
            let bits = &mut written[usize::from(head.before.access)];
            set(bits, head.before.record);
        })?;
        let writer = Appender::start(
            file,
            len,
            "before-images",
            "Cannot write the before-images file; the updates waiting for it are not sent.",
        )?;
        Ok(BeforeImages {
            path: path.to_path_buf(),
            writer,
            written: Mutex::new(written),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps `image` of `user_id` for the record at `origin`; returns once it is on disk, or at
    /// once when the record has one already (from an earlier run).
    pub async fn keep(
        &self,
        origin: Origin,
        user_id: &str,
        image: Map<String, Value>,
    ) -> std::io::Result<()> {
        self.keep_line(origin, false, user_id, image).await
    }

    /// Keeps the access image of `user_id` for the record at `origin` (see the module docs):
    /// as [`keep`](Self::keep), a line of its own, once.
    pub async fn keep_access(
        &self,
        origin: Origin,
        user_id: &str,
        image: Map<String, Value>,
    ) -> std::io::Result<()> {
        self.keep_line(origin, true, user_id, image).await
    }

    async fn keep_line(
        &self,
        origin: Origin,
        access: bool,
        user_id: &str,
        image: Map<String, Value>,
    ) -> std::io::Result<()> {
        let kind = usize::from(access);
        if get(
            &self.written.lock().expect("bits lock")[kind],
            origin.record,
        ) {
            return Ok(());
        }
        let mut line = Map::new();
        line.insert(
            "_before".into(),
            serde_json::to_value(Mark {
                record: origin.record,
                line: origin.line,
                access,
            })?,
        );
        line.insert("user_id".into(), user_id.into());
        line.extend(image);
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        self.writer.durable(bytes).await?;
        set(
            &mut self.written.lock().expect("bits lock")[kind],
            origin.record,
        );
        Ok(())
    }

    /// Flushes and closes the file.
    pub fn close(self) {
        self.writer.close();
    }
}

fn set(bits: &mut Vec<u64>, record: u64) {
    let word = (record / 64) as usize;
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    bits[word] |= 1 << (record % 64);
}

fn get(bits: &[u64], record: u64) -> bool {
    bits.get((record / 64) as usize)
        .is_some_and(|word| word & (1 << (record % 64)) != 0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::import::plan::apply_patch;

    fn user(value: Value) -> User {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn an_image_patched_back_restores_the_user() {
        let current = user(json!({
            "user_id": "auth0|abc", "name": "Old", "blocked": false,
            "user_metadata": {"theme": "dark", "address": {"city": "Paris", "zip": "1"}},
            "app_metadata": {"plan": "free"}
        }));
        // (the PATCH, its image)
        let cases = [
            (
                json!({"name": "New", "given_name": "G", "email_verified": true,
                       "app_metadata": {"plan": "pro", "tier": {"a": 1}},
                       "user_metadata": {"theme": null, "address": {"city": "Lyon"}}}),
                json!({"name": "Old", "given_name": null, "email_verified": false,
                       "app_metadata": {"plan": "free", "tier": null},
                       "user_metadata": {"theme": "dark", "address": {"city": "Paris", "zip": "1"}}}),
            ),
            (
                json!({"user_metadata": {}, "password": "S3cret!pass", "verify_email": false}),
                json!({"user_metadata": {"theme": "dark", "address": {"city": "Paris", "zip": "1"}}}),
            ),
        ];
        for (body, expected) in cases {
            let image = image(&current, &body);
            assert_eq!(Value::Object(image.clone()), expected);
            let after = apply_patch(&current, &body);
            let mut back = apply_patch(&after, &Value::Object(image));
            // `false` stands for an absent boolean (its default).
            if back.get("email_verified") == Some(&json!(false)) {
                back.shift_remove("email_verified");
            }
            // Key order aside (serde_json's maps compare as maps).
            assert_eq!(back, current);
        }
    }

    #[tokio::test]
    async fn a_record_keeps_its_first_image_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let images = BeforeImages::open(&path).unwrap();
        let at = |record| Origin {
            record,
            line: record + 1,
        };
        let first = user(json!({"name": "Old"}));
        images.keep(at(1), "auth0|a", first.clone()).await.unwrap();
        images.keep(at(70), "auth0|b", first.clone()).await.unwrap();
        images.close();
        // A torn line, as a crash mid-write leaves it.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"_before\":{\"rec");
        std::fs::write(&path, text).unwrap();
        let images = BeforeImages::open(&path).unwrap();
        let second = user(json!({"name": "New"}));
        images.keep(at(1), "auth0|a", second.clone()).await.unwrap();
        images.keep(at(2), "auth0|a", second).await.unwrap();
        // A record's access image is a line of its own, kept once too.
        let roles = user(json!({"roles": ["Reader"]}));
        images
            .keep_access(at(1), "auth0|a", roles.clone())
            .await
            .unwrap();
        images.close();
        let images = BeforeImages::open(&path).unwrap();
        images
            .keep_access(at(1), "auth0|a", user(json!({"roles": []})))
            .await
            .unwrap();
        images
            .keep(at(1), "auth0|a", user(json!({"name": "Newer"})))
            .await
            .unwrap();
        images.close();
        assert!(holds_access(&path).unwrap());
        assert!(!holds_access(&dir.path().join("none.ndjson")).unwrap());
        let lines: Vec<Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(
            lines[3],
            json!({"_before": {"record": 1, "line": 2, "access": true}, "user_id": "auth0|a",
                   "roles": ["Reader"]})
        );
        assert_eq!(origin_of(lines[3].to_string().as_bytes()).unwrap(), at(1));
        assert_eq!(
            lines[0],
            json!({"_before": {"record": 1, "line": 2}, "user_id": "auth0|a", "name": "Old"})
        );
        assert_eq!(lines[2]["_before"]["record"], 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
