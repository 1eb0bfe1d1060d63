//! Ages over 89 aggregated to "90+" (45 CFR 164.514(b)(2)(i)(C)), keeping the words around the
//! number: "92 yo" → "90+ yo", "91 años" → "90+ años", "93-jährige" → "90+-jährige".

/// What generalizing an age did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgeOutcome {
    /// The age was 90 or more and is now "90+".
    Generalized(String),
    /// Already "90+": unchanged.
    AlreadyGeneralized,
    /// The number is below 90, which Safe Harbor allows: unchanged.
    Under90,
    /// No digits (a spelled-out age): the whole text becomes "90+".
    NoNumber(String),
}

/// Replaces the first number in `text` by "90+" when it is 90 or more.
pub fn generalize(text: &str) -> AgeOutcome {
    let Some(start) = text.find(|c: char| c.is_ascii_digit()) else {
        return AgeOutcome::NoNumber("90+".to_string());
    };
    let rest = &text[start..];
    let len = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let digits = &rest[..len];
    let after = &rest[len..];
    // Leading zeros do not make a number small; a very long number is large.
    let value: u64 = digits.parse().unwrap_or(u64::MAX);
    if value == 90 && after.starts_with('+') {
        return AgeOutcome::AlreadyGeneralized;
    }
    if value < 90 {
        return AgeOutcome::Under90;
    }
    // "92.5 years": the decimals go too.
    let after = match after.strip_prefix(['.', ',']) {
        Some(a) if a.starts_with(|c: char| c.is_ascii_digit()) => {
            a.trim_start_matches(|c: char| c.is_ascii_digit())
        }
        _ => after,
    };
    AgeOutcome::Generalized(format!("{}90+{}", &text[..start], after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(t: &str) -> String {
        match generalize(t) {
            AgeOutcome::Generalized(s) | AgeOutcome::NoNumber(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keeps_unit_words() {
        assert_eq!(g("92 yo"), "90+ yo");
        assert_eq!(g("91 años"), "90+ años");
        assert_eq!(g("93-year-old"), "90+-year-old");
        assert_eq!(g("age 104"), "age 90+");
        assert_eq!(g("90"), "90+");
        assert_eq!(g("92.5 years"), "90+ years");
        assert_eq!(g("ninety-two"), "90+");
    }

    #[test]
    fn idempotent_and_under_90() {
        assert_eq!(generalize("90+ yo"), AgeOutcome::AlreadyGeneralized);
        assert_eq!(generalize(&g("95 Jahre")), AgeOutcome::AlreadyGeneralized);
        assert_eq!(generalize("89 yo"), AgeOutcome::Under90);
    }
}
