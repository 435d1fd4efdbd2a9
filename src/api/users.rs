//! The users calls of the Management API, and what they return: a [`User`] map, or for list
//! pages a [`Listed`] user kept as the JSON text the tenant sent.

use reqwest::Method;
use serde_json::{Map, Value};

use super::{ApiError, Client};

/// A user object exactly as the API returns it. The one name for it in the crate's API layer.
pub type User = Map<String, Value>;

/// One page of `GET /api/v2/users` with `include_totals=true`.
#[derive(Debug)]
pub struct UsersPage {
    pub total: u64,
    pub users: Vec<Listed>,
}

/// A user from a list page, kept as the JSON text the tenant sent. The export walk orders
/// users by `user_id` and `created_at` alone, and NDJSON writes the text as it came, so a map
/// is built only when a format needs one: parsing and re-serializing every user was most of
/// the export's CPU time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    pub user_id: String,
    /// `created_at` as sent, when it is a string.
    pub created_at: Option<String>,
    json: Box<str>,
}

impl Listed {
    /// Reads the two keys out of one user's JSON object text.
    pub fn from_json(json: &str) -> Result<Listed, String> {
        #[derive(serde::Deserialize)]
        struct Keys {
            #[serde(default)]
            user_id: Option<Value>,
            #[serde(default)]
            created_at: Option<Value>,
        }
        if !json.trim_start().starts_with('{') {
            return Err("a user is not an object".into());
        }
        let keys: Keys = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        Ok(Listed {
            user_id: text(keys.user_id).unwrap_or_default(),
            created_at: text(keys.created_at),
            json: json.into(),
        })
    }

    /// [`Listed::from_json`] for text already checked as JSON (a list page's users, parsed
    /// once as the page): the two keys are found by a scan of the object's top level that
    /// skips nested values without parsing them ([`top_level_keys`]), and only when the scan
    /// meets something unusual (an escaped key, a key twice) does serde read it whole. The
    /// second parse of every user was a sixth of an export's CPU.
    pub fn from_valid_json(json: &str) -> Result<Listed, String> {
        match top_level_keys(json) {
            Some((user_id, created_at)) => Ok(Listed {
                user_id: user_id.unwrap_or_default(),
                created_at,
                json: json.into(),
            }),
            None => Listed::from_json(json),
        }
    }

    /// A user kept before (its keys read then): no need to read them again.
    pub fn from_parts(user_id: String, created_at: Option<String>, json: Box<str>) -> Listed {
        Listed {
            user_id,
            created_at,
            json,
        }
    }

    /// A user already held as a map.
    pub fn from_user(user: &User) -> Listed {
        let json = serde_json::to_string(user).expect("a JSON map always serializes");
        let text = |key: &str| user.get(key).and_then(Value::as_str).map(str::to_string);
        Listed {
            user_id: text("user_id").unwrap_or_default(),
            created_at: text("created_at"),
            json: json.into(),
        }
    }

    /// The user's JSON text as the tenant sent it.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The user as a map.
    pub fn user(&self) -> Result<User, String> {
        serde_json::from_str(&self.json).map_err(|e| format!("user {}: {e}", self.user_id))
    }
}

/// The string values of `user_id` and `created_at` at the top level of a JSON object that is
/// known to be valid JSON (`None` for a key missing or not a string), as serde would read
/// them; `None` when the text is not an object or holds what this scan leaves to serde: a key
/// with an escape, or either key twice.
fn top_level_keys(json: &str) -> Option<(Option<String>, Option<String>)> {
    let b = json.as_bytes();
    let mut i = skip_space(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_space(b, i + 1);
    let (mut user_id, mut created_at) = (None, None);
    let (mut seen_id, mut seen_created) = (false, false);
    while b.get(i) == Some(&b'"') {
        let end = string_end(b, i + 1)?;
        let key = &b[i + 1..end];
        if key.contains(&b'\\') {
            return None;
        }
        i = skip_space(b, end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_space(b, i + 1);
        let value_end = value_end(b, i)?;
        let slot = match key {
            b"user_id" => Some((&mut user_id, &mut seen_id)),
            b"created_at" => Some((&mut created_at, &mut seen_created)),
            _ => None,
        };
        if let Some((slot, seen)) = slot {
            if std::mem::replace(seen, true) {
                return None;
            }
            let text = &json[i..value_end];
            *slot = if text.starts_with('"') {
                if text.contains('\\') {
                    Some(serde_json::from_str::<String>(text).ok()?)
                } else {
                    Some(text[1..text.len() - 1].to_string())
                }
            } else {
                None
            };
        }
        i = skip_space(b, value_end);
        match b.get(i) {
            Some(b',') => i = skip_space(b, i + 1),
            Some(b'}') => return Some((user_id, created_at)),
            _ => return None,
        }
    }
    (b.get(i) == Some(&b'}')).then_some((user_id, created_at))
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// The index of the closing quote of the string whose text starts at `from`.
fn string_end(b: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', &b[from..])?;
        if b[at] == b'"' {
            return Some(at);
        }
        // An escape: the character after the backslash is never the end.
        from = at + 2;
    }
}

/// The index just past the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i + 1).map(|end| end + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = i;
            loop {
                match *b.get(at)? {
                    b'"' => at = string_end(b, at + 1)?,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
        }
        // A number, true, false or null: up to the next delimiter.
        _ => Some(
            b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(b.len(), |n| i + n),
        ),
    }
}

/// A list/search request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub q: Option<String>,
    pub sort: Option<String>,
    pub page: u32,
    pub per_page: u32,
    /// `fields` and `include_fields`.
    pub fields: Option<(String, bool)>,
}

impl Client {
    /// `GET /api/v2/users` with `include_totals=true&search_engine=v3`.
    pub async fn list_users(&self, query: &ListQuery) -> Result<UsersPage, ApiError> {
        let mut params = vec![
            ("page", query.page.to_string()),
            ("per_page", query.per_page.to_string()),
            ("include_totals", "true".to_string()),
            ("search_engine", "v3".to_string()),
        ];
        if let Some(q) = &query.q {
            params.push(("q", q.clone()));
        }
        if let Some(sort) = &query.sort {
            params.push(("sort", sort.clone()));
        }
        if let Some((fields, include)) = &query.fields {
            params.push(("fields", fields.clone()));
            params.push(("include_fields", include.to_string()));
        }
        let (_, bytes) = self.send(Method::GET, "/users", &params, None).await?;
        let decode = |message: String| ApiError::Decode {
            what: "GET /api/v2/users".into(),
            message,
        };
        #[derive(serde::Deserialize)]
        struct Body<'a> {
            total: Option<Value>,
            #[serde(borrow)]
            users: Option<Vec<&'a serde_json::value::RawValue>>,
        }
        let body: Body = serde_json::from_slice(&bytes).map_err(|e| decode(e.to_string()))?;
        let total = body
            .total
            .as_ref()
            .and_then(Value::as_u64)
            .ok_or_else(|| decode("no total".into()))?;
        let users = body
            .users
            .ok_or_else(|| decode("no users array".into()))?
            .into_iter()
            .map(|raw| Listed::from_valid_json(raw.get()).map_err(decode))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UsersPage { total, users })
    }

    /// `GET /api/v2/users/{id}`; `None` for 404.
    pub async fn get_user(&self, user_id: &str) -> Result<Option<User>, ApiError> {
        let path = format!("/users/{}", encode_segment(user_id));
        match self.send(Method::GET, &path, &[], None).await {
            Ok((_, bytes)) => decode_user(&bytes, "GET /api/v2/users/{id}").map(Some),
            Err(ApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/v2/users-by-email` (immediately consistent).
    pub async fn users_by_email(&self, email: &str) -> Result<Vec<User>, ApiError> {
        let (_, bytes) = self
            .send(
                Method::GET,
                "/users-by-email",
                &[("email", email.to_string())],
                None,
            )
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
            what: "GET /api/v2/users-by-email".into(),
            message: e.to_string(),
        })
    }

    /// `POST /api/v2/users`.
    pub async fn create_user(&self, body: &Value) -> Result<User, ApiError> {
        let (_, bytes) = self.send(Method::POST, "/users", &[], Some(body)).await?;
        decode_user(&bytes, "POST /api/v2/users")
    }

    /// `PATCH /api/v2/users/{id}`.
    pub async fn update_user(&self, user_id: &str, body: &Value) -> Result<User, ApiError> {
        let path = format!("/users/{}", encode_segment(user_id));
        let (_, bytes) = self.send(Method::PATCH, &path, &[], Some(body)).await?;
        decode_user(&bytes, "PATCH /api/v2/users/{id}")
    }
}

fn decode_user(bytes: &[u8], what: &str) -> Result<User, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::Decode {
        what: what.to_string(),
        message: e.to_string(),
    })
}

/// Percent-encodes a path segment: user ids hold `|` and other reserved characters.
pub fn encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Any JSON value a few levels deep, strings with escapes and non-ASCII included.
    fn value() -> impl Strategy<Value = Value> {
        let text = "[a-z\"\\\\/\n\té\u{1F600} ]{0,8}";
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            text.prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((text, inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// A user object: other keys around `user_id` and `created_at`, which may be missing or
    /// not strings.
    fn user() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("user_id".to_string()),
            Just("created_at".to_string()),
            "[a-z_]{1,10}",
            Just("user\\id".to_string()),
        ];
        prop::collection::vec((key, value()), 0..8)
            .prop_map(|kv| Value::Object(kv.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn the_scan_reads_the_keys_as_serde_does(user in user(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&user).unwrap()
            } else {
                serde_json::to_string(&user).unwrap()
            };
            prop_assert_eq!(Listed::from_valid_json(&text), Listed::from_json(&text));
        }
    }

    #[test]
    fn the_scan_leaves_what_it_does_not_read_to_serde() {
        let scan = |text: &str| top_level_keys(text);
        assert_eq!(
            scan(
                r#"{"identities":[{"user_id":"inner"}],"user_id":"auth0|1","created_at":"2020-01-01T00:00:00.000Z"}"#
            ),
            Some((
                Some("auth0|1".into()),
                Some("2020-01-01T00:00:00.000Z".into())
            ))
        );
        assert_eq!(
            scan(r#"{"user_id":"a\"b","created_at":5}"#),
            Some((Some("a\"b".into()), None))
        );
        assert_eq!(scan(r#"{}"#), Some((None, None)));
        // An escaped key, a key twice, not an object: serde decides.
        assert_eq!(scan(r#"{"user\u005fid":"x"}"#), None);
        assert_eq!(scan(r#"{"user_id":"x","user_id":"y"}"#), None);
        assert_eq!(scan(r#"[1]"#), None);
        assert_eq!(
            Listed::from_valid_json(r#"{"user\u005fid":"x"}"#)
                .unwrap()
                .user_id,
            "x"
        );
        assert!(Listed::from_valid_json(r#"{"user_id":"x","user_id":"y"}"#).is_err());
        let user = json!({"user_id": "u", "app_metadata": {"a": [1, {"b": "}]"}]}});
        let text = user.to_string();
        assert_eq!(Listed::from_valid_json(&text), Listed::from_json(&text));
    }
}
