//! Dates as structured formats write them: ISO 8601 / FHIR (`2020`, `2020-03`, `2020-03-14`,
//! `2020-03-14T09:30:00+01:00`), HL7 v2 DTM (`20200314093000.123-0500`), DICOM DA
//! (`20200314`) and DT, and free text (`03/14/2020`, `14. März 2020`) through the text
//! de-identifier's date parser. Shifting keeps the written precision and the time part as it
//! is; generalising keeps the year in a form the format accepts.

use phiguard_deid::date as text_date;
use time::{Date, Month};

/// How a date value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateFormat {
    /// ISO 8601 / FHIR date, dateTime, instant; CSV ISO dates.
    Iso,
    /// HL7 v2 DT/DTM/TS: `YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]`.
    Hl7,
    /// DICOM DA: `YYYYMMDD` (and the retired `YYYY.MM.DD`).
    DicomDa,
    /// DICOM DT: as HL7 DTM.
    DicomDt,
    /// Anything: tries ISO, then compact digits, then free-text date forms.
    Auto,
}

/// A parsed structured date: the date part at its precision, and the rest (time, zone) as written.
#[derive(Clone, PartialEq, Eq)]
struct Parsed<'a> {
    year: i32,
    month: Option<u8>,
    day: Option<u8>,
    /// `-` for ISO, `` for compact, `.` for the retired DICOM form.
    sep: &'static str,
    rest: &'a str,
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn num(s: &str) -> Option<u32> {
    if digits(s) { s.parse().ok() } else { None }
}

fn valid(year: i32, month: Option<u8>, day: Option<u8>) -> bool {
    if !(1..=9999).contains(&year) {
        return false;
    }
    match (month, day) {
        (None, None) => true,
        (Some(m), None) => (1..=12).contains(&m),
        (Some(m), Some(d)) => Month::try_from(m)
            .ok()
            .and_then(|m| Date::from_calendar_date(year, m, d).ok())
            .is_some(),
        (None, Some(_)) => false,
    }
}

fn parse_iso(s: &str) -> Option<Parsed<'_>> {
    let b = s.as_bytes();
    if b.len() < 4 || !digits(&s[..4]) {
        return None;
    }
    let year = num(&s[..4])? as i32;
    let (mut month, mut day, mut rest) = (None, None, &s[4..]);
    if b.len() >= 7 && b[4] == b'-' && digits(&s[5..7]) {
        month = Some(num(&s[5..7])? as u8);
        rest = &s[7..];
        if b.len() >= 10 && b[7] == b'-' && digits(&s[8..10]) {
            day = Some(num(&s[8..10])? as u8);
            rest = &s[10..];
        }
    }
    if !rest.is_empty() && !(day.is_some() && (rest.starts_with('T') || rest.starts_with(' '))) {
        return None;
    }
    valid(year, month, day).then_some(Parsed {
        year,
        month,
        day,
        sep: "-",
        rest,
    })
}

fn parse_compact(s: &str) -> Option<Parsed<'_>> {
    let lead = s.bytes().take_while(u8::is_ascii_digit).count();
    if lead < 4 {
        return None;
    }
    let year = num(&s[..4])? as i32;
    let (month, day, rest) = match lead {
        4 => (None, None, &s[4..]),
        5 => return None,
        6 | 7 => (Some(num(&s[4..6])? as u8), None, &s[6..]),
        _ => (
            Some(num(&s[4..6])? as u8),
            Some(num(&s[6..8])? as u8),
            &s[8..],
        ),
    };
    if lead == 7 {
        return None;
    }
    // What follows the date: more time digits, a fraction, a zone; nothing else.
    if !rest
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'+' || b == b'-')
    {
        return None;
    }
    if day.is_none() && !rest.is_empty() && !rest.starts_with(['+', '-']) {
        return None;
    }
    valid(year, month, day).then_some(Parsed {
        year,
        month,
        day,
        sep: "",
        rest,
    })
}

fn parse_dicom_da(s: &str) -> Option<Parsed<'_>> {
    let t = s.trim_end_matches([' ', '\0']);
    if t.len() == 10 && t.as_bytes()[4] == b'.' && t.as_bytes()[7] == b'.' {
        let year = num(&t[..4])? as i32;
        let month = Some(num(&t[5..7])? as u8);
        let day = Some(num(&t[8..10])? as u8);
        return valid(year, month, day).then_some(Parsed {
            year,
            month,
            day,
            sep: ".",
            rest: "",
        });
    }
    if t.len() != 8 {
        return None;
    }
    parse_compact(t)
}

fn parse(s: &str, format: DateFormat) -> Option<Parsed<'_>> {
    match format {
        DateFormat::Iso => parse_iso(s),
        DateFormat::Hl7 | DateFormat::DicomDt => parse_compact(s),
        DateFormat::DicomDa => parse_dicom_da(s),
        DateFormat::Auto => parse_iso(s).or_else(|| parse_compact(s)),
    }
}

fn render(p: &Parsed<'_>, year: i32, month: Option<u8>, day: Option<u8>) -> String {
    let mut out = format!("{year:04}");
    if let Some(m) = month {
        out.push_str(p.sep);
        out.push_str(&format!("{m:02}"));
        if let Some(d) = day {
            out.push_str(p.sep);
            out.push_str(&format!("{d:02}"));
        }
    }
    out.push_str(p.rest);
    out
}

/// Shifts a date by `days`, keeping its precision and its time part. `None` when `value` is not
/// a date in `format` (the caller removes what it cannot shift).
pub fn shift(value: &str, format: DateFormat, days: i64) -> Option<String> {
    let trimmed = value.trim();
    let Some(p) = parse(trimmed, format) else {
        if format == DateFormat::Auto {
            return text_date::shift_text(trimmed, None, days);
        }
        return None;
    };
    // A partial date is shifted as its middle day, so its year (and month) move consistently
    // with the patient's full dates.
    let month = p.month.unwrap_or(7);
    let day = p.day.unwrap_or(if p.month.is_some() { 15 } else { 2 });
    let date = Date::from_calendar_date(p.year, Month::try_from(month).ok()?, day).ok()?;
    let moved = date.checked_add(time::Duration::days(days))?;
    let (y, m, d) = (moved.year(), u8::from(moved.month()), moved.day());
    if !(1..=9999).contains(&y) {
        return None;
    }
    Some(render(&p, y, p.month.map(|_| m), p.day.map(|_| d)))
}

/// The year of a date, or `None` when `value` is not a date in `format`.
pub fn year(value: &str, format: DateFormat) -> Option<i32> {
    let trimmed = value.trim();
    match parse(trimmed, format) {
        Some(p) => Some(p.year),
        None if format == DateFormat::Auto => text_date::DateText::parse(trimmed, None)?.year(),
        None => None,
    }
}

/// The date generalised to its year, written so the format accepts it: `2020` (ISO, HL7, DT),
/// `20200101` for DICOM DA, which must hold eight digits.
pub fn year_text(year: i32, format: DateFormat) -> String {
    let mut out = String::with_capacity(8);
    match u32::try_from(year).ok().filter(|y| *y <= 9999) {
        // Four digits written directly: this runs on every date of a Safe Harbor run, and
        // `format!` costs several times more.
        Some(y) => {
            for d in [y / 1000, y / 100 % 10, y / 10 % 10, y % 10] {
                out.push(char::from(b'0' + d as u8));
            }
        }
        None => out.push_str(&format!("{year:04}")),
    }
    if format == DateFormat::DicomDa {
        out.push_str("0101");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_shift_keeps_precision_and_time() {
        assert_eq!(
            shift("2020-03-14", DateFormat::Iso, 10).as_deref(),
            Some("2020-03-24")
        );
        assert_eq!(
            shift("2020-12-30T09:30:00+01:00", DateFormat::Iso, 3).as_deref(),
            Some("2021-01-02T09:30:00+01:00")
        );
        assert_eq!(
            shift("2020-03", DateFormat::Iso, 20).as_deref(),
            Some("2020-04")
        );
        assert_eq!(
            shift("2020", DateFormat::Iso, -200).as_deref(),
            Some("2019")
        );
        assert_eq!(shift("2020-02-30", DateFormat::Iso, 1), None);
        assert_eq!(shift("not a date", DateFormat::Iso, 1), None);
    }

    #[test]
    fn hl7_and_dicom_shift() {
        assert_eq!(
            shift("20200314093000.123-0500", DateFormat::Hl7, -14).as_deref(),
            Some("20200229093000.123-0500")
        );
        assert_eq!(
            shift("202003", DateFormat::Hl7, 30).as_deref(),
            Some("202004")
        );
        assert_eq!(shift("196203520", DateFormat::Hl7, 1), None);
        assert_eq!(
            shift("20200314", DateFormat::DicomDa, 1).as_deref(),
            Some("20200315")
        );
        assert_eq!(
            shift("2020.03.14", DateFormat::DicomDa, 1).as_deref(),
            Some("2020.03.15")
        );
        assert_eq!(shift("2020031", DateFormat::DicomDa, 1), None);
    }

    #[test]
    fn years() {
        assert_eq!(year("2020-03-14T10:00:00Z", DateFormat::Iso), Some(2020));
        assert_eq!(year("19620315", DateFormat::Hl7), Some(1962));
        assert_eq!(year("03/14/2021", DateFormat::Auto), Some(2021));
        assert_eq!(year_text(1962, DateFormat::DicomDa), "19620101");
        assert_eq!(year_text(1962, DateFormat::Hl7), "1962");
        assert_eq!(year_text(7, DateFormat::Iso), "0007");
        assert_eq!(year_text(2000, DateFormat::DicomDa), "20000101");
        assert_eq!(year_text(12345, DateFormat::Iso), "12345");
        assert_eq!(year_text(-44, DateFormat::Iso), "-044");
    }

    #[test]
    fn intervals_are_preserved() {
        let a = shift("2019-12-25", DateFormat::Iso, 123).unwrap_or_default();
        let b = shift("2020-03-01", DateFormat::Iso, 123).unwrap_or_default();
        let d = |s: &str| {
            let y: i32 = s[..4].parse().unwrap_or(0);
            let m: u8 = s[5..7].parse().unwrap_or(1);
            let d: u8 = s[8..10].parse().unwrap_or(1);
            Date::from_calendar_date(y, Month::try_from(m).unwrap_or(Month::January), d)
                .map(|x| x.to_julian_day())
                .unwrap_or(0)
        };
        assert_eq!(d(&b) - d(&a), 67);
    }
}
