//! Where an organization's carrier API calls may go. An admin sets the API
//! base, but every call carries the org's carrier secret, so the server's
//! operator decides which bases are allowed, and internal targets (loopback,
//! private, link-local, the cloud metadata address) are refused even when
//! listed, unless the operator allows those as well (ADR 0018).

use reqwest::Url;

use crate::AppError;
use crate::addresses::is_internal_host;

/// The carriers' public APIs: the allowed bases unless configured otherwise.
pub const DEFAULT_CARRIER_APIS: [&str; 2] = [
    textbank_sms::twilio::DEFAULT_API_BASE,
    textbank_sms::telnyx::DEFAULT_API_BASE,
];

/// The operator's rule for carrier API bases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierApiPolicy {
    /// Allowed bases: `scheme://host[:port]` (a path is ignored), or a bare
    /// `host[:port]`, which allows HTTPS to that host only.
    pub allowed: Vec<String>,
    /// Lets listed bases be loopback, private or link-local addresses (a
    /// local test double or proxy).
    pub allow_private: bool,
}

impl Default for CarrierApiPolicy {
    fn default() -> Self {
        Self {
            allowed: DEFAULT_CARRIER_APIS.map(str::to_owned).to_vec(),
            allow_private: false,
        }
    }
}

impl CarrierApiPolicy {
    /// The normalized base if the policy allows `raw`, else why not.
    pub fn check(&self, raw: &str) -> Result<String, AppError> {
        let refuse = |message: String| AppError::AddressNotAllowed {
            field: "api_base",
            message,
        };
        let url =
            Url::parse(raw.trim()).map_err(|_| refuse(format!("api_base {raw:?} is not a URL")))?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(refuse(
                "api_base must be an http(s) URL without credentials, query or fragment".into(),
            ));
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if !self.allowed.iter().any(|entry| allows(entry, &url, &host)) {
            return Err(refuse(format!(
                "api_base {host} is not an allowed carrier API address (the server allows {}; \
                 its operator sets them with --carrier-api-allow)",
                self.allowed.join(", ")
            )));
        }
        if is_internal_host(&host) && !self.allow_private {
            return Err(refuse(format!(
                "api_base {host} is a loopback, private or link-local address; the server allows \
                 those only with --carrier-api-allow-private"
            )));
        }
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }
}

/// Whether one allowlist entry admits `url` (whose lower-cased host is `host`).
fn allows(entry: &str, url: &Url, host: &str) -> bool {
    let entry = entry.trim();
    if entry.contains("://") {
        return Url::parse(entry).is_ok_and(|allowed| {
            allowed.scheme() == url.scheme()
                && allowed.host_str().map(str::to_ascii_lowercase).as_deref() == Some(host)
                && allowed.port_or_known_default() == url.port_or_known_default()
        });
    }
    // A bare host[:port]: HTTPS only, so the secret never crosses in clear.
    Url::parse(&format!("https://{entry}")).is_ok_and(|allowed| {
        url.scheme() == "https"
            && allowed.host_str().map(str::to_ascii_lowercase).as_deref() == Some(host)
            && allowed.port_or_known_default() == url.port_or_known_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_to(allowed: &[&str], allow_private: bool) -> CarrierApiPolicy {
        CarrierApiPolicy {
            allowed: allowed.iter().map(|entry| (*entry).to_owned()).collect(),
            allow_private,
        }
    }

    #[test]
    fn by_default_only_the_carriers_public_apis_are_allowed() {
        let policy = CarrierApiPolicy::default();
        assert_eq!(
            policy.check("https://api.twilio.com/").unwrap(),
            "https://api.twilio.com"
        );
        assert!(policy.check("https://API.telnyx.com").is_ok());
        for refused in [
            "http://api.twilio.com",
            "https://api.twilio.com:8443",
            "https://evil.example.org",
            "https://api.twilio.com.evil.example.org",
            "https://user:pw@api.twilio.com",
            "ftp://api.twilio.com",
            "not a url",
        ] {
            assert!(
                matches!(
                    policy.check(refused),
                    Err(AppError::AddressNotAllowed { .. })
                ),
                "{refused}"
            );
        }
    }

    #[test]
    fn internal_addresses_need_the_operators_leave_even_when_listed() {
        let internal = [
            "http://127.0.0.1:18940",
            "http://2130706433",
            "http://0x7f.1",
            "http://localhost:18940",
            "http://api.localhost",
            "http://10.1.2.3",
            "http://172.16.0.1",
            "http://192.168.1.1",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1",
            "http://0.0.0.0",
            "http://[::1]:18940",
            "http://[::]",
            "http://[fe80::1]",
            "http://[fd00::1]",
            "http://[::ffff:127.0.0.1]",
            "http://[::ffff:169.254.169.254]",
            "http://[::127.0.0.1]",
            "http://[64:ff9b::10.0.0.1]",
        ];
        let listed: Vec<String> = internal
            .iter()
            .map(|url| {
                let url = Url::parse(url).unwrap();
                format!("http://{}", url.host_str().unwrap())
                    + &url.port().map(|p| format!(":{p}")).unwrap_or_default()
            })
            .collect();
        let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
        for url in internal {
            let err = open_to(&listed, false).check(url).unwrap_err();
            assert!(err.to_string().contains("private"), "{url}: {err}");
            assert!(open_to(&listed, true).check(url).is_ok(), "{url}");
            // Not listed: refused even with private addresses allowed.
            assert!(open_to(&[], true).check(url).is_err(), "{url}");
        }
        assert!(
            open_to(&["http://[2001:db8::1]"], false)
                .check("http://[2001:db8::1]")
                .is_ok()
        );
    }

    #[test]
    fn a_bare_host_allows_https_to_it_only() {
        let policy = open_to(&["proxy.example.org"], false);
        assert!(policy.check("https://proxy.example.org/twilio").is_ok());
        assert!(policy.check("http://proxy.example.org").is_err());
        assert!(policy.check("https://proxy.example.org:8443").is_err());
    }
}
