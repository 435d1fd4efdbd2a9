//! TEMPORARY STUB: replaced by record planning.
use serde_json::{Map, Value};
pub type User = Map<String, Value>;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
    Upsert,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchBy {
    UserId,
    Email,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataStrategy {
    Merge,
    Deep,
    Replace,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passwords {
    None,
    Random,
    Field(String),
}
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub mode: Mode,
    pub match_by: MatchBy,
    pub connection: Option<String>,
    pub passwords: Passwords,
    pub metadata: MetadataStrategy,
}
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub key: String,
    pub connection: Option<String>,
    pub create: Option<Value>,
    pub profile: Map<String, Value>,
    pub user_metadata: Option<Map<String, Value>>,
    pub app_metadata: Option<Map<String, Value>>,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub field: Option<String>,
    pub message: String,
}
pub fn plan(_record: &User, _options: &PlanOptions) -> Result<Planned, Invalid> {
    Err(Invalid {
        code: "stub",
        field: None,
        message: "not yet".into(),
    })
}
pub fn update_body(
    _current: &User,
    _planned: &Planned,
    _strategy: MetadataStrategy,
) -> Option<Value> {
    None
}
pub fn apply_patch(current: &User, _body: &Value) -> User {
    current.clone()
}
pub fn diff(_current: &User, _after: &User) -> Vec<String> {
    Vec::new()
}
pub fn random_password() -> String {
    String::new()
}
