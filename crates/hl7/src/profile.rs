//! The built-in profiles: what happens to each role.

use phiguard_rules::{Action, Generalize, ProfileName};

use crate::types::Role;

/// The action profile `profile` takes on values of `role`.
pub fn action(profile: ProfileName, role: Role) -> Action {
    use Role::*;
    let limited = profile == ProfileName::LimitedDataSet;
    match role {
        Keep | Code => Action::Keep,
        Text => Action::Text,
        Id => Action::Pseudonym,
        Remove | Name | Street | Phone | Email => Action::Remove,
        City | County if limited => Action::Keep,
        City | County => Action::Remove,
        Zip if limited => Action::Keep,
        Zip => Action::Generalize(Generalize::Zip3),
        Date | BirthDate => match profile {
            ProfileName::SafeHarbor => Action::Generalize(Generalize::Year),
            ProfileName::Shifted => Action::DateShift,
            ProfileName::LimitedDataSet => Action::Keep,
        },
        Facility if limited => Action::Keep,
        Facility => Action::Pseudonym,
    }
}

/// The kind the engine should use for a user rule's action on a field of unknown type.
pub fn kind_for_action(action: Action) -> phiguard_rules::Kind {
    use phiguard_rules::{DateFormat, Kind};
    match action {
        Action::DateShift | Action::Generalize(Generalize::Year) => Kind::Date(DateFormat::Hl7),
        Action::Generalize(Generalize::Zip3) => Kind::Zip,
        Action::Generalize(Generalize::Age | Generalize::AgeBand) => Kind::Age,
        Action::Pseudonym => Kind::Id,
        _ => Kind::Text,
    }
}
