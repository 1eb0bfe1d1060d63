//! Column-name knowledge: which columns hold which kind of identifier, and what each built-in
//! profile does with them. The table is ordered; the first pattern that matches the normalised
//! column name (see [`crate::selector::normalize`]) decides. Documented in `docs/tabular.md`.

use phiguard_detect::Category;
use phiguard_rules::{Action, DateFormat, Generalize, Kind, ProfileName};

use crate::selector::{glob, normalize};

/// What a column holds, as far as its name tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A DICOM-style UID (`SERIES_UID`): pseudonymised to a `2.25.` UID, as in DICOM files.
    Uid,
    /// A device identifier or serial number (UDI).
    Device,
    /// Birth date.
    BirthDate,
    /// Any other date, time or timestamp (death date, start/stop, service date, ...).
    Date,
    /// Social security number.
    Ssn,
    /// Driver's licence, passport and other licence numbers.
    License,
    /// A person's name or part of it (first, last, maiden, prefix, suffix, ...).
    Name,
    /// E-mail address.
    Email,
    /// Telephone, fax, mobile.
    Phone,
    /// URL or IP address.
    Url,
    /// Latitude, longitude, geocodes.
    Geo,
    /// ZIP or postal code.
    Zip,
    /// City or town.
    City,
    /// County.
    County,
    /// State, province, country (kept under Safe Harbor).
    State,
    /// Street address, address lines, birthplace.
    Street,
    /// Age in years.
    Age,
    /// A record identifier or foreign key (patient, encounter, MRN, member id, `*_ID`).
    Id,
    /// Free text: notes, comments, descriptions.
    Text,
    /// Codes, code systems, units, types, categories, statuses.
    Code,
    /// Demographics that are not identifiers (gender, race, ethnicity, marital status).
    Demographic,
    /// Measurements and money (costs, amounts, quantities).
    Measure,
}

impl Class {
    /// The config spelling, for `--suggest` comments and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Uid => "uid",
            Class::Device => "device identifier",
            Class::BirthDate => "birth date",
            Class::Date => "date",
            Class::Ssn => "ssn",
            Class::License => "licence/passport number",
            Class::Name => "name",
            Class::Email => "e-mail",
            Class::Phone => "phone/fax",
            Class::Url => "url/ip",
            Class::Geo => "geocode",
            Class::Zip => "zip",
            Class::City => "city",
            Class::County => "county",
            Class::State => "state/country",
            Class::Street => "street address",
            Class::Age => "age",
            Class::Id => "identifier",
            Class::Text => "free text",
            Class::Code => "code",
            Class::Demographic => "demographic",
            Class::Measure => "measurement",
        }
    }

    /// The value kind the engine needs for this class.
    pub fn kind(self) -> Kind {
        match self {
            Class::Uid => Kind::Uid,
            Class::Device | Class::Id => Kind::Id,
            Class::BirthDate => Kind::BirthDate(DateFormat::Auto),
            Class::Date => Kind::Date(DateFormat::Auto),
            Class::Ssn => Kind::Phi(Category::Ssn),
            Class::License => Kind::Phi(Category::License),
            Class::Name => Kind::Phi(Category::Name),
            Class::Email => Kind::Phi(Category::Email),
            Class::Phone => Kind::Phi(Category::Phone),
            Class::Url => Kind::Phi(Category::Url),
            Class::Geo | Class::City | Class::County | Class::State | Class::Street => {
                Kind::Phi(Category::Location)
            }
            Class::Zip => Kind::Zip,
            Class::Age => Kind::Age,
            Class::Text | Class::Code | Class::Demographic | Class::Measure => Kind::Text,
        }
    }

    /// What the built-in profile `profile` does with this class.
    pub fn action(self, profile: ProfileName) -> Action {
        use ProfileName::*;
        match (self, profile) {
            (Class::Uid | Class::Device | Class::Id, _) => Action::Pseudonym,
            (Class::BirthDate | Class::Date, SafeHarbor) => Action::Generalize(Generalize::Year),
            (Class::BirthDate | Class::Date, Shifted) => Action::DateShift,
            (Class::BirthDate | Class::Date, LimitedDataSet) => Action::Keep,
            (
                Class::Ssn
                | Class::License
                | Class::Name
                | Class::Email
                | Class::Phone
                | Class::Url
                | Class::Geo
                | Class::County
                | Class::Street,
                _,
            ) => Action::Remove,
            (Class::Zip, LimitedDataSet) => Action::Keep,
            (Class::Zip, _) => Action::Generalize(Generalize::Zip3),
            (Class::City, LimitedDataSet) => Action::Keep,
            (Class::City, _) => Action::Remove,
            (Class::Age, LimitedDataSet) => Action::Keep,
            (Class::Age, _) => Action::Generalize(Generalize::Age),
            (Class::Text, _) => Action::Text,
            (Class::State | Class::Code | Class::Demographic | Class::Measure, _) => Action::Keep,
        }
    }

    /// The class a detector category stands for, when a column's sampled values are mostly of
    /// that category (`None`: not an identifier, treat as text).
    pub fn of_category(category: Category) -> Option<Class> {
        Some(match category {
            Category::Name => Class::Name,
            Category::Location => Class::Street,
            Category::Date => Class::Date,
            Category::AgeOver89 => Class::Age,
            Category::Phone | Category::Fax => Class::Phone,
            Category::Email => Class::Email,
            Category::Ssn => Class::Ssn,
            Category::Mrn | Category::HealthPlan | Category::Account | Category::OtherId => {
                Class::Id
            }
            Category::License | Category::Vehicle => Class::License,
            Category::Device => Class::Device,
            Category::Url | Category::Ip => Class::Url,
            Category::Biometric | Category::Photo => Class::License,
            Category::Organization | Category::Profession | Category::Other => return None,
        })
    }
}

/// The name table: `(pattern over the normalised column name, class)`, first match wins.
pub const NAME_TABLE: &[(&str, Class)] = &[
    // DICOM-style UIDs and device identifiers before the generic `*ID`.
    ("UID", Class::Uid),
    ("*_UID", Class::Uid),
    ("*INSTANCE*UID", Class::Uid),
    ("*SERIES*UID", Class::Uid),
    ("*STUDY*UID", Class::Uid),
    ("UDI", Class::Device),
    ("*_UDI", Class::Device),
    ("*SERIAL*", Class::Device),
    // Demographics that are not identifiers (before CITY: ETHNICITY ends in it).
    ("GENDER", Class::Demographic),
    ("SEX", Class::Demographic),
    ("RACE", Class::Demographic),
    ("ETHNICITY", Class::Demographic),
    ("*MARITAL*", Class::Demographic),
    // Birthplace is an address; then birth and death dates before generic dates.
    ("BIRTHPLACE", Class::Street),
    ("*BIRTH_PLACE*", Class::Street),
    ("PLACE_OF_BIRTH", Class::Street),
    ("BIRTHDATE", Class::BirthDate),
    ("DOB", Class::BirthDate),
    ("*BIRTH*", Class::BirthDate),
    ("*DOB", Class::BirthDate),
    ("DEATHDATE", Class::Date),
    ("DOD", Class::Date),
    ("*DEATH*", Class::Date),
    // Direct identifiers.
    ("SSN", Class::Ssn),
    ("*_SSN", Class::Ssn),
    ("SSN_*", Class::Ssn),
    ("*SOCIAL_SEC*", Class::Ssn),
    ("DRIVERS", Class::License),
    ("*DRIVER*", Class::License),
    ("*LICENSE*", Class::License),
    ("*LICENCE*", Class::License),
    ("*PASSPORT*", Class::License),
    ("MRN", Class::Id),
    ("*_MRN", Class::Id),
    ("MRN_*", Class::Id),
    ("*MEDICAL_RECORD*", Class::Id),
    ("FIRST", Class::Name),
    ("LAST", Class::Name),
    ("MIDDLE", Class::Name),
    ("NAME", Class::Name),
    ("*NAME", Class::Name),
    ("NAME_*", Class::Name),
    ("*_NAME_*", Class::Name),
    ("*MAIDEN*", Class::Name),
    ("PREFIX", Class::Name),
    ("SUFFIX", Class::Name),
    ("GIVEN*", Class::Name),
    ("FAMILY", Class::Name),
    ("SURNAME", Class::Name),
    ("INITIALS", Class::Name),
    ("*EMAIL*", Class::Email),
    ("*E_MAIL*", Class::Email),
    ("*PHONE*", Class::Phone),
    ("TEL", Class::Phone),
    ("TEL_*", Class::Phone),
    ("*_TEL", Class::Phone),
    ("TELECOM*", Class::Phone),
    ("*FAX*", Class::Phone),
    ("MOBILE*", Class::Phone),
    ("CELL", Class::Phone),
    ("PAGER", Class::Phone),
    ("URL", Class::Url),
    ("*_URL", Class::Url),
    ("*WEBSITE*", Class::Url),
    ("IP", Class::Url),
    ("IP_ADDR*", Class::Url),
    ("*_IP", Class::Url),
    // Geography.
    ("LAT", Class::Geo),
    ("LON", Class::Geo),
    ("LNG", Class::Geo),
    ("LONG", Class::Geo),
    ("*_LAT", Class::Geo),
    ("*_LON", Class::Geo),
    ("*_LNG", Class::Geo),
    ("*LATITUDE*", Class::Geo),
    ("*LONGITUDE*", Class::Geo),
    ("GEO*", Class::Geo),
    ("*COORDINATE*", Class::Geo),
    ("ZIP*", Class::Zip),
    ("*ZIP*", Class::Zip),
    ("*POSTAL*", Class::Zip),
    ("*POSTCODE*", Class::Zip),
    ("*POST_CODE*", Class::Zip),
    ("CITY", Class::City),
    ("*_CITY", Class::City),
    ("CITY_*", Class::City),
    ("TOWN", Class::City),
    ("COUNTY", Class::County),
    ("*_COUNTY", Class::County),
    ("COUNTY_*", Class::County),
    ("STATE", Class::State),
    ("STATE_*", Class::State),
    ("*_STATE", Class::State),
    ("PROVINCE", Class::State),
    ("*COUNTRY*", Class::State),
    ("*ADDRESS*", Class::Street),
    ("ADDR*", Class::Street),
    ("*_ADDR*", Class::Street),
    ("*STREET*", Class::Street),
    ("LINE1", Class::Street),
    ("LINE2", Class::Street),
    ("ADDRESS_LINE*", Class::Street),
    // Ages.
    ("AGE", Class::Age),
    ("AGE_*", Class::Age),
    ("*_AGE", Class::Age),
    // Dates, times and timestamps.
    ("DATE", Class::Date),
    ("*DATE*", Class::Date),
    ("*_DT", Class::Date),
    ("*_DTM", Class::Date),
    ("DT", Class::Date),
    ("TIME", Class::Date),
    ("*_TIME", Class::Date),
    ("*DATETIME*", Class::Date),
    ("*TIMESTAMP*", Class::Date),
    ("*_TS", Class::Date),
    ("START", Class::Date),
    ("STOP", Class::Date),
    ("END", Class::Date),
    ("START_*", Class::Date),
    ("STOP_*", Class::Date),
    ("END_*", Class::Date),
    ("*_START", Class::Date),
    ("*_STOP", Class::Date),
    ("*_END", Class::Date),
    ("*YEAR", Class::Date),
    ("*_AT", Class::Date),
    // Free text.
    ("*NOTE*", Class::Text),
    ("*COMMENT*", Class::Text),
    ("*DESCRIPTION*", Class::Text),
    ("DESC", Class::Text),
    ("*_DESC", Class::Text),
    ("*TEXT*", Class::Text),
    ("*NARRATIVE*", Class::Text),
    ("*REMARK*", Class::Text),
    ("MEMO", Class::Text),
    // Identifiers and foreign keys.
    ("ID", Class::Id),
    ("*_ID", Class::Id),
    ("*ID", Class::Id),
    ("ID_*", Class::Id),
    ("*_KEY", Class::Id),
    ("*PATIENT", Class::Id),
    ("PATIENT_*", Class::Id),
    ("*ENCOUNTER", Class::Id),
    ("*PROVIDER", Class::Id),
    ("*ORGANIZATION", Class::Id),
    ("*PAYER", Class::Id),
    ("MEMBER*", Class::Id),
    ("*ACCOUNT*", Class::Id),
    ("*_NUMBER", Class::Id),
    ("*_NO", Class::Id),
    // Codes and measurements, kept.
    ("CODE", Class::Code),
    ("*CODE", Class::Code),
    ("*_CODE*", Class::Code),
    ("CODE_*", Class::Code),
    ("SYSTEM", Class::Code),
    ("*_SYSTEM", Class::Code),
    ("UNIT", Class::Code),
    ("UNITS", Class::Code),
    ("*_UNIT*", Class::Code),
    ("ICD*", Class::Code),
    ("LOINC*", Class::Code),
    ("SNOMED*", Class::Code),
    ("CPT*", Class::Code),
    ("NDC*", Class::Code),
    ("RXNORM*", Class::Code),
    ("TYPE", Class::Code),
    ("*_TYPE", Class::Code),
    ("CATEGORY", Class::Code),
    ("*_CATEGORY", Class::Code),
    ("CLASS", Class::Code),
    ("*CLASS", Class::Code),
    ("STATUS*", Class::Code),
    ("SEVERITY*", Class::Code),
    ("*COST*", Class::Measure),
    ("*EXPENSE*", Class::Measure),
    ("*AMOUNT*", Class::Measure),
    ("*COVERAGE*", Class::Measure),
    ("*PAYMENT*", Class::Measure),
    ("*REVENUE*", Class::Measure),
    ("*PRICE*", Class::Measure),
    ("QUANTITY", Class::Measure),
    ("DISPENSES", Class::Measure),
    ("UTILIZATION", Class::Measure),
    ("*_COUNT", Class::Measure),
];

/// The class of a column by its name, and the pattern that said so.
pub fn classify(column: &str) -> Option<(&'static str, Class)> {
    let n = normalize(column);
    NAME_TABLE
        .iter()
        .find(|(p, _)| glob(p, &n))
        .map(|(p, c)| (*p, *c))
}

/// The built-in profile's rules as `(selector, action)` pairs for
/// [`phiguard_rules::RuleSet::builtin`].
pub fn builtin_pairs(profile: ProfileName) -> Vec<(&'static str, &'static str)> {
    NAME_TABLE
        .iter()
        .map(|(p, c)| (*p, c.action(profile).as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(c: &str) -> Option<Class> {
        classify(c).map(|(_, c)| c)
    }

    #[test]
    fn synthea_columns() {
        assert_eq!(class("Id"), Some(Class::Id));
        assert_eq!(class("PATIENT"), Some(Class::Id));
        assert_eq!(class("PATIENTID"), Some(Class::Id));
        assert_eq!(class("ENCOUNTER"), Some(Class::Id));
        assert_eq!(class("BIRTHDATE"), Some(Class::BirthDate));
        assert_eq!(class("BIRTHPLACE"), Some(Class::Street));
        assert_eq!(class("DEATHDATE"), Some(Class::Date));
        assert_eq!(class("SSN"), Some(Class::Ssn));
        assert_eq!(class("DRIVERS"), Some(Class::License));
        assert_eq!(class("PASSPORT"), Some(Class::License));
        assert_eq!(class("FIRST"), Some(Class::Name));
        assert_eq!(class("MAIDEN"), Some(Class::Name));
        assert_eq!(class("OWNERNAME"), Some(Class::Name));
        assert_eq!(class("ETHNICITY"), Some(Class::Demographic));
        assert_eq!(class("CITY"), Some(Class::City));
        assert_eq!(class("COUNTY"), Some(Class::County));
        assert_eq!(class("STATE_HEADQUARTERED"), Some(Class::State));
        assert_eq!(class("ZIP"), Some(Class::Zip));
        assert_eq!(class("zipcode"), Some(Class::Zip));
        assert_eq!(class("LAT"), Some(Class::Geo));
        assert_eq!(class("LON"), Some(Class::Geo));
        assert_eq!(class("HEALTHCARE_EXPENSES"), Some(Class::Measure));
        assert_eq!(class("CODE"), Some(Class::Code));
        assert_eq!(class("REASONCODE"), Some(Class::Code));
        assert_eq!(class("DESCRIPTION"), Some(Class::Text));
        assert_eq!(class("REASONDESCRIPTION"), Some(Class::Text));
        assert_eq!(class("START"), Some(Class::Date));
        assert_eq!(class("START_YEAR"), Some(Class::Date));
        assert_eq!(class("LASTBILLEDDATE1"), Some(Class::Date));
        assert_eq!(class("SERIES_UID"), Some(Class::Uid));
        assert_eq!(class("UDI"), Some(Class::Device));
        assert_eq!(class("PHONE"), Some(Class::Phone));
        assert_eq!(class("age"), Some(Class::Age));
        assert_eq!(class("marital-status"), Some(Class::Demographic));
        assert_eq!(class("IMAGE"), None);
        assert_eq!(class("VALUE"), None);
    }

    #[test]
    fn every_builtin_pair_compiles() {
        for p in [
            ProfileName::SafeHarbor,
            ProfileName::LimitedDataSet,
            ProfileName::Shifted,
        ] {
            for (_, a) in builtin_pairs(p) {
                assert!(Action::parse(a).is_some(), "{a}");
            }
        }
    }
}
