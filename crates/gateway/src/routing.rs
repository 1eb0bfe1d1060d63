//! Deny-by-default routing: a request that may carry PHI goes only to a `private` provider or
//! to one whose BAA is in effect today and covers the service. The consumer APIs of OpenAI,
//! Gemini and Anthropic are refused for PHI whatever the config says.

use reqwest::Url;
use time::Date;

use crate::config::ProviderConfig;

/// Hosts of consumer model APIs that sign no BAA for their consumer tiers.
pub const CONSUMER_HOSTS: [&str; 3] = [
    "api.openai.com",
    "generativelanguage.googleapis.com",
    "api.anthropic.com",
];

/// True when `url`'s host is loopback (`localhost`, 127.0.0.0/8, ::1).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// True when `endpoint` is one of the known consumer (non-BAA) APIs.
pub fn is_consumer_endpoint(endpoint: &str) -> bool {
    let Ok(url) = Url::parse(endpoint) else {
        return true; // unparseable: treat as the worst case
    };
    let Some(host) = url.host_str() else {
        return true;
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    CONSUMER_HOSTS.iter().any(|c| host == *c)
}

/// Why PHI may (or may not) go to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhiEligibility {
    /// Self-hosted inside the boundary.
    Private,
    /// A BAA is in effect and covers the service.
    BaaActive,
    /// A known consumer endpoint: never.
    ConsumerEndpoint,
    /// No BAA on record.
    NoBaa,
    /// A BAA exists but is not in effect today (not yet, or expired) or does not cover the service.
    BaaInactive,
}

impl PhiEligibility {
    /// True when PHI may be sent.
    pub fn allows_phi(self) -> bool {
        matches!(self, PhiEligibility::Private | PhiEligibility::BaaActive)
    }

    /// A stable name for audit records and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            PhiEligibility::Private => "private",
            PhiEligibility::BaaActive => "baa_active",
            PhiEligibility::ConsumerEndpoint => "consumer_endpoint",
            PhiEligibility::NoBaa => "no_baa",
            PhiEligibility::BaaInactive => "baa_inactive",
        }
    }
}

/// Whether `provider` may receive PHI for `service` on `today`.
pub fn phi_eligibility(provider: &ProviderConfig, service: &str, today: Date) -> PhiEligibility {
    if is_consumer_endpoint(&provider.endpoint) {
        return PhiEligibility::ConsumerEndpoint;
    }
    if provider.private {
        return PhiEligibility::Private;
    }
    match &provider.baa {
        None => PhiEligibility::NoBaa,
        Some(b) if b.covers(service, today) => PhiEligibility::BaaActive,
        Some(_) => PhiEligibility::BaaInactive,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::config::{BaaRecord, ProviderKind};

    fn p(endpoint: &str, private: bool, baa: Option<BaaRecord>) -> ProviderConfig {
        ProviderConfig {
            kind: ProviderKind::OpenaiCompatible,
            endpoint: endpoint.into(),
            models: vec!["m".into()],
            private,
            api_key: None,
            baa,
            ..Default::default()
        }
    }

    #[test]
    fn consumer_endpoints_never_allowed() {
        let today = time::macros::date!(2026 - 06 - 01);
        let baa = BaaRecord {
            signed: time::macros::date!(2026 - 01 - 01),
            effective: time::macros::date!(2026 - 01 - 01),
            expires: time::macros::date!(2027 - 01 - 01),
            services: vec!["chat.completions".into()],
            reference: None,
        };
        for host in [
            "https://api.openai.com/v1",
            "https://API.Anthropic.com./v1",
            "https://generativelanguage.googleapis.com/v1beta/openai",
        ] {
            let e = phi_eligibility(&p(host, true, Some(baa.clone())), "chat.completions", today);
            assert_eq!(e, PhiEligibility::ConsumerEndpoint, "{host}");
        }
        assert!(
            phi_eligibility(
                &p("https://llm.example.org/v1", false, Some(baa.clone())),
                "chat.completions",
                today
            )
            .allows_phi()
        );
        assert_eq!(
            phi_eligibility(
                &p("https://llm.example.org/v1", false, None),
                "chat.completions",
                today
            ),
            PhiEligibility::NoBaa
        );
        assert!(
            phi_eligibility(
                &p("http://127.0.0.1:1/v1", true, None),
                "chat.completions",
                today
            )
            .allows_phi()
        );
    }
}
