//! The Management API client: tokens, the users calls, and the retry loop around every request.
//!
//! Every request passes its endpoint group's budget first ([`Pace`](crate::net::pace::Pace):
//! one throttle shared by every worker, and by every group until a group proves a bucket of its
//! own), and after every answer the work in flight is sized again
//! ([`Workers`](crate::net::workers::Workers)). Every answer is classified by
//! [`retry::classify`](crate::net::retry::classify): 429 waits as the server says, transient
//! failures back off with jitter, 401 renews the token (a few times at most), anything else is
//! the caller's to handle.
//!
//! Two failures end a call at once, because no retry can fix them and both mean `--domain`
//! is wrong: a redirect (never followed: it could carry the token, or the client secret, to
//! another host) and a TLS certificate the platform's trust store refuses.
//!
//! A third does so only until the tenant has answered once: a connection that cannot be made
//! at all (the name does not resolve, the connection is refused, the TLS handshake fails) is
//! [`ApiError::Unreachable`], a wrong `--domain` or no network, which retrying for minutes
//! would only hide. Once any answer has come, the same failure is a tenant in trouble and is
//! retried like a 5xx. [`Client::reach`] makes that first contact before a run creates files.

//!
//! | file | holds |
//! |------|-------|
//! | `client.rs` | the [`Client`]: its token, the send loop (pace, retry, renewal), [`Counts`] |
//! | `users.rs` | the users calls, what they return ([`Listed`], [`UsersPage`], [`User`]) |
//! | `jobs.rs` | the bulk job calls: connections, import and export jobs, polling, errors |
//! | `download.rs` | a file behind a link the tenant hands out, fetched without the token |
//! | `tickets.rs` | password-change tickets |
//! | `authz.rs` | roles, direct permissions, organizations and their members |
//! | `scan.rs` | the one-pass read of a list page's JSON, checked against serde |
//! | `error.rs` | [`ApiError`], why a call failed |
//! | `timeline.rs` | the requests second by second ([`Timeline`]), for `--report` |

mod authz;
mod client;
mod download;
mod error;
mod jobs;
pub(crate) mod scan;
mod tickets;
pub mod timeline;
mod users;

pub use authz::{
    Change, Checkpoint, Member, Organization, Permission, ResourceServer, ResourceServerScope, Role,
};
#[cfg(all(test, feature = "sandbox"))]
pub(crate) use client::tests::client_for;
pub use client::{Client, Counts, Metrics};
pub use download::{Download, DownloadError, Link};
pub use error::ApiError;
pub use jobs::{Connection, ExportJob, ImportJob, Job, JobErrorDetail, JobSummary, JobUserError};
pub use timeline::Timeline;
pub use users::{ListQuery, Listed, Removal, User, UsersPage, encode_segment};

/// An answer's body as `T`, or [`ApiError::Decode`] naming the call (`what`).
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::Decode {
        what: what.to_string(),
        message: e.to_string(),
    })
}
