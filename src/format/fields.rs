//! The names an export's `--fields` and `--exclude-fields` take: a root field Auth0 returns, or
//! a dotted path inside `user_metadata` or `app_metadata` (as Auth0's own export job takes
//! `user_metadata.country`). Anything else is refused before any request, with a did-you-mean,
//! so that a typo never silently drops a column.

use std::collections::BTreeSet;

use super::csv::{MAX_PATH_SEGMENTS, PROFILE_COLUMNS};

/// The two objects a dotted path may reach into.
pub const METADATA_ROOTS: [&str; 2] = ["user_metadata", "app_metadata"];

/// A selectable field, split into its root and the path below it (empty for a root field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub root: &'a str,
    pub path: Vec<&'a str>,
}

impl<'a> Field<'a> {
    /// Parses one name. The error says what is wrong and, for a near miss, what was meant.
    pub fn parse(name: &'a str) -> Result<Field<'a>, String> {
        let (root, rest) = match name.split_once('.') {
            Some((root, rest)) => (root, Some(rest)),
            None => (name, None),
        };
        let Some(rest) = rest else {
            if PROFILE_COLUMNS.contains(&name) {
                return Ok(Field {
                    root: name,
                    path: Vec::new(),
                });
            }
            return Err(unknown(name));
        };
        if !METADATA_ROOTS.contains(&root) {
            return Err(if PROFILE_COLUMNS.contains(&root) {
                format!(
                    "{name:?}: only user_metadata and app_metadata have fields below them; \
                     select {root:?} whole"
                )
            } else {
                unknown(name)
            });
        }
        let path: Vec<&str> = rest.split('.').collect();
        if path.iter().any(|segment| segment.is_empty()) {
            return Err(format!(
                "{name:?}: a path has a name between every two dots (user_metadata.address.city)"
            ));
        }
        if path.len() > MAX_PATH_SEGMENTS {
            return Err(format!(
                "{name:?}: a path has at most {MAX_PATH_SEGMENTS} names below {root}"
            ));
        }
        Ok(Field { root, path })
    }

    /// True when `self` is `other` or lies inside it (`user_metadata.a.b` inside
    /// `user_metadata.a` and inside `user_metadata`).
    pub fn within(&self, other: &Field<'_>) -> bool {
        self.root == other.root
            && self.path.len() >= other.path.len()
            && self.path[..other.path.len()] == other.path[..]
    }
}

/// Checks a `--fields` or `--exclude-fields` list: every name known, none twice, none inside
/// another (the outer one already says it all). `flag` names the option in messages.
pub fn check_selection(flag: &str, names: &[String]) -> Result<(), String> {
    let mut fields: Vec<(&String, Field<'_>)> = Vec::with_capacity(names.len());
    let mut seen = BTreeSet::new();
    for name in names {
        let field = Field::parse(name).map_err(|e| format!("{flag}: {e}"))?;
        if !seen.insert(name.as_str()) {
            return Err(format!("{flag}: {name:?} is named twice"));
        }
        if let Some((outer, _)) = fields
            .iter()
            .find(|(_, other)| field.within(other) || other.within(&field))
        {
            return Err(format!(
                "{flag}: {name:?} and {outer:?} overlap (one lies inside the other); keep one"
            ));
        }
        fields.push((name, field));
    }
    Ok(())
}

/// The message for a name that is neither a user field nor a metadata path.
fn unknown(name: &str) -> String {
    let candidates = PROFILE_COLUMNS.iter().map(|field| field.to_string()).chain(
        METADATA_ROOTS
            .iter()
            .filter_map(|root| {
                let rest = name.split_once('.')?.1;
                Some(format!("{root}.{rest}"))
            })
            .collect::<Vec<_>>(),
    );
    let hint = match crate::suggest::closest(name, candidates) {
        Some(near) => format!("; did you mean {near:?}?"),
        None => String::new(),
    };
    format!(
        "{name:?} is not a user field Auth0 returns nor a path under user_metadata. or \
         app_metadata.{hint} (user fields: {})",
        PROFILE_COLUMNS.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn root_fields_and_metadata_paths_are_accepted() {
        assert_eq!(
            Field::parse("email").unwrap(),
            Field {
                root: "email",
                path: vec![]
            }
        );
        assert_eq!(
            Field::parse("app_metadata.limits.seats").unwrap(),
            Field {
                root: "app_metadata",
                path: vec!["limits", "seats"]
            }
        );
        assert!(check_selection("--fields", &names(&["user_id", "app_metadata.plan"])).is_ok());
    }

    #[test]
    fn a_typo_is_refused_with_what_was_meant() {
        let e = check_selection("--fields", &names(&["user_id", "emial"])).unwrap_err();
        assert!(
            e.contains("\"emial\"") && e.contains("did you mean \"email\""),
            "{e}"
        );
        let e = Field::parse("app_metdata.plan").unwrap_err();
        assert!(e.contains("did you mean \"app_metadata.plan\""), "{e}");
        let e = Field::parse("identities.connection").unwrap_err();
        assert!(e.contains("select \"identities\" whole"), "{e}");
        assert!(Field::parse("user_metadata.").is_err());
        assert!(Field::parse("user_metadata..a").is_err());
        assert!(Field::parse("extra").is_err());
        assert!(Field::parse("").is_err());
    }

    #[test]
    fn overlapping_and_repeated_names_are_refused() {
        for list in [
            &["user_metadata", "user_metadata.a"][..],
            &["app_metadata.a.b", "app_metadata.a"],
            &["email", "email"],
        ] {
            assert!(
                check_selection("--fields", &names(list)).is_err(),
                "{list:?}"
            );
        }
        assert!(
            check_selection("--fields", &names(&["app_metadata.a", "app_metadata.ab"])).is_ok()
        );
    }
}
