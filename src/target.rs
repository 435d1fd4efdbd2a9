//! The tenant a job talks to: its base URL and credentials, validated before any request.

use std::fmt;
use std::net::IpAddr;

use secrecy::SecretString;
use url::Url;

/// How the job authenticates.
#[derive(Clone)]
pub enum Credentials {
    /// Client credentials: a token is requested, and renewed before it expires.
    Client {
        client_id: String,
        client_secret: SecretString,
    },
    /// A ready Management API token.
    Token(SecretString),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Client { client_id, .. } => {
                write!(
                    f,
                    "Client {{ client_id: {client_id:?}, client_secret: [redacted] }}"
                )
            }
            Credentials::Token(_) => f.write_str("Token([redacted])"),
        }
    }
}

/// A validated tenant.
#[derive(Clone, Debug)]
pub struct Target {
    /// `https://acme.eu.auth0.com` or, for loopback only, `http://127.0.0.1:PORT`.
    pub base: Url,
    pub credentials: Credentials,
}

impl Target {
    /// The tenant as printed to the user: the base URL only, never a secret.
    pub fn display(&self) -> String {
        let auth = match &self.credentials {
            Credentials::Client { client_id, .. } => format!("client {client_id}"),
            Credentials::Token(_) => "a ready token".to_string(),
        };
        format!("{} ({auth})", self.base.as_str().trim_end_matches('/'))
    }

    /// `https://{domain}/api/v2/`, the token audience (facts: trailing slash).
    pub fn audience(&self) -> String {
        format!("{}/api/v2/", self.base.as_str().trim_end_matches('/'))
    }
}

/// Why a `--domain` cannot be a tenant. The CLI reports it as bad usage (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("the tenant domain is empty; pass --domain or set AUTH0_DOMAIN")]
    Empty,
    #[error("--domain {domain:?} is not a host name or URL: {source}")]
    NotAUrl {
        domain: String,
        source: url::ParseError,
    },
    #[error(
        "--domain {domain}: plain http:// is allowed only for loopback addresses \
         (127.0.0.1, ::1, localhost); use https://"
    )]
    PlainHttp { domain: String },
    #[error("--domain {domain}: unsupported scheme {scheme}://")]
    Scheme { domain: String, scheme: String },
    #[error("--domain {domain} has no host")]
    NoHost { domain: String },
    #[error("--domain {domain}: give the tenant without a path (not {path})")]
    Path { domain: String, path: String },
    #[error("--domain must not carry credentials; use --client-id/--client-secret")]
    Credentials,
}

/// Parses `--domain`: a tenant host (`acme.eu.auth0.com`) or a full URL. Plain `http://` is
/// accepted only for loopback addresses, so a token never crosses a network in clear text.
pub fn parse_domain(domain: &str) -> Result<Url, TargetError> {
    let domain = domain.trim();
    if domain.is_empty() {
        return Err(TargetError::Empty);
    }
    let with_scheme = if domain.contains("://") {
        domain.to_string()
    } else {
        format!("https://{domain}")
    };
    let url = Url::parse(&with_scheme).map_err(|source| TargetError::NotAUrl {
        domain: domain.to_string(),
        source,
    })?;
    let domain = domain.to_string();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(TargetError::PlainHttp { domain }),
        other => {
            let scheme = other.to_string();
            return Err(TargetError::Scheme { domain, scheme });
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(TargetError::NoHost { domain });
    }
    if url.path() != "/" && !url.path().is_empty() {
        let path = url.path().to_string();
        return Err(TargetError::Path { domain, path });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    Ok(url)
}

/// Whether `url`'s host is a loopback address (`localhost`, 127.0.0.0/8, `::1`): the only hosts
/// plain http may reach, for `--domain` and for a link the tenant hands out alike.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(host)) => host.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_host_becomes_https() {
        assert_eq!(
            parse_domain("acme.eu.auth0.com").unwrap().as_str(),
            "https://acme.eu.auth0.com/"
        );
        assert_eq!(
            parse_domain("https://acme.auth0.com/").unwrap().as_str(),
            "https://acme.auth0.com/"
        );
    }

    #[test]
    fn plain_http_is_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
            "http://127.9.9.9",
        ] {
            assert!(parse_domain(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://acme.auth0.com",
            "http://10.0.0.1",
            "http://192.168.1.1:80",
        ] {
            let e = parse_domain(bad).unwrap_err();
            assert!(e.to_string().contains("loopback"), "{bad}: {e}");
        }
    }

    #[test]
    fn paths_credentials_and_odd_schemes_are_refused() {
        assert!(parse_domain("https://acme.auth0.com/api/v2").is_err());
        assert!(parse_domain("https://user:pw@acme.auth0.com").is_err());
        assert!(parse_domain("ftp://acme.auth0.com").is_err());
        assert!(parse_domain("").is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Credentials::Client {
            client_id: "id".into(),
            client_secret: "s3cr3t".into(),
        };
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", Credentials::Token("t0k3n".into())).contains("t0k3n"));
    }
}
