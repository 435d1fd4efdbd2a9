//! Password-change tickets: a link a user follows to set a password, for users a migration
//! created without one anyone knows.

use reqwest::Method;
use secrecy::SecretString;
use serde_json::json;

use super::client::Body;
use super::{ApiError, Client};

impl Client {
    /// `POST /api/v2/tickets/password-change` for `user_id`, valid `ttl_sec` seconds. The
    /// ticket's URL is a secret (whoever holds it sets the password): it is returned as one.
    pub async fn password_change_ticket(
        &self,
        user_id: &str,
        ttl_sec: u64,
    ) -> Result<SecretString, ApiError> {
        let body = json!({"user_id": user_id, "ttl_sec": ttl_sec});
        let (_, bytes) = self
            .send(
                Method::POST,
                "/tickets/password-change",
                &[],
                Body::Json(&body),
            )
            .await?;
        #[derive(serde::Deserialize)]
        struct Answer {
            ticket: String,
        }
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
            what: "POST /api/v2/tickets/password-change".into(),
            // Never the body: it holds the ticket.
            message: format!("no ticket in the answer ({})", e.classify_name()),
        })?;
        Ok(SecretString::from(answer.ticket))
    }
}

/// The kind of a JSON error, without the text it quotes.
trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "not the documented shape",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}
