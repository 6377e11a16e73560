//! Where outbound webhooks may go. A receiver URL must be HTTPS and name a
//! public address: loopback, private, link-local and other internal targets
//! are refused (server-side request forgery), when subscribing and again at
//! every attempt, after DNS resolution and by the resolver the connection
//! itself uses, so a name that re-resolves to an internal address between
//! the check and the connect (DNS rebinding) is still refused. The server's
//! operator may allow internal targets and plain HTTP (`allow_private`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::AppError;
use crate::addresses::{is_internal_host, is_internal_ip};

/// The longest receiver URL.
pub const MAX_URL_LEN: usize = 2_048;
/// How long subscribing waits for the receiver's name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

fn refuse(message: String) -> AppError {
    AppError::AddressNotAllowed {
        field: "url",
        message,
    }
}

/// Parses and checks a receiver URL as written (no DNS): its scheme, that it
/// carries no credentials or fragment, and that a literal host is public.
pub(crate) fn check_url(raw: &str, allow_private: bool) -> Result<Url, AppError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_URL_LEN {
        return Err(AppError::invalid(
            "url",
            format!("url must be an https URL of at most {MAX_URL_LEN} characters"),
        ));
    }
    let url =
        Url::parse(raw).map_err(|_| AppError::invalid("url", format!("{raw:?} is not a URL")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => {
            return Err(refuse(
                "url must be https; the server allows plain http only with \
                 --webhooks-allow-private"
                    .into(),
            ));
        }
        _ => return Err(AppError::invalid("url", "url must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(AppError::invalid(
            "url",
            "url must not carry credentials or a fragment",
        ));
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    if host.is_empty() {
        return Err(AppError::invalid("url", "url must name a host"));
    }
    if !allow_private && is_internal_host(&host) {
        return Err(internal(&host, None));
    }
    Ok(url)
}

fn internal(host: &str, address: Option<IpAddr>) -> AppError {
    let resolved = address.map_or_else(String::new, |ip| format!(" (it resolves to {ip})"));
    refuse(format!(
        "url host {host}{resolved} is a loopback, private, link-local or otherwise internal \
         address; the server allows those only with --webhooks-allow-private"
    ))
}

/// Checks the addresses `url`'s host resolves to now. A name that does not
/// resolve (yet) is accepted: each delivery attempt checks it again.
pub(crate) async fn check_resolved(url: &Url, allow_private: bool) -> Result<(), AppError> {
    if allow_private {
        return Ok(());
    }
    let Some(host) = url.host_str() else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = tokio::net::lookup_host((host.trim_matches(['[', ']']), port));
    if let Ok(Ok(addresses)) = tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        for address in addresses {
            if is_internal_ip(address.ip()) {
                return Err(internal(host, Some(address.ip())));
            }
        }
    }
    Ok(())
}

/// The resolver the webhook client connects with: the system's, refusing a
/// name any of whose addresses is internal (unless allowed). The connection
/// goes to the addresses checked here, never to a second lookup's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckingResolver {
    pub allow_private: bool,
}

/// A receiver's name resolved to an internal address.
#[derive(Debug, thiserror::Error)]
#[error(
    "{host} resolves to {address}, a loopback, private, link-local or otherwise internal address"
)]
pub(crate) struct InternalAddress {
    host: String,
    address: IpAddr,
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private
                && let Some(address) = addresses.iter().find(|a| is_internal_ip(a.ip()))
            {
                return Err(Box::new(InternalAddress {
                    host,
                    address: address.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_literal_hosts_and_plain_http_need_the_operators_leave() {
        for url in [
            "https://127.0.0.1/hook",
            "https://localhost:8443/hook",
            "https://10.0.0.7/hook",
            "https://169.254.169.254/latest",
            "https://[::1]/hook",
            "https://[::ffff:192.168.1.1]/hook",
        ] {
            let err = check_url(url, false).unwrap_err();
            assert!(
                matches!(err, AppError::AddressNotAllowed { .. }),
                "{url}: {err}"
            );
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        assert!(matches!(
            check_url("http://hooks.example.org/in", false),
            Err(AppError::AddressNotAllowed { .. })
        ));
        assert!(check_url("http://hooks.example.org/in", true).is_ok());
        assert!(check_url("https://hooks.example.org/in?token=1", false).is_ok());
    }

    #[test]
    fn malformed_receiver_urls_are_refused_as_invalid() {
        for url in [
            "",
            "hooks.example.org",
            "ftp://hooks.example.org",
            "https://user:pw@hooks.example.org",
            "https://hooks.example.org/#frag",
        ] {
            assert!(
                matches!(check_url(url, true), Err(AppError::Invalid { .. })),
                "{url}"
            );
        }
        let long = format!("https://hooks.example.org/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_url(&long, true).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_internal_addresses() {
        let refused = CheckingResolver {
            allow_private: false,
        }
        .resolve("localhost".parse().unwrap())
        .await;
        let err = refused.err().unwrap();
        assert!(err.to_string().contains("internal"), "{err}");
        let allowed = CheckingResolver {
            allow_private: true,
        }
        .resolve("localhost".parse().unwrap())
        .await;
        assert!(allowed.unwrap().next().is_some());
    }
}
