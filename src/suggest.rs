//! Did-you-mean: the known name closest to a mistyped one, for messages that teach.

/// The candidate within two edits of `name` (case-insensitive), the closest first.
pub fn closest<S: AsRef<str>>(name: &str, candidates: impl IntoIterator<Item = S>) -> Option<S> {
    let name = name.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| (strsim::levenshtein(&name, candidate.as_ref()), candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_near_miss_finds_its_name_and_a_far_one_finds_none() {
        assert_eq!(super::closest("emial", ["email", "name"]), Some("email"));
        assert_eq!(super::closest("Nmae", ["email", "name"]), Some("name"));
        assert_eq!(super::closest("zzzzzz", ["email", "name"]), None);
    }
}
