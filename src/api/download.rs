//! A file behind a link the tenant hands out (an export job's `location`): a pre-signed URL on
//! another host (S3, for Auth0), fetched without the bearer token and streamed.
//!
//! The link is itself a credential for as long as it lives (facts: 60 s), so it is never
//! logged or shown whole: messages name its host and path ([`Link::shown`]), never its query.
//! As for `--domain`, plain http is refused unless the host is loopback (the sandbox's links
//! are). The request goes through a client of its own ([`Client::files`](super::Client)): it
//! carries no `Authorization` header whatever the host, follows no redirect (a pre-signed link
//! does not redirect, and one that did would lead to a host nobody checked), asks for no
//! content encoding and decodes none (the file is gzip itself, for the caller to decompress as
//! it streams), and limits each read rather than the whole transfer.

use bytes::Bytes;
use url::Url;

use super::Client;
use super::client::{describe, refused_certificate};

/// A link to a file, checked: https, or http to a loopback host.
#[derive(Clone)]
pub struct Link {
    url: Url,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Link({})", self.shown())
    }
}

impl Link {
    /// Checks a link as the tenant sent it.
    pub fn parse(text: &str) -> Result<Link, DownloadError> {
        let url = Url::parse(text).map_err(|e| DownloadError::NotAUrl(e.to_string()))?;
        let link = Link { url };
        match link.url.scheme() {
            "https" => Ok(link),
            "http" if crate::target::is_loopback(&link.url) => Ok(link),
            "http" => Err(DownloadError::PlainHttp {
                shown: link.shown(),
            }),
            other => Err(DownloadError::Scheme {
                shown: link.shown(),
                scheme: other.to_string(),
            }),
        }
    }

    /// The link as messages show it: scheme, host, port and path, never the query (its
    /// signature).
    pub fn shown(&self) -> String {
        let mut shown = format!(
            "{}://{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or("")
        );
        if let Some(port) = self.url.port() {
            shown.push_str(&format!(":{port}"));
        }
        shown.push_str(self.url.path());
        shown
    }
}

/// Why a download failed, and so what helps: a fresh link ([`DownloadError::Refused`]), a
/// pause and another try ([`DownloadError::is_transient`]), or nothing (the rest).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("the tenant's link is not a URL ({0})")]
    NotAUrl(String),
    #[error(
        "the tenant's link {shown} is plain http to a host that is not loopback; auth0-bulk \
         fetches users' data over https only"
    )]
    PlainHttp { shown: String },
    #[error("the tenant's link {shown} is {scheme}://, not https://")]
    Scheme { shown: String, scheme: String },
    /// A 4xx: the link expired (S3 answers 403 `AccessDenied`), or was never good.
    #[error("{shown} answered {status} {code}: the link has expired or was refused")]
    Refused {
        shown: String,
        status: u16,
        code: String,
    },
    /// A 5xx, 408 or 429 of the file's host.
    #[error("{shown} answered {status}")]
    Unavailable { shown: String, status: u16 },
    #[error("{shown} answered {status}, a redirect; auth0-bulk does not follow it")]
    Redirect { shown: String, status: u16 },
    /// The connection failed or broke off; `fatal` when no retry can help (a certificate the
    /// trust store refuses).
    #[error("{shown}: {detail}")]
    Transport {
        shown: String,
        detail: String,
        fatal: bool,
    },
}

impl DownloadError {
    /// A failure a pause and another try may mend (with a fresh link: the old one may be past
    /// its life by then).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DownloadError::Unavailable { .. } | DownloadError::Transport { fatal: false, .. }
        )
    }

    fn transport(link: &Link, error: &reqwest::Error) -> DownloadError {
        DownloadError::Transport {
            shown: link.shown(),
            detail: describe(error),
            fatal: refused_certificate(error),
        }
    }
}

/// A file being received.
pub struct Download {
    response: reqwest::Response,
    link: Link,
}

impl Download {
    /// The next piece of the body as sent (compressed); `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, DownloadError> {
        self.response
            .chunk()
            .await
            .map_err(|e| DownloadError::transport(&self.link, &e))
    }
}

impl Client {
    /// `GET link` without the bearer token: the answer's head, with the body left to stream
    /// through [`Download::chunk`]. A 4xx is [`DownloadError::Refused`] with S3's error code
    /// when the body names one (`AccessDenied`, `ExpiredToken`).
    pub async fn download(&self, link: &Link) -> Result<Download, DownloadError> {
        self.metrics.sent(None);
        let response = self.files.get(link.url.clone()).send().await.map_err(|e| {
            // The caller decides whether to fetch the file again.
            self.metrics.fault(false);
            DownloadError::transport(link, &e)
        })?;
        let status = response.status();
        if status.is_success() {
            self.metrics.ok();
            return Ok(Download {
                response,
                link: link.clone(),
            });
        }
        let shown = link.shown();
        let status = status.as_u16();
        match status {
            300..=399 => Err(DownloadError::Redirect { shown, status }),
            408 | 429 | 500..=599 => {
                self.metrics.fault(false);
                Err(DownloadError::Unavailable { shown, status })
            }
            _ => {
                // Small: an S3 error document. Read only its start, in case it is not.
                let body = response.bytes().await.unwrap_or_default();
                let head = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
                Err(DownloadError::Refused {
                    shown,
                    status,
                    code: s3_code(&head).unwrap_or_default(),
                })
            }
        }
    }
}

/// The `<Code>` of an S3 error document (`AccessDenied`), if the text holds one.
fn s3_code(text: &str) -> Option<String> {
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    let code = &text[start..end];
    (code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric())).then(|| code.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::sync::CancellationToken;

    use crate::net::throttle::{Rate, Throttle};
    use crate::target::{Credentials, Target};

    /// A host that answers each connection with the next of `answers` and keeps the requests.
    async fn host(answers: Vec<&'static str>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        tokio::spawn(async move {
            for answer in answers {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    let n = socket.read(&mut buf).await.unwrap();
                    request.extend_from_slice(&buf[..n]);
                }
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request).to_lowercase());
                socket.write_all(answer.as_bytes()).await.unwrap();
                socket.shutdown().await.unwrap();
            }
        });
        (base, seen)
    }

    #[tokio::test]
    async fn a_file_is_fetched_without_the_token_undecoded_and_a_redirect_is_not_followed() {
        let (base, seen) = host(vec![
            "HTTP/1.1 200 OK\r\ncontent-type: application/gzip\r\ncontent-encoding: gzip\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
            "HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: 66\r\nconnection: close\r\n\r\n<Error><Code>AccessDenied</Code><Message>expired</Message></Error>",
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        ])
        .await;
        let target = Target {
            base: crate::target::parse_domain(&base).unwrap(),
            credentials: Credentials::Token("the-management-token".into()),
        };
        let client = Client::new(
            target,
            Arc::new(Throttle::new(Rate::Unlimited)),
            CancellationToken::new(),
        );
        let link = Link::parse(&format!(
            "{base}/user-exports/job_1/users.json.gz?X-Amz-Signature=s"
        ))
        .unwrap();
        let mut download = client.download(&link).await.unwrap();
        let mut body = Vec::new();
        while let Some(piece) = download.chunk().await.unwrap() {
            body.extend_from_slice(&piece);
        }
        assert_eq!(body, b"hello", "the bytes as sent, not decoded");
        match client.download(&link).await {
            Err(DownloadError::Refused {
                status: 403, code, ..
            }) => assert_eq!(code, "AccessDenied"),
            other => panic!("expected a refusal, got {:?}", other.err()),
        }
        assert!(matches!(
            client.download(&link).await,
            Err(DownloadError::Redirect { status: 302, .. })
        ));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "the redirect was not followed");
        for request in seen.iter() {
            assert!(!request.contains("authorization"), "{request}");
            assert!(!request.contains("the-management-token"), "{request}");
            assert!(!request.contains("accept-encoding"), "{request}");
        }
    }

    #[test]
    fn links_are_https_or_loopback_http_and_shown_without_their_signature() {
        let link = Link::parse(
            "https://s3.amazonaws.com/exports/job_1/users.json.gz?X-Amz-Signature=secret",
        )
        .unwrap();
        assert_eq!(
            link.shown(),
            "https://s3.amazonaws.com/exports/job_1/users.json.gz"
        );
        assert!(!format!("{link:?}").contains("secret"));
        let local = Link::parse("http://127.0.0.1:4000/user-exports/j/users.json.gz?x=1").unwrap();
        assert_eq!(
            local.shown(),
            "http://127.0.0.1:4000/user-exports/j/users.json.gz"
        );
        let e = Link::parse("http://exports.example.com/f.gz?X-Amz-Signature=secret").unwrap_err();
        assert!(matches!(e, DownloadError::PlainHttp { .. }), "{e}");
        assert!(e.to_string().contains("https only") && !e.to_string().contains("secret"));
        assert!(matches!(
            Link::parse("ftp://127.0.0.1/f.gz"),
            Err(DownloadError::Scheme { .. })
        ));
        assert!(matches!(
            Link::parse("not a link"),
            Err(DownloadError::NotAUrl(_))
        ));
    }

    #[test]
    fn s3s_error_code_is_read_from_its_document() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        assert_eq!(s3_code(body).as_deref(), Some("AccessDenied"));
        assert_eq!(s3_code("<html>nope</html>"), None);
        assert_eq!(s3_code("<Code><script></Code>"), None);
    }

    #[test]
    fn only_unavailable_hosts_and_broken_transfers_are_worth_a_pause() {
        let shown = String::from("https://h/f");
        assert!(
            DownloadError::Unavailable {
                shown: shown.clone(),
                status: 503
            }
            .is_transient()
        );
        assert!(
            DownloadError::Transport {
                shown: shown.clone(),
                detail: "reset".into(),
                fatal: false
            }
            .is_transient()
        );
        assert!(
            !DownloadError::Transport {
                shown: shown.clone(),
                detail: "certificate".into(),
                fatal: true
            }
            .is_transient()
        );
        assert!(
            !DownloadError::Refused {
                shown,
                status: 403,
                code: "AccessDenied".into()
            }
            .is_transient()
        );
    }
}
