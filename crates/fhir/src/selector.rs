//! FHIR-path-like selectors.
//!
//! | selector | matches |
//! |---|---|
//! | `Patient` | a whole resource of that type (root, Bundle entry or contained) |
//! | `Patient.name`, `Patient.address.line`, `Observation.valueString` | the element at that path from the resource root (array positions are not written) |
//! | `*.identifier` | the element in a resource of any type |
//! | `Observation.value[x]` | any choice (`valueString`, `valueQuantity`, ...) |
//! | `Patient.*.end` | `*` stands for one element name |
//! | `HumanName`, `Address`, `ContactPoint`, `Identifier`, `Reference`, `Attachment`, ... | every value of that data type, wherever it is |
//! | `Address.postalCode`, `Identifier.value` | an element of that data type |
//! | `date`, `dateTime`, `instant`, `string`, `code`, `uri`, `id`, ... | every primitive of that type |
//! | `extension(http://hl7.org/fhir/StructureDefinition/patient-birthPlace)` | the extension with that url |

use phiguard_rules::Selector;

use crate::types::DType;

/// One path step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An element name.
    Name(String),
    /// `*`: any one element.
    Any,
    /// `value[x]`: the stem of a choice element.
    Choice(String),
}

impl Step {
    #[inline]
    fn matches(&self, name: &str) -> bool {
        match self {
            Step::Name(n) => n == name,
            Step::Any => true,
            Step::Choice(stem) => {
                name.len() > stem.len()
                    && name.starts_with(stem.as_str())
                    && name.as_bytes()[stem.len()].is_ascii_uppercase()
            }
        }
    }
}

/// A compiled selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FhirSelector {
    /// `Patient`: the whole resource.
    Resource(String),
    /// `Patient.name.given`, `*.identifier`: a path from the resource root (`None` = any type).
    Path {
        resource: Option<String>,
        steps: Vec<Step>,
    },
    /// `HumanName`, `Address.line`, `dateTime`: a data type, optionally an element inside it.
    Type { dtype: DType, steps: Vec<Step> },
    /// `extension(url)`.
    Extension(String),
}

/// One step of a node's path: the element name and its type.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The element name (without the `_` of a primitive's companion object).
    pub name: String,
    pub dtype: DType,
    /// The member was `_name`.
    pub underscore: bool,
    /// The position in the member's array, if it is one.
    pub index: Option<usize>,
}

/// A node as the walker sees it: its resource's type, its path from the resource root with the
/// type of every step, its own type, and the url when it is an extension.
pub struct Node<'a> {
    pub resource: &'a str,
    /// Element names from the resource root to this node, and each step's type.
    pub path: &'a [Frame],
    pub dtype: DType,
    pub extension_url: Option<&'a str>,
    /// True at a resource's root.
    pub is_resource: bool,
    /// At a resource's root: true when resources can nest inside (a Bundle, `contained`).
    pub has_nested: bool,
    /// An object of a type whose members are all primitives (Coding, Quantity, Period) and
    /// that carries no extension: only its primitive children lie below it.
    pub flat: bool,
}

fn step(s: &str) -> Result<Step, String> {
    if s == "*" {
        return Ok(Step::Any);
    }
    if let Some(stem) = s.strip_suffix("[x]") {
        if stem.is_empty() || !valid_name(stem) {
            return Err(format!("bad choice element {s:?}"));
        }
        return Ok(Step::Choice(stem.to_string()));
    }
    if !valid_name(s) {
        return Err(format!(
            "bad element name {s:?} (letters, digits and _ only)"
        ));
    }
    Ok(Step::Name(s.to_string()))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Selector for FhirSelector {
    fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty selector".into());
        }
        if let Some(rest) = t.strip_prefix("extension(") {
            let url = rest
                .strip_suffix(')')
                .ok_or("extension(...) needs a closing parenthesis")?
                .trim();
            if url.is_empty() {
                return Err("extension() needs a url".into());
            }
            return Ok(FhirSelector::Extension(url.to_string()));
        }
        let mut parts = t.split('.');
        let head = parts.next().unwrap_or_default();
        let steps = parts.map(step).collect::<Result<Vec<_>, _>>()?;
        if head == "*" {
            if steps.is_empty() {
                return Err("`*` needs a path: `*.identifier`".into());
            }
            return Ok(FhirSelector::Path {
                resource: None,
                steps,
            });
        }
        if let Some(dtype) = DType::parse(head) {
            return Ok(FhirSelector::Type { dtype, steps });
        }
        if !head.as_bytes().first().is_some_and(u8::is_ascii_uppercase) || !valid_name(head) {
            return Err(format!(
                "{head:?} is neither a resource type, a data type (HumanName, Address, \
                 ContactPoint, Identifier, Reference, Attachment, date, dateTime, instant, ...) \
                 nor `*`"
            ));
        }
        if steps.is_empty() {
            Ok(FhirSelector::Resource(head.to_string()))
        } else {
            Ok(FhirSelector::Path {
                resource: Some(head.to_string()),
                steps,
            })
        }
    }
}

impl FhirSelector {
    /// True if this selector selects `node`.
    #[inline]
    pub fn matches(&self, node: &Node<'_>) -> bool {
        match self {
            FhirSelector::Resource(r) => node.is_resource && node.resource == r,
            FhirSelector::Path { resource, steps } => {
                !node.is_resource
                    && resource.as_deref().is_none_or(|r| r == node.resource)
                    && steps.len() == node.path.len()
                    && steps.iter().zip(node.path).all(|(s, f)| s.matches(&f.name))
            }
            FhirSelector::Type { dtype, steps } => {
                if steps.is_empty() {
                    return node.dtype == *dtype
                        || (*dtype == DType::Quantity && node.dtype == DType::Age);
                }
                let n = node.path.len();
                n > steps.len()
                    && node.path[n - steps.len() - 1].dtype == *dtype
                    && steps
                        .iter()
                        .zip(&node.path[n - steps.len()..])
                        .all(|(s, f)| s.matches(&f.name))
            }
            FhirSelector::Extension(url) => {
                node.dtype == DType::Extension && node.extension_url == Some(url.as_str())
            }
        }
    }

    /// Whether this selector might select something inside `node` (conservative: `true` when
    /// unsure). Lets a rule on a whole subtree be applied at once when no earlier rule could
    /// pick out a part of it.
    pub fn may_match_below(&self, node: &Node<'_>) -> bool {
        if node.flat {
            match self {
                FhirSelector::Resource(_) | FhirSelector::Extension(_) => return false,
                FhirSelector::Type { dtype, steps } => {
                    let Some((_, inner)) = steps.split_last() else {
                        return !dtype.is_complex();
                    };
                    // A child at depth n: the type `steps.len()` levels above it, and the
                    // inner steps over the existing path.
                    let n = node.path.len() + 1;
                    return n > steps.len()
                        && node.path[n - steps.len() - 1].dtype == *dtype
                        && inner
                            .iter()
                            .zip(&node.path[n - steps.len()..])
                            .all(|(s, f)| s.matches(&f.name));
                }
                FhirSelector::Path { .. } => {}
            }
        }
        match self {
            FhirSelector::Path { resource, steps } => {
                let same = resource.as_deref().is_none_or(|r| r == node.resource);
                (same
                    && steps.len() > node.path.len()
                    && steps.iter().zip(node.path).all(|(s, f)| s.matches(&f.name)))
                    || can_hold_resources(node)
            }
            FhirSelector::Resource(_) => can_hold_resources(node),
            FhirSelector::Type { .. } | FhirSelector::Extension(_) => true,
        }
    }
}

/// Resources nest in Bundle entries and `contained`.
fn can_hold_resources(node: &Node<'_>) -> bool {
    if node.is_resource {
        node.has_nested
    } else {
        node.resource == "Bundle" || node.path.first().is_some_and(|f| f.name == "contained")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> FhirSelector {
        FhirSelector::parse(s).unwrap()
    }

    #[test]
    fn parses_and_matches() {
        let f = |n: &str, dtype| Frame {
            name: n.into(),
            dtype,
            underscore: false,
            index: None,
        };
        let path = [f("address", DType::Address), f("line", DType::Str)];
        let node = Node {
            resource: "Patient",
            path: &path,
            dtype: DType::Str,
            extension_url: None,
            is_resource: false,
            has_nested: false,
            flat: false,
        };
        assert!(p("Patient.address.line").matches(&node));
        assert!(p("*.address.line").matches(&node));
        assert!(p("Address.line").matches(&node));
        assert!(p("Patient.*.line").matches(&node));
        assert!(p("string").matches(&node));
        assert!(!p("Patient.address").matches(&node));
        assert!(!p("Practitioner.address.line").matches(&node));
        assert!(!p("Address.city").matches(&node));
        assert!(!p("Patient").matches(&node));
        let vp = [f("valueString", DType::Str)];
        let v = Node {
            resource: "Observation",
            path: &vp,
            dtype: DType::Str,
            extension_url: None,
            is_resource: false,
            has_nested: false,
            flat: false,
        };
        assert!(p("Observation.value[x]").matches(&v));
        assert!(p("Observation.valueString").matches(&v));
        assert_eq!(
            p("extension( http://x/y )"),
            FhirSelector::Extension("http://x/y".into())
        );
        for bad in [
            "",
            "*",
            "patient.name",
            "Patient..name",
            "extension(",
            "Patient.na-me",
        ] {
            assert!(FhirSelector::parse(bad).is_err(), "{bad}");
        }
    }
}
