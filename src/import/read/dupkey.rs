//! Finding a key that one JSON object holds twice (serde would silently keep the last one),
//! named by its path from the top.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A key found twice in one object.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct DuplicateKey {
    /// The key's path from the top, such as `user_metadata.plan` or `identities[0].provider`.
    pub(super) path: String,
    pub(super) key: String,
}

impl DuplicateKey {
    pub(super) fn message(&self) -> String {
        format!(
            "the key `{}` appears twice in the same object; JSON readers disagree on which value \
             wins, so keep only one",
            self.key
        )
    }
}

/// The first key that appears twice in one object anywhere in `text`, when `text` is JSON.
/// (serde_json keeps the last value of a repeated key without a word.)
pub(super) fn find_duplicate_key(text: &str) -> Option<DuplicateKey> {
    let mut walk = DuplicateWalk {
        path: Vec::new(),
        found: None,
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    // An error is either the duplicate itself or JSON that does not parse: neither is more.
    let _ = WalkSeed(&mut walk).deserialize(&mut deserializer);
    walk.found
}

pub(super) enum Segment {
    Key(String),
    Index(usize),
}

pub(super) struct DuplicateWalk {
    path: Vec<Segment>,
    found: Option<DuplicateKey>,
}

impl DuplicateWalk {
    pub(super) fn path_to(&self, key: &str) -> String {
        let mut path = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(name) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                }
                Segment::Index(index) => path.push_str(&format!("[{index}]")),
            }
        }
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        path
    }
}

/// Visits a JSON value without keeping it, checking each object's keys. Depth is bounded by
/// serde_json's recursion limit.
pub(super) struct WalkSeed<'w>(&'w mut DuplicateWalk);

impl<'de> DeserializeSeed<'de> for WalkSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for WalkSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Ok(())
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let walk = self.0;
        let mut index = 0;
        loop {
            walk.path.push(Segment::Index(index));
            let more = seq.next_element_seed(WalkSeed(&mut *walk))?;
            walk.path.pop();
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    // With `arbitrary_precision`, serde_json hands a number over as a one-key map; it passes
    // through here harmlessly.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let walk = self.0;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                walk.found = Some(DuplicateKey {
                    path: walk.path_to(&key),
                    key,
                });
                return Err(de::Error::custom("duplicate key"));
            }
            seen.insert(key.clone());
            walk.path.push(Segment::Key(key));
            map.next_value_seed(WalkSeed(&mut *walk))?;
            walk.path.pop();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_walk_handles_numbers_and_paths() {
        assert_eq!(find_duplicate_key("{\"a\":1e999,\"b\":[1,2.5,-0]}"), None);
        assert_eq!(find_duplicate_key("not json"), None);
        let found = find_duplicate_key("[{},{\"x\":{\"y\":[{\"k\":1,\"k\":2}]}}]").expect("found");
        assert_eq!(found.path, "[1].x.y[0].k");
        assert_eq!(found.key, "k");
    }
}
