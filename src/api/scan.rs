//! One pass over a list page's JSON that checks it is JSON and finds each user's text, its
//! `user_id` and its `created_at`: the fast path of [`Client::list_users`](super::Client).
//!
//! Checking the page with serde (each user as a `RawValue`) and then scanning each user again
//! for its two keys was a third of an export's CPU. This scan does both at once, and says
//! `None` for anything it does not read plainly (an escaped key, a key twice, a lone surrogate,
//! deep nesting, a total that is not a whole number, text that is not JSON): serde then reads
//! the page as before and gives the same answer or the same error. A test holds it to serde:
//! whenever the scan answers, serde accepts the page and reads the same users.
//!
//! [`fields`] splits one object into its top-level keys and values the same way, for the CSV
//! export's cells.

use std::ops::Range;

/// What serde allows before it refuses a document as too deep is 128 levels; the scan leaves
/// anything near that to serde.
const MAX_DEPTH: usize = 100;

/// One user of a page: where its object's text is, and its two keys when they are strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ScannedUser {
    pub text: Range<usize>,
    pub user_id: Option<String>,
    pub created_at: Option<String>,
}

/// A page of `GET /api/v2/users` with its total, read by [`page`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ScannedPage {
    pub total: u64,
    pub users: Vec<ScannedUser>,
}

/// Reads a page (`{"total": n, "users": [...], ...}`), or `None` when serde must.
pub(super) fn page(body: &[u8]) -> Option<ScannedPage> {
    std::str::from_utf8(body).ok()?;
    let mut scan = Scan { b: body, i: 0 };
    let (mut total, mut users) = (None, None);
    scan.space();
    scan.object(0, true, |scan, key| {
        match &body[key] {
            b"total" if total.is_none() => total = Some(scan.whole_number()?),
            b"users" if users.is_none() => users = Some(scan.users()?),
            b"total" | b"users" => return None,
            _ => scan.value(1)?,
        }
        Some(())
    })?;
    scan.space();
    (scan.i == body.len()).then_some(())?;
    Some(ScannedPage {
        total: total?,
        users: users?,
    })
}

/// How many bytes at the start of `b` a string holds as they are: up to the first quote,
/// backslash or control character (or the end). Eight bytes at a time: most strings are
/// short, where a call to `memchr` costs more than it saves.
fn plain_run(b: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let mut at = 0;
    while let Some(chunk) = b.get(at..at + 8) {
        let v = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        // A byte's high bit marks it (the first one exactly): zero after the XOR for a quote
        // or a backslash, below 0x20 for a control character.
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        let found = zero(v ^ (ONES * u64::from(b'"')))
            | zero(v ^ (ONES * u64::from(b'\\')))
            | (v.wrapping_sub(ONES * 0x20) & !v & HIGH);
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + b[at..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .unwrap_or(b.len() - at)
}

/// The top-level keys of a JSON object's text, each with its value's text, in order; `None`
/// when it is not one object or a key holds an escape. Keys that come twice are all listed.
pub(crate) fn fields(json: &str) -> Option<Vec<(&str, &str)>> {
    let mut scan = Scan {
        b: json.as_bytes(),
        i: 0,
    };
    let mut fields = Vec::with_capacity(24);
    scan.space();
    scan.object(0, true, |scan, key| {
        let start = scan.i;
        scan.value(1)?;
        // Both slices begin and end at ASCII bytes of valid UTF-8 text.
        fields.push((json.get(key)?, json.get(start..scan.i)?));
        Some(())
    })?;
    scan.space();
    (scan.i == json.len()).then_some(fields)
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Takes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        self.i += usize::from(next);
        next
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// An object, calling `member` at each value with where its key is. With `plain_keys`, a
    /// key holding an escape is left to serde (its name would have to be unescaped to match).
    /// Leaves the scan past the closing brace.
    fn object(
        &mut self,
        depth: usize,
        plain_keys: bool,
        mut member: impl FnMut(&mut Self, Range<usize>) -> Option<()>,
    ) -> Option<()> {
        self.items(depth, b'{', b'}', |scan| {
            let (key, escaped) = scan.string()?;
            // A key whose name matters must be read plainly; a nested object's keys do not.
            if escaped && plain_keys {
                return None;
            }
            scan.space();
            scan.eat(b':').then_some(())?;
            scan.space();
            member(scan, key)
        })
    }

    fn array(&mut self, depth: usize, element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.items(depth, b'[', b']', element)
    }

    /// `open`, then `item`s separated by commas, then `close`.
    fn items(
        &mut self,
        depth: usize,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        (depth < MAX_DEPTH && self.eat(open)).then_some(())?;
        self.space();
        if self.eat(close) {
            return Some(());
        }
        loop {
            item(self)?;
            self.space();
            if self.eat(close) {
                return Some(());
            }
            self.eat(b',').then_some(())?;
            self.space();
        }
    }

    /// The page's users: objects, each with its text and two keys.
    fn users(&mut self) -> Option<Vec<ScannedUser>> {
        let mut users = Vec::with_capacity(100);
        self.array(1, |scan| {
            let start = scan.i;
            let (mut user_id, mut created_at) = (None, None);
            scan.object(2, true, |scan, key| {
                let slot = match &scan.b[key] {
                    b"user_id" => &mut user_id,
                    b"created_at" => &mut created_at,
                    _ => return scan.value(3),
                };
                if slot.is_some() {
                    return None;
                }
                *slot = Some(scan.text_value()?);
                Some(())
            })?;
            users.push(ScannedUser {
                text: start..scan.i,
                user_id: user_id.flatten(),
                created_at: created_at.flatten(),
            });
            Some(())
        })?;
        Some(users)
    }

    /// A value, as the string it holds when it is one.
    fn text_value(&mut self) -> Option<Option<String>> {
        if self.peek() != Some(b'"') {
            self.value(3)?;
            return Some(None);
        }
        let start = self.i;
        let (text, escaped) = self.string()?;
        let text = if escaped {
            serde_json::from_slice::<String>(&self.b[start..self.i]).ok()?
        } else {
            String::from_utf8(self.b[text].to_vec()).ok()?
        };
        Some(Some(text))
    }

    /// Any value, checked and skipped.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth, false, |scan, _| scan.value(depth + 1)),
            b'[' => self.array(depth, |scan| scan.value(depth + 1)),
            b'"' => self.string().map(drop),
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            _ => self.number().map(drop),
        }
    }

    fn word(&mut self, word: &[u8]) -> Option<()> {
        self.b[self.i..].starts_with(word).then_some(())?;
        self.i += word.len();
        Some(())
    }

    /// A number as JSON writes it; true when it is digits alone.
    fn number(&mut self) -> Option<bool> {
        let minus = self.eat(b'-');
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let mut whole = !minus;
        if self.eat(b'.') {
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
            whole = false;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
            whole = false;
        }
        Some(whole)
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    /// A non-negative whole number that fits a `u64`.
    fn whole_number(&mut self) -> Option<u64> {
        let start = self.i;
        self.number()?.then_some(())?;
        std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    /// A string: the range of its text between the quotes, and whether it holds an escape.
    /// Control characters and malformed escapes are not JSON; a `\u` escape of a surrogate is
    /// left to serde.
    fn string(&mut self) -> Option<(Range<usize>, bool)> {
        self.eat(b'"').then_some(())?;
        let start = self.i;
        let mut escaped = false;
        loop {
            let at = self.i + plain_run(&self.b[self.i..]);
            if *self.b.get(at)? < 0x20 {
                return None;
            }
            self.i = at + 1;
            if self.b[at] == b'"' {
                return Some((start..at, escaped));
            }
            escaped = true;
            match self.peek()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                b'u' => {
                    let hex = self.b.get(self.i + 1..self.i + 5)?;
                    let hex = std::str::from_utf8(hex).ok()?;
                    let unit = u16::from_str_radix(hex, 16).ok()?;
                    if hex.starts_with('+') || (0xD800..=0xDFFF).contains(&unit) {
                        return None;
                    }
                    self.i += 5;
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// A page's total and each user's text and two keys.
    type Read = (u64, Vec<(String, Option<String>, Option<String>)>);

    /// What serde reads of a page.
    fn serde_page(body: &[u8]) -> Result<Read, String> {
        #[derive(serde::Deserialize)]
        struct Body<'a> {
            total: Option<Value>,
            #[serde(borrow)]
            users: Option<Vec<&'a serde_json::value::RawValue>>,
        }
        #[derive(serde::Deserialize)]
        struct Keys {
            user_id: Option<Value>,
            created_at: Option<Value>,
        }
        let body: Body = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let total = body.total.and_then(|t| t.as_u64()).ok_or("no total")?;
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let mut users = Vec::new();
        for raw in body.users.ok_or("no users")? {
            if !raw.get().starts_with('{') {
                return Err("not an object".into());
            }
            let keys: Keys = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
            users.push((
                raw.get().to_string(),
                text(keys.user_id),
                text(keys.created_at),
            ));
        }
        Ok((total, users))
    }

    fn scanned(body: &[u8]) -> Option<Read> {
        let page = page(body)?;
        let users = page
            .users
            .into_iter()
            .map(|u| {
                let text = String::from_utf8(body[u.text].to_vec()).unwrap();
                (text, u.user_id, u.created_at)
            })
            .collect();
        Some((page.total, users))
    }

    /// Any JSON value a few levels deep, strings with escapes and non-ASCII included.
    fn value() -> impl Strategy<Value = Value> {
        let text = "[a-z\"\\\\/\n\t\u{1}é\u{1F600} ]{0,8}";
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

    /// A user: other keys around `user_id` and `created_at`, which may be missing, not
    /// strings, or escaped.
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

    fn page_text() -> impl Strategy<Value = String> {
        let users = prop::collection::vec(prop_oneof![9 => user(), 1 => value()], 0..4);
        let total = prop_oneof![
            any::<u32>().prop_map(Value::from),
            Just(json!(-1)),
            Just(json!(1.5)),
            Just(Value::Null),
        ];
        (users, total, any::<bool>()).prop_map(|(users, total, pretty)| {
            let page = json!({"start": 0, "users": users, "total": total, "length": users.len()});
            if pretty {
                serde_json::to_string_pretty(&page).unwrap()
            } else {
                page.to_string()
            }
        })
    }

    proptest! {
        #[test]
        fn a_page_read_by_the_scan_reads_as_serde_reads_it(text in page_text()) {
            if let Some(scanned) = scanned(text.as_bytes()) {
                prop_assert_eq!(Ok(scanned), serde_page(text.as_bytes()));
            }
        }

        #[test]
        fn a_damaged_page_the_scan_reads_is_one_serde_reads(
            text in page_text(),
            at in any::<prop::sample::Index>(),
            byte in prop_oneof![Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b','),
                Just(b':'), Just(b'0'), Just(b'e'), Just(b'-'), Just(b'.'), Just(b' '), Just(b'u'),
                Just(0x01), any::<u8>()],
            cut in any::<bool>(),
        ) {
            let mut bytes = text.into_bytes();
            let at = at.index(bytes.len());
            if cut {
                bytes.truncate(at);
            } else {
                bytes[at] = byte;
            }
            if let Some(scanned) = scanned(&bytes) {
                prop_assert_eq!(Ok(scanned), serde_page(&bytes));
            }
        }
    }

    #[test]
    fn a_plain_page_is_read_by_the_scan() {
        let text = json!({
            "start": 0, "limit": 2, "length": 2, "total": 1234,
            "users": [
                {"created_at": "2020-01-01T00:00:00.000Z", "user_id": "auth0|1",
                 "identities": [{"user_id": "inner", "isSocial": false}],
                 "app_metadata": {"plan": "pro", "n": -1.5e3, "s": "a\"b\u{e9}\\n", "k\"": [{}]}},
                {"user_id": "a\"b", "created_at": 5, "logins_count": 0}
            ]
        })
        .to_string();
        let (total, users) = scanned(text.as_bytes()).expect("a plain page");
        assert_eq!(total, 1234);
        assert_eq!(users[0].1.as_deref(), Some("auth0|1"));
        assert_eq!(users[0].2.as_deref(), Some("2020-01-01T00:00:00.000Z"));
        assert_eq!(users[1].1.as_deref(), Some("a\"b"));
        assert_eq!(users[1].2, None);
        assert_eq!(Ok((total, users)), serde_page(text.as_bytes()));
    }

    #[test]
    fn what_the_scan_does_not_read_plainly_is_left_to_serde() {
        let left = [
            r#"{"total":1,"users":[{"user\u005fid":"x"}]}"#,
            r#"{"total":1,"users":[{"user_id":"x","user_id":"y"}]}"#,
            r#"{"total":1,"total":2,"users":[]}"#,
            r#"{"total":1.0,"users":[]}"#,
            r#"{"total":1,"users":[1]}"#,
            r#"{"total":1,"users":[{"a":"\ud83d\ude00"}]}"#,
            r#"{"total":1,"users":[{"a":01}]}"#,
            r#"{"total":1,"users":[{"a":"x"},]}"#,
            r#"{"total":1,"users":[]} x"#,
            r#"{"users":[]}"#,
        ];
        for text in left {
            assert_eq!(scanned(text.as_bytes()), None, "{text}");
        }
        let deep = format!(
            r#"{{"total":1,"users":[{{"a":{}{}}}]}}"#,
            "[".repeat(150),
            "]".repeat(150)
        );
        assert_eq!(scanned(deep.as_bytes()), None);
    }
}
