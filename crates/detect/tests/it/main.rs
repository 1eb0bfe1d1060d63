#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Integration tests of the detector: each recognizer with positive and negative cases,
//! Unicode offsets, and the span invariants.

use phiguard_detect::{Category, CharIndex, Detector, Lang, Span};

fn detector() -> &'static Detector {
    use std::sync::OnceLock;
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(Detector::new)
}

/// The (category, text) pairs found in `text`.
fn found(text: &str, lang: Option<Lang>) -> Vec<(Category, String)> {
    detector()
        .detect_lang(text, lang)
        .iter()
        .map(|s| (s.category, text[s.start..s.end].to_string()))
        .collect()
}

/// True if some span covers `needle` completely.
fn covers(text: &str, needle: &str, lang: Option<Lang>) -> bool {
    let at = text.find(needle).expect("needle in text");
    let end = at + needle.len();
    detector()
        .detect_lang(text, lang)
        .iter()
        .any(|s| s.start <= at && s.end >= end)
}

/// True if no span touches `needle`.
fn untouched(text: &str, needle: &str, lang: Option<Lang>) -> bool {
    let at = text.find(needle).expect("needle in text");
    let end = at + needle.len();
    !detector()
        .detect_lang(text, lang)
        .iter()
        .any(|s| s.start < end && s.end > at)
}

#[test]
fn dates_in_written_forms() {
    for (text, date) in [
        ("Seen on 03/14/2021 for follow-up.", "03/14/2021"),
        (
            "Admitted 2021-03-14T08:30:00 to ICU.",
            "2021-03-14T08:30:00",
        ),
        ("Surgery on March 5th, 2021 went well.", "March 5th, 2021"),
        ("Seen Jan 9th '23 in clinic.", "Jan 9th '23"),
        ("Discharged in May 2021.", "May 2021"),
        ("Visit on 3/14 was cancelled.", "3/14"),
        (
            "Ingreso el 5 de marzo de 2019 en planta.",
            "5 de marzo de 2019",
        ),
        ("Aufnahme am 19.3. und Entlassung am 7.5.2029.", "7.5.2029"),
        ("Aufnahme am 19.3. und Entlassung.", "19.3."),
        ("Seen on the 5th of March by the team.", "5th of March"),
        // a hyphen joins a day, a month name and a year
        (
            "El 30-marzo-2004 se inició la diálisis peritoneal.",
            "30-marzo-2004",
        ),
        (
            "En tratamiento desde diciembre-2002, por IRC.",
            "diciembre-2002",
        ),
        (
            "En diciembre-08 nuevo episodio de hemorragia.",
            "diciembre-08",
        ),
        ("Seen in March-2021 for follow-up.", "March-2021"),
        (
            "En enero del año 2001 se practicó una laparotomía.",
            "enero del año 2001",
        ),
    ] {
        assert!(covers(text, date, None), "{text}: {:?}", found(text, None));
    }
    // the hyphen must join both sides
    for (text, kept) in [
        ("Tomó marzo - 30 comprimidos en total.", "30"),
        ("Lote 20 -marzo- 2004 sin incidencias.", "2004"),
    ] {
        assert!(
            untouched(text, kept, Some(Lang::Es)),
            "{text}: {:?}",
            found(text, Some(Lang::Es))
        );
    }
}

#[test]
fn numbers_that_are_not_dates_stay() {
    for (text, keep) in [
        ("Pain 5/10 on the scale.", "5/10"),
        ("BP 120/80 mmHg at rest.", "120/80"),
        ("Hb 13.7 g/dl, plaquetas 150.000/mm3.", "150.000"),
        ("Take 1/2 tablet twice daily.", "1/2"),
        ("Dose of 2000 mg daily.", "2000"),
    ] {
        assert!(
            untouched(text, keep, None),
            "{text}: {:?}",
            found(text, None)
        );
    }
}

#[test]
fn ages_over_89_but_not_younger() {
    assert!(covers("A 92 yo woman with CHF.", "92", None));
    assert!(covers("A ninety-one-year-old man.", "ninety-one", None));
    assert!(covers(
        "Paciente de 91 años con disnea.",
        "91 años",
        Some(Lang::Es)
    ));
    assert!(untouched("A 34-year-old woman with CHF.", "34", None));
    assert!(untouched("A 70 yo man.", "70", None));
    // Spanish "y" is "and", not "years"
    assert!(untouched(
        "cocientes de 1,04, 0,92 y 0,13",
        "92",
        Some(Lang::Es)
    ));
}

#[test]
fn contact_details() {
    let text = "Call (555) 678-1234 or +46 (0)8 928 571 38, mail jane.doe@example.com, \
                see https://www.example.org/path or host 192.168.1.1 and fe80::1ff:fe23:4567:890a.";
    let f = found(text, None);
    assert!(
        f.contains(&(Category::Phone, "(555) 678-1234".into())),
        "{f:?}"
    );
    assert!(covers(text, "46 (0)8 928 571 38", None), "{f:?}");
    assert!(
        f.contains(&(Category::Email, "jane.doe@example.com".into())),
        "{f:?}"
    );
    assert!(
        f.contains(&(Category::Url, "https://www.example.org/path".into())),
        "{f:?}"
    );
    assert!(f.contains(&(Category::Ip, "192.168.1.1".into())), "{f:?}");
    assert!(covers(text, "fe80::1ff:fe23:4567:890a", None), "{f:?}");
    // not an IP: octets above 255
    assert!(untouched(
        "version 300.1.2.999 released",
        "300.1.2.999",
        None
    ));
}

#[test]
fn identifiers_with_context() {
    let f = found(
        "SSN 123-45-6789, MRN: RV123456, Insurance ID: HMO-67890, acct 9876543210.",
        None,
    );
    assert!(f.contains(&(Category::Ssn, "123-45-6789".into())), "{f:?}");
    assert!(
        f.iter()
            .any(|(c, t)| *c == Category::Mrn && t.contains("RV123456")),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|(c, t)| *c == Category::HealthPlan && t.contains("HMO-67890")),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|(c, t)| *c == Category::Account && t == "9876543210"),
        "{f:?}"
    );
    assert!(covers("NHC: 368503.", "368503", Some(Lang::Es)));
    assert!(covers("MRN 12345 on file", "12345", None));
    // short numbers without context stay; medical codes stay
    assert!(untouched("Given 3 doses of 40 units.", "40", None));
    assert!(untouched(
        "COVID-19 and IL-6 levels, ICD-10 code.",
        "COVID",
        None
    ));
}

#[test]
fn names_with_titles_initials_and_dictionaries() {
    let text = "Seen by Dr. Clara Bennett, then referred to John S. and Robert Smith.";
    assert!(
        covers(text, "Dr. Clara Bennett", None),
        "{:?}",
        found(text, None)
    );
    assert!(covers(text, "John S.", None), "{:?}", found(text, None));
    assert!(
        covers(text, "Robert Smith", None),
        "{:?}",
        found(text, None)
    );
    // honorifics mark a name but are not part of the span
    let text = "Mr. James Miller came in.";
    assert!(covers(text, "James Miller", None));
    assert!(untouched(text, "Mr", None), "{:?}", found(text, None));
}

#[test]
fn accented_and_foreign_names() {
    let text = "Nombre: Ernesto. Apellidos: Rivera Bueno. Médico: Ignacio Navarro Cuéllar.";
    assert!(
        covers(text, "Ignacio Navarro Cuéllar", Some(Lang::Es)),
        "{:?}",
        found(text, Some(Lang::Es))
    );
    let text = "Wir berichten über Ihre Patientin Beate Albers, die sich bei uns befand. Frau Albers ist stabil.";
    let f = found(text, Some(Lang::De));
    assert_eq!(
        f.iter().filter(|(c, _)| *c == Category::Name).count(),
        2,
        "{f:?}"
    );
}

#[test]
fn a_title_marks_a_surname_that_is_also_a_word() {
    let text = "Frau Brückner wohnt hier. Dr. Christian Schwach unterschreibt.";
    let f = found(text, Some(Lang::De));
    assert!(covers(text, "Brückner", Some(Lang::De)), "{f:?}");
    assert!(covers(text, "Christian Schwach", Some(Lang::De)), "{f:?}");
    // but an ordinary capitalised noun with no title stays
    assert!(untouched(
        "Die Leber ist unauffällig.",
        "Leber",
        Some(Lang::De)
    ));
}

#[test]
fn english_constructions_that_take_a_person() {
    for (text, name) in [
        ("Vsevolod: \"Who are you?\"", "Vsevolod"),
        ("It was a done thing between him and Asya's kid.", "Asya"),
        ("Don't go to town, Derrick!", "Derrick"),
        ("Unlike the Petersson novel, it is short.", "Petersson"),
        ("Gerth had given Gerth his address.", "Gerth"),
    ] {
        assert!(
            covers(text, name, Some(Lang::En)),
            "{text}: {:?}",
            found(text, Some(Lang::En))
        );
    }
    // but not ordinary words in the same places
    assert!(untouched(
        "Let's go to the store, shall we?",
        "store",
        Some(Lang::En)
    ));
    assert!(untouched(
        "Unlike the previous novel, it is short.",
        "previous",
        Some(Lang::En)
    ));
}

#[test]
fn medical_terms_are_not_names() {
    for (text, keep) in [
        ("History of Parkinson's disease and COPD, HTN.", "Parkinson"),
        ("Positive Babinski sign on the left.", "Babinski"),
        ("Enfermedad de Crohn en remisión.", "Crohn"),
        ("Pt w/ HTN & COPD on metformin.", "COPD"),
    ] {
        assert!(
            untouched(text, keep, None),
            "{text}: {:?}",
            found(text, None)
        );
    }
}

#[test]
fn places_and_addresses() {
    let text =
        "Lives at 2450 Crown St, Sacramento, CA 95814 and was treated at UCLA Medical Center.";
    let f = found(text, None);
    assert!(covers(text, "2450 Crown St", None), "{f:?}");
    assert!(covers(text, "Sacramento", None), "{f:?}");
    assert!(covers(text, "CA", None), "{f:?}");
    assert!(covers(text, "95814", None), "{f:?}");
    assert!(covers(text, "UCLA Medical Center", None), "{f:?}");
    assert!(covers(
        "Domicilio: Calle Miguel Benitez 90. CP: 28016.",
        "Calle Miguel Benitez 90",
        Some(Lang::Es)
    ));
    assert!(covers(
        "Wohnhaft Kantstraße 21 in Berlin.",
        "Kantstraße 21",
        Some(Lang::De)
    ));
    assert!(covers(
        "Send to P.O. Box 149, Apt. 485.",
        "P.O. Box 149",
        None
    ));
}

#[test]
fn german_letter_addresses_titles_and_birth_lines() {
    let de = Some(Lang::De);
    for (text, needle) in [
        // streets named after people, and place adjectives before the street word
        (
            "Die Patientin wohnt in der Karl-Marx-Allee 90 in Berlin.",
            "Karl-Marx-Allee 90",
        ),
        (
            "Praxis: Robert-Koch-Str. 17, 80333 München.",
            "Robert-Koch-Str. 17",
        ),
        (
            "Herrn\nDr. Anton Weber\nMünchner Straße 12\n80331 München",
            "Münchner Straße 12",
        ),
        (
            "Sie wohnt seit Jahren im Brunnenkamp 7 bei ihrer Tochter.",
            "Brunnenkamp 7",
        ),
        // Austrian and German title chains, and a first name that is also a month
        (
            "Mit freundlichen Grüßen\n\nPriv.-Doz. Jan Brösel\n",
            "Jan Brösel",
        ),
        (
            "Klinikvorstand: Prim. Dr. mult. Ottokar Zwiebelmeier\n",
            "Ottokar Zwiebelmeier",
        ),
        (
            "Assistenz: DGKS Roswitha Trummerl\nIndikation: Kontrolle",
            "Roswitha Trummerl",
        ),
        (
            "Mit freundlichen Grüßen\n\nDr.a med. univ. Leopoldine Krautsieder\n",
            "Leopoldine Krautsieder",
        ),
        // a name before a birth marker, known to no dictionary
        (
            "Wir berichten über\nWaltraud Gschwandtner, geb. am 4.5.1950, wohnhaft in Graz.",
            "Waltraud Gschwandtner",
        ),
        (
            "Arztbrief\n\nKunibert Zäpfel * 13.09.1955\n",
            "Kunibert Zäpfel",
        ),
    ] {
        assert!(covers(text, needle, de), "{text}: {:?}", found(text, de));
    }
    // the German titles are German only, and months stay months
    assert!(untouched(
        "Labs: Mag 2.0, K 4.1, Na 139.",
        "Mag",
        Some(Lang::En)
    ));
    assert!(untouched(
        "May I ask about the rash?",
        "May",
        Some(Lang::En)
    ));
    assert!(
        found("Seen on Jan. 5, 2020 in clinic.", Some(Lang::En))
            .iter()
            .all(|(c, _)| *c == Category::Date)
    );
}

#[test]
fn spanish_titles_stay_out_of_names_and_contact_labels_end_them() {
    let es = Some(Lang::Es);
    // The person is named after the title (MEDDOCAN's convention); the title stays in the text.
    for (text, name) in [
        (
            "Remitido por la Dra. Marta Ortega Villalba para valoración.",
            "Marta Ortega Villalba",
        ),
        (
            "Correspondencia: Dr. Luis Moyano Calvo. Servicio de Urología.",
            "Luis Moyano Calvo",
        ),
    ] {
        let spans = found(text, es);
        assert!(
            spans.iter().any(|(c, s)| *c == Category::Name && s == name),
            "{text}: {spans:?}"
        );
        assert!(untouched(text, "Dr", es), "{text}: {spans:?}");
    }
    // A contact label after a name is not part of it.
    let text = "Autor para correspondencia: Gustavo Emilio Muro Toledo Correo electrónico: g@x.es";
    assert!(
        covers(text, "Gustavo Emilio Muro Toledo", es),
        "{:?}",
        found(text, es)
    );
    assert!(untouched(text, "Correo", es), "{:?}", found(text, es));
}

#[test]
fn spanish_streets_before_a_postcode_are_addresses() {
    for (text, street) in [
        (
            "Responsable clínico: Dra. Lucía Pérez Gil. Las Palmeras, 22. 41010 Sevilla.",
            "Las Palmeras, 22",
        ),
        (
            "Servicio de Cardiología. Hospital del Valle. Río Tajo, s/n - 45004 Toledo",
            "Río Tajo, s/n",
        ),
        (
            "Remitido por: Dr. Pablo Ruiz. Hermanos Machado, 7, 2º B. 28002 Madrid",
            "Hermanos Machado, 7, 2º B",
        ),
    ] {
        assert!(
            covers(text, street, Some(Lang::Es)),
            "{text}: {:?}",
            found(text, Some(Lang::Es))
        );
    }
    // a number before five digits that are not a place's postcode is not a street
    let text = "Glucosa, 110. 41010 muestras analizadas en el laboratorio.";
    assert!(
        untouched(text, "Glucosa", Some(Lang::Es)),
        "{:?}",
        found(text, Some(Lang::Es))
    );
}

#[test]
fn labelled_form_fields_are_taken_whole() {
    let es = Some(Lang::Es);
    // An address label's value is the rest of the line, whatever its words ("Ramón y Cajal",
    // floor and door); closing punctuation stays out.
    let text = "Nombre: Carmen.\nApellidos: Pose Diaz.\nDomicilio: Calle Ramón y Cajal, 3, 4 D.\n\
                Localidad/ Provincia: Santa Cruz de Tenerife.\nCP: 38003.\n";
    let spans = found(text, es);
    for (cat, value) in [
        (Category::Location, "Calle Ramón y Cajal, 3, 4 D"),
        (Category::Location, "Santa Cruz de Tenerife"),
        (Category::Name, "Pose Diaz"),
        (Category::Name, "Carmen"),
    ] {
        assert!(
            spans.iter().any(|(c, s)| *c == cat && s == value),
            "{value}: {spans:?}"
        );
    }
    // A name label's value stops at a number or a mark that is not part of a name; English and
    // German labels too, and a label's comma is the value's.
    let text = "Name: Konstantin Tupolev, * 21.06.67\nName, Vorname: Müller, Hans\n";
    assert!(covers(text, "Konstantin Tupolev", Some(Lang::De)));
    assert!(covers(text, "Müller, Hans", Some(Lang::De)));
    assert!(
        !found(text, Some(Lang::De))
            .iter()
            .any(|(c, s)| *c == Category::Name && s.contains("21")),
        "{:?}",
        found(text, Some(Lang::De))
    );
    // A value de-identified already keeps what the first run left (a second run changes
    // nothing).
    let text = "Domicilio: [LOCATION]: 430.\nNombre: [NAME].\n";
    assert!(found(text, es).is_empty(), "{:?}", found(text, es));
    // Not a label at the start of a line, not a known label, or prose after a heading: no.
    for (text, word) in [
        ("Se revisó el domicilio: Estable y sin cambios.", "Estable"),
        ("Diagnóstico: Insuficiencia cardiaca.", "Insuficiencia"),
        (
            "Domicilio: el paciente vive solo desde hace años y refiere que no tiene familia \
             cercana ni apoyo social de ninguna clase en la ciudad\n",
            "refiere",
        ),
    ] {
        assert!(untouched(text, word, es), "{text}: {:?}", found(text, es));
    }
}

#[test]
fn spanish_names_after_a_title_or_label_run_to_the_second_surname() {
    let es = Some(Lang::Es);
    // The second surname is an ordinary word ("grasa", "melón", "arriba"), or comes after a
    // capitalised particle; a department or contact word after the name ends it.
    for (text, name, after) in [
        (
            "Médico: Ivan Olano Grasa  NºCol: 40 40 59720.",
            "Ivan Olano Grasa",
            "NºCol",
        ),
        (
            "Responsable clínico: Cristina Pérez Melón, Servicio de Nefrología.",
            "Cristina Pérez Melón",
            "Servicio",
        ),
        (
            "Remitido por: Dr. Gabriel de Arriba, Sección de Nefrología.",
            "Gabriel de Arriba",
            "Sección",
        ),
        (
            "Remitido por: Dr. Sergio De la Cruz Reyes. Jefatura Cirugía Plástica.",
            "Sergio De la Cruz Reyes",
            "Jefatura",
        ),
        (
            "Responsable clínico: Dra. Carmen Gómez Candela Unidad de Nutrición.",
            "Carmen Gómez Candela",
            "Unidad",
        ),
    ] {
        let spans = found(text, es);
        assert!(
            spans.iter().any(|(c, s)| *c == Category::Name && s == name),
            "{text}: {spans:?}"
        );
        assert!(untouched(text, after, es), "{text}: {spans:?}");
    }
    // A department before or after the hospital it is in names no place; the hospital does.
    // The "E" of "E-mail" after an address is not part of it.
    let text = "Remitido por: Dr. Jorge Planelles Gómez Servicio de Urología Hospital Universitario \
                La Paz. Avenida de la Castellana, 261, 28046 Madrid (España) E-mail: j@x.es";
    let spans = found(text, es);
    assert!(
        covers(text, "Hospital Universitario La Paz", es),
        "{spans:?}"
    );
    for word in ["Servicio", "Urología", "E-mail"] {
        assert!(untouched(text, word, es), "{word}: {spans:?}");
    }
    assert!(covers(text, "Madrid (España)", es), "{spans:?}");
    let text = "Hospital Universitario de Getafe Servicio de Endocrinología y Nutrición.";
    assert!(covers(text, "Hospital Universitario de Getafe", es));
    assert!(
        untouched(text, "Endocrinología", es),
        "{:?}",
        found(text, es)
    );
    // Without a title or a label an ordinary word after a name is not taken.
    let text = "Juan Pérez Grasa abdominal sin cambios.";
    assert!(untouched(text, "abdominal", es), "{:?}", found(text, es));
}

#[test]
fn clinical_words_scores_and_measurements_are_not_phi() {
    let de = Some(Lang::De);
    // Abbreviations that look like English honorifics, anatomical nouns that are also given
    // names or surnames, and hyphenated eponyms of tests and formulas.
    for (text, word) in [
        ("Im MR Schädel zeigt sich keine Blutung.", "Schädel"),
        ("EKG: Normofrequenter SR. Keine Pausen.", "Keine"),
        ("QRS 174 ms \nWeiteres Vorgehen nach Befund.", "Weiteres"),
        ("Die Vena lienalis ist verschlossen.", "Vena"),
        ("Im distalen Colon sigmoideum eine Stenose.", "Colon"),
        ("Spiegelbildungen im Colon asc. in Seitenlage.", "Colon"),
        ("Befund: Wade weich, keine Schwellung.", "Wade"),
        (
            "Im Unterberger-Tretversuch ungezielte Fallneigung.",
            "Unterberger",
        ),
        ("Infusion nach der Baxter-Parklandformel.", "Baxter"),
    ] {
        assert!(untouched(text, word, de), "{text}: {:?}", found(text, de));
    }
    // A surname found with its title is found again, but not as an organ or in an eponym.
    let text = "Befund von Dr. Leber und Dr. Barthel. Leber: GOT erhöht. Barthel-Index 80. \
                Rückruf durch Leber.";
    let spans = found(text, de);
    let leber: Vec<_> = spans.iter().filter(|(_, s)| s.contains("Leber")).collect();
    assert_eq!(leber.len(), 1, "{spans:?}");
    assert!(untouched(text, "Barthel-Index", de), "{spans:?}");
    // Dosing schedules and blood counts are measurements; a real identifier still is one.
    for text in [
        "Pantozol 40 1-0-0, Risperdal 1 mg 1/2-0-1/2, Laevolac 0-0-0-2/3, Novalgin 500 1-1-1-1",
        "Thrombo 234500, Leukozyten: 12700, plaquetas 291000",
        "Voltaren 100 0- 0 -1 bei Schmerzen. Diff.-Blutbild unauffällig, 219000 Thrombo.",
        // diagnosis codes, rates with their unit, ranges of motion, times, reference ranges
        "Borderline-Typus (ICD 10: F60.31), Chondromalazie rechts (M94.26)",
        "EEG: 10-11/Sek. Herzfrequenz um 100-120/min, Leukozyten 6.400/µl",
        "Mobilisierung beschwerdeadaptiert (0-10-60). Messung um 12:14:02 (AT Zeit).",
        "Werte normoton (120/80). Glucosa 92 mg/dl (60-100), LDH 310 UI/L (210-420).",
    ] {
        let spans = found(text, de);
        assert!(
            spans.iter().all(|(c, _)| !matches!(
                c,
                Category::OtherId | Category::Phone | Category::Account
            )),
            "{text}: {spans:?}"
        );
    }
    // Scores, scales and titres written "a/b" are not dates, down a list too; a date is one.
    let es = Some(Lang::Es);
    for text in [
        "Test de Apgar fue 3/10, 4/10 y 8/10 a los 1, 10 y 20 minutos.",
        "Dolor de intensidad variable (EVA 2/10, 3/10, 7/10 y 1/10).",
        "Estudio inmunológico: ANA: 1/40 (80), IgG: positiva 1/64, Glasgow 6/15.",
    ] {
        let spans = found(text, es);
        assert!(spans.is_empty(), "{text}: {spans:?}");
    }
    // Eponyms of techniques, anatomy and tests are not places; a town is one.
    for (text, word) in [
        ("Líquido libre en el fondo de saco de Douglas.", "Douglas"),
        ("Mutación factor V de Leiden negativa.", "Leiden"),
        ("Pieloplastia según técnica de Anderson-Hynes.", "Anderson"),
        (
            "Remitido al Servicio de Cirugía Oral y Maxilofacial.",
            "Oral",
        ),
    ] {
        assert!(untouched(text, word, es), "{text}: {:?}", found(text, es));
    }
    // Nor people: eponyms after a clinical noun, organisms, and names headed by a clinical
    // term.
    for (text, word) in [
        ("Serología virus de Epstein Barr (VEB) negativa.", "Barr"),
        ("Esófago de Barrett de segmento corto.", "Barrett"),
        ("Se diagnosticó síndrome de Tolosa-Hunt.", "Hunt"),
        ("Síndrome de Miller Fisher.", "Fisher"),
        ("Atrofia vellositaria (grado 3c de Marsh).", "Marsh"),
        ("Crecimiento de Candida albicans en el cultivo.", "Candida"),
        ("Se realiza Tomografía Axial Computerizada (TAC).", "Axial"),
        ("Ingresó con Glasgow Coma Scale de 6 puntos.", "Coma"),
        ("Test de Coombs directo negativo.", "Coombs"),
        (
            "Se inició tratamiento médico con Clindamicina y Amikacina.",
            "Clindamicina",
        ),
        ("Fue remitido a Oncología con el diagnóstico.", "Oncología"),
        (
            "Se le prescribe a la paciente Durogesic® 100 μg/h.",
            "Durogesic",
        ),
        (
            "Implantes de forma anatómica (Mentor®, Johnson & Johnson).",
            "Mentor",
        ),
        ("Crecieron en Agar Columbia y Agar Chocolate.", "Agar"),
        (
            "Determinación de ANCAs, ANAs y PCR; madre IgG 113,7 UI/ml.",
            "ANCAs",
        ),
    ] {
        assert!(untouched(text, word, es), "{text}: {:?}", found(text, es));
    }
    let text = "Responsable clínico: Dr. Ángel Salgado Rubiales Oncología Médica";
    let spans = found(text, es);
    assert!(
        covers(text, "Ángel Salgado Rubiales", es) && untouched(text, "Oncología", es),
        "{spans:?}"
    );
    let text = "Fecha de ingreso: 22/09/2014.\nMédico: Mendieta Espinosa.\nInforme clínico.";
    assert!(
        covers(text, "Mendieta Espinosa", es),
        "{:?}",
        found(text, es)
    );
    let text = "Remitido por el Dr. Luis Barrett Fisher al servicio.";
    assert!(
        covers(text, "Luis Barrett Fisher", es),
        "{:?}",
        found(text, es)
    );
    let text = "Hospital Virgen de las Nieves, Granada.";
    assert!(covers(text, "Granada", es), "{:?}", found(text, es));
    // A value left after a redaction tag by an earlier run stays (de-identifying twice changes
    // nothing): "Humphrey 30/2" and "Child Pugh: 5/15" once their names became tags.
    for text in [
        "Perimetría [NAME] 30/2 blanco-blanco.",
        "Estadio A de Child [NAME]: 5/15.",
    ] {
        let spans = found(text, es);
        assert!(spans.is_empty(), "{text}: {spans:?}");
    }
    let text = "Ingresó el 12/03/2019 con dolor. Control: 14/03.";
    assert!(
        covers(text, "12/03/2019", es) && covers(text, "14/03", es),
        "{:?}",
        found(text, es)
    );
    assert!(covers("Fallnummer: 1234567", "1234567", de));
    assert!(covers("Patienten-ID: F60.31", "F60.31", de));
    assert!(
        covers("Kennung 48213-0-77 im System", "48213-0-77", de),
        "{:?}",
        found("Kennung 48213-0-77 im System", de)
    );
    // A department named after its specialty says where in a hospital, not which one; a
    // hospital with its town still is a place.
    for (text, dept) in [
        (
            "Kontrolle in der Gedächtnisambulanz am Montag.",
            "Gedächtnisambulanz",
        ),
        (
            "Klinik für Ophthalmologie\nKlinikvorstand: Prof. Huber",
            "Ophthalmologie",
        ),
        ("KLINIK FÜR ONKOLOGIE\n\nMünchen, am 17.8.2033", "ONKOLOGIE"),
    ] {
        assert!(untouched(text, dept, de), "{text}: {:?}", found(text, de));
    }
    let text = "Verlegung in das Universitätsklinikum Innsbruck, Klinik für Neurologie.";
    assert!(covers(text, "Innsbruck", de), "{:?}", found(text, de));
    // In their own case they are honorifics still.
    let text = "Mr. Keller wurde aufgenommen.";
    assert!(covers(text, "Keller", de), "{:?}", found(text, de));
}

#[test]
fn spanish_address_tails_and_lower_case_streets() {
    let es = Some(Lang::Es);
    for (text, needle) in [
        (
            "Domicilio: calle monforte de lemos 129, 8C.\nLocalidad: Lugo",
            "calle monforte de lemos 129, 8C",
        ),
        (
            "Domicilio: avenida san francisco 13, 2A.\nCP: 11001",
            "avenida san francisco 13, 2A",
        ),
        (
            "Hospital Comarcal, Avda. de los Olmos s/n. 06080 Badajoz.",
            "Avda. de los Olmos s/n",
        ),
        (
            "Hospital Comarcal, Camino de Ronda, s/n, 18012 Granada.",
            "Camino de Ronda, s/n",
        ),
        (
            "Domicilio: C/ Alonso de Quesada, 6, Bajo A.\nLocalidad: Jaén",
            "Alonso de Quesada, 6, Bajo A",
        ),
        (
            "Domicilio: Av. del Pinar, 34, 3, B.\nLocalidad: Soria",
            "Av. del Pinar, 34, 3, B",
        ),
    ] {
        assert!(covers(text, needle, es), "{text}: {:?}", found(text, es));
    }
    // a given name alone as the subject of a narrative verb
    let text = "Historia actual: Tomás presenta fiebre de tres días de evolución.";
    assert!(covers(text, "Tomás", es), "{:?}", found(text, es));
    assert!(untouched(
        "El paciente presenta fiebre de tres días.",
        "paciente",
        es
    ));
    // a doctor's surnames before the department are the doctor's, not the facility's
    let text =
        "Remitido por: Dr. Tomás Ferreiro Lago Servicio de Urología Hospital Comarcal de Soria";
    let f = found(text, es);
    assert!(
        f.iter()
            .any(|(c, s)| *c == Category::Name && s.ends_with("Tomás Ferreiro Lago")),
        "{f:?}"
    );
    // and the department is not the hospital's name (it names no place)
    assert!(
        f.iter()
            .any(|(c, s)| *c == Category::Location && s == "Hospital Comarcal de Soria"),
        "{f:?}"
    );
    assert!(untouched(text, "Servicio de Urología", es), "{f:?}");
    // clinical phrases with a street word and a number, and a sentence after an address
    for (text, word) in [
        (
            "Se pautó ciprofloxacino por vía oral durante 48 horas.",
            "oral",
        ),
        (
            "Mejoría a lo largo de los primeros 3 meses de seguimiento.",
            "primeros",
        ),
        (
            "Reside en Calle Mayor 5. A los 3 días acudió de nuevo.",
            "los",
        ),
        ("Reside en Calle Mayor 5, Madrid E-mail: no consta.", "mail"),
        ("La AV era de 0,6 en el ojo derecho.", "era"),
    ] {
        assert!(untouched(text, word, es), "{text}: {:?}", found(text, es));
    }
}

#[test]
fn unicode_offsets_stay_on_char_boundaries() {
    let text = "Paciente Sánchez Müller (東京) nació el 03/03/1946 en Málaga, tel 93 416 97 00 😀.";
    let spans = detector().detect_lang(text, Some(Lang::Es));
    assert!(!spans.is_empty());
    let idx = CharIndex::new(text);
    for s in &spans {
        assert!(
            text.is_char_boundary(s.start) && text.is_char_boundary(s.end),
            "{s:?}"
        );
        let (a, b) = (idx.char_offset(s.start), idx.char_offset(s.end));
        let by_chars: String = text.chars().skip(a).take(b - a).collect();
        assert_eq!(by_chars, &text[s.start..s.end]);
    }
}

#[test]
fn spans_are_sorted_and_disjoint_on_any_input() {
    let inputs = [
        "",
        "   ",
        "(((((((",
        "1/2/3/4/5/6/7/8/9",
        "Dr. Dr. Dr.",
        "+++(((0)))---",
        "a@b@c.d@e",
        "ÄÖÜ äöü ß ẞ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u{301}\u{301}",
        "123 456 789 012 345 678 901 234 567 890",
    ];
    for text in inputs {
        let spans: Vec<Span> = detector().detect(text);
        for w in spans.windows(2) {
            assert!(w[0].end <= w[1].start, "{text:?}: {spans:?}");
        }
        for s in &spans {
            assert!(s.start < s.end && s.end <= text.len());
            assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        }
    }
}

/// Every sequence of up to four pieces of addresses and dates (the shapes the Spanish address
/// and date rules walk back and forth over), in every language: spans stay well formed and
/// nothing panics at the text's edges.
#[test]
fn address_and_date_pieces_in_any_order() {
    let pieces = [
        "Dr. Ana Gil. ",
        "Domicilio: ",
        "C/ Canal de Panamá",
        "Los Alisos",
        ", 2",
        ", s/n",
        ". 28027 Madrid",
        " - ",
        "28002",
        "\n",
        "enero",
        "-2004",
        " 3º B",
    ];
    let mut text = String::new();
    let mut checked = 0;
    for n in 1..=4u32 {
        for mut k in 0..pieces.len().pow(n) {
            text.clear();
            for _ in 0..n {
                text.push_str(pieces[k % pieces.len()]);
                k /= pieces.len();
            }
            for lang in [Some(Lang::Es), Some(Lang::En), Some(Lang::De)] {
                let spans = detector().detect_lang(&text, lang);
                for w in spans.windows(2) {
                    assert!(w[0].end <= w[1].start, "{text:?}: {spans:?}");
                }
                for s in &spans {
                    assert!(s.start < s.end && s.end <= text.len(), "{text:?}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 25_000);
}

#[test]
fn measurements_and_notations_glued_to_digits_are_not_identifiers() {
    for (text, kept) in [
        ("Masa paravertebral de 65x46 mm que comprime.", "65x46"),
        ("Tumoración de 14X10X10 cm de diámetro.", "14X10X10"),
        ("Espondilodiscitis D10-D11 con absceso.", "D10-D11"),
        ("Fijación T11-T12 con tornillos.", "T11-T12"),
        ("Se administraron 5000UI de heparina.", "5000UI"),
        ("Colecalciferol 400UI/24h por vía oral.", "400UI/24h"),
        ("Proteinuria 20g/24h en la analítica.", "20g/24h"),
        ("Leucocitos 10.200/μl con neutrofilia.", "10.200/μl"),
        ("Fiebre diaria de 39º-40º sin foco.", "39º-40º"),
        ("La mutación (c.1766G > A) es patogénica.", "1766G"),
        (
            "Variante rs121912744 catalogada como patogénica.",
            "rs121912744",
        ),
    ] {
        assert!(
            untouched(text, kept, Some(Lang::Es)),
            "{text}: {:?}",
            found(text, Some(Lang::Es))
        );
    }
    // identifiers that end with a unit's letter, or carry their label, still are
    for (text, id) in [
        (
            "Paciente con documento 12345678S en el archivo.",
            "12345678S",
        ),
        ("NHC: 4521X33 del paciente.", "4521X33"),
    ] {
        assert!(
            covers(text, id, Some(Lang::Es)),
            "{text}: {:?}",
            found(text, Some(Lang::Es))
        );
    }
}

#[test]
fn redaction_tags_are_not_phi() {
    let text = "[NAME] was seen at [LOCATION] on [DATE]; MRN [MRN].";
    assert!(
        detector().detect(text).is_empty(),
        "{:?}",
        found(text, None)
    );
}

#[test]
fn language_is_guessed_per_document() {
    let d = detector();
    assert_eq!(
        d.guess_language("The patient was seen with the family."),
        Lang::En
    );
    assert_eq!(
        d.guess_language("El paciente de 70 años presenta una lesión en la mano."),
        Lang::Es
    );
    assert_eq!(
        d.guess_language("Wir berichten über die Patientin, die bei uns war und ist."),
        Lang::De
    );
}

#[test]
fn span_debug_never_prints_text() {
    let text = "John Smith";
    for s in detector().detect(text) {
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("John") && !dbg.contains("Smith"), "{dbg}");
    }
}
