//! Deny-by-default routing: a request that may carry PHI goes only to a `private` provider or
//! to one whose BAA is in effect today, covers the service and — when its 10-point checklist is
//! recorded — meets every point. The consumer APIs of OpenAI,
//! Gemini and Anthropic are refused for PHI whatever the config says.

use reqwest::Url;
use time::Date;

use crate::config::{ChecklistState, ProviderConfig};

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
    /// A BAA is in effect, but its recorded checklist has a point that is not met.
    BaaChecklistIncomplete,
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
            PhiEligibility::BaaChecklistIncomplete => "baa_checklist_incomplete",
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
        Some(b) if !b.covers(service, today) => PhiEligibility::BaaInactive,
        // An absent checklist is "not recorded" (warned about at start-up); a recorded one
        // must hold on every point.
        Some(b) if b.checklist_state() == ChecklistState::Incomplete => {
            PhiEligibility::BaaChecklistIncomplete
        }
        Some(_) => PhiEligibility::BaaActive,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::config::{BaaChecklist, BaaRecord, ProviderKind};

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
            checklist: None,
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

    #[test]
    fn checklist_must_hold_on_every_point() {
        let today = time::macros::date!(2026 - 06 - 01);
        let all = BaaChecklist {
            signed: true,
            no_training_on_phi: true,
            retention_and_deletion: true,
            subcontractor_disclosure: true,
            breach_notification_timeline: true,
            data_portability: true,
            no_data_mixing: true,
            security_rule_safeguards: true,
            covers_ai_services: true,
            security_evidence: true,
        };
        let baa = |c: Option<BaaChecklist>| BaaRecord {
            signed: time::macros::date!(2026 - 01 - 01),
            effective: time::macros::date!(2026 - 01 - 01),
            expires: time::macros::date!(2027 - 01 - 01),
            services: vec!["chat.completions".into()],
            reference: None,
            checklist: c,
        };
        let e = |c, private| {
            phi_eligibility(
                &p("https://llm.example.org/v1", private, Some(baa(c))),
                "chat.completions",
                today,
            )
        };
        assert_eq!(e(Some(all), false), PhiEligibility::BaaActive);
        assert_eq!(e(None, false), PhiEligibility::BaaActive);
        let mut one_false = all;
        one_false.no_data_mixing = false;
        assert_eq!(
            e(Some(one_false), false),
            PhiEligibility::BaaChecklistIncomplete
        );
        assert!(!e(Some(one_false), false).allows_phi());
        assert_eq!(one_false.missing(), vec!["no_data_mixing"]);
        // A private deployment needs no BAA at all.
        assert_eq!(e(Some(one_false), true), PhiEligibility::Private);
        // An expired BAA is inactive whatever its checklist says.
        let late = time::macros::date!(2027 - 01 - 01);
        assert_eq!(
            phi_eligibility(
                &p(
                    "https://llm.example.org/v1",
                    false,
                    Some(baa(Some(one_false)))
                ),
                "chat.completions",
                late
            ),
            PhiEligibility::BaaInactive
        );
    }
}
