//! Selectors: `PID-5` (a field, every repetition and component), `PID-5.1` (a component),
//! `PID-5.1.2` (a subcomponent), `PID-3[2]` (the second repetition; `PID-3[2].1` its first
//! component), `NK1-*` (every field of a segment), `Z*-3` / `Z*-*` (Z-segments), `*-*` (every
//! field of every segment). MSH fields are numbered as the standard numbers them: MSH-1 is the
//! field separator and MSH-2 the encoding characters, which no rule may change.

use std::fmt;

use phiguard_rules::Selector;

/// Which segments a selector names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentPattern {
    /// One segment id (`PID`).
    Exact([u8; 3]),
    /// Every segment whose id starts with this prefix (`Z*`: `Z`, `*`: empty).
    Prefix(Vec<u8>),
}

impl SegmentPattern {
    pub fn matches(&self, id: &[u8]) -> bool {
        match self {
            SegmentPattern::Exact(s) => s.as_slice() == id,
            SegmentPattern::Prefix(p) => id.starts_with(p),
        }
    }
}

/// A parsed selector. Numbers are 1-based; `None` means "every".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7Selector {
    pub segment: SegmentPattern,
    pub field: Option<u16>,
    pub repetition: Option<u16>,
    pub component: Option<u16>,
    pub subcomponent: Option<u16>,
}

fn number(s: &str, what: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{what} must be a number from 1 to 65535, found {s:?}"
        )),
    }
}

impl Selector for Hl7Selector {
    fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (seg, rest) = t.split_once('-').ok_or_else(|| {
            "expected SEG-FIELD, e.g. PID-5, PID-5.1, PID-3[2], NK1-*".to_string()
        })?;
        let segment = if let Some(prefix) = seg.strip_suffix('*') {
            if prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("bad segment pattern {seg:?}"));
            }
            SegmentPattern::Prefix(prefix.to_ascii_uppercase().into_bytes())
        } else {
            let b = seg.to_ascii_uppercase().into_bytes();
            match <[u8; 3]>::try_from(b.as_slice()) {
                Ok(id) if id.iter().all(u8::is_ascii_alphanumeric) => SegmentPattern::Exact(id),
                _ => {
                    return Err(format!(
                        "segment id must be three letters or digits, found {seg:?}"
                    ));
                }
            }
        };
        if rest == "*" {
            return Ok(Hl7Selector {
                segment,
                field: None,
                repetition: None,
                component: None,
                subcomponent: None,
            });
        }
        let mut parts = rest.split('.');
        let field_part = parts.next().unwrap_or("");
        let (field_text, repetition) = match field_part.split_once('[') {
            Some((f, r)) => {
                let r = r
                    .strip_suffix(']')
                    .ok_or_else(|| format!("unclosed repetition index in {field_part:?}"))?;
                (f, Some(number(r, "repetition")?))
            }
            None => (field_part, None),
        };
        let field = number(field_text, "field")?;
        let component = parts.next().map(|c| number(c, "component")).transpose()?;
        let subcomponent = parts
            .next()
            .map(|c| number(c, "subcomponent"))
            .transpose()?;
        if parts.next().is_some() {
            return Err("too many parts: SEG-FIELD[REP].COMPONENT.SUBCOMPONENT at most".into());
        }
        let header = matches!(&segment, SegmentPattern::Exact(id) if is_header(id));
        if header && field <= 2 {
            return Err(
                "fields 1 and 2 of MSH, FHS and BHS are the encoding characters and cannot be changed"
                    .into(),
            );
        }
        Ok(Hl7Selector {
            segment,
            field: Some(field),
            repetition,
            component,
            subcomponent,
        })
    }
}

/// Segments whose fields 1 and 2 are the delimiters.
pub fn is_header(id: &[u8]) -> bool {
    matches!(id, b"MSH" | b"FHS" | b"BHS")
}

impl Hl7Selector {
    /// True if the selector names a whole field (or every field), so a removal empties it.
    pub fn is_whole_field(&self) -> bool {
        self.repetition.is_none() && self.component.is_none() && self.subcomponent.is_none()
    }

    /// True if it applies to leaf (`rep`, `comp`, `sub`) of a field it names.
    pub fn matches_leaf(&self, rep: u16, comp: u16, sub: u16) -> bool {
        self.repetition.is_none_or(|r| r == rep)
            && self.component.is_none_or(|c| c == comp)
            && self.subcomponent.is_none_or(|s| s == sub)
    }
}

impl fmt::Display for Hl7Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.segment {
            SegmentPattern::Exact(id) => f.write_str(&String::from_utf8_lossy(id))?,
            SegmentPattern::Prefix(p) => write!(f, "{}*", String::from_utf8_lossy(p))?,
        }
        match self.field {
            None => f.write_str("-*"),
            Some(n) => {
                write!(f, "-{n}")?;
                if let Some(r) = self.repetition {
                    write!(f, "[{r}]")?;
                }
                if let Some(c) = self.component {
                    write!(f, ".{c}")?;
                }
                if let Some(s) = self.subcomponent {
                    write!(f, ".{s}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Hl7Selector, String> {
        Hl7Selector::parse(s)
    }

    #[test]
    fn parses_every_form() {
        for s in [
            "PID-5",
            "PID-5.1",
            "PID-5.1.2",
            "PID-3[2]",
            "PID-3[2].1",
            "NK1-*",
            "Z*-*",
            "*-*",
            "Z*-3",
            "MSH-3",
        ] {
            assert_eq!(p(s).unwrap().to_string(), s);
        }
        let s = p("pid-3[2].4.1").unwrap();
        assert_eq!(s.segment, SegmentPattern::Exact(*b"PID"));
        assert_eq!(
            (s.field, s.repetition, s.component, s.subcomponent),
            (Some(3), Some(2), Some(4), Some(1))
        );
        assert!(p("Z*-*").unwrap().segment.matches(b"ZPI"));
        assert!(!p("Z*-*").unwrap().segment.matches(b"PID"));
        assert!(p("*-*").unwrap().segment.matches(b"PID"));
    }

    #[test]
    fn rejects_bad_selectors() {
        for s in [
            "PID",
            "PID-",
            "PID-0",
            "PI-5",
            "PIDX-5",
            "PID-5.1.2.3",
            "PID-3[0]",
            "PID-3[2",
            "MSH-1",
            "MSH-2",
            "BHS-2",
            "PID-x",
        ] {
            assert!(p(s).is_err(), "{s}");
        }
    }
}
