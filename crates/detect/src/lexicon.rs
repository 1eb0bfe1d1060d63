//! Hand-curated word lists: titles, context words, months, facility words, units. These are
//! small closed classes of the languages we support, so they live in code, not data files.

/// Titles and honorifics that belong to a NAME span (lowercase, without the dot).
pub const TITLES: &[&str] = &[
    "dr", "dra", "drs", "mr", "mrs", "ms", "miss", "mx", "prof", "profa", "sr", "sra", "srta", "sir",
    "madam", "herr", "frau", "hr", "fr", "doctor", "doctora", "dres", "don", "doña", "pd",
    "priv", "doz", "dipl", "med", "rev", "fräulein",
];

/// Honorifics: context for a name, but not part of its span ("Mr.", "Frau", "Sra.").
pub const HONORIFICS: &[&str] = &[
    "mr", "mrs", "ms", "miss", "mx", "sir", "madam", "herr", "frau", "hr", "fr", "sr", "sra",
    "srta", "don", "doña", "fräulein", "herrn",
];

/// Function words that are never names, whatever the name lists say ("Al", "Una", "Se").
pub const FUNCTION_WORDS: &[&str] = &[
    "the", "a", "an", "and", "or", "but", "of", "in", "on", "at", "to", "for", "with", "by",
    "from", "as", "is", "was", "are", "be", "he", "she", "it", "we", "they", "his", "her", "its",
    "our", "their", "this", "that", "these", "those", "my", "your", "who", "what", "which",
    "when", "where", "how", "why", "if", "then", "than", "so", "no", "not", "all", "any",
    "some", "per", "via", "after", "before", "during", "since", "until", "while", "also",
    "al", "el", "la", "los", "las", "un", "una", "unos", "unas", "se", "de", "del", "en", "con",
    "por", "para", "y", "o", "u", "que", "su", "sus", "es", "fue", "tras", "ante", "bajo", "sin",
    "sobre", "entre", "hasta", "desde", "durante", "este", "esta", "ese", "esa", "lo", "le",
    "les", "me", "mi", "ya", "muy", "más", "mas", "pero", "como", "cuando", "donde", "tambien",
    "también", "ni", "otro", "otra", "ha", "han", "hay", "presenta", "paciente", "mar",
    "der", "die", "das", "dem", "den", "des", "ein", "eine", "einer", "eines", "einem", "und",
    "mit", "bei", "von", "vom", "zum", "zur", "im", "am", "an", "auf", "aus", "nach", "seit",
    "unter", "über", "für", "wir", "sie", "er", "es", "ich", "ihr", "ihre", "sein", "seine",
    "wird", "wurde", "ist", "war", "hat", "haben", "nicht", "auch", "noch", "bis", "oder",
];

/// Degrees and suffixes that may follow a name.
pub const NAME_SUFFIXES: &[&str] = &[
    "md", "phd", "rn", "np", "pa", "do", "dds", "jr", "sr", "ii", "iii", "iv", "esq", "mba", "msc",
];

/// Words after which a capitalised sequence is likely a person's name.
pub const NAME_CONTEXT: &[&str] = &[
    // en
    "patient", "pt", "named", "name", "mother", "father", "husband", "wife", "son", "daughter",
    "brother", "sister", "dear", "attending", "physician", "provider", "surgeon", "nurse",
    "resident", "signed", "by", "contact", "referred", "cc", "ms", "mrs", "mr", "hi", "hello",
    "thanks", "called", "friend", "spouse", "partner", "guardian", "child", "boy", "girl", "member",
    "client", "customer", "colleague", "caregiver", "employee", "manager", "pcp", "consultant",
    // es
    "paciente", "nombre", "apellidos", "apellido", "médico", "medico", "doctor", "doctora",
    "enfermera", "enfermero", "madre", "padre", "esposa", "esposo", "hijo", "hija", "firmado",
    "atentamente", "remitido", "dirigido", "contacto", "correspondencia",
    // de
    "patientin", "patienten", "herrn", "name", "vorname", "nachname", "geborene", "geb",
    "unterschrift", "arzt", "ärztin", "oberarzt", "oberärztin", "chefarzt", "chefärztin",
    "assistenzarzt", "assistenzärztin", "stationsarzt", "kollege", "kollegin", "ehemann",
    "ehefrau", "tochter", "sohn", "mutter", "vater", "gez", "grüßen",
];

/// Words after which a number is an identifier: MRN, account, plan, licence, device...
pub const ID_CONTEXT: &[(&str, crate::Category)] = {
    use crate::Category::*;
    &[
        ("mrn", Mrn), ("mr", Mrn), ("medical", Mrn), ("record", Mrn), ("chart", Mrn),
        ("nhc", Mrn), ("historia", Mrn), ("hc", Mrn), ("nhist", Mrn),
        ("ssn", Ssn), ("social", Ssn), ("dni", Ssn), ("nie", Ssn), ("nif", Ssn),
        ("id", OtherId), ("ident", OtherId), ("identifier", OtherId), ("number", OtherId),
        ("no", OtherId), ("nr", OtherId), ("nro", OtherId), ("num", OtherId), ("nº", OtherId),
        ("n", OtherId), ("case", OtherId), ("código", OtherId), ("codigo", OtherId),
        ("code", OtherId), ("ref", OtherId), ("reference", OtherId), ("nummer", OtherId),
        ("kennung", OtherId), ("fallnummer", OtherId), ("fall", OtherId), ("aufnahmenummer", OtherId),
        ("pat", OtherId), ("patientennummer", OtherId), ("episode", OtherId), ("encounter", OtherId),
        ("visit", OtherId), ("study", OtherId), ("site", OtherId), ("subject", OtherId),
        ("acct", Account), ("account", Account), ("acc", Account), ("cuenta", Account),
        ("konto", Account), ("iban", Account), ("card", Account), ("tarjeta", Account),
        ("billing", Account), ("invoice", Account), ("rechnung", Account),
        ("plan", HealthPlan), ("policy", HealthPlan), ("insurance", HealthPlan),
        ("member", HealthPlan), ("beneficiary", HealthPlan), ("medicare", HealthPlan),
        ("medicaid", HealthPlan), ("subscriber", HealthPlan), ("group", HealthPlan),
        ("nass", HealthPlan), ("sip", HealthPlan), ("tsi", HealthPlan), ("cip", HealthPlan),
        ("afiliación", HealthPlan), ("afiliacion", HealthPlan), ("seguridad", HealthPlan),
        ("aseguradora", HealthPlan), ("versichertennummer", HealthPlan), ("versicherung", HealthPlan),
        ("versicherten", HealthPlan), ("kasse", HealthPlan), ("krankenkasse", HealthPlan),
        ("license", License), ("licence", License), ("lic", License), ("dea", License),
        ("npi", License), ("col", License), ("colegiado", License), ("colegiada", License),
        ("ncol", License), ("nºcol", License), ("colegio", License), ("lanr", License), ("bsnr", License),
        ("certificate", License), ("cert", License),
        ("plate", Vehicle), ("vin", Vehicle), ("vehicle", Vehicle), ("matrícula", Vehicle),
        ("matricula", Vehicle), ("kennzeichen", Vehicle), ("license_plate", Vehicle),
        ("serial", Device), ("device", Device), ("sn", Device), ("s/n", Device), ("imei", Device),
        ("udi", Device), ("implant", Device), ("lot", Device), ("model", Device),
        ("seriennummer", Device), ("serie", Device),
        ("tel", Phone), ("tel.", Phone), ("phone", Phone), ("telephone", Phone), ("mobile", Phone),
        ("cell", Phone), ("ph", Phone), ("teléfono", Phone), ("telefono", Phone), ("tfno", Phone),
        ("móvil", Phone), ("movil", Phone), ("telefon", Phone), ("handy", Phone), ("fon", Phone),
        ("desk", Phone), ("pager", Phone), ("beeper", Phone), ("call", Phone), ("contact", Phone),
        ("fax", Fax), ("telefax", Fax),
        ("zip", Location), ("cp", Location), ("postal", Location), ("plz", Location),
    ]
};

/// Words that head a facility or organisation name.
pub const FACILITY_WORDS: &[&str] = &[
    // en
    "hospital", "hospitals", "clinic", "clinics", "medical", "center", "centre", "ctr", "med",
    "health", "healthcare", "infirmary", "hospice", "sanatorium", "institute", "university",
    "college", "memorial", "presbyterian", "methodist", "baptist", "children's", "regional",
    "general", "community", "county", "practice", "surgery", "pharmacy", "labs", "laboratory",
    "foundation", "associates", "group", "partners", "rehab", "rehabilitation", "nursing",
    "care", "system", "network", "langone", "kaiser", "permanente", "mayo", "hopkins",
    // es
    "hospitalario", "clínica", "clinica", "centro", "salud", "sanitario", "universitario",
    "complejo", "policlínica", "policlinica", "ambulatorio", "servicio", "consultorio",
    "fundación", "fundacion", "instituto", "residencia", "mutua",
    // de
    "krankenhaus", "klinik", "klinikum", "universitätsklinikum", "universitätsklinik",
    "praxis", "ambulanz", "zentrum", "kliniken", "spital", "krankenanstalt", "landeskrankenhaus",
    "stift", "diakonie", "charité", "charite", "reha", "rehaklinik", "gemeinschaftspraxis",
    "medizinische", "hochschule", "universität",
];

/// Suffixes of German compound facility names ("Diakonissenkrankenhaus").
pub const FACILITY_SUFFIXES: &[&str] = &[
    "krankenhaus", "krankenhauses", "klinik", "klinikum", "kliniken", "praxis", "zentrum",
    "spital", "krankenanstalt", "krankenanstalten", "krankenanstaltenverbund", "ambulanz",
    "hospital",
];

/// Suffixes of one-word street names in German, Nordic and Dutch ("Kantstraße", "Lyngveien").
pub const STREET_WORD_SUFFIXES: &[&str] = &[
    "straße", "strasse", "str", "weg", "gasse", "platz", "allee", "ring", "damm", "pfad", "ufer",
    "chaussee", "steig", "stieg", "graben", "markt", "wall", "katu", "tie", "vej", "veien",
    "vegen", "gatan", "gata", "vägen", "väg", "gade", "laan", "straat", "plein", "gracht", "kuja",
    "polku", "utca", "ulica", "út", "tér", "straĂźe",
];

/// Words that start a street name ("Calle Mayor", "Avenida de ...", "Via Roma").
pub const STREET_PREFIXES: &[&str] = &[
    "calle", "c", "avda", "avenida", "av", "plaza", "pza", "paseo", "pº", "carretera", "ctra",
    "camino", "ronda", "travesía", "travesia", "glorieta", "urbanización", "urbanizacion", "urb",
    "callejón", "pasaje", "bulevar", "via", "viale", "rue", "rua", "praça", "largo", "corso",
    "piazza", "avenue", "boulevard", "route", "chemin", "ulica", "ul",
];

/// Unit designators inside an address.
pub const ADDRESS_UNITS: &[&str] = &[
    "apt", "apartment", "suite", "ste", "unit", "floor", "fl", "room", "rm", "bldg", "building",
    "piso", "puerta", "planta", "portal", "escalera", "esc", "bajo", "dcha", "izda", "derecha",
    "izquierda", "km", "wohnung", "etage", "stock", "og", "eg", "box", "po", "lot",
];

/// Month names and abbreviations with their number, in en/es/de.
pub const MONTHS: &[(&str, u8)] = &[
    ("january", 1), ("jan", 1), ("february", 2), ("feb", 2), ("march", 3), ("mar", 3),
    ("april", 4), ("apr", 4), ("may", 5), ("june", 6), ("jun", 6), ("july", 7), ("jul", 7),
    ("august", 8), ("aug", 8), ("september", 9), ("sep", 9), ("sept", 9), ("october", 10),
    ("oct", 10), ("november", 11), ("nov", 11), ("december", 12), ("dec", 12),
    ("enero", 1), ("ene", 1), ("febrero", 2), ("marzo", 3), ("abril", 4), ("abr", 4),
    ("mayo", 5), ("junio", 6), ("julio", 7), ("agosto", 8), ("ago", 8), ("septiembre", 9),
    ("setiembre", 9), ("set", 9), ("octubre", 10), ("noviembre", 11), ("diciembre", 12),
    ("dic", 12), ("januar", 1), ("jänner", 1), ("jän", 1), ("februar", 2), ("märz", 3),
    ("märz", 3), ("mai", 5), ("juni", 6), ("juli", 7), ("oktober", 10), ("okt", 10),
    ("dezember", 12), ("dez", 12),
];

/// Month words that are also ordinary words, which need a number next to them.
pub const AMBIGUOUS_MONTHS: &[&str] = &[
    "may", "mar", "jun", "jan", "set", "ago", "mai", "mayo", "march", "dec", "oct", "sep", "ene",
    "dic", "abr", "jul", "aug", "nov", "dez", "okt", "juli", "juni",
];

/// Weekday names in en/es/de.
pub const WEEKDAYS: &[&str] = &[
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "lunes",
    "martes", "miércoles", "miercoles", "jueves", "viernes", "sábado", "sabado", "domingo",
    "montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag", "sonnabend",
];

/// Units and measurement words after which a number is a measurement, not an identifier.
pub const UNITS: &[&str] = &[
    "mg", "g", "kg", "mcg", "µg", "ug", "ng", "pg", "ml", "l", "dl", "cl", "cc", "mm", "cm", "m",
    "km", "mmhg", "hg", "mmol", "mol", "meq", "iu", "ui", "u", "units", "unidades", "einheiten",
    "mosm", "sec", "s", "min", "h", "hr", "hrs", "hours", "horas", "stunden", "days", "días",
    "dias", "tage", "weeks", "semanas", "wochen", "months", "meses", "monate", "years", "año",
    "años", "jahre", "jahren", "x", "bpm", "lpm", "rpm", "kcal", "cal", "plaquetas",
    "leucocitos", "células", "cells", "copies", "copias", "kopien", "gy", "mgy", "msv", "mci",
    "mbq", "hz", "khz", "mhz", "w", "kw", "mw", "v", "mv", "ma", "pulses", "mmol/l", "fl", "pct",
    "percent", "por", "veces", "times", "tabs", "tablets", "comprimidos", "cápsulas", "gotas",
    "drops", "puffs", "mm3", "µl", "ul", "ms", "µm", "um", "nm", "gr", "grs", "kilos", "litros",
];

/// Words that end a personal name as a medical eponym ("Parkinson disease").
pub const EPONYM_HEADS: &[&str] = &[
    "disease", "syndrome", "sign", "reflex", "score", "test", "criteria", "classification",
    "maneuver", "manoeuvre", "procedure", "operation", "fracture", "scale", "index", "law",
    "phenomenon", "palsy", "tumor", "tumour", "lymphoma", "sarcoma", "cell", "cells", "node",
    "nodes", "duct", "canal", "triad", "test", "operation", "stain", "repair", "incision",
    "protocol", "trial", "classification", "equation", "formula", "method", "position",
    "syndrom", "krankheit", "zeichen", "reflex", "test", "klassifikation", "fraktur",
];

/// Words before which a capitalised word is an eponym, not a person ("enfermedad de Crohn").
pub const EPONYM_PREFIXES: &[&str] = &[
    "morbus", "enfermedad", "síndrome", "sindrome", "signo", "maniobra", "escala", "test",
    "prueba", "criterios", "clasificación", "clasificacion", "técnica", "tecnica", "tumor",
    "linfoma", "sarcoma", "fractura", "índice", "indice", "método", "metodo", "operación",
    "ley", "tríada", "triada", "zeichen", "klassifikation", "enfermedades",
];

/// Connector words allowed inside a multi-word name or place.
pub const NAME_CONNECTORS: &[&str] = &[
    "de", "del", "la", "las", "los", "van", "von", "der", "den", "da", "das", "dos", "di", "du",
    "le", "y", "i", "zu", "ten", "ter", "st", "san", "santa", "bin", "ibn", "al", "el", "mc",
];

/// Prepositions that introduce a place.
pub const PLACE_PREPS: &[&str] = &[
    "at", "in", "from", "to", "near", "en", "de", "desde", "a", "aus", "nach", "im", "bei",
];

/// Endings of German place names ("Neustadt", "Wiesental", "Opfing").
pub const PLACE_SUFFIXES_DE: &[&str] = &[
    "stadt", "dorf", "burg", "berg", "hausen", "heim", "ingen", "feld", "bach", "tal", "kirchen",
    "hofen", "rode", "städt", "brück", "brücken", "furt", "stedt", "leben", "weiler", "au",
    "werder", "hagen", "born", "beck", "büttel", "ing",
];
