//! A user read as its top-level keys over the tenant's JSON text, and a JSON value written
//! compactly without a parse when its text already is: the CSV export's fast path.
//!
//! Building a `serde_json` map of every user, and writing its metadata and identities back out
//! as JSON cells, was most of a CSV export's CPU time. Here a user is its top-level keys, each
//! with its value's text as the tenant sent it. A JSON cell is that text when it already is what
//! `Value::to_string` writes (no whitespace, only the escapes serde_json writes, no key twice in
//! one object), which one pass over the bytes checks; otherwise the value is parsed and written.
//! Either way the cell holds the bytes the map would have given.

use serde_json::Value;

/// A user's top-level keys, in the tenant's order, each with its value's JSON text.
#[derive(Debug)]
pub struct RawUser<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> RawUser<'a> {
    /// Reads one user's JSON object text. `None` when it is not an object, a key holds an
    /// escape, or a key comes twice (a map keeps one of them): the caller builds the map then.
    pub fn parse(json: &'a str) -> Option<RawUser<'a>> {
        let fields = crate::api::scan::fields(json)?;
        let repeated = fields
            .iter()
            .enumerate()
            .any(|(i, (key, _))| fields[..i].iter().any(|(seen, _)| seen == key));
        (!repeated).then_some(RawUser { fields })
    }

    /// The text of the value at `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// Every key with its value's text, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.fields.iter().copied()
    }
}

/// Appends the JSON text `raw` (valid JSON, as a page's parse checked it) to `out` exactly as
/// `Value::to_string` writes its value.
pub fn write_compact(raw: &str, out: &mut String) {
    if is_compact(raw) {
        out.push_str(raw);
    } else {
        let value: Value = serde_json::from_str(raw).expect("the page parse checked this JSON");
        out.push_str(&value.to_string());
    }
}

/// True when valid JSON text `raw` is byte for byte what serde_json writes for its value: no
/// whitespace between tokens, strings escaped as serde_json escapes them (`\"`, `\\`, `\b`,
/// `\f`, `\n`, `\r`, `\t`, else `\u00xx` for a control character, everything else as itself),
/// no key twice in an object, and numbers whose exponent (if any) is `e` with a sign. Otherwise
/// serde_json keeps a number's text as sent (the crate's `arbitrary_precision`).
pub fn is_compact(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    // The keys of the objects open around the cursor: `keys[starts.last()..]` are the current
    // object's; an array pushes `None`.
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut starts: Vec<Option<usize>> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                let Some(end) = string_end(bytes, start) else {
                    return false;
                };
                if expect_key {
                    let key = &bytes[start..end];
                    let from = starts.last().copied().flatten().unwrap_or(0);
                    if keys[from..].contains(&key) {
                        return false;
                    }
                    keys.push(key);
                    expect_key = false;
                }
                i = end + 1;
                continue;
            }
            b'{' => {
                starts.push(Some(keys.len()));
                expect_key = true;
            }
            b'[' => starts.push(None),
            b'}' | b']' => {
                if let Some(Some(from)) = starts.pop() {
                    keys.truncate(from);
                }
                expect_key = false;
            }
            b',' => expect_key = matches!(starts.last(), Some(Some(_))),
            b' ' | b'\t' | b'\n' | b'\r' => return false,
            // serde_json keeps a number's text but writes its exponent as `e` and a sign:
            // `1E5` and `1e5` come out as `1e+5`. (An `e` after a digit is an exponent's; the
            // `e` of `true` and `false` follows a letter.)
            b'E' => return false,
            b'e' if i > 0
                && bytes[i - 1].is_ascii_digit()
                && !matches!(bytes.get(i + 1), Some(b'+' | b'-')) =>
            {
                return false;
            }
            _ => {}
        }
        i += 1;
    }
    true
}

/// The index of the quote that closes the string whose text starts at `start`, when every
/// escape in it is one serde_json writes.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    loop {
        let offset = memchr::memchr2(b'"', b'\\', &bytes[i..])?;
        i += offset;
        if bytes[i] == b'"' {
            return Some(i);
        }
        match bytes.get(i + 1)? {
            b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
            b'u' => {
                let hex = bytes.get(i + 2..i + 6)?;
                // serde_json writes `\u00xx` (lower-case hex) only for a control character
                // that has no short escape.
                let short = [b"0008", b"0009", b"000a", b"000c", b"000d"];
                let control = hex.starts_with(b"00")
                    && matches!(hex[2], b'0' | b'1')
                    && matches!(hex[3], b'0'..=b'9' | b'a'..=b'f');
                if !control || short.iter().any(|s| &s[..] == hex) {
                    return None;
                }
                i += 6;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(raw: &str) -> String {
        serde_json::from_str::<Value>(raw).unwrap().to_string()
    }

    #[test]
    fn compact_text_is_exactly_what_a_parse_and_write_gives() {
        for raw in [
            r#"{"a":1,"b":[true,null,{"c":"d"}],"e":{}}"#,
            r#"[{"a":1},{"a":2}]"#,
            r#"{"n":18446744073709551615,"f":1e-7,"z":-0.0,"big":1.0e+400,"t":[true,false]}"#,
            "-0",
            "12.50",
            "1e+5",
            r#"{"s":"tab\tquote\"back\\slash\nnul\u0000us\u001f","u":"é✓😀/"}"#,
            r#"{"a":{"x":1},"b":{"x":1}}"#,
            r#"{"k":"a b"}"#,
            "[]",
            "{}",
        ] {
            assert!(is_compact(raw), "{raw}");
            let mut out = String::new();
            write_compact(raw, &mut out);
            assert_eq!(out, canonical(raw), "{raw}");
        }
    }

    #[test]
    fn anything_a_write_would_change_is_parsed_and_written() {
        for raw in [
            r#"{"a": 1}"#,
            "1E+5",
            "1e5",
            r#"[2.5E-3,true]"#,
            "[1,\n2]",
            r#"{"a":1,"a":2}"#,
            r#"{"o":{"a":1,"b":{"a":2},"a":3}}"#,
            r#"{"s":"\/"}"#,
            r#"{"s":"\u00e9"}"#,
            r#"{"s":"\u000A"}"#,
            r#"{"s":"\u001F"}"#,
            r#"{"s":"\ud83d\ude00"}"#,
            r#"{"s\u0041":1}"#,
        ] {
            assert!(!is_compact(raw), "{raw}");
            let mut out = String::new();
            write_compact(raw, &mut out);
            assert_eq!(out, canonical(raw), "{raw}");
        }
    }

    #[test]
    fn a_user_is_read_as_its_top_level_keys_unless_a_map_would_differ() {
        let user =
            RawUser::parse(r#"{"user_id":"auth0|1", "identities":[{"user_id":"x"}]}"#).unwrap();
        assert_eq!(user.get("user_id").unwrap(), r#""auth0|1""#);
        assert_eq!(user.get("identities").unwrap(), r#"[{"user_id":"x"}]"#);
        assert_eq!(user.iter().count(), 2);
        assert!(RawUser::parse(r#"{"a":1,"a":2}"#).is_none());
        // An escaped key inside a value is read (only a top-level key's name matters): a case
        // a proptest found when the scan first replaced serde here.
        let nested = RawUser::parse(r#"{"extra":[{"\"":null}]}"#).unwrap();
        assert_eq!(nested.get("extra").unwrap(), r#"[{"\"":null}]"#);
        assert!(RawUser::parse(r#"{"\u0061":1}"#).is_none());
        assert!(RawUser::parse("[1]").is_none());
    }
}
