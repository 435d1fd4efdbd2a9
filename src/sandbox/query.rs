//! TEMPORARY STUB: replaced by the real v3 query parser.
use std::ops::Bound;

#[derive(Debug, Clone)]
pub struct Query;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub message: String,
}

impl Query {
    pub fn parse(_q: &str) -> Result<Query, QueryError> {
        Ok(Query)
    }
    pub fn all() -> Query {
        Query
    }
    pub fn matches(&self, _user: &serde_json::Map<String, serde_json::Value>) -> bool {
        true
    }
    pub fn created_at_range(&self) -> Option<(Bound<String>, Bound<String>)> {
        None
    }
}

pub fn canonical_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
