//! What the standard says a field holds: the data type of the PHI-bearing fields of v2.3–2.8
//! segments, and what each component of a data type is (a name part, a street line, a ZIP, an
//! identifier, a date, a code...). The profiles map these roles to actions.

use phiguard_detect::Category;
use phiguard_rules::{DateFormat, Kind};

/// What one leaf value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Table values, flags, sequence numbers: kept (unless the value is a full date or one of
    /// the message's identifying values, which a misplaced value can be).
    Keep,
    /// Coded elements and measurements (CWE/CE/CNE, units, OBX-5 numbers): kept as they are.
    Code,
    /// Free text or a string of unknown meaning: the free-text detector.
    Text,
    /// A record or person identifier: pseudonymised.
    Id,
    /// Removed whatever the profile (SSNs, licence numbers, check digits, attachments).
    Remove,
    Date,
    BirthDate,
    Name,
    Street,
    City,
    County,
    Zip,
    Phone,
    Email,
    /// A sending/receiving application or facility (MSH-3..6).
    Facility,
}

impl Role {
    pub const ALL: [Role; 15] = [
        Role::Keep,
        Role::Code,
        Role::Text,
        Role::Id,
        Role::Remove,
        Role::Date,
        Role::BirthDate,
        Role::Name,
        Role::Street,
        Role::City,
        Role::County,
        Role::Zip,
        Role::Phone,
        Role::Email,
        Role::Facility,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Keep => "value",
            Role::Code => "code",
            Role::Text => "text",
            Role::Id => "id",
            Role::Remove => "remove",
            Role::Date => "date",
            Role::BirthDate => "birth date",
            Role::Name => "name",
            Role::Street => "street",
            Role::City => "city",
            Role::County => "county",
            Role::Zip => "zip",
            Role::Phone => "phone",
            Role::Email => "email",
            Role::Facility => "facility",
        }
    }

    /// The engine's kind for values of this role.
    pub fn kind(self) -> Kind {
        match self {
            Role::Keep | Role::Code | Role::Text | Role::Remove => Kind::Text,
            Role::Id | Role::Facility => Kind::Id,
            Role::Date => Kind::Date(DateFormat::Hl7),
            Role::BirthDate => Kind::BirthDate(DateFormat::Hl7),
            Role::Name => Kind::Phi(Category::Name),
            Role::Street | Role::City | Role::County => Kind::Phi(Category::Location),
            Role::Zip => Kind::Zip,
            Role::Phone => Kind::Phi(Category::Phone),
            Role::Email => Kind::Phi(Category::Email),
        }
    }
}

/// One component of a composite type: one role for the component (and all its subcomponents),
/// or one role per subcomponent.
#[derive(Debug, Clone, Copy)]
pub enum Comp {
    R(Role),
    S(&'static [Role]),
}

/// A data type.
#[derive(Debug, Clone, Copy)]
pub enum Type {
    /// A primitive: every component and subcomponent has this role.
    Prim(Role),
    /// A composite; components past the end are `Text`.
    Composite(&'static [Comp]),
}

impl Type {
    /// The role of component `comp`, subcomponent `sub` (1-based).
    pub fn role(self, comp: u16, sub: u16) -> Role {
        match self {
            Type::Prim(r) => r,
            Type::Composite(comps) => match comps.get(usize::from(comp).wrapping_sub(1)) {
                Some(Comp::R(r)) => *r,
                Some(Comp::S(subs)) => subs
                    .get(usize::from(sub).wrapping_sub(1))
                    .copied()
                    .unwrap_or(Role::Text),
                None => Role::Text,
            },
        }
    }

    /// Every role `role` can answer for this type, without repeats: a composite's component
    /// and subcomponent roles, and `Text` for those past its end.
    pub fn roles(self) -> Vec<Role> {
        let mut roles = Vec::new();
        let mut add = |r: Role| {
            if !roles.contains(&r) {
                roles.push(r);
            }
        };
        match self {
            Type::Prim(r) => add(r),
            Type::Composite(comps) => {
                for c in comps {
                    match c {
                        Comp::R(r) => add(*r),
                        Comp::S(subs) => subs.iter().copied().for_each(&mut add),
                    }
                }
                add(Role::Text);
            }
        }
        roles
    }

    /// True if every value of this type is kept by every profile.
    pub fn all_keep(self) -> bool {
        match self {
            Type::Prim(r) => matches!(r, Role::Keep | Role::Code),
            Type::Composite(_) => false,
        }
    }
}

use Comp::{R, S};
use Role::*;

const TS: &[Role] = &[Date, Keep];
const HD_KEEP: Comp = R(Keep);
const XPN: &[Comp] = &[
    R(Name),
    R(Name),
    R(Name),
    R(Name),
    R(Name),
    R(Name),
    R(Keep),
    R(Keep),
    R(Keep),
    S(&[Date, Date]),
    R(Keep),
    S(TS),
    S(TS),
    R(Name),
];
const XCN: &[Comp] = &[
    R(Id),
    R(Name),
    R(Name),
    R(Name),
    R(Name),
    R(Name),
    R(Name),
    R(Keep),
    HD_KEEP,
    R(Keep),
    R(Remove),
    R(Keep),
    R(Keep),
    HD_KEEP,
    R(Keep),
    R(Keep),
    S(&[Date, Date]),
    R(Keep),
    S(TS),
    S(TS),
    R(Name),
    R(Keep),
    R(Keep),
    R(Keep),
];
/// PPN: XCN with the action date in component 15.
const PPN: &[Comp] = &[
    R(Id),
    R(Name),
    R(Name),
    R(Name),
    R(Name),
    R(Name),
    R(Name),
    R(Keep),
    HD_KEEP,
    R(Keep),
    R(Remove),
    R(Keep),
    R(Keep),
    HD_KEEP,
    S(TS),
    R(Keep),
    R(Keep),
    R(Keep),
    S(&[Date, Date]),
    R(Keep),
    S(TS),
    S(TS),
    R(Name),
    R(Keep),
    R(Keep),
    R(Keep),
];
const CN: &[Comp] = &[
    R(Id),
    R(Name),
    R(Name),
    R(Name),
    R(Name),
    R(Name),
    R(Name),
    R(Keep),
    HD_KEEP,
];
const CX: &[Comp] = &[
    R(Id),
    R(Remove),
    R(Keep),
    HD_KEEP,
    R(Keep),
    HD_KEEP,
    R(Date),
    R(Date),
    R(Keep),
    R(Keep),
    R(Keep),
    R(Keep),
];
const EI: &[Comp] = &[R(Id), R(Keep), R(Keep), R(Keep)];
const EIP: &[Comp] = &[S(&[Id, Keep, Keep, Keep]), S(&[Id, Keep, Keep, Keep])];
const XAD: &[Comp] = &[
    S(&[Street, Street, Street]),
    R(Street),
    R(City),
    R(Keep),
    R(Zip),
    R(Keep),
    R(Keep),
    R(Street),
    R(County),
    R(Remove),
    R(Keep),
    S(&[Date, Date]),
    S(TS),
    S(TS),
    R(Keep),
    R(Keep),
    R(Keep),
    R(Keep),
    R(Name),
    R(Text),
    R(Keep),
    R(Id),
    R(Id),
];
const XTN: &[Comp] = &[
    R(Phone),
    R(Keep),
    R(Keep),
    R(Email),
    R(Phone),
    R(Phone),
    R(Phone),
    R(Phone),
    R(Text),
    R(Phone),
    R(Phone),
    R(Phone),
    S(TS),
    S(TS),
    R(Keep),
    R(Keep),
    R(Keep),
    R(Keep),
];
const XON: &[Comp] = &[
    R(Text),
    R(Keep),
    R(Id),
    R(Remove),
    R(Keep),
    HD_KEEP,
    R(Keep),
    HD_KEEP,
    R(Keep),
    R(Id),
];
/// An organisation that identifies the patient (an employer): its name is removed.
const XON_EMPLOYER: &[Comp] = &[
    R(Remove),
    R(Keep),
    R(Id),
    R(Remove),
    R(Keep),
    HD_KEEP,
    R(Keep),
    HD_KEEP,
    R(Keep),
    R(Id),
];
const HD_FACILITY: &[Comp] = &[R(Facility), R(Keep), R(Keep)];
const PL: &[Comp] = &[
    R(Keep),
    R(Keep),
    R(Keep),
    HD_KEEP,
    R(Keep),
    R(Keep),
    R(Keep),
    R(Keep),
    R(Text),
    S(&[Id, Keep, Keep, Keep]),
    HD_KEEP,
];
const LA2: &[Comp] = &[
    R(Keep),
    R(Keep),
    R(Keep),
    HD_KEEP,
    R(Keep),
    R(Keep),
    R(Keep),
    R(Keep),
    R(Street),
    R(Street),
    R(City),
    R(Keep),
    R(Zip),
    R(Keep),
    R(Keep),
    R(Remove),
];
const DLN: &[Comp] = &[R(Remove), R(Keep), R(Date)];
const DR: &[Comp] = &[S(TS), S(TS)];
const TQ: &[Comp] = &[
    R(Keep),
    R(Keep),
    R(Keep),
    S(TS),
    S(TS),
    R(Keep),
    R(Text),
    R(Text),
    R(Keep),
    R(Keep),
    R(Keep),
    R(Keep),
];
const NDL: &[Comp] = &[
    S(&[
        Id, Name, Name, Name, Name, Name, Name, Keep, Keep, Keep, Keep,
    ]),
    S(TS),
    S(TS),
    R(Keep),
    R(Keep),
    R(Keep),
    R(Keep),
    R(Keep),
    R(Keep),
    R(Keep),
    R(Keep),
];
const TS_FIELD: &[Comp] = &[R(Date), R(Keep)];

/// Looks up a data type by its code (the table's spelling and OBX-2 value types).
pub fn by_code(code: &str) -> Option<Type> {
    Some(match code {
        // Codes, numbers and coded values.
        "K" | "ID" | "IS" | "SI" | "TM" | "JCC" | "FC" | "MSG" | "PT" | "VID" | "RMC" | "PTA"
        | "DDI" => Type::Prim(Keep),
        "C" | "CE" | "CWE" | "CNE" | "CF" | "NM" | "SN" | "NR" | "CQ" | "MO" | "CP" | "MA"
        | "NA" | "CD" => Type::Prim(Code),
        "T" | "ST" | "TX" | "FT" | "GTS" => Type::Prim(Text),
        "I" => Type::Prim(Id),
        "R" | "ED" | "RP" => Type::Prim(Remove),
        "D" | "DT" | "DTM" => Type::Prim(Date),
        "TS" => Type::Composite(TS_FIELD),
        "B" => Type::Composite(&[S(&[BirthDate, Keep])]),
        "N" | "PN" | "FN" => Type::Prim(Name),
        "CO" => Type::Prim(County),
        "XPN" => Type::Composite(XPN),
        "XCN" => Type::Composite(XCN),
        "PPN" => Type::Composite(PPN),
        "CN" | "CNN" => Type::Composite(CN),
        "CX" => Type::Composite(CX),
        "EI" => Type::Composite(EI),
        "EIP" => Type::Composite(EIP),
        "XAD" | "AD" => Type::Composite(XAD),
        "XTN" | "TN" => Type::Composite(XTN),
        "XON" => Type::Composite(XON),
        "XONE" => Type::Composite(XON_EMPLOYER),
        "HF" => Type::Composite(HD_FACILITY),
        "HD" => Type::Prim(Keep),
        "PL" => Type::Composite(PL),
        "LA2" => Type::Composite(LA2),
        "DLN" => Type::Composite(DLN),
        "DR" => Type::Composite(DR),
        "TQ" => Type::Composite(TQ),
        "NDL" => Type::Composite(NDL),
        _ => return None,
    })
}

/// The OBX-5 type for an OBX-2 value type: text types to the detector, attachments removed,
/// dates as dates, codes and numbers kept, person/address/phone types by their roles; an
/// unknown or missing value type is free text.
pub fn obx5(value_type: &str) -> (Type, bool) {
    match value_type.trim() {
        "TX" | "FT" | "ST" => (Type::Prim(Text), true),
        "ED" | "RP" => (Type::Prim(Remove), true),
        "DT" | "DTM" | "TS" => (Type::Composite(TS_FIELD), true),
        "NM" | "CE" | "CWE" | "CNE" | "SN" | "NR" | "CQ" | "MO" | "CP" | "TM" | "ID" | "IS"
        | "CF" | "NA" | "MA" => (Type::Prim(Code), true),
        t @ ("XPN" | "XCN" | "CX" | "EI" | "XAD" | "AD" | "XTN" | "TN" | "XON" | "PN" | "DR"
        | "PL" | "CN") => (by_code(t).unwrap_or(Type::Prim(Text)), true),
        _ => (Type::Prim(Text), false),
    }
}

/// The PHI-bearing (and the plainly coded) fields of v2.3–2.8 segments: `SEG n:TYPE ...`.
/// Fields not listed are uncovered: free text through the detector, reported as uncovered.
pub const TABLE: &str = "
MSH 3:HF 4:HF 5:HF 6:HF 7:TS 8:K 9:K 10:I 11:K 12:K 13:K 14:K 15:K 16:K 17:K 18:K 19:K 20:K 21:K 22:XON 23:XON 24:HF 25:HF
FHS 3:HF 4:HF 5:HF 6:HF 7:TS 8:K 9:I 10:T 11:I 12:I
BHS 3:HF 4:HF 5:HF 6:HF 7:TS 8:K 9:I 10:T 11:I 12:I
BTS 1:K 2:T 3:K
FTS 1:K 2:T
MSA 1:K 2:I 3:T 4:K 5:K 6:K 7:K 8:K
ERR 1:K 2:K 3:K 4:K 5:K 6:K 7:T 8:T 9:K 10:K 11:K 12:XTN
SFT 1:XON 2:K 3:K 4:K 5:K 6:TS
UAC 1:K 2:R
EVN 1:K 2:TS 3:TS 4:K 5:XCN 6:TS 7:HF 8:K
PID 1:K 2:CX 3:CX 4:CX 5:XPN 6:XPN 7:B 8:K 9:XPN 10:K 11:XAD 12:CO 13:XTN 14:XTN 15:K 16:K 17:K 18:CX 19:R 20:DLN 21:CX 22:K 23:R 24:K 25:K 26:K 27:K 28:K 29:TS 30:K 31:K 32:K 33:TS 34:HF 35:K 36:K 37:T 38:K 39:K 40:XTN 41:K 42:K
PD1 1:K 2:K 3:XON 4:XCN 5:K 6:K 7:K 8:K 9:K 10:CX 11:K 12:K 13:D 14:XON 15:K 16:K 17:D 18:D 19:D 20:K 21:K 22:K
NK1 1:K 2:XPN 3:K 4:XAD 5:XTN 6:XTN 7:K 8:D 9:D 10:K 11:K 12:CX 13:XONE 14:K 15:K 16:B 17:K 18:K 19:K 20:K 21:K 22:K 23:K 24:K 25:K 26:XPN 27:K 28:K 29:K 30:XPN 31:XTN 32:XAD 33:CX 34:K 35:K 36:K 37:R 38:T 39:K 40:XTN 41:XTN
PV1 1:K 2:K 3:PL 4:K 5:CX 6:PL 7:XCN 8:XCN 9:XCN 10:K 11:PL 12:K 13:K 14:K 15:K 16:K 17:XCN 18:K 19:CX 20:K 21:K 22:K 23:K 24:K 25:D 26:K 27:K 28:K 29:K 30:D 31:K 32:K 33:K 34:K 35:D 36:K 37:K 38:K 39:K 40:K 41:K 42:PL 43:PL 44:TS 45:TS 46:K 47:K 48:K 49:K 50:CX 51:K 52:XCN 53:CX 54:CX
PV2 1:PL 2:K 3:C 4:K 5:T 6:T 7:K 8:TS 9:TS 10:K 11:K 12:T 13:XCN 14:K 15:K 16:K 17:D 18:K 19:K 20:K 21:K 22:K 23:XON 24:K 25:K 26:D 27:K 28:D 29:D 30:K 31:K 32:K 33:TS 34:K 35:K 36:K 37:K 38:K 39:K 40:K 41:K 42:K 43:K 44:K 45:K 46:D 47:TS 48:K 49:K 50:K
PV3 1:K 2:K 3:K 4:K 5:K 6:K
MRG 1:CX 2:CX 3:CX 4:CX 5:CX 6:CX 7:XPN
DB1 1:K 2:K 3:CX 4:K 5:D 6:D
PDA 1:K 2:PL 3:K 4:TS 5:XCN 6:K 7:DR 8:XCN 9:K
GT1 1:K 2:CX 3:XPN 4:XPN 5:XAD 6:XTN 7:XTN 8:B 9:K 10:K 11:K 12:R 13:D 14:D 15:K 16:XPN 17:XAD 18:XTN 19:CX 20:K 21:XONE 22:K 23:K 24:D 25:K 26:K 27:K 28:K 29:CX 30:K 31:D 32:D 33:K 34:K 35:K 36:K 37:K 38:K 39:K 40:K 41:K 42:XPN 43:K 44:K 45:XPN 46:XTN 47:K 48:CX 49:K 50:K 51:XONE 52:K 53:K 54:K 55:K 56:K 57:K
IN1 1:K 2:C 3:CX 4:XON 5:XAD 6:XPN 7:XTN 8:I 9:XONE 10:CX 11:XONE 12:D 13:D 14:K 15:C 16:XPN 17:K 18:B 19:XAD 20:K 21:K 22:K 23:K 24:K 25:K 26:D 27:K 28:I 29:TS 30:XCN 31:K 32:K 33:K 34:K 35:K 36:I 37:K 38:K 39:K 40:K 41:K 42:K 43:K 44:XAD 45:K 46:I 47:K 48:K 49:CX 50:K 51:D 52:T 53:K 54:K 55:K
IN2 1:CX 2:R 3:XCN 4:K 5:K 6:I 7:XPN 8:I 9:XPN 10:I 11:K 12:T 13:T 14:K 15:K 16:K 17:D 18:K 19:K 20:K 21:K 22:XPN 23:K 24:K 25:CX 26:CX 27:K 28:K 29:K 30:K 31:K 32:K 33:K 34:K 35:K 36:K 37:K 38:K 39:K 40:XPN 41:K 42:K 43:K 44:D 45:D 46:K 47:K 48:K 49:XPN 50:XTN 51:K 52:XPN 53:XTN 54:K 55:D 56:D 57:K 58:XTN 59:K 60:K 61:CX 62:K 63:XTN 64:XTN 65:K 66:K 67:K 68:K 69:XON 70:XONE 71:K 72:K
IN3 1:K 2:CX 3:XCN 4:K 5:K 6:TS 7:TS 8:XCN 9:D 10:D 11:K 12:K 13:D 14:K 15:K 16:K 17:K 18:K 19:XCN 20:K 21:K 22:K 23:K 24:K 25:XCN 26:K 27:K 28:XTN
ACC 1:TS 2:K 3:R 4:K 5:K 6:K 7:XCN 8:T 9:K 10:K 11:XAD 12:K
UB1 1:K 2:K 3:K 4:K 5:K 6:K 7:K 8:K 9:K 10:K 11:K 12:K 13:K 14:K 15:K 16:D 17:K 18:K 19:K 20:K 21:K 22:K 23:K
DG1 1:K 2:K 3:C 4:T 5:TS 6:C 7:K 8:K 9:K 10:K 11:K 12:K 13:K 14:K 15:K 16:XCN 17:K 18:K 19:TS 20:EI 21:C 22:EI 23:EI 24:K 25:K 26:K
DRG 1:C 2:TS 3:K 4:C 5:K 6:K 7:K 8:K 9:K 10:K 11:K
PR1 1:K 2:K 3:C 4:T 5:TS 6:C 7:K 8:XCN 9:K 10:K 11:XCN 12:XCN 13:K 14:K 15:K 16:C 17:K 18:K 19:EI 20:K 21:TS 22:EI 23:K 24:K 25:K
AL1 1:K 2:C 3:C 4:C 5:T 6:D
IAM 1:K 2:C 3:C 4:C 5:T 6:C 7:EI 8:T 9:C 10:C 11:D 12:TS 13:T 14:TS 15:XPN 16:C 17:C 18:XCN 19:XON 20:TS
ROL 1:EI 2:K 3:K 4:XCN 5:TS 6:TS 7:K 8:K 9:K 10:K 11:XAD 12:XTN 13:PL 14:XON
PRT 1:EI 2:K 3:K 4:K 5:XCN 6:K 7:K 8:XON 9:PL 10:EI 11:TS 12:TS 13:K 14:XAD 15:XTN 16:EI 17:K 18:K 19:K 20:K 21:K
PRD 1:K 2:XPN 3:XAD 4:PL 5:XTN 6:K 7:I 8:TS 9:TS 10:XON 11:XAD 12:PL 13:XTN 14:K 15:K 16:K
CTD 1:K 2:XPN 3:XAD 4:PL 5:XTN 6:K 7:I
RF1 1:K 2:K 3:K 4:K 5:K 6:EI 7:TS 8:TS 9:TS 10:K 11:EI 12:K 13:K 14:T 15:K 16:K 17:K 18:K 19:XON 20:XCN 21:K 22:K 23:K 24:T 25:K
ARV 1:K 2:K 3:K 4:K 5:T 6:DR 7:K
CON 1:K 2:K 3:K 4:EI 5:K 6:K 7:K 8:K 9:K 10:T 11:T 12:T 13:T 14:K 15:K 16:K 17:K 18:TS 19:TS 20:TS 21:TS 22:TS 23:K 24:XPN 25:K 26:K 27:K 28:K 29:K 30:XPN 31:K 32:K 33:K 34:XPN 35:K 36:K 37:K 38:K 39:K 40:K 41:K 42:K
ORC 1:K 2:EI 3:EI 4:EI 5:K 6:K 7:TQ 8:EIP 9:TS 10:XCN 11:XCN 12:XCN 13:PL 14:XTN 15:TS 16:C 17:K 18:K 19:XCN 20:K 21:XON 22:XAD 23:XTN 24:XAD 25:K 26:K 27:TS 28:K 29:K 30:K 31:K 32:D 33:EI 34:K 35:K 36:K 37:K 38:K
OBR 1:K 2:EI 3:EI 4:C 5:K 6:TS 7:TS 8:TS 9:K 10:XCN 11:K 12:K 13:T 14:TS 15:C 16:XCN 17:XTN 18:I 19:I 20:I 21:I 22:TS 23:K 24:K 25:K 26:K 27:TQ 28:XCN 29:EIP 30:K 31:C 32:NDL 33:NDL 34:NDL 35:NDL 36:TS 37:K 38:K 39:K 40:K 41:K 42:K 43:K 44:C 45:C 46:C 47:K 48:K 49:K 50:K 51:EI 52:K 53:EI 54:EI 55:K
OBX 1:K 2:K 3:C 4:K 6:C 7:C 8:C 9:K 10:K 11:K 12:TS 13:T 14:TS 15:K 16:XCN 17:C 18:EI 19:TS 20:K 21:EI 22:K 23:XON 24:XAD 25:XCN 26:K 27:K 28:K 29:K 30:K 31:K 32:K 33:K
NTE 1:K 2:K 3:T 4:K 5:XCN 6:TS 7:TS 8:TS 9:K
TQ1 1:K 2:K 3:K 4:K 5:K 6:K 7:TS 8:TS 9:K 10:T 11:T 12:K 13:K 14:K
TQ2 1:K 2:K 3:K 4:K 5:K 6:K 7:K 8:K 9:K 10:K
SPM 1:K 2:EIP 3:EIP 4:C 5:C 6:C 7:C 8:C 9:K 10:C 11:C 12:C 13:K 14:T 15:K 16:C 17:DR 18:TS 19:TS 20:C 21:C 22:C 23:C 24:C 25:C 26:C 27:C 28:C 29:C 30:EI 31:EI 32:K 33:K 34:K 35:K
SAC 1:EI 2:EI 3:EI 4:EI 5:EI 6:C 7:TS 8:K 9:K 10:EI 11:EI
CTI 1:EI 2:K 3:K 4:K
TXA 1:K 2:C 3:C 4:TS 5:XCN 6:TS 7:TS 8:TS 9:XCN 10:XCN 11:XCN 12:EI 13:EI 14:EIP 15:EIP 16:I 17:C 18:C 19:C 20:C 21:C 22:PPN 23:XCN 24:K 25:TS 26:K 27:K 28:K 29:K
SCH 1:EI 2:EI 3:K 4:EI 5:K 6:K 7:K 8:K 9:K 10:K 11:TQ 12:XCN 13:XTN 14:XAD 15:PL 16:XCN 17:XTN 18:XAD 19:PL 20:XCN 21:XTN 22:PL 23:EI 24:EI 25:K 26:EI 27:EI
RGS 1:K 2:K 3:K
AIS 1:K 2:K 3:C 4:TS 5:K 6:K 7:K 8:K 9:K 10:K 11:K 12:K 13:K 14:K
AIG 1:K 2:K 3:C 4:C 5:K 6:K 7:K 8:TS 9:K 10:K 11:K 12:K 13:K 14:K
AIL 1:K 2:K 3:PL 4:C 5:K 6:TS 7:K 8:K 9:K 10:K 11:K 12:K
AIP 1:K 2:K 3:XCN 4:C 5:K 6:TS 7:K 8:K 9:K 10:K 11:K 12:K
RXO 1:C 2:C 3:C 4:C 5:C 6:C 7:C 8:LA2 9:C 10:C 11:C 12:K 13:K 14:XCN 15:XCN 16:K 17:K 18:K 19:K 20:K 21:K 22:K 23:K 24:K 25:K 26:K 27:K 28:K 29:K 30:XAD 31:XTN 32:XAD
RXE 1:TQ 2:C 3:C 4:C 5:C 6:C 7:C 8:LA2 9:K 10:C 11:C 12:K 13:XCN 14:XCN 15:I 16:K 17:K 18:TS 19:K 20:K 21:T 22:K 23:K 24:K 25:C 26:C 27:C 28:K 29:K 30:K 31:K 32:TS 33:K 34:K 35:K 36:K 37:K 38:K 39:K 40:XAD 41:XTN 42:XAD 43:K 44:K
RXD 1:K 2:C 3:TS 4:C 5:C 6:C 7:I 8:K 9:T 10:XCN 11:K 12:C 13:LA2 14:K 15:K 16:TS 17:K 18:K 19:K 20:K 21:K 22:K 23:K 24:K 25:K 26:K 27:K 28:K 29:K 30:XAD 31:XTN 32:XAD 33:K
RXA 1:K 2:K 3:TS 4:TS 5:C 6:C 7:C 8:K 9:C 10:XCN 11:LA2 12:K 13:K 14:K 15:K 16:TS 17:K 18:K 19:C 20:C 21:K 22:TS 23:K 24:K 25:K 26:K 27:PL 28:XAD
RXR 1:C 2:C 3:C 4:C 5:C 6:C
RXC 1:C 2:C 3:C 4:C 5:C 6:C 7:C 8:C 9:C
RXG 1:K 2:K 3:TQ 4:K 5:K 6:K 7:K 8:K 9:T 10:K 11:LA2 12:K 13:K 14:K 15:K 16:K 17:K 18:K 19:TS
FT1 1:K 2:I 3:I 4:DR 5:TS 6:K 7:C 8:C 9:K 10:K 11:C 12:C 13:K 14:K 15:K 16:PL 17:K 18:C 19:C 20:XCN 21:XCN 22:K 23:EI 24:XCN 25:C 26:C 27:C 28:K 29:C 30:K 31:K
PRB 1:K 2:TS 3:C 4:EI 5:EI 6:K 7:TS 8:TS 9:TS 10:C 11:C 12:C 13:C 14:K 15:TS 16:TS 17:K 18:K 19:K 20:K 21:K 22:K 23:K 24:K 25:K 26:K
VAR 1:EI 2:TS 3:TS 4:XCN 5:K 6:T
GOL 1:K 2:TS 3:C 4:EI 5:EI 6:K 7:TS 8:TS 9:K 10:K 11:TS 12:C 13:TS 14:K 15:K 16:K 17:K 18:K 19:K 20:K 21:K 22:K
QRD 1:TS 2:K 3:K 4:I 5:K 6:K 7:K 8:XCN 9:K 10:K 11:K 12:K
QAK 1:I 2:K 3:K 4:K 5:K 6:K
QPD 1:K 2:I
RCP 1:K 2:K 3:K
DSP 1:K 2:K 3:T 4:K 5:K
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_lists_every_role_a_type_answers() {
        let codes = TABLE
            .split_whitespace()
            .filter_map(|w| w.split_once(':').map(|(_, t)| t));
        for code in codes {
            let ty = by_code(code);
            assert!(ty.is_some(), "unknown type {code}");
            let Some(ty) = ty else { continue };
            let roles = ty.roles();
            for comp in 1..=40 {
                for sub in 1..=12 {
                    let r = ty.role(comp, sub);
                    assert!(
                        roles.contains(&r),
                        "{code} {comp}.{sub}: {r:?} not in {roles:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn roles_of_common_types() {
        let xpn = by_code("XPN").unwrap();
        assert_eq!(xpn.role(1, 1), Name);
        assert_eq!(xpn.role(7, 1), Keep);
        assert_eq!(by_code("CWE").unwrap().role(1, 1), Code);
        assert_eq!(xpn.role(10, 2), Date);
        let xad = by_code("XAD").unwrap();
        assert_eq!(xad.role(1, 2), Street);
        assert_eq!(xad.role(5, 1), Zip);
        assert_eq!(xad.role(4, 1), Keep);
        assert_eq!(xad.role(40, 1), Text);
        assert_eq!(by_code("CX").unwrap().role(1, 1), Id);
        assert_eq!(by_code("ST").unwrap().role(3, 2), Text);
        assert_eq!(obx5("ED").0.role(5, 1), Remove);
        assert!(!obx5("ZZ").1);
    }

    #[test]
    fn every_table_type_is_known() {
        for line in TABLE.lines().filter(|l| !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let seg = words.next().unwrap();
            assert_eq!(seg.len(), 3, "{seg}");
            for w in words {
                let (n, t) = w.split_once(':').unwrap();
                assert!(n.parse::<u16>().unwrap() >= 1, "{seg} {w}");
                assert!(by_code(t).is_some(), "{seg} {w}");
            }
        }
    }
}
