//! Why a Management API call failed: the one error type every caller of the
//! [`Client`](super::Client) handles.

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API answered with an error the caller must handle (400, 404, 409, ...).
    #[error("{status} {error_code}: {message}")]
    Status {
        status: u16,
        error_code: String,
        message: String,
        /// An earlier attempt of this request failed in transit: it may have reached the
        /// tenant (what a 409 after a lost create answer means).
        retried: bool,
    },
    /// Transient failures went on past the retry budget.
    #[error("{what} failed {attempts} times in a row; last error: {last}")]
    Exhausted {
        what: String,
        attempts: u32,
        last: String,
    },
    /// The credentials were refused.
    #[error("the tenant refused the credentials: {0}")]
    Auth(String),
    /// The tenant answered with a redirect. It is never followed: the request carries the token
    /// (or, to `/oauth/token`, the client secret), and the next host could be anyone's.
    #[error(
        "{what} answered {status}, a redirect to {location}; auth0-bulk never follows redirects \
         (they could carry the credentials to another host): check --domain"
    )]
    Redirect {
        what: String,
        status: u16,
        location: String,
    },
    /// The tenant's TLS certificate was refused. No retry can fix that.
    #[error(
        "{what}: the tenant's TLS certificate is not trusted ({detail}); auth0-bulk always \
         verifies certificates: check --domain"
    )]
    Certificate { what: String, detail: String },
    /// No connection to the tenant could be made, and it has never answered this client: the
    /// name does not resolve, the connection is refused or times out, or the TLS handshake
    /// fails. Not retried: it means `--domain` (or the network) is wrong.
    #[error("cannot reach {base}: {detail}; check --domain (or AUTH0_DOMAIN) and the network")]
    Unreachable { base: String, detail: String },
    /// The answer was not what the API documents.
    #[error("unexpected answer to {what}: {message}")]
    Decode { what: String, message: String },
    /// The run was interrupted while waiting.
    #[error("interrupted")]
    Cancelled,
    /// A local file the run relies on could not be written (the import ledger, the rejects
    /// file); what needed it was not sent.
    #[error("cannot write {what}: {message}")]
    Local { what: String, message: String },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}
