//! Context and dictionary recognizers: personal names, places (cities, states, countries,
//! facilities) and street addresses.

use crate::dict;
use crate::doc::Doc;
use crate::lexicon;
use crate::tokens::Kind;
use crate::{Category, Lang};

/// Flags that make a capitalised word a function word rather than a name part.
const NOT_NAME: u64 = dict::MONTH
    | dict::WEEKDAY
    | dict::TITLE
    | dict::FACILITY
    | dict::STREET_PREFIX
    | dict::ADDRESS_UNIT
    | dict::UNIT
    | dict::NAME_CTX
    | dict::ID_CTX
    | dict::EPONYM_HEAD
    | dict::EPONYM_PREFIX
    | dict::STATE_CODE;

/// Strength of token `i` as part of a personal name: 0 not a part, 1 weak, 2 strong.
fn name_strength(doc: &Doc, i: usize) -> u8 {
    name_strength_in(doc, i, doc.lang != Lang::De)
}

/// `unknown_ok`: whether a capitalised word found in no dictionary may be a name part (not in
/// German without a title, where every noun is capitalised).
fn name_strength_in(doc: &Doc, i: usize, unknown_ok: bool) -> u8 {
    let t = doc.toks[i];
    if t.kind != Kind::Word || !t.cap {
        return 0;
    }
    let f = doc.f(i);
    if f & dict::FUNCTION != 0 {
        return 0;
    }
    let is_name = f & (dict::FIRST | dict::LAST) != 0;
    if !is_name && !t.upper && not_a_name_shape(doc.s(i)) {
        return 0;
    }
    // "Jan", "April", "June" are first names too, before a surname or after a title, when no
    // day or period follows ("Priv.-Doz. Jan Biedermann"; "Jan. 5", "June 2020" and "May I"
    // stay what they were)
    let f = if f & dict::MONTH != 0 && f & dict::FIRST != 0 && month_as_given_name(doc, i) {
        f & !dict::MONTH
    } else {
        f
    };
    if t.upper && (t.len() <= 3 || !(is_name || unknown_ok && doc.lang == Lang::De)) {
        return 0; // acronyms
    }
    if f & NOT_NAME != 0
        && !(is_name
            && f & (dict::MONTH
                | dict::TITLE
                | dict::FACILITY
                | dict::NAME_CTX
                | dict::ID_CTX
                | dict::STATE_CODE)
                == 0)
    {
        return 0;
    }
    let common = f & doc.common_mask != 0 || f & dict::MEDICAL != 0 && f & dict::FIRST == 0;
    if t.upper {
        return 1;
    }
    if is_name {
        if common { 1 } else { 2 }
    } else if f & dict::MEDICAL != 0 && f & doc.common_mask == 0 {
        1 // eponyms are surnames too ("Amanda Alzheimer"); the eponym rules decide
    } else if common || f & (dict::CITY | dict::COUNTRY | dict::STATE) != 0 {
        0
    } else if t.len() >= 2 && unknown_ok {
        1 // unknown capitalised word
    } else {
        0
    }
}

/// Capitalised words whose shape says they are not a name: plural acronyms ("ANAs", "ANCAs"),
/// immunoglobulin classes ("IgE", "IgG") and medical specialties ("Nefrología", "Oncology",
/// "Psychiatrie").
#[inline]
fn not_a_name_shape(w: &str) -> bool {
    let b = w.as_bytes();
    // dispatch on the last byte: this runs for every capitalised word outside the name lists
    match b.last() {
        Some(b's') => b.len() >= 3 && b[..b.len() - 1].iter().all(u8::is_ascii_uppercase),
        Some(b'a' | b'e' | b'y') => {
            b.len() > 7
                && [
                    "logía", "logia", "logie", "ology", "iatría", "iatria", "iatrie", "iatry",
                ]
                .iter()
                .any(|s| w.ends_with(s))
        }
        Some(c) => b.len() == 3 && b.starts_with(b"Ig") && c.is_ascii_uppercase(),
        None => false,
    }
}

/// A single capital letter used as an initial ("J." or "J").
fn is_initial(doc: &Doc, i: usize) -> bool {
    let t = doc.toks[i];
    // one char of at most three bytes (a one-byte token is one ASCII char)
    t.kind == Kind::Word && t.cap && (t.len() == 1 || t.len() <= 3 && doc.s(i).chars().count() == 1)
}

/// Token `i`, a given name that is also a month, stands as a given name: a surname follows or a
/// title precedes, and no period or day number is next to it. Out of line: it is rare, and
/// `name_strength_in`, which asks, is hot.
#[cold]
#[inline(never)]
fn month_as_given_name(doc: &Doc, i: usize) -> bool {
    let n = doc.toks.len();
    let surname_next = i + 1 < n
        && doc.toks[i + 1].kind == Kind::Word
        && doc.toks[i + 1].cap
        && doc.toks[i + 1].len() >= 2
        && !doc.toks[i + 1].newline_before
        && doc.f(i + 1) & (dict::FUNCTION | dict::MONTH | dict::WEEKDAY) == 0;
    let after_title = i >= 1 && doc.has(i - 1, dict::TITLE)
        || i >= 2 && doc.is_punct(i - 1, '.') && doc.has(i - 2, dict::TITLE);
    (surname_next || after_title)
        && !(i + 1 < n && (doc.is_punct(i + 1, '.') || doc.toks[i + 1].has_digit()))
        && !(i >= 1 && doc.toks[i - 1].has_digit())
}

/// Token `i` is one of the German and Austrian titles of `lexicon::TITLES_DE`, in a German
/// document.
#[inline]
fn german_title(doc: &Doc, i: usize) -> bool {
    // the cheap tests first: this runs for every token of a document
    doc.lang == Lang::De && doc.toks[i].kind == Kind::Word && doc.toks[i].len() <= 8 && {
        let w = doc.s(i);
        lexicon::TITLES_DE.iter().any(|t| w.eq_ignore_ascii_case(t))
    }
}

fn is_title(doc: &Doc, i: usize) -> bool {
    if i >= doc.toks.len() {
        return false;
    }
    let w = doc.s(i);
    // Austrian and German titles ("Prim.", "Mag.", "DDr.", "DGKS", "Drª") in German text only
    if !(german_title(doc, i)
        || doc.has(i, dict::TITLE) && (doc.toks[i].cap || doc.lang != Lang::En))
    {
        return false;
    }
    // English and Spanish honorifics in German text only as written for a person ("Mr.",
    // "Sra."): in capitals or lower case they are German clinical abbreviations ("MR" for
    // Magnetresonanz, "SR" for Sinusrhythmus, "MS" for multiple Sklerose, "ms" for milliseconds)
    if doc.lang == Lang::De
        && (!doc.toks[i].cap || doc.toks[i].upper)
        && lexicon::FOREIGN_HONORIFICS_DE
            .iter()
            .any(|t| w.eq_ignore_ascii_case(t))
    {
        return false;
    }
    // "Univ." starts a title only before another one: "Univ.-Prof.", "o.Univ. Prof."
    if w.eq_ignore_ascii_case("univ") {
        let mut q = i + 1;
        while q < doc.toks.len()
            && doc.toks[q].kind == Kind::Punct
            && matches!(doc.toks[q].ch, '.' | '-')
        {
            q += 1;
        }
        if q < doc.toks.len() && doc.has(q, dict::TITLE) && !doc.s(q).eq_ignore_ascii_case("univ") {
            return true;
        }
    }
    // "med.", "Dipl.", "Doz.", "univ.", "mult." only continue a title: "Dr. med.",
    // "Priv.-Doz.", "Dr. med. univ.", "Dr. mult."
    if [
        "med", "dipl", "doz", "priv", "univ", "univer", "univers", "mult",
    ]
    .iter()
    .any(|c| w.eq_ignore_ascii_case(c))
    {
        let mut p = i;
        while p >= 1
            && doc.toks[p - 1].kind == Kind::Punct
            && matches!(doc.toks[p - 1].ch, '.' | '-')
        {
            p -= 1;
        }
        // "Dr.a med.": the Austrian feminine ending between the title and its continuation
        if p >= 3
            && doc.s(p - 1) == "a"
            && doc.is_punct(p - 2, '.')
            && doc.s(p - 3).eq_ignore_ascii_case("dr")
        {
            p -= 2;
        }
        return p >= 1
            && p < i + 1
            && (doc.has(p - 1, dict::TITLE) || german_title(doc, p - 1))
            && (!doc.s(p - 1).eq_ignore_ascii_case("med")
                || ["univ", "univer", "univers"]
                    .iter()
                    .any(|u| w.eq_ignore_ascii_case(u)));
    }
    true
}

/// Labelled form fields at the start of a line ("Domicilio: Calle Ramón y Cajal, 3, 4 D.",
/// "Localidad/ Provincia: Santa Cruz de Tenerife.", "Apellidos: Pose Diaz."): the value of an
/// address label (`lexicon::ADDRESS_LABELS`) is the rest of the line, whatever its words; the
/// value of a name label (`lexicon::NAME_LABELS`) runs over words, initials, hyphens and
/// apostrophes to the first number or other mark. Closing punctuation is left out.
pub fn labelled_fields(doc: &mut Doc) {
    let n = doc.toks.len();
    let mut label = String::new();
    let mut buf = dict::LowerBuf::default();
    // From each ":" back to the start of its line (most texts have few).
    for at in memchr::memchr_iter(b':', doc.text.as_bytes()) {
        let j = doc.tok_at(at);
        if j >= n || !doc.is_punct(j, ':') || doc.toks[j].newline_before {
            continue;
        }
        // The label: up to eight words, "/", "," or "'" starting the line.
        let mut i = j;
        while i > 0
            && j - i < 8
            && !doc.toks[i].newline_before
            && (doc.toks[i - 1].kind == Kind::Word
                || doc.toks[i - 1].kind == Kind::Punct
                    && matches!(doc.toks[i - 1].ch, '/' | ',' | '\''))
        {
            i -= 1;
        }
        if i == j || !(i == 0 || doc.toks[i].newline_before) || doc.toks[i].kind != Kind::Word {
            continue;
        }
        label.clear();
        for u in i..j {
            if doc.toks[u].kind == Kind::Word {
                if !label.is_empty() && !label.ends_with(['/', ',']) {
                    label.push(' ');
                }
                label.push_str(dict::lower(doc.s(u), &mut buf));
            } else {
                label.push(doc.toks[u].ch);
            }
        }
        let address = lexicon::ADDRESS_LABELS.contains(&label.as_str());
        if !address && !lexicon::NAME_LABELS.contains(&label.as_str()) {
            continue;
        }
        let first = j + 1;
        if first >= n || doc.toks[first].newline_before {
            continue;
        }
        // "Name, Vorname: Müller, Hans": the label's comma is the value's too.
        let comma = label.contains(',');
        let mut last = first;
        while last + 1 < n && !doc.toks[last + 1].newline_before {
            let u = doc.toks[last + 1];
            let in_name = u.kind == Kind::Word
                || u.kind == Kind::Punct && matches!(u.ch, '.' | '-' | '\'' | '\u{2019}')
                || comma && u.is_punct(',');
            if !address && !in_name {
                break;
            }
            last += 1;
        }
        if !address && doc.toks[first].kind != Kind::Word {
            continue;
        }
        while last > first
            && doc.toks[last].kind == Kind::Punct
            && matches!(
                doc.toks[last].ch,
                '.' | ',' | ';' | ':' | '-' | '\'' | '\u{2019}'
            )
        {
            last -= 1;
        }
        // A form field's value is short; a long run is prose after a heading. A value holding
        // a redaction tag was de-identified already: what is left of it stays as it was.
        if last - first >= 16
            || doc.toks[last].kind == Kind::Punct
            || (first..=last).any(|k| doc.is_punct(k, '[') && is_tag(doc, k + 1))
        {
            continue;
        }
        let category = if address {
            Category::Location
        } else {
            Category::Name
        };
        doc.push_toks(first, last, category, 0.9, "label.field");
    }
}

/// Personal names: titles, dictionaries, initials, context words, then every other mention of
/// a found surname in the same document.
pub fn names(doc: &mut Doc) {
    let n = doc.toks.len();
    let es = matches!(doc.lang, Lang::Es);
    let mut i = 0;
    while i < n {
        if doc.claimed[i] {
            i += 1;
            continue;
        }
        // titles: "Dr.", "Prof. Dr. med.", "Frau", "Sra."
        let mut a = i;
        let mut k = i;
        let mut titled = false;
        let mut first_academic = None;
        while k < n && is_title(doc, k) {
            titled = true;
            if first_academic.is_none() && !doc.has(k, dict::HONORIFIC) {
                first_academic = Some(k);
            }
            k += 1;
            if doc.is_punct(k, '.') {
                k += 1;
                // the Austrian feminine "Dr.a", "Dr.a."
                if k < n
                    && doc.lang == Lang::De
                    && doc.s(k) == "a"
                    && !doc.toks[k].space_before
                    && k >= 2
                    && doc.s(k - 2).eq_ignore_ascii_case("dr")
                {
                    k += 1;
                    if doc.is_punct(k, '.') {
                        k += 1;
                    }
                }
            }
        }
        if titled && (k >= n || doc.toks[k].newline_before && k > a + 2) {
            i = k.max(i + 1);
            continue;
        }
        // the name parts
        let start = k;
        let mut parts = 0u32;
        let mut strength = 0u32;
        let mut strong_first = false;
        let mut dict_parts = 0u32;
        let mut first_is_first = false;
        let mut last = None;

        // "Huberta Hotzenplotz, geb. am 3.6.1942", "Helmfried Koenig * 13.09.1955": the words
        // before a birth marker are a person's name, known or not
        let born = !titled && doc.lang == Lang::De && before_birth_marker(doc, k);
        // A Spanish name after a title or a person's label ("Médico:", "Remitido por:") runs
        // to its second surname, an ordinary word or not ("Dr. Ivan Olano Grasa", "Cristina
        // Pérez Melón"), through particles, capitalised or not ("Gabriel de Arriba", "Sergio
        // De la Cruz Reyes"). Asked once, when a word needs it.
        // (One such word per name, `surname_left`: a name has two surnames, and what follows
        // a long one is more often a department or an address.)
        let mut full_es: Option<bool> = None;
        let mut surname_left = es;
        let mut full_es_at =
            |doc: &Doc| *full_es.get_or_insert_with(|| es && (titled || name_context(doc, start)));
        let mut j = k;
        while j < n {
            if j > start && doc.toks[j].newline_before {
                break;
            }
            if es && parts > 0 && doc.toks[j].cap && after_name_es(doc, j) {
                break;
            }
            if doc.claimed[j] {
                break;
            }
            let mut s = name_strength_in(doc, j, titled || born || doc.lang != Lang::De);
            // right after a title any capitalised word is the name ("Frau Brückner", a surname
            // that is also a frequent word)
            if s == 0
                && titled
                && parts == 0
                && j == start
                && doc.toks[j].kind == Kind::Word
                && doc.toks[j].cap
                && doc.toks[j].len() >= 3
                && doc.f(j) & (dict::FUNCTION | NOT_NAME | dict::MEDICAL) == 0
            {
                s = 1;
            }
            // (the context search last: it is the only costly test)
            if s == 0
                && parts >= 1
                && j >= 1
                && doc.has(j - 1, dict::FIRST)
                && last == Some(j.saturating_sub(1))
                && doc.toks[j].kind == Kind::Word
                && doc.toks[j].cap
                && doc.toks[j].len() >= 3
                && doc.f(j) & (dict::FUNCTION | NOT_NAME) == 0
                && (strong_first || titled || name_context(doc, k))
            {
                s = 1; // "Christian Schwach", "Iris Klumpfuß"
            }
            if s > 0 {
                if doc.has(j, dict::FIRST | dict::LAST) && !doc.toks[j].upper {
                    dict_parts += 1;
                    if parts == 0 && doc.has(j, dict::FIRST) {
                        first_is_first = true;
                    }
                }
                parts += 1;
                strength += u32::from(s);
                if s == 2 && doc.has(j, dict::FIRST) {
                    strong_first = true;
                }
                last = Some(j);
                j += 1;
                // O'Brien, Müller-Lüdenscheidt
                if j + 1 < n
                    && (doc.is_punct(j, '-') || doc.is_punct(j, '\''))
                    && !doc.toks[j].space_before
                    && !doc.toks[j + 1].space_before
                    && doc.toks[j + 1].cap
                    && doc.toks[j + 1].kind == Kind::Word
                {
                    last = Some(j + 1);
                    j += 2;
                }
                continue;
            }
            if is_initial(doc, j)
                && (parts > 0
                    || titled
                    || j + 1 < n
                        && (doc.is_punct(j + 1, '.')
                            || name_strength_in(doc, j + 1, titled || doc.lang != Lang::De) > 0))
            {
                parts += 1;
                strength += 1;
                last = Some(j);
                j += 1;
                if doc.is_punct(j, '.') {
                    last = Some(j);
                    j += 1;
                }
                continue;
            }
            if surname_left
                && parts >= 2
                && last == Some(j - 1)
                && surname_word(doc, j, false)
                && full_es_at(doc)
            {
                surname_left = false;
                parts += 1;
                strength += 1;
                last = Some(j);
                j += 1;
                continue;
            }
            if (parts > 0 || titled)
                && doc.has(j, dict::CONNECTOR)
                && (!doc.toks[j].cap
                    || parts > 0 && matches!(doc.s(j), "De" | "Del") && full_es_at(doc))
            {
                // one or two particles, then a name part: "van de Noort", "de la Torre"
                let mut m = j + 1;
                if m < n && doc.has(m, dict::CONNECTOR) && !doc.toks[m].cap {
                    m += 1;
                }
                if m < n
                    && !doc.toks[m].newline_before
                    && name_strength_in(doc, m, titled || doc.lang != Lang::De) > 0
                {
                    j = m;
                    continue;
                }
                if surname_left
                    && m < n
                    && parts > 0
                    && surname_word(doc, m, true)
                    && full_es_at(doc)
                {
                    surname_left = false;
                    parts += 1;
                    strength += 1;
                    last = Some(m);
                    j = m + 1;
                    continue;
                }
            }
            break;
        }
        let Some(end) = last else {
            i = k.max(i + 1);
            continue;
        };
        // An academic title is part of the name in English and German usage ("Dr. med. Karl
        // Huber" is how he is named); Spanish clinical text names the person after it, as the
        // MEDDOCAN guidelines annotate ("Dr. [Luis Moyano]"), so the title stays in the text.
        if titled && doc.lang != Lang::Es {
            a = first_academic.unwrap_or(start);
        } else {
            a = start;
        }
        // a given name alone as the subject of a narrative verb: "Miguel presenta anorexia",
        // "Flora wurde aufgenommen" (such names are often in the common-word lists)
        let subject = doc.lang != Lang::En
            && end == start
            && doc.has(start, dict::FIRST)
            && !doc.toks[start].upper
            && end + 1 < n
            && !doc.toks[end + 1].newline_before
            && lexicon::NARRATIVE_VERBS_ES_DE.contains(&doc.s(end + 1));
        let word_parts = (start..=end)
            .filter(|&x| doc.toks[x].kind == Kind::Word && doc.toks[x].len() > 1)
            .count();
        // (`born`: `before_birth_marker` held at `start`, which is `k`)
        let ctx = subject
            || name_context(doc, start)
            || born && word_parts >= 2
            || doc.lang == Lang::En
                && end + 1 < n
                && end == start
                && doc.has(end + 1, dict::NAME_FOLLOW)
                && !doc.toks[end + 1].cap
                && !doc.common(start);
        // a clinical term heads it ("Tomografía Axial Computerizada", "Carcinoma Escamoso
        // Queratinizante", "Glasgow Coma Scale"): a name of a test or disease, not a person
        let clinical_head = !titled
            && !ctx
            && end > start
            && (doc.has(start, dict::MEDICAL) && !doc.has(start, dict::FIRST)
                || doc.has(start, dict::EPONYM_PREFIX)
                || doc.has(end, dict::EPONYM_HEAD));
        let eponym = clinical_head
            || brand_before(doc, end + 1)
            || eponym_around(doc, start, end)
            || eponym_compound(doc, start, end);
        let accept = !eponym
            && (titled
                || strength >= 3 && word_parts >= 1 && (strong_first || word_parts >= 2 || ctx)
                || ctx && strength >= 1 && word_parts >= 1
                || first_is_first
                    && parts >= 2
                    && (dict_parts >= 2 || doc.is_punct(end, '.') || is_initial(doc, end))
                || word_parts >= 2
                    && dict_parts >= 1
                    && strength >= 2
                    && !starts_sentence(doc, start)
                || word_parts >= 2
                    && parts as usize == (start..=end).filter(|&x| doc.toks[x].cap).count()
                    && doc.lang == Lang::En
                    && (start..=end).all(|x| {
                        doc.toks[x].kind == Kind::Word
                            && (doc.toks[x].cap
                                || matches!(
                                    doc.s(x),
                                    "van"
                                        | "von"
                                        | "de"
                                        | "der"
                                        | "den"
                                        | "du"
                                        | "da"
                                        | "dos"
                                        | "del"
                                        | "la"
                                        | "le"
                                        | "ten"
                                        | "ter"
                                ))
                    })
                || strong_first && word_parts == 1 && parts == 1);
        if accept && (word_parts >= 1 || titled && parts >= 1 && doc.is_punct(end, '.')) {
            let mut e = end;
            // trailing degrees: "MD", ", MD"
            if e + 1 < n && doc.has(e + 1, dict::NAME_SUFFIX) && doc.toks[e + 1].upper {
                e += 1;
            } else if e + 2 < n
                && doc.is_punct(e + 1, ',')
                && doc.has(e + 2, dict::NAME_SUFFIX)
                && doc.toks[e + 2].upper
            {
                e += 2;
            }
            let conf = if titled || strength >= 4 {
                0.9
            } else if strength >= 3 {
                0.8
            } else {
                0.6
            };
            doc.push_toks(
                a,
                e,
                Category::Name,
                conf,
                if titled {
                    "name.title"
                } else if ctx {
                    "name.context"
                } else {
                    "name.dictionary"
                },
            );
            i = e + 1;
        } else if eponym {
            // the whole eponym ("virus de Epstein Barr"), not its last word alone
            i = end + 1;
        } else {
            i = k.max(i + 1);
        }
    }
    last_comma_first(doc);
    if doc.lang == Lang::En {
        name_templates(doc);
    }
    coordinated_names(doc);
    propagate_names(doc);
}

/// Names listed with a found name: "Gaetane, Hannah, Anthony and Derek", "Usamov and Bowers".
fn coordinated_names(doc: &mut Doc) {
    let n = doc.toks.len();
    // two capitalised name-like words joined by "and", one of them a known name
    if doc.lang == Lang::En {
        for j in 1..n.saturating_sub(1) {
            if doc.s(j) != "and"
                || doc.claimed[j - 1]
                || doc.claimed[j + 1]
                || doc.toks[j + 1].newline_before
            {
                continue;
            }
            let (a, b) = (j - 1, j + 1);
            let (sa, sb) = (name_strength(doc, a), name_strength(doc, b));
            let single = |x: usize| {
                (x == 0 || doc.toks[x - 1].kind == Kind::Punct || !doc.toks[x - 1].cap)
                    && (x + 1 >= n || !doc.toks[x + 1].cap || x == a)
            };
            if sa > 0
                && sb > 0
                && (doc.has(a, dict::FIRST | dict::LAST) || doc.has(b, dict::FIRST | dict::LAST))
                && single(a)
                && (b + 1 >= n || !doc.toks[b + 1].cap)
            {
                doc.push_toks(a, a, Category::Name, 0.6, "name.pair");
                doc.push_toks(b, b, Category::Name, 0.6, "name.pair");
            }
        }
    }
    for _ in 0..3 {
        let mut added = false;
        let names: Vec<(usize, usize)> = doc
            .spans
            .iter()
            .filter(|s| s.category == Category::Name)
            .map(|s| (doc.tok_at(s.start), doc.tok_end(s.end)))
            .collect();
        for (a, b) in names {
            // right: ", X" / "and X"
            if b + 1 < n && is_list_joint(doc, b) && !doc.toks[b + 1].newline_before {
                let k = b + 1;
                if !doc.claimed[k] && name_strength(doc, k) > 0 {
                    doc.push_toks(k, k, Category::Name, 0.6, "name.list");
                    added = true;
                }
            }
            // left: "X, " / "X and "
            if a >= 2 && is_list_joint(doc, a - 1) && !doc.toks[a - 1].newline_before {
                let k = a - 2;
                if !doc.claimed[k] && name_strength(doc, k) > 0 && !doc.toks[k + 1].newline_before {
                    doc.push_toks(k, k, Category::Name, 0.6, "name.list");
                    added = true;
                }
            }
        }
        if !added {
            break;
        }
    }
}

fn is_list_joint(doc: &Doc, j: usize) -> bool {
    doc.is_punct(j, ',')
        || doc.is_punct(j, '&')
        || matches!(doc.s(j), "and" | "y" | "und" | "or" | "o" | "oder" | "e")
}

/// English constructions that only take a person: a speaker label opening a quoted line
/// ("Vsevolod: \"Who are you?\""), "the <Name> novel/film/song", "gave <Name> his address".
fn name_templates(doc: &mut Doc) {
    let n = doc.toks.len();
    for i in 0..n {
        let t = doc.toks[i];
        if doc.claimed[i] || t.kind != Kind::Word || !t.cap || t.upper || t.len() < 3 {
            continue;
        }
        let f = doc.f(i);
        if f & (dict::FUNCTION
            | dict::MONTH
            | dict::WEEKDAY
            | dict::TITLE
            | dict::NAME_CTX
            | dict::ID_CTX)
            != 0
            || f & dict::MEDICAL != 0 && f & dict::FIRST == 0
            || f & doc.common_mask != 0 && f & dict::FIRST == 0
        {
            continue;
        }
        let line_start = i == 0 || t.newline_before;
        let speaker = line_start
            && doc.is_punct(i + 1, ':')
            && (doc.is_punct(i + 2, '"') || doc.is_punct(i + 2, '\u{201c}'));
        let work = i >= 1
            && doc.s(i - 1).eq_ignore_ascii_case("the")
            && i + 1 < n
            && matches!(
                doc.s(i + 1),
                "novel"
                    | "book"
                    | "film"
                    | "movie"
                    | "song"
                    | "album"
                    | "version"
                    | "play"
                    | "poem"
                    | "painting"
                    | "family"
                    | "case"
            );
        let given = i >= 1
            && matches!(
                doc.s(i - 1),
                "given" | "gave" | "sent" | "told" | "asked" | "handed"
            )
            && i + 1 < n
            && matches!(doc.s(i + 1), "his" | "her" | "their");
        // "Asya's kid", "Misty's daughter": a possessive before a relative
        let relative = i + 3 < n
            && (doc.is_punct(i + 1, '\'') || doc.is_punct(i + 1, '\u{2019}'))
            && doc.s(i + 2) == "s"
            && matches!(
                doc.s(i + 3),
                "kid"
                    | "kids"
                    | "daughter"
                    | "son"
                    | "wife"
                    | "husband"
                    | "mother"
                    | "father"
                    | "brother"
                    | "sister"
                    | "friend"
                    | "boss"
                    | "mom"
                    | "dad"
                    | "partner"
                    | "children"
                    | "child"
                    | "parents"
                    | "grandmother"
                    | "grandfather"
            );
        // ", Derrick!": a given name addressed at the end of a clause
        let vocative = i >= 1
            && doc.is_punct(i - 1, ',')
            && doc.has(i, dict::FIRST)
            && i + 1 < n
            && (doc.is_punct(i + 1, '!') || doc.is_punct(i + 1, '?'));
        if speaker || work || given || relative || vocative {
            doc.push_toks(i, i, Category::Name, 0.75, "name.construction");
        }
    }
}

/// "SCHULZE, Bernwart" and "Clausthal, Marie": a surname, a comma and a given name.
fn last_comma_first(doc: &mut Doc) {
    let n = doc.toks.len();
    for i in 0..n.saturating_sub(2) {
        if doc.claimed[i] || doc.claimed[i + 2] || !doc.is_punct(i + 1, ',') {
            continue;
        }
        let (a, b) = (doc.toks[i], doc.toks[i + 2]);
        if a.kind != Kind::Word || b.kind != Kind::Word || !a.cap || !b.cap || b.newline_before {
            continue;
        }
        let surname = a.upper && a.len() >= 3 && !doc.has(i, dict::MEDICAL | dict::FUNCTION)
            || doc.has(i, dict::LAST) && !doc.common(i);
        let given = doc.has(i + 2, dict::FIRST)
            && !doc.has(i + 2, dict::FUNCTION)
            && !doc.toks[i + 2].upper
            && !doc.common(i + 2);
        if surname && given {
            doc.push_toks(i, i + 2, Category::Name, 0.75, "name.last_first");
        }
    }
}

/// A capitalised word that can be a surname whatever else it means ("Grasa", "Melón",
/// "Arriba", "Zafra"): not an acronym, a function word, a month, a title, a country, a
/// facility, street or department word, nor a word that announces a person, an identifier or
/// a contact. After a particle a function word is a surname too ("de Arriba").
fn surname_word(doc: &Doc, j: usize, after_particle: bool) -> bool {
    let t = doc.toks[j];
    let function = if after_particle { 0 } else { dict::FUNCTION };
    t.kind == Kind::Word
        && t.cap
        && !t.upper
        && t.len() >= 3
        && !t.newline_before
        && doc.f(j) & (function | NOT_NAME | dict::MEDICAL | dict::COUNTRY) == 0
        && !not_a_name_shape(doc.s(j))
        && !after_name_es(doc, j)
}

/// A word of a Spanish department's name ("Servicio de Urología", "Unidad de Cirugía
/// Plástica", "Anatomía Patológica"): a department word, a specialty or a medical term.
fn spanish_department_word(doc: &Doc, p: usize) -> bool {
    let t = doc.toks[p];
    t.kind == Kind::Word
        && (doc.has(p, dict::MEDICAL)
            || not_a_name_shape(doc.s(p))
            || doc.has(p, dict::DEPARTMENT_ES))
}

/// A word that ends a Spanish name in a signature line (`lexicon::AFTER_NAME_ES`).
#[inline]
fn after_name_es(doc: &Doc, j: usize) -> bool {
    doc.has(j, dict::AFTER_NAME_ES)
}

fn starts_sentence(doc: &Doc, i: usize) -> bool {
    i == 0 || doc.toks[i].newline_before || {
        let p = doc.toks[i - 1];
        p.kind == Kind::Punct && matches!(p.ch, '.' | '!' | '?' | '"' | '“' | '(' | '•' | '-')
    }
}

/// A word shortly before `i` that announces a person ("patient", "Nombre:", "seen by").
fn name_context(doc: &Doc, i: usize) -> bool {
    let mut j = i;
    let mut words = 0;
    while j > 0 && words < 2 {
        j -= 1;
        let t = doc.toks[j];
        if t.kind == Kind::Punct {
            if matches!(t.ch, ':' | ',' | '.' | '?') {
                if doc.toks[j + 1].newline_before {
                    return false;
                }
                continue;
            }
            return false;
        }
        words += 1;
        // "médico" is also the adjective ("tratamiento médico con Rifampicina"): context only
        // right before the name ("Médico: Mendieta Espinosa", "el médico Juan Pérez")
        if doc.has(j, dict::NAME_CTX) && (words == 1 || !matches!(doc.s(j), "médico" | "medico")) {
            return true;
        }
        if doc.toks[j].newline_before {
            return false;
        }
    }
    false
}

/// A house number (digits, at most five, not a measurement: no unit after it) among the next
/// `words` word tokens from `k`, on the same line (a comma may come before it), with no medical
/// term on the way.
fn number_within(doc: &Doc, k: usize, words: usize) -> bool {
    let n = doc.toks.len();
    let mut j = k;
    let mut seen = 0;
    while j < n && seen <= words && !(j > k && doc.toks[j].newline_before) {
        let t = doc.toks[j];
        if doc.has(j, dict::MEDICAL | dict::UNIT) {
            return false;
        }
        match t.kind {
            Kind::Num => return t.len() <= 5 && !doc.has(j + 1, dict::UNIT),
            Kind::Word => seen += 1,
            Kind::Punct if t.ch == ',' || t.ch == '.' => {}
            _ => return false,
        }
        j += 1;
    }
    false
}

/// Spanish address tails after a street found by any recognizer: "s/n" (no number) and the
/// floor and door after the house number ("13, 2 A", "6, Bajo A", "129, 8C", "3.º izda").
pub fn address_tails(doc: &mut Doc) {
    if doc.lang != Lang::Es {
        return;
    }
    let n = doc.toks.len();
    let ends: Vec<(usize, usize)> = doc
        .spans
        .iter()
        .filter(|s| s.category == Category::Location)
        .map(|s| (s.start, s.end))
        .collect();
    for (start, end) in ends {
        let last = doc.tok_end(end);
        if last == 0 || last >= n {
            continue;
        }
        let mut k = last;
        let mut b = None;
        // "s/n", after a comma or not
        let k2 = if doc.is_punct(k, ',') { k + 1 } else { k };
        if k2 + 2 < n && !doc.toks[k2].newline_before && sin_numero(doc, k2) {
            b = Some(k2 + 2);
            k = k2 + 3;
        } else {
            // the house number may be followed by a comma the span already took
            let mut q = last;
            while q > 1
                && doc.toks[q - 1].kind == Kind::Punct
                && matches!(doc.toks[q - 1].ch, ',' | '.')
            {
                q -= 1;
            }
            if !doc.toks[q - 1].has_digit() {
                continue;
            }
        }
        // floor and door: numbers of up to three digits, "2A", one capital letter, "bajo",
        // "izda", "dcha", "º", "ª", joined by commas, periods and hyphens
        let mut parts = 0;
        while k < n && !doc.toks[k].newline_before && parts < 6 {
            let t = doc.toks[k];
            let w = doc.s(k);
            let part = match t.kind {
                Kind::Num => t.len() <= 3,
                Kind::Alnum => t.len() <= 4 && w.starts_with(|c: char| c.is_ascii_digit()),
                Kind::Word => {
                    // a door letter, not "A los 3 días" or "A 36 cm" starting the next sentence,
                    // nor the "E" of "E-mail"
                    let lone = k + 1 >= n
                        || doc.toks[k + 1].newline_before
                        || doc.toks[k + 1].kind == Kind::Punct
                            && matches!(doc.toks[k + 1].ch, ',' | '.' | ';' | ')');
                    // "3.o", "1.a": ordinals written with a period
                    let ordinal = matches!(w, "o" | "a")
                        && !t.space_before
                        && k >= 2
                        && doc.is_punct(k - 1, '.')
                        && doc.toks[k - 2].kind == Kind::Num;
                    t.len() == 1 && t.cap && lone
                        || matches!(w, "º" | "ª")
                        || ordinal
                        || ["bajo", "izq", "izda", "izqda", "dcha", "dcho", "dch", "bis"]
                            .iter()
                            .any(|x| w.eq_ignore_ascii_case(x))
                }
                Kind::Punct => {
                    if matches!(t.ch, ',' | '.' | '-' | 'º' | 'ª') {
                        k += 1;
                        continue;
                    }
                    false
                }
            };
            if !part {
                break;
            }
            b = Some(k);
            parts += 1;
            k += 1;
        }
        if let Some(b) = b {
            doc.push(
                start,
                doc.toks[b].end as usize,
                Category::Location,
                0.8,
                "address.street",
            );
        }
    }
}

/// "s/n" ("sin número", no house number) in the three tokens from `k`.
fn sin_numero(doc: &Doc, k: usize) -> bool {
    k + 2 < doc.toks.len()
        && doc.s(k).eq_ignore_ascii_case("s")
        && doc.is_punct(k + 1, '/')
        && doc.s(k + 2).eq_ignore_ascii_case("n")
}

/// Spanish streets written without a street word in front of a postcode, as in signature
/// lines: "Los Alisos, 10. 13002 Ciudad Real", "Héroes de Cascorro, 9, 3º A. 06004 Badajoz",
/// "Mourente, s/n. 36071 Pontevedra". The postcode (five digits) must already read as a place
/// (a place span holds it, or a town follows it); before it, a house number or "s/n" (with
/// floor and door) after a comma, and before that up to six capitalised words and particles,
/// back to a period, a line start or another span.
pub fn streets_before_postcodes(doc: &mut Doc) {
    if doc.lang != Lang::Es {
        return;
    }
    let n = doc.toks.len();
    for p in 2..n {
        let t = doc.toks[p];
        if t.kind != Kind::Num || t.len() != 5 || t.newline_before {
            continue;
        }
        let town_after = p + 1 < n
            && !doc.toks[p + 1].newline_before
            && doc.toks[p + 1].cap
            && (doc.has(p + 1, dict::CITY | dict::STATE)
                || doc.claimed[p + 1] && in_location(doc, p + 1));
        if !(doc.claimed[p] && in_location(doc, p) || town_after) {
            continue;
        }
        let mut j = p - 1;
        if doc.toks[j].kind == Kind::Punct && matches!(doc.toks[j].ch, '-' | '.' | ',') {
            j -= 1;
        }
        // the house part, right to left: floor and door, then the number or "s/n"
        let house_end = j;
        let mut number = None;
        let mut parts = 0;
        loop {
            if parts > 8 || doc.toks[j].newline_before && j != house_end {
                break;
            }
            let tk = doc.toks[j];
            let w = doc.s(j);
            if j >= 2 && sin_numero(doc, j - 2) {
                number = Some(j - 2);
                j -= 2;
            } else if tk.kind == Kind::Num && tk.len() <= 4
                || tk.kind == Kind::Alnum
                    && tk.len() <= 4
                    && w.starts_with(|c: char| c.is_ascii_digit())
            {
                number = Some(j);
            } else if !(tk.kind == Kind::Word
                && (tk.len() == 1 && tk.cap || matches!(w, "º" | "ª"))
                || tk.kind == Kind::Punct && matches!(tk.ch, '.' | '-' | 'º' | 'ª'))
            {
                break;
            }
            parts += 1;
            if j == 0 {
                break;
            }
            j -= 1;
            // the number is the leftmost part: a comma before it ends the house part, unless
            // another number comes before the comma ("7, 2º B": the floor came first)
            if number.is_some() && doc.is_punct(j, ',') {
                let house_before = j >= 1
                    && doc.toks[j - 1].kind == Kind::Num
                    && doc.toks[j - 1].len() <= 4
                    && !doc.toks[j].newline_before;
                if !house_before {
                    break;
                }
                j -= 1;
            }
        }
        let Some(num) = number else {
            continue;
        };
        if num < 2 || !doc.is_punct(num - 1, ',') {
            continue;
        }
        // the street's words, right to left
        let mut a = None;
        let mut k = num - 2;
        let mut words = 0;
        loop {
            let tk = doc.toks[k];
            let particle = matches!(
                doc.s(k),
                "de" | "del" | "la" | "las" | "los" | "el" | "y" | "d"
            );
            // a town's name may name a street too ("Salamanca, 5"), not a person's
            let word = tk.kind == Kind::Word
                && (!doc.claimed[k] || in_location(doc, k))
                && (tk.cap
                    && !doc.has(k, dict::FACILITY | dict::TITLE | dict::MEDICAL)
                    && !spanish_department_word(doc, k)
                    || particle);
            if !word || words >= 6 {
                break;
            }
            if tk.cap {
                a = Some(k);
            }
            words += 1;
            // a street word ("Paseo", "Boulevard") starts the street
            if tk.newline_before || k == 0 || doc.has(k, dict::STREET_PREFIX) {
                break;
            }
            k -= 1;
        }
        let Some(mut a) = a else {
            continue;
        };
        // A span that starts before the street (a hospital's name ending in a town's) is not
        // the street's: it starts after it.
        let mut k = a;
        while k < num - 1 && a < num - 1 {
            let (ts, te) = (doc.toks[k].start as usize, doc.toks[k].end as usize);
            let start_a = doc.toks[a].start as usize;
            if doc.claimed[k]
                && let Some(sp) = doc
                    .spans
                    .iter()
                    .find(|sp| sp.start <= ts && sp.end >= te && sp.start < start_a)
            {
                a = doc.tok_end(sp.end).max(k + 1);
            }
            k += 1;
        }
        if a > num - 2 || !doc.toks[a].cap {
            continue;
        }
        // what comes before is a sentence's or line's end, or another span
        let bounded = a == 0
            || doc.toks[a].newline_before
            || doc.claimed[a - 1]
            || doc.toks[a - 1].kind == Kind::Punct && matches!(doc.toks[a - 1].ch, '.' | ':' | ',');
        if bounded {
            doc.push_toks(
                a,
                house_end,
                Category::Location,
                0.85,
                "address.before_postcode",
            );
        }
    }
}

/// True when tokens from `k` are two to four capitalised words (hyphenated ones count as one)
/// on one line, then a birth marker: `, geb.`, `geb.`, `, *` or `*` before a date.
fn before_birth_marker(doc: &Doc, k: usize) -> bool {
    let n = doc.toks.len();
    let mut j = k;
    let mut words = 0;
    while j < n && words < 5 {
        let t = doc.toks[j];
        if t.kind != Kind::Word || !t.cap || j > k && t.newline_before {
            break;
        }
        words += 1;
        j += 1;
        while j + 1 < n
            && doc.is_punct(j, '-')
            && !doc.toks[j].space_before
            && !doc.toks[j + 1].space_before
            && doc.toks[j + 1].kind == Kind::Word
        {
            j += 2;
        }
    }
    if !(2..=4).contains(&words) || j >= n || doc.toks[j].newline_before {
        return false;
    }
    if doc.is_punct(j, ',') {
        j += 1;
    }
    if j >= n {
        return false;
    }
    let birth = if doc.is_punct(j, '*') {
        true
    } else {
        doc.s(j) == "geb" && doc.is_punct(j + 1, '.')
    };
    // a date follows within three tokens
    birth && (j + 1..(j + 5).min(n)).any(|d| doc.toks[d].has_digit())
}

fn eponym_around(doc: &Doc, a: usize, b: usize) -> bool {
    let n = doc.toks.len();
    let mut k = b + 1;
    if k + 1 < n && doc.is_punct(k, '\'') && doc.s(k + 1) == "s" {
        k += 2;
    } else if k < n && doc.is_punct(k, '-') {
        k += 1;
    }
    if k < n && doc.has(k, dict::EPONYM_HEAD) && !doc.toks[k].newline_before {
        return true;
    }
    let mut p = a;
    // the second name of a hyphenated eponym: "síndrome de Tolosa-Hunt", "medio de
    // Löwenstein-Jensen", "ecuación de Harris-Benedict"
    if p >= 2
        && doc.is_punct(p - 1, '-')
        && !doc.toks[p - 1].space_before
        && !doc.toks[p].space_before
        && doc.toks[p - 2].kind == Kind::Word
        && doc.toks[p - 2].cap
    {
        p -= 2;
    }
    // or of a two-word eponym: "síndrome de Miller Fisher", "tinción de Rojo Congo"
    if p >= 3
        && doc.toks[p - 1].kind == Kind::Word
        && doc.toks[p - 1].cap
        && matches!(doc.s(p - 2), "de" | "von")
        && doc.has(p - 3, dict::EPONYM_PREFIX)
    {
        p -= 1;
    }
    if p >= 1 && matches!(doc.s(p - 1), "de" | "von") {
        p -= 1;
    }
    p >= 1 && doc.has(p - 1, dict::EPONYM_PREFIX)
        // "factor V de Leiden", "estadio IIIB de Durie", "grado 3c de Marsh": a numeral, letter
        // or grade after the prefix
        || p >= 2
            && doc.toks[p - 1].len() <= 4
            && {
                let w = doc.s(p - 1).as_bytes();
                w.iter().all(u8::is_ascii_alphanumeric)
                    && (w.iter().all(u8::is_ascii_uppercase) || w[0].is_ascii_digit())
            }
            && doc.has(p - 2, dict::EPONYM_PREFIX)
}

/// In German text, a hyphenated compound whose part after a hyphen ends with an eponym's head:
/// "Unterberger-Tretversuch", "Baxter-Parklandformel", "Briden-Ileus".
fn eponym_compound(doc: &Doc, a: usize, b: usize) -> bool {
    if doc.lang != Lang::De {
        return false;
    }
    let mut buf = dict::LowerBuf::default();
    (a + 1..=b).any(|k| {
        doc.is_punct(k - 1, '-')
            && !doc.toks[k - 1].space_before
            && !doc.toks[k].space_before
            && doc.toks[k].kind == Kind::Word
            && lower_ends_with(doc, k, lexicon::EPONYM_HEADS_DE, &mut buf)
    })
}

/// Token `i`, lower-cased, ends with one of `endings`.
fn lower_ends_with(doc: &Doc, i: usize, endings: &[&str], buf: &mut dict::LowerBuf) -> bool {
    let w = dict::lower(doc.s(i), buf);
    endings.iter().any(|e| w.ends_with(e))
}

/// Token `i` is a registered or trade mark sign glued to the word before it: that word is a
/// brand ("Durogesic®", "Mentor®", "Stryker™"), neither a person nor a place.
fn brand_before(doc: &Doc, i: usize) -> bool {
    i < doc.toks.len()
        && !doc.toks[i].space_before
        && doc.toks[i].kind == Kind::Punct
        && matches!(doc.toks[i].ch, '®' | '™')
}

/// Every other capitalised mention of a surname or given name already found in this document
/// (not an anatomical word, "Leber", nor the eponym of a test or sign: "Barthel-Index").
fn propagate_names(doc: &mut Doc) {
    let mut seen: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
    let text = doc.text;
    for sp in &doc.spans {
        if sp.category != Category::Name || sp.confidence < 0.75 {
            continue;
        }
        let a = doc.tok_at(sp.start);
        let b = doc.tok_end(sp.end);
        let titled = sp.recognizer == "name.title";
        for k in a..b {
            let t = doc.toks[k];
            if t.kind == Kind::Word
                && t.len() >= 3
                && !doc.has(k, dict::TITLE)
                && (!doc.common(k)
                    || titled && t.len() >= 5 && !doc.has(k, dict::FUNCTION | NOT_NAME))
            {
                seen.insert(&text[t.range()]);
            }
        }
    }
    if seen.is_empty() {
        return;
    }
    for k in 0..doc.toks.len() {
        let t = doc.toks[k];
        if doc.claimed[k] || t.kind != Kind::Word || !t.cap {
            continue;
        }
        if seen.contains(&text[t.range()])
            && !doc.has(k, dict::CLINICAL_NOUN)
            && !eponym_around(doc, k, k)
        {
            doc.push_toks(k, k, Category::Name, 0.7, "name.repeat");
        }
    }
}

/// A redaction tag such as "[DATE]" left by an earlier de-identification run.
pub(crate) fn is_tag(doc: &Doc, i: usize) -> bool {
    i >= 1 && doc.is_punct(i - 1, '[') && doc.is_punct(i + 1, ']')
}

/// Whether token `i` can be part of a place or facility name.
fn place_part(doc: &Doc, i: usize) -> bool {
    let t = doc.toks[i];
    if t.kind != Kind::Word || !(t.cap || t.upper) {
        return false;
    }
    let f = doc.f(i);
    if f & (dict::MONTH | dict::WEEKDAY | dict::TITLE | dict::UNIT) != 0 {
        return false;
    }
    true
}

/// Facilities: a capitalised sequence holding a facility word ("UCLA Medical Center",
/// "Hospital Universitario de Getafe", "Diakonissenkrankenhaus Berlin").
pub fn facilities(doc: &mut Doc) {
    saints(doc);
    let n = doc.toks.len();
    let mut buf = dict::LowerBuf::default();
    let mut i = 0;
    while i < n {
        let t = doc.toks[i];
        let trigger = t.kind == Kind::Word
            && !doc.claimed[i]
            && (doc.has(i, dict::FACILITY) && is_head_facility(doc, i, &mut buf)
                || t.cap && t.len() > 8 && {
                    let w = dict::lower(doc.s(i), &mut buf);
                    lexicon::FACILITY_SUFFIXES
                        .iter()
                        .any(|s| w.ends_with(s) && w.len() > s.len() + 2)
                });
        if !trigger {
            i += 1;
            continue;
        }
        // extend left over capitalised words, "St.", "'s", "&", "of", "and"
        let mut a = i;
        let mut merged = false;
        loop {
            if a == 0 || doc.toks[a].newline_before {
                break;
            }
            let p = a - 1;
            // "Servicio de Urología Hospital La Paz": in Spanish the department comes before
            // the hospital it is in, and names no place.
            if doc.lang == Lang::Es && spanish_department_word(doc, p) {
                break;
            }
            if doc.claimed[p] {
                // "St. Luke's" + "Hospital"
                if in_location(doc, p) && !doc.is_punct(p, ',') {
                    let (ps, pe) = (doc.toks[p].start as usize, doc.toks[p].end as usize);
                    let start = doc
                        .spans
                        .iter()
                        .rev()
                        .find(|sp| sp.start <= ps && sp.end >= pe)
                        .map_or(ps, |sp| sp.start);
                    merged = true;
                    a = doc.tok_at(start);
                }
                break;
            }
            if place_part(doc, p)
                && !doc.has(p, dict::NAME_CTX | dict::FUNCTION)
                && (!doc.common(p)
                    || doc.has(p, dict::FACILITY)
                    || doc.toks[p].upper
                    || !starts_sentence(doc, p) && doc.lang != Lang::De)
                || doc.has(p, dict::FACILITY) && !doc.toks[p].cap && !doc.has(p, dict::FUNCTION)
            {
                a = p;
                continue;
            }
            if (doc.is_punct(p, '&')
                || is_apostrophe(doc, p)
                || doc.is_punct(p, '-') && !doc.toks[p].space_before && !doc.toks[a].space_before
                || doc.is_punct(p, '.') && p >= 1 && doc.toks[p - 1].len() <= 3
                || is_fac_connector(doc, p))
                && p >= 1
                && place_part(doc, p - 1)
                && !doc.claimed[p - 1]
            {
                a = p - 1;
                continue;
            }
            if doc.s(p) == "s"
                && p >= 2
                && is_apostrophe(doc, p - 1)
                && place_part(doc, p - 2)
                && !doc.claimed[p - 2]
            {
                a = p - 2;
                continue;
            }
            break;
        }
        // "Dr. Miguel Álvarez Múgica Servicio de Urología": the words between a title and
        // given name and the facility word are the person's surnames, not the facility's name
        if !merged && a < i && a >= 2 && doc.has(a - 1, dict::FIRST) && doc.toks[a - 1].cap {
            let t = if doc.is_punct(a - 2, '.') {
                a.saturating_sub(3)
            } else {
                a - 2
            };
            if doc.has(t, dict::TITLE) && !doc.has(t, dict::FACILITY) {
                while a < i
                    && doc.toks[a].kind == Kind::Word
                    && doc.toks[a].cap
                    && !doc.has(a, dict::FACILITY)
                {
                    a += 1;
                }
            }
        }
        // extend right over capitalised words and connectors
        let mut b = i;
        let mut k = i + 1;
        while k < n && !doc.toks[k].newline_before && !doc.claimed[k] {
            // "Hospital Universitario de Getafe Servicio de Endocrinología"
            if doc.lang == Lang::Es && doc.has(k, dict::DEPARTMENT_ES) {
                break;
            }
            if place_part(doc, k) {
                b = k;
                k += 1;
                continue;
            }
            if (doc.has(k, dict::CONNECTOR) || is_fac_connector(doc, k))
                && k + 1 < n
                && place_part(doc, k + 1)
                && !doc.toks[k + 1].newline_before
                && !doc.claimed[k + 1]
            {
                k += 1;
                continue;
            }
            if is_apostrophe(doc, k) && k + 2 < n && doc.s(k + 1) == "s" {
                b = k + 1;
                k += 2;
                continue;
            }
            if doc.is_punct(k, '.') && doc.has(b, dict::FACILITY) && doc.toks[b].len() <= 4 {
                // "Hosp.", "Med."
                b = k;
                k += 1;
                continue;
            }
            if doc.is_punct(k, '&') && k + 1 < n && place_part(doc, k + 1) {
                k += 1;
                continue;
            }
            break;
        }
        // In German every noun is capitalised and departments are named after their specialty
        // ("Klinik für Ophthalmologie", "Onkologie-Ambulanz", "KLINIK FÜR ONKOLOGIE"): such a
        // name says where in a hospital, not which one, and is not specific.
        let de = doc.lang == Lang::De;
        let department = |x: usize, buf: &mut dict::LowerBuf| {
            de && lower_ends_with(doc, x, lexicon::DEPARTMENT_SUFFIXES_DE, buf)
        };
        let specific = merged
            || (a..=b).any(|x| {
                doc.toks[x].kind == Kind::Word
                    && !doc.has(x, dict::FACILITY)
                    && !doc.common(x)
                    && doc.toks[x].len() > 1
                    && !department(x, &mut buf)
            })
            || (a..=b).any(|x| {
                doc.toks[x].upper
                    && !doc.has(x, dict::MEDICAL)
                    && !(de
                        && (doc.has(x, dict::FACILITY | dict::FUNCTION | dict::CONNECTOR)
                            || doc.common(x)
                            || is_fac_connector(doc, x)
                            || department(x, &mut buf)))
            })
            || (a..=b).any(|x| doc.has(x, dict::CITY | dict::STATE | dict::FIRST | dict::LAST))
            || !de && b > a && doc.toks[a].cap && !starts_sentence(doc, a);
        let compound = a == b && doc.toks[a].len() > 8 && !doc.has(a, dict::FACILITY);
        if specific && (b > a || compound) && !(a == b && doc.common(a)) {
            // "UCSF Hospital in San Francisco"
            if b + 2 < n
                && doc.s(b + 1) == "in"
                && !doc.toks[b + 2].newline_before
                && doc.toks[b + 2].cap
                && doc.has(b + 2, dict::CITY | dict::STATE | dict::PHRASE_START)
                && !doc.claimed[b + 2]
            {
                b += 2;
                while b + 1 < n
                    && doc.toks[b + 1].cap
                    && doc.toks[b + 1].kind == Kind::Word
                    && !doc.toks[b + 1].newline_before
                    && !doc.claimed[b + 1]
                    && doc.has(b + 1, dict::CITY | dict::STATE | dict::LAST | dict::FIRST)
                {
                    b += 1;
                }
            }
            doc.push_toks(a, b, Category::Location, 0.8, "location.facility");
            i = b + 1;
        } else {
            i += 1;
        }
    }
}

fn is_apostrophe(doc: &Doc, i: usize) -> bool {
    doc.is_punct(i, '\'') || doc.is_punct(i, '\u{2019}')
}

fn is_fac_connector(doc: &Doc, i: usize) -> bool {
    i < doc.toks.len()
        && !doc.toks[i].cap
        && matches!(
            doc.s(i),
            "of" | "and"
                | "for"
                | "für"
                | "de"
                | "del"
                | "la"
                | "los"
                | "las"
                | "der"
                | "des"
                | "am"
                | "an"
                | "im"
                | "di"
                | "du"
                | "da"
                | "do"
                | "dos"
                | "das"
                | "zu"
                | "zum"
                | "zur"
                | "on"
        )
}

/// "St. Vincent's", "Mt. Sinai", "Saint Mary's": saints and mountains name hospitals and places.
fn saints(doc: &mut Doc) {
    let n = doc.toks.len();
    let mut i = 0;
    while i + 1 < n {
        if doc.claimed[i]
            || !doc.has(i, dict::SAINT)
            || !matches!(
                doc.s(i),
                "St" | "Mt" | "Saint" | "Mount" | "Sankt" | "Ste" | "San" | "Santa" | "Sta"
            )
        {
            i += 1;
            continue;
        }
        let mut k = i + 1;
        if doc.is_punct(k, '.') {
            k += 1;
        }
        if k >= n
            || doc.claimed[k]
            || !doc.toks[k].cap
            || doc.toks[k].kind != Kind::Word
            || doc.toks[k].newline_before
            || doc.has(k, dict::FUNCTION)
        {
            i += 1;
            continue;
        }
        // "2450 Crown St. Sacramento" is a street, not a saint
        if i >= 1 && doc.toks[i - 1].kind == Kind::Word && doc.toks[i - 1].cap && doc.s(i) == "St" {
            i += 1;
            continue;
        }
        let mut b = k;
        if b + 2 < n && is_apostrophe(doc, b + 1) && doc.s(b + 2) == "s" {
            b += 2;
        }
        if b + 1 < n && doc.has(b + 1, dict::STREET_SUFFIX) && doc.toks[b + 1].cap {
            i = b + 1; // "St. John Street" is a street: the address rules take it
            continue;
        }
        doc.push_toks(i, b, Category::Location, 0.7, "location.saint");
        i = b + 1;
    }
}

fn is_head_facility(doc: &Doc, i: usize, buf: &mut dict::LowerBuf) -> bool {
    let w = dict::lower(doc.s(i), buf);
    // "New York Presbyterian", "Chicago General", "UW Med": a place or acronym, then a tail word
    if matches!(
        w,
        "presbyterian" | "general" | "memorial" | "med" | "methodist" | "baptist" | "hosp"
    ) && doc.toks[i].cap
        && i >= 1
        && !doc.toks[i].newline_before
        && doc.toks[i - 1].kind == Kind::Word
        && (doc.toks[i - 1].upper
            || doc.has(i - 1, dict::CITY | dict::STATE)
            || doc.claimed[i - 1] && in_location(doc, i - 1))
    {
        return true;
    }
    matches!(
        w,
        "hospital"
            | "clinic"
            | "center"
            | "centre"
            | "ctr"
            | "infirmary"
            | "hospice"
            | "sanatorium"
            | "institute"
            | "university"
            | "clínica"
            | "clinica"
            | "centro"
            | "complejo"
            | "policlínica"
            | "policlinica"
            | "ambulatorio"
            | "instituto"
            | "krankenhaus"
            | "klinik"
            | "klinikum"
            | "universitätsklinikum"
            | "universitätsklinik"
            | "praxis"
            | "ambulanz"
            | "zentrum"
            | "kliniken"
            | "spital"
            | "landeskrankenhaus"
            | "hospitals"
            | "clinics"
            | "medical"
            | "health"
            | "healthcare"
            | "memorial"
            | "rehab"
            | "hochschule"
            | "universität"
            | "hospitalario"
            | "residencia"
            | "fundación"
            | "consultorio"
    ) && (doc.toks[i].cap || matches!(w, "clinic" | "hospital" | "center"))
}

/// Multi-word gazetteer entries ("New York", "Los Angeles", "Santiago de Compostela"), matched
/// before names so that "Angeles" is not taken for a given name.
pub fn place_phrases(doc: &mut Doc) {
    let n = doc.toks.len();
    let mut buf = dict::LowerBuf::default();
    let mut phrase = String::new();
    let maxw = doc.dict.max_phrase_words;
    let mut i = 0;
    while i < n {
        let t = doc.toks[i];
        if doc.claimed[i]
            || t.kind != Kind::Word
            || !(t.cap || t.upper || doc.is_lowercase_doc())
            || !doc.has(i, dict::PHRASE_START)
        {
            i += 1;
            continue;
        }
        phrase.clear();
        phrase.push_str(dict::lower(doc.s(i), &mut buf));
        let mut best = None;
        let mut k = i;
        let mut words = 1;
        while words < maxw && k + 1 < n && !doc.toks[k + 1].newline_before {
            k += 1;
            if doc.toks[k].kind == Kind::Punct {
                if doc.toks[k].ch == '-' || doc.toks[k].ch == '.' {
                    phrase.push(doc.toks[k].ch);
                    continue;
                }
                break;
            }
            // gazetteer phrases are capitalised words and connectors ("Santiago de Compostela")
            if !(doc.toks[k].cap
                || doc.toks[k].upper
                || doc.has(k, dict::CONNECTOR)
                || doc.is_lowercase_doc())
            {
                break;
            }
            if doc.toks[k].space_before {
                phrase.push(' ');
            }
            phrase.push_str(dict::lower(doc.s(k), &mut buf));
            words += 1;
            let f = doc.dict.phrase(&phrase);
            if f & (dict::CITY | dict::COUNTRY | dict::STATE) != 0 {
                best = Some(k);
            }
        }
        if let Some(b) = best
            && !doc.any_claimed(i, b)
        {
            doc.push_toks(i, b, Category::Location, 0.75, "location.gazetteer");
            i = b + 1;
            continue;
        }
        i += 1;
    }
}

/// Cities, states, counties and countries from the gazetteers, and places after a
/// preposition ("treated at UPMC", "from Dallas").
pub fn places(doc: &mut Doc) {
    let n = doc.toks.len();
    let mut buf = dict::LowerBuf::default();
    let mut i = 0;
    while i < n {
        let t = doc.toks[i];
        if doc.claimed[i]
            || t.kind != Kind::Word
            || !(t.cap || t.upper)
            || is_tag(doc, i)
            || t.upper && doc.common(i)
        {
            i += 1;
            continue;
        }
        let f = doc.f(i);
        let inner_caps = !t.upper && doc.s(i).chars().skip(1).any(char::is_uppercase);
        let place = !inner_caps && f & (dict::CITY | dict::STATE | dict::COUNTRY) != 0
            || doc.lang == Lang::De
                && t.cap
                && !t.upper
                && t.len() >= 6
                && f & (doc.common_mask | dict::MEDICAL | dict::FIRST) == 0
                && lower_ends_with(doc, i, lexicon::PLACE_SUFFIXES_DE, &mut buf);
        let prep = i > 0 && doc.has(i - 1, dict::PLACE_PREP) && !doc.toks[i - 1].cap;
        let common = doc.common(i) || f & dict::FUNCTION != 0;
        // German capitalises every noun: a single word is a place only after a preposition,
        // unless it is a country or region
        let german_ok = doc.lang != Lang::De || prep || f & (dict::COUNTRY | dict::STATE) != 0;
        let trusted = german_ok
            && (!common
                || prep
                || f & (dict::COUNTRY | dict::STATE) != 0
                    && t.cap
                    && t.len() > 2
                    && f & dict::FUNCTION == 0
                || doc.lang != Lang::De
                    && t.cap
                    && !starts_sentence(doc, i)
                    && f & (dict::FUNCTION | dict::MEDICAL) == 0);
        // a two-letter state code is a place only next to one ("Sacramento, CA")
        let code_only = t.len() <= 2 && f & (dict::CITY | dict::COUNTRY) == 0;
        if place
            && trusted
            && !code_only
            && !doc.has(i, dict::MEDICAL | dict::CLINICAL_NOUN)
            && (t.cap && !t.upper || t.len() > 3)
            && !eponym_around(doc, i, i)
            && !brand_before(doc, i + 1)
        {
            let cat_conf = if f & dict::COUNTRY != 0 { 0.5 } else { 0.7 };
            let rec = if f & dict::COUNTRY != 0 {
                "location.country"
            } else if f & dict::STATE != 0 {
                "location.state"
            } else {
                "location.city"
            };
            doc.push_toks(i, i, Category::Location, cat_conf, rec);
            i += 1;
            continue;
        }
        // "Where: Kuncsorba Country Club", "Location: ...": a labelled place
        if doc.lang == Lang::En
            && i >= 2
            && doc.is_punct(i - 1, ':')
            && matches!(
                doc.s(i - 2).to_ascii_lowercase().as_str(),
                "where"
                    | "location"
                    | "venue"
                    | "place"
                    | "city"
                    | "town"
                    | "hometown"
                    | "birthplace"
            )
        {
            let mut b = i;
            let mut k = i + 1;
            while k < n && !doc.toks[k].newline_before && !doc.claimed[k] {
                let tk = doc.toks[k];
                if tk.kind == Kind::Word
                    && (tk.cap || tk.upper)
                    && !doc.has(k, dict::FACILITY)
                    && !matches!(doc.s(k), "Country" | "Club")
                {
                    b = k;
                    k += 1;
                } else if doc.is_punct(k, '(') && k + 2 < n && doc.is_punct(k + 2, ')') {
                    b = k + 2;
                    k += 3;
                } else {
                    break;
                }
            }
            doc.push_toks(i, b, Category::Location, 0.6, "location.label");
            i = b + 1;
            continue;
        }
        // "treated at UPMC on ...", "from Dallas": capitalised sequence after a preposition
        if doc.lang == Lang::En
            && prep
            && matches!(doc.s(i - 1), "at" | "from" | "in" | "to" | "near")
        {
            let mut b = i;
            let mut k = i;
            while k < n
                && !doc.claimed[k]
                && place_part(doc, k)
                && (!doc.common(k)
                    || doc.has(k, dict::FIRST | dict::LAST | dict::CITY)
                        && !doc.has(k, dict::FUNCTION))
                && !doc.has(k, dict::NAME_CTX)
                && (k == i || !doc.toks[k].newline_before)
            {
                b = k;
                k += 1;
                if doc.is_punct(k, '\'') && k + 1 < n && doc.s(k + 1) == "s" {
                    b = k + 1;
                    k += 2;
                }
            }
            if k > i
                && (b > i || doc.toks[i].upper && doc.toks[i].len() >= 3 || doc.toks[i].len() >= 4)
            {
                doc.push_toks(i, b, Category::Location, 0.6, "location.context");
                i = b + 1;
                continue;
            }
        }
        i += 1;
    }
    state_codes_and_postcodes(doc);
}

/// A line of one to three upper-case words next to a line holding a place or an address, as
/// in address blocks ("BASHALL TOWN", "DOLE"): the town.
fn capital_place_lines(doc: &mut Doc) {
    let n = doc.toks.len();
    let mut i = 0;
    while i < n {
        // the line [i, j)
        let mut j = i + 1;
        while j < n && !doc.toks[j].newline_before {
            j += 1;
        }
        // cheap test first: the line's first word is upper-case
        let first_word = (i..j).find(|&k| doc.toks[k].kind != Kind::Punct);
        if !first_word.is_some_and(|k| doc.toks[k].upper && doc.toks[k].kind == Kind::Word) {
            i = j;
            continue;
        }
        let words: Vec<usize> = (i..j)
            .filter(|&k| doc.toks[k].kind != Kind::Punct)
            .collect();
        let all_upper = !words.is_empty()
            && words.len() <= 3
            && words.iter().all(|&k| {
                let t = doc.toks[k];
                t.kind == Kind::Word
                    && t.upper
                    && t.len() >= 3
                    && !doc.has(k, dict::MEDICAL | dict::ID_CTX)
            })
            && (i..j).all(|k| {
                doc.toks[k].kind != Kind::Punct || matches!(doc.toks[k].ch, '>' | '-' | '.' | ',')
            })
            && !words.iter().any(|&k| doc.claimed[k]);
        if all_upper {
            let prev_loc = i >= 1 && doc.claimed[i - 1] && in_location(doc, i - 1);
            let next_loc = j < n && {
                let mut k = j;
                while k < n
                    && doc.toks[k].kind == Kind::Punct
                    && !(k > j && doc.toks[k].newline_before)
                {
                    k += 1;
                }
                k < n && doc.claimed[k] && in_location(doc, k)
            };
            if prev_loc || next_loc {
                let (a, b) = (words[0], words[words.len() - 1]);
                doc.push_toks(a, b, Category::Location, 0.6, "location.address_line");
            }
        }
        i = j;
    }
}

/// "Sacramento, CA 95814": state codes and postal codes next to a place.
fn state_codes_and_postcodes(doc: &mut Doc) {
    let n = doc.toks.len();
    capital_place_lines(doc);
    // a line that starts with a postcode and goes on with a place: "47809 Krefeld",
    // "A-2236 Opfing", "20223 Klein Haasbeck"
    for i in 0..n {
        let line_start = i == 0 || doc.toks[i].newline_before;
        if !line_start || doc.lang == Lang::En {
            continue;
        }
        let mut k = i;
        // country prefix: "A-2236", "CH-8001", "D-10115"
        if doc.toks[k].kind == Kind::Word
            && doc.toks[k].len() <= 2
            && (doc.toks[k].upper || doc.toks[k].cap)
            && doc.is_punct(k + 1, '-')
        {
            k += 2;
        }
        if k >= n || doc.toks[k].kind != Kind::Num || !(4..=5).contains(&doc.toks[k].len()) {
            continue;
        }
        // "2018 Sentinel node..." is a year, not a postcode
        if k == i
            && doc.toks[k].len() == 4
            && doc
                .s(k)
                .parse::<u32>()
                .is_ok_and(|y| (1900..=2099).contains(&y))
        {
            continue;
        }
        let mut b = k;
        let mut m = k + 1;
        while m < n
            && !doc.toks[m].newline_before
            && doc.toks[m].kind == Kind::Word
            && doc.toks[m].cap
            && !doc.has(m, dict::FUNCTION | dict::ID_CTX)
        {
            b = m;
            m += 1;
        }
        if b > k
            && (m >= n || doc.toks[m].newline_before || doc.is_punct(m, ','))
            && !doc.any_claimed(k + 1, b)
        {
            doc.push_toks(i, b, Category::Location, 0.75, "location.postcode_city");
        }
    }
    // "Neustadt, am 12.3.2023" / "München, den 3. Mai": the place of a letter's date line
    for i in 0..n.saturating_sub(3) {
        if doc.claimed[i]
            || doc.toks[i].kind != Kind::Word
            || !doc.toks[i].cap
            || doc.lang != Lang::De
        {
            continue;
        }
        if doc.is_punct(i + 1, ',')
            && matches!(doc.s(i + 2), "am" | "den")
            && doc.claimed[i + 3]
            && (i == 0 || doc.toks[i].newline_before)
        {
            doc.push_toks(i, i, Category::Location, 0.7, "location.letter_date");
        }
    }
    for i in 0..n {
        if doc.claimed[i] {
            continue;
        }
        let t = doc.toks[i];
        // state code after "City," or before a ZIP
        if t.kind == Kind::Word && t.upper && t.len() == 2 && doc.has(i, dict::STATE_CODE) {
            let after_place = i >= 2
                && doc.is_punct(i - 1, ',')
                && (doc.claimed[i - 2] && in_location(doc, i - 2) || doc.has(i - 2, dict::CITY));
            let before_zip =
                i + 1 < n && doc.toks[i + 1].kind == Kind::Num && doc.toks[i + 1].len() == 5;
            if after_place || before_zip {
                doc.push_toks(i, i, Category::Location, 0.8, "location.state");
            }
        }
    }
    for i in 0..n {
        let t = doc.toks[i];
        if t.kind != Kind::Num || !(4..=6).contains(&t.len()) {
            continue;
        }
        let prev_loc = i >= 1 && !t.newline_before && {
            let p = if doc.is_punct(i - 1, ',') && i >= 2 {
                i - 2
            } else {
                i - 1
            };
            doc.claimed[p] && in_location(doc, p)
        };
        let year_like = t.len() == 4
            && doc
                .s(i)
                .parse::<u32>()
                .is_ok_and(|y| (1900..=2099).contains(&y));
        let next_loc = !year_like
            && i + 1 < n
            && !doc.toks[i + 1].newline_before
            && doc.toks[i + 1].cap
            && (doc.has(i + 1, dict::CITY) || doc.claimed[i + 1] && in_location(doc, i + 1));
        if prev_loc || next_loc {
            recategorise_or_push(doc, i, Category::Location, "location.postcode");
        }
    }
}

fn in_location(doc: &Doc, k: usize) -> bool {
    let (s, e) = (doc.toks[k].start as usize, doc.toks[k].end as usize);
    doc.spans
        .iter()
        .rev()
        .any(|sp| sp.start <= s && sp.end >= e && sp.category == Category::Location)
}

fn recategorise_or_push(doc: &mut Doc, k: usize, cat: Category, rec: &'static str) {
    let (s, e) = (doc.toks[k].start as usize, doc.toks[k].end as usize);
    if let Some(sp) = doc.spans.iter_mut().find(|sp| sp.start <= s && sp.end >= e) {
        if sp.category == Category::OtherId && sp.start == s && sp.end == e {
            sp.category = cat;
            sp.recognizer = rec;
        }
        return;
    }
    doc.push_toks(k, k, cat, 0.7, rec);
}

/// Street addresses: "2450 Crown St", "Calle Miguel Benitez 90", "Kantstraße 21 a",
/// "Apt. 864", "PO Box 123".
pub fn addresses(doc: &mut Doc) {
    let n = doc.toks.len();
    let mut buf = dict::LowerBuf::default();
    let mut i = 0;
    while i < n {
        let t = doc.toks[i];
        // house number + words + suffix
        if t.kind == Kind::Num && t.len() <= 6 && !doc.claimed[i] {
            let mut k = i + 1;
            let mut words = 0;
            let mut found = None;
            let mut odd = false; // a word that makes the European order unlikely
            while k < n && words < 5 && !doc.toks[k].newline_before {
                let tk = doc.toks[k];
                // lower-case text: an unknown word is as good as a capitalised one
                let capish = tk.cap
                    || tk.upper
                    || doc.is_lowercase_doc() && !doc.common(k) && !doc.has(k, dict::FUNCTION);
                if tk.kind == Kind::Word && capish {
                    words += 1;
                    if words >= 2 && doc.has(k, dict::STREET_SUFFIX) {
                        found = Some(k);
                        break;
                    }
                    // an abbreviated word: "Λ. Αλεξάνδρας", "C. Beerninckstraat"
                    if tk.len() <= 3
                        && doc.is_punct(k + 1, '.')
                        && k + 2 < n
                        && doc.toks[k + 2].kind == Kind::Word
                        && doc.toks[k + 2].cap
                        && doc.toks[k + 2].len() >= 4
                        && !doc.common(k + 2)
                    {
                        k += 2;
                        continue;
                    }
                    odd |= doc.common(k) && !doc.has(k, dict::STREET_SUFFIX | dict::STREET_PREFIX)
                        || doc.has(k, dict::FUNCTION | dict::UNIT | dict::MONTH)
                        || tk.upper;
                    k += 1;
                } else if tk.kind == Kind::Word
                    && words >= 1
                    && (doc.has(k, dict::STREET_SUFFIX | dict::CONNECTOR)
                        || tk.len() <= 4 && doc.is_punct(k + 1, '.'))
                {
                    // "Stensås terrasse 38", "Rua do Arenque 1634", "Piroska u. 97"
                    if doc.has(k, dict::STREET_SUFFIX) && !doc.is_punct(k + 1, '.') {
                        found = Some(k);
                        break;
                    }
                    k += 1;
                    if doc.is_punct(k, '.') {
                        k += 1;
                    }
                } else if tk.kind == Kind::Num && words == 0 && tk.len() <= 6 {
                    k += 1;
                } else {
                    break;
                }
            }
            // European order in many exports: "971 Kesk 53", "0104 Hafnarstraeti 5"
            if found.is_none()
                && (1..=3).contains(&words)
                && k < n
                && doc.toks[k].kind == Kind::Num
                && doc.toks[k].len() <= 4
                && !doc.toks[k].newline_before
                && !odd
            {
                found = Some(k);
            }
            if let Some(b) = found {
                let mut b = b;
                if doc.is_punct(b + 1, '.') {
                    b += 1;
                }
                if b + 1 < n
                    && doc.toks[b + 1].kind == Kind::Num
                    && doc.toks[b + 1].len() <= 4
                    && !doc.toks[b + 1].newline_before
                {
                    b += 1;
                }
                let b = extend_block(doc, extend_address(doc, b));
                doc.push_toks(i, b, Category::Location, 0.85, "address.street");
                i = b + 1;
                continue;
            }
        }
        let street_word = t.kind == Kind::Word
            && !doc.claimed[i]
            && (t.cap
                || doc.f(i) & (dict::STREET_PREFIX | dict::ADDRESS_UNIT | dict::STREET_SUFFIX)
                    != 0
                || matches!(doc.s(i), "corner" | "psc" | "apo" | "fpo" | "dpo" | "unit"));
        if street_word {
            // house numbers before the street ("143 31 rue de la Hulotais")
            let mut lead = i;
            while lead >= 1
                && lead + 2 > i
                && doc.toks[lead - 1].kind == Kind::Num
                && doc.toks[lead - 1].len() <= 6
                && !doc.toks[lead].newline_before
                && !doc.claimed[lead - 1]
            {
                lead -= 1;
            }
            let w = dict::lower(doc.s(i), &mut buf);
            // prefix streets: "Calle ...", "Avda. ...", "c/ ..."
            // lower-case street types after a house number: "731 ul. Miła 57", "33 avenue de Provence"
            let after_number = lead < i;
            // Spanish forms typed in lower case ("calle del pez, 28", "avenida san francisco
            // 13"): taken only with a house number a few words on
            let lower_es = !t.cap
                && doc.lang == Lang::Es
                && lexicon::STREET_PREFIXES_LOWER_ES.contains(&w)
                && number_within(doc, i + 1, 6);
            let prefix = doc.has(i, dict::STREET_PREFIX)
                && (t.cap
                    || w == "c" && doc.is_punct(i + 1, '/')
                    || after_number && w.len() >= 2
                    || lower_es);
            if prefix
                && (w != "c" || doc.is_punct(i + 1, '/'))
                && !(w.len() <= 2
                    && w != "c"
                    && !doc.is_punct(i + 1, '.')
                    // "Av de burgos 7": a short street type without its period, with a number
                    && !(doc.lang == Lang::Es && !t.upper && number_within(doc, i + 1, 6)))
            {
                let mut k = i + 1;
                if doc.is_punct(k, '.') || doc.is_punct(k, '/') {
                    k += 1;
                    // "C/."
                    if doc.is_punct(k, '.') {
                        k += 1;
                    }
                }
                let mut b = None;
                // lower-case name words count when a house number ends the run ("calle
                // monforte de lemos 129")
                let lower_ok = doc.lang == Lang::Es && number_within(doc, k, 6);
                while k < n && !doc.toks[k].newline_before {
                    let tk = doc.toks[k];
                    if tk.kind == Kind::Word
                        && (tk.cap
                            || doc.has(k, dict::CONNECTOR)
                            || lower_ok && doc.f(k) & dict::FUNCTION == 0 && tk.len() >= 2)
                    {
                        if tk.cap || !doc.has(k, dict::CONNECTOR) {
                            b = Some(k);
                        }
                        k += 1;
                    } else {
                        break;
                    }
                }
                if let Some(b0) = b {
                    let mut b = b0;
                    // house number right after
                    if b + 1 < n && doc.toks[b + 1].kind == Kind::Num && doc.toks[b + 1].len() <= 5
                    {
                        b += 1;
                    } else if b + 2 < n
                        && doc.is_punct(b + 1, ',')
                        && doc.toks[b + 2].kind == Kind::Num
                        && doc.toks[b + 2].len() <= 5
                    {
                        b += 2;
                    }
                    let b = extend_block(doc, extend_address(doc, b));
                    doc.push_toks(lead, b, Category::Location, 0.85, "address.street");
                    i = b + 1;
                    continue;
                }
            }
            // hyphenated street names with a number: "Robert-Koch-Str. 17",
            // "Erich-Kästner-Platz 5", "Karl-Marx-Allee 90" (German names streets after people)
            if t.cap && t.kind == Kind::Word {
                let mut k = i;
                let mut parts = 1;
                while parts < 5
                    && k + 2 < n
                    && doc.is_punct(k + 1, '-')
                    && !doc.toks[k + 1].space_before
                    && doc.toks[k + 2].kind == Kind::Word
                    && doc.toks[k + 2].cap
                    && !doc.toks[k + 2].space_before
                {
                    k += 2;
                    parts += 1;
                }
                if parts >= 2 {
                    let mut last_buf = dict::LowerBuf::default();
                    let last = dict::lower(doc.s(k), &mut last_buf);
                    let street = lexicon::STREET_WORDS_HYPHENATED.contains(&last)
                        || last.chars().count() >= 5
                            && lexicon::STREET_WORD_SUFFIXES
                                .iter()
                                .any(|s| last.ends_with(s) && last.len() > s.len() + 1);
                    let mut m = k + 1;
                    if doc.is_punct(m, '.') {
                        m += 1;
                    }
                    let house_number = m < n
                        && !doc.toks[m].newline_before
                        && (doc.toks[m].kind == Kind::Num && doc.toks[m].len() <= 4
                            || doc.toks[m].kind == Kind::Alnum
                                && doc.toks[m].len() <= 5
                                && doc.s(m).starts_with(|c: char| c.is_ascii_digit()));
                    if street && house_number && !doc.any_claimed(i, m) {
                        let b = extend_block(doc, extend_address(doc, m));
                        doc.push_toks(lead, b, Category::Location, 0.85, "address.street");
                        i = b + 1;
                        continue;
                    }
                }
            }
            // one-word streets with a number: "Kantstraße 21 a", "Lyngveien 46"
            let number_next = {
                let k = if doc.is_punct(i + 1, '.') {
                    i + 2
                } else {
                    i + 1
                };
                k < n && doc.toks[k].has_digit() && !doc.toks[k].newline_before
            };
            if t.cap
                && number_next
                && w.chars().count() >= 5
                && lexicon::STREET_WORD_SUFFIXES
                    .iter()
                    .any(|s| w.ends_with(s) && w.len() > s.len() + 1)
            {
                let mut k = i + 1;
                if doc.is_punct(k, '.') {
                    k += 1;
                }
                let house_number = k < n
                    && (doc.toks[k].kind == Kind::Num && doc.toks[k].len() <= 4
                        || doc.toks[k].kind == Kind::Alnum
                            && doc.toks[k].len() <= 5
                            && doc.s(k).starts_with(|c: char| c.is_ascii_digit()));
                if house_number && !doc.toks[k].newline_before {
                    let b = extend_block(doc, extend_address(doc, k));
                    // "Innsbrucker Landstraße 22a": an adjective of place before the street
                    let lead = if lead == i
                        && i >= 1
                        && doc.toks[i - 1].cap
                        && doc.toks[i - 1].kind == Kind::Word
                        && !doc.toks[i].newline_before
                        && !doc.claimed[i - 1]
                        && (!doc.common(i - 1) || place_adjective(doc, i - 1))
                        && !doc.has(i - 1, dict::FUNCTION | dict::TITLE | dict::NAME_CTX)
                    {
                        i - 1
                    } else {
                        lead
                    };
                    doc.push_toks(lead, b, Category::Location, 0.8, "address.street");
                    i = b + 1;
                    continue;
                }
            }
            // "lives on Pod Floriánem 1677", "enter on Peter Zuidhove 188"
            if t.cap && i >= 1 && doc.s(i - 1) == "on" && doc.lang == Lang::En {
                let mut k = i;
                while k < n
                    && k < i + 3
                    && doc.toks[k].kind == Kind::Word
                    && doc.toks[k].cap
                    && !doc.toks[k].newline_before
                    && !doc.claimed[k]
                    && !doc.has(
                        k,
                        dict::MONTH | dict::WEEKDAY | dict::FUNCTION | dict::TITLE,
                    )
                    && !doc.common(k)
                {
                    k += 1;
                }
                if k > i
                    && k < n
                    && doc.toks[k].kind == Kind::Num
                    && doc.toks[k].len() <= 5
                    && !doc.toks[k].newline_before
                    && !doc.claimed[k]
                {
                    let b = extend_address(doc, k);
                    doc.push_toks(i, b, Category::Location, 0.7, "address.street");
                    i = b + 1;
                    continue;
                }
            }
            // "Villacher Strasse 89", "Gordon Terrace 4"
            if doc.has(i, dict::STREET_SUFFIX)
                && t.cap
                && i >= 1
                && doc.toks[i - 1].cap
                && doc.toks[i - 1].kind == Kind::Word
                && (!doc.common(i - 1) || place_adjective(doc, i - 1))
                && !doc.toks[i].newline_before
            {
                let mut k = i + 1;
                if doc.is_punct(k, '.') {
                    k += 1;
                }
                if k < n
                    && doc.toks[k].kind == Kind::Num
                    && doc.toks[k].len() <= 4
                    && !doc.toks[k].newline_before
                    && !doc.claimed[i - 1]
                {
                    let mut a = i - 1;
                    // "Kärntner Straße": the adjective is the whole name (a name before it is
                    // a person's, as in an address block's first line)
                    while a >= 1
                        && !place_adjective(doc, i - 1)
                        && doc.toks[a - 1].cap
                        && doc.toks[a - 1].kind == Kind::Word
                        && !doc.common(a - 1)
                        && !doc.claimed[a - 1]
                        && !doc.toks[a].newline_before
                        && a + 3 > i
                    {
                        a -= 1;
                    }
                    let b = extend_block(doc, extend_address(doc, k));
                    doc.push_toks(a, b, Category::Location, 0.8, "address.street");
                    i = b + 1;
                    continue;
                }
            }
            // "P.O. Box 123", "PSC 3294, Box 9168", "APO AA 61487"
            if matches!(
                w,
                "p" | "po" | "psc" | "apo" | "fpo" | "dpo" | "postfach" | "apartado" | "unit"
            ) && (t.cap
                || doc.toks[i].upper
                || i == 0
                || doc.toks[i].newline_before
                || w == "psc"
                || w == "unit")
            {
                let mut k = i + 1;
                while k < n && k < i + 8 && !doc.toks[k].has_digit() && !doc.toks[k].newline_before
                {
                    k += 1;
                }
                let head: String = (i..k).map(|x| doc.s(x).to_uppercase()).collect();
                let head = head
                    .replace("POSTFACH", "Postfach")
                    .replace("APARTADO", "Apartado");
                let head = if head.starts_with("UNIT")
                    && k < n
                    && doc.toks[k].has_digit()
                    && k + 1 < n
                    && doc.s(k + 1).eq_ignore_ascii_case("box")
                {
                    "PSC".to_string()
                } else {
                    head
                };
                let ok = head.starts_with("P.O.BOX")
                    || head.starts_with("PO.BOX")
                    || head.starts_with("POBOX")
                    || head.starts_with("PSC")
                    || head.starts_with("APO")
                    || head.starts_with("FPO")
                    || head.starts_with("DPO")
                    || head.starts_with("Postfach")
                    || head.starts_with("Apartado");
                if ok && k < n && doc.toks[k].has_digit() && !doc.any_claimed(i, k) {
                    let b = extend_block(doc, k);
                    // the ship's line above a military address: "USS Lorenzen\nFPO AE 25990"
                    let mut a = lead;
                    if doc.toks[i].newline_before && i >= 2 {
                        // the last "USS"/"USNS"/"USCGC" word on the line above, then names only
                        let mut p0 = i - 1;
                        let mut ship_at = None;
                        loop {
                            let w = doc.s(p0);
                            if (3..=5).contains(&w.len())
                                && w.to_ascii_uppercase().starts_with("US")
                                && doc.toks[p0].kind == Kind::Word
                            {
                                ship_at = Some(p0);
                                break;
                            }
                            if doc.toks[p0].newline_before || p0 == 0 || i - p0 > 4 {
                                break;
                            }
                            p0 -= 1;
                        }
                        if let Some(p0) = ship_at
                            && i - p0 >= 2
                            && (p0 + 1..i)
                                .all(|x| doc.toks[x].kind == Kind::Word && !doc.claimed[x])
                        {
                            a = p0;
                        }
                    }
                    doc.push_toks(a, b, Category::Location, 0.85, "address.pobox");
                    i = b + 1;
                    continue;
                }
            }
            // "the corner of Csabai kapu 39 and Mathias Pass"
            if w == "corner" && i + 2 < n && doc.s(i + 1) == "of" {
                let a = if i >= 1 && doc.s(i - 1).eq_ignore_ascii_case("the") {
                    i - 1
                } else {
                    i
                };
                let mut b = i + 1;
                let mut k = i + 2;
                let mut seen_and = false;
                while k < n && !doc.toks[k].newline_before {
                    let tk = doc.toks[k];
                    let ok = tk.has_digit()
                        || doc.s(k) == "and"
                        || tk.kind == Kind::Word
                            && (tk.cap
                                || doc.has(k, dict::STREET_SUFFIX | dict::CONNECTOR)
                                || !doc.common(k))
                        || doc.is_punct(k, '.')
                            && k + 1 < n
                            && !doc.toks[k + 1].newline_before
                            && doc.toks[k + 1].kind != Kind::Punct;
                    if !ok {
                        break;
                    }
                    if doc.s(k) == "and" {
                        if seen_and {
                            break;
                        }
                        seen_and = true;
                    } else if tk.kind != Kind::Punct {
                        b = k;
                    }
                    k += 1;
                }
                if b > i + 2 && !doc.any_claimed(i + 2, b) {
                    doc.push_toks(a, b, Category::Location, 0.8, "address.corner");
                    i = b + 1;
                    continue;
                }
            }
            // unit designators: "Apt. 864", "Suite 501"
            if doc.has(i, dict::ADDRESS_UNIT)
                && (t.cap)
                && matches!(w, "apt" | "apartment" | "suite" | "ste" | "unit" | "box")
            {
                let mut k = i + 1;
                if doc.is_punct(k, '.') {
                    k += 1;
                }
                if doc.is_punct(k, '#') {
                    k += 1;
                }
                if k < n && doc.toks[k].has_digit() {
                    let k = extend_block(doc, k);
                    doc.push_toks(i, k, Category::Location, 0.8, "address.unit");
                    i = k + 1;
                    continue;
                }
            }
        }
        i += 1;
    }
}

/// Extends an address block over the city, region, postcode and country that follow it on the
/// same line or the next few lines ("...Apt. 864\nArtilleros\n, CO\n Uruguay 64677").
/// A German adjective of place, the first word of many street names ("Innsbrucker
/// Landstraße", "Kärntner Straße", "Berliner Allee"): capitalised, ending in "-er", in a German
/// document. Such words are in the common-word list ("Berliner" is ordinary German), so the
/// street rules ask for them by shape.
fn place_adjective(doc: &Doc, k: usize) -> bool {
    let t = doc.toks[k];
    doc.lang == Lang::De
        && t.kind == Kind::Word
        && t.cap
        && t.len() >= 5
        && doc.s(k).ends_with("er")
        && !doc.has(k, dict::FUNCTION | dict::TITLE | dict::NAME_CTX)
}

fn extend_block(doc: &Doc, mut b: usize) -> usize {
    let n = doc.toks.len();
    let mut lines = 0;
    let mut k = b + 1;
    while k < n {
        let t = doc.toks[k];
        if t.newline_before {
            lines += 1;
            if lines > 3 {
                break;
            }
        }
        if doc.claimed[k] && !in_location(doc, k) {
            break;
        }
        let f = doc.f(k);
        let ok = match t.kind {
            // e-mail quoting at the start of a line: "> Suite 828"
            Kind::Punct if t.ch == '>' && t.newline_before => true,
            // "??? " bullets left by a broken export at the start of a line
            Kind::Punct
                if t.ch == '?' && (t.newline_before || k >= 1 && doc.is_punct(k - 1, '?')) =>
            {
                true
            }
            // "Cyprus (Greek) 51034"
            Kind::Punct if t.ch == '(' => {
                k + 2 < n && doc.toks[k + 1].cap && doc.is_punct(k + 2, ')')
            }
            Kind::Punct if t.ch == ')' => k >= 2 && doc.is_punct(k - 2, '('),
            Kind::Word if k >= 1 && doc.is_punct(k - 1, '(') && t.cap => true,
            // a missing value exported into an address field ("KNIVSTA, nan 18237")
            Kind::Word if matches!(doc.s(k), "nan" | "NaN" | "null" | "NULL" | "N/A") => true,
            Kind::Punct => matches!(t.ch, ',' | '.' | '-' | '#' | 'º' | 'ª'),
            Kind::Num => t.len() <= 6,
            Kind::Alnum => t.len() <= 8,
            Kind::Word if t.upper && t.len() <= 3 => true,
            // names in another script inside an address block ("ΧΑΝ∆ΡΙΑ")
            Kind::Word
                if doc.s(k).chars().next().is_some_and(|c| {
                    c.is_alphabetic() && !c.is_ascii() && !matches!(c, 'À'..='ɏ')
                }) =>
            {
                true
            }
            Kind::Word => {
                f & (dict::ID_CTX | dict::FUNCTION | dict::NAME_CTX) == 0
                    && ((t.cap || t.upper)
                        && (f & (doc.common_mask | dict::MEDICAL) == 0
                            || f & (dict::CITY
                                | dict::COUNTRY
                                | dict::STATE
                                | dict::ADDRESS_UNIT
                                | dict::STREET_SUFFIX)
                                != 0
                            || t.upper)
                        || f & dict::ADDRESS_UNIT != 0)
            }
        };
        if !ok {
            break;
        }
        if t.kind != Kind::Punct {
            b = k;
        }
        k += 1;
    }
    b
}

/// Extends an address over unit designators, numbers and the letter of a house number.
fn extend_address(doc: &Doc, mut b: usize) -> usize {
    let n = doc.toks.len();
    loop {
        let k = b + 1;
        if k >= n || doc.toks[k].newline_before || doc.claimed[k] {
            return b;
        }
        let tk = doc.toks[k];
        // "21 a", "5-7", "2º dcha", "Apt. 864"
        if tk.kind == Kind::Word && tk.len() == 1 && !tk.cap && doc.toks[b].kind == Kind::Num {
            b = k;
            continue;
        }
        if (doc.is_punct(k, '-') || doc.is_punct(k, '/'))
            && k + 1 < n
            && doc.toks[k + 1].kind == Kind::Num
            && !doc.toks[k + 1].space_before
        {
            b = k + 1;
            continue;
        }
        if doc.is_punct(k, ',')
            && k + 1 < n
            && !doc.toks[k + 1].newline_before
            && (doc.toks[k + 1].has_digit() && doc.toks[k + 1].len() <= 3
                || doc.has(k + 1, dict::ADDRESS_UNIT))
        {
            b = k;
            continue;
        }
        if doc.has(k, dict::ADDRESS_UNIT) {
            let mut m = k + 1;
            if doc.is_punct(m, '.') {
                m += 1;
            }
            if m < n && (doc.toks[m].has_digit()) {
                b = m;
                continue;
            }
            if matches!(doc.s(k), "dcha" | "izda" | "bajo") {
                b = k;
                continue;
            }
            return b;
        }
        if tk.has_digit() && tk.len() <= 3 && doc.toks[b].kind == Kind::Punct {
            b = k;
            continue;
        }
        if (tk.kind == Kind::Alnum)
            && tk.len() <= 4
            && (doc.s(k).ends_with('º') || doc.s(k).ends_with('ª'))
        {
            b = k;
            continue;
        }
        if doc.is_punct(k, 'º') || doc.is_punct(k, 'ª') {
            b = k;
            continue;
        }
        return b;
    }
}
