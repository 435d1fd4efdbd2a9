//! TEMPORARY STUB: replaced by the synthetic user generator.
pub const GENERATED_CONNECTIONS: [&str; 2] = ["Username-Password-Authentication", "legacy-db"];
pub fn generate(
    count: usize,
    _seed: u64,
) -> impl Iterator<Item = serde_json::Map<String, serde_json::Value>> {
    (0..count).map(|i| {
        let mut m = serde_json::Map::new();
        m.insert("created_at".into(), "2020-01-01T00:00:00.000Z".into());
        m.insert("email".into(), format!("user{i}@example.com").into());
        m.insert(
            "identities".into(),
            serde_json::json!([{"connection": GENERATED_CONNECTIONS[0], "user_id": format!("{i:024x}"), "provider": "auth0", "isSocial": false}]),
        );
        m.insert("updated_at".into(), "2020-01-01T00:00:00.000Z".into());
        m.insert("user_id".into(), format!("auth0|{i:024x}").into());
        m
    })
}
