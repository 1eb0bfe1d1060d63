//! Ordered rules: a format-specific selector and an action; the first matching rule wins.

use serde::Deserialize;

use crate::action::Action;
use crate::config::ConfigError;

/// A format's selector syntax (`PID-5.1`, `Patient.name`, `(0010,0010)`, a column name).
pub trait Selector: Sized {
    /// Parses one selector; the error says what is wrong with it (it never holds PHI: selectors
    /// are configuration).
    fn parse(text: &str) -> Result<Self, String>;
}

/// A rule as written in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// The selector, in the format's syntax.
    pub select: String,
    /// The action (see [`Action::parse`]).
    pub action: String,
    /// A name for the report; defaults to `<section>.rules[<i>]`.
    #[serde(default)]
    pub name: Option<String>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule<S> {
    /// Names the rule in the report and in errors.
    pub id: String,
    pub selector: S,
    pub action: Action,
}

/// Rules in order.
#[derive(Debug, Clone)]
pub struct RuleSet<S> {
    rules: Vec<Rule<S>>,
}

impl<S> Default for RuleSet<S> {
    fn default() -> Self {
        RuleSet { rules: Vec::new() }
    }
}

impl<S: Selector> RuleSet<S> {
    /// Compiles the rules of config section `section` (`hl7`, `fhir`, ...). Errors name the rule:
    /// `hl7.rules[3] (select = "PID-"): ...`.
    pub fn compile(section: &str, raw: &[RawRule]) -> Result<RuleSet<S>, ConfigError> {
        let mut rules = Vec::with_capacity(raw.len());
        for (i, r) in raw.iter().enumerate() {
            let at = format!("{section}.rules[{i}] (select = {:?})", r.select);
            let selector = S::parse(&r.select).map_err(|message| ConfigError::Rule {
                at: at.clone(),
                message,
            })?;
            let action = Action::parse(&r.action).ok_or_else(|| ConfigError::Rule {
                at: at.clone(),
                message: format!(
                    "unknown action {:?}; expected one of {}",
                    r.action,
                    Action::SPELLINGS
                ),
            })?;
            let id = r
                .name
                .clone()
                .unwrap_or_else(|| format!("{section}.rules[{i}] {}", r.select));
            rules.push(Rule {
                id,
                selector,
                action,
            });
        }
        Ok(RuleSet { rules })
    }

    /// Compiles a built-in profile's `(selector, action)` pairs; rule ids are `<profile>: <selector>`.
    pub fn builtin(profile: &str, pairs: &[(&str, &str)]) -> Result<RuleSet<S>, ConfigError> {
        let mut rules = Vec::with_capacity(pairs.len());
        for (select, action) in pairs {
            let at = format!("profile {profile} (select = {select:?})");
            let selector = S::parse(select).map_err(|message| ConfigError::Rule {
                at: at.clone(),
                message,
            })?;
            let action = Action::parse(action).ok_or_else(|| ConfigError::Rule {
                at,
                message: format!("unknown action {action:?}"),
            })?;
            rules.push(Rule {
                id: format!("{profile}: {select}"),
                selector,
                action,
            });
        }
        Ok(RuleSet { rules })
    }
}

impl<S> RuleSet<S> {
    /// The first rule whose selector satisfies `matches`.
    pub fn first(&self, mut matches: impl FnMut(&S) -> bool) -> Option<&Rule<S>> {
        self.rules.iter().find(|r| matches(&r.selector))
    }

    /// Appends `other`'s rules after these (user rules first, then a profile's).
    pub fn then(mut self, other: RuleSet<S>) -> RuleSet<S> {
        self.rules.extend(other.rules);
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rule<S>> {
        self.rules.iter()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Col(String);
    impl Selector for Col {
        fn parse(t: &str) -> Result<Self, String> {
            if t.is_empty() {
                Err("empty column name".into())
            } else {
                Ok(Col(t.into()))
            }
        }
    }

    #[test]
    fn first_match_wins_and_errors_name_the_rule() {
        let raw = vec![
            RawRule {
                select: "SSN".into(),
                action: "remove".into(),
                name: None,
            },
            RawRule {
                select: "SSN".into(),
                action: "keep".into(),
                name: Some("never".into()),
            },
        ];
        let set = RuleSet::<Col>::compile("csv", &raw).unwrap();
        let r = set.first(|c| c.0 == "SSN").unwrap();
        assert_eq!(r.action, Action::Remove);
        assert_eq!(r.id, "csv.rules[0] SSN");
        let bad = vec![
            RawRule {
                select: "A".into(),
                action: "keep".into(),
                name: None,
            },
            RawRule {
                select: "".into(),
                action: "keep".into(),
                name: None,
            },
        ];
        let e = RuleSet::<Col>::compile("csv", &bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("csv.rules[1]") && e.contains("empty column name"),
            "{e}"
        );
        let bad = vec![RawRule {
            select: "A".into(),
            action: "zap".into(),
            name: None,
        }];
        let e = RuleSet::<Col>::compile("csv", &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("csv.rules[0]") && e.contains("zap"), "{e}");
    }
}
