//! # phiguard-hl7
//!
//! HL7 v2 de-identification with our own tokenizer: it honours the encoding characters each
//! message declares in MSH-1/MSH-2 (or FHS/BHS), including non-standard ones; decodes escape
//! sequences (`\F\ \S\ \T\ \R\ \E\ \Xhh\ \.br\ \H\ \N\`) for detection and re-encodes what
//! it writes; keeps each segment's CR, LF or CR LF ending, a UTF-8 byte order mark and blank
//! lines; reads batch and file wrappers (FHS/BHS/BTS/FTS, many MSH in one file); and streams
//! message by message, so memory is bounded by the largest message, not the file.
//!
//! Rules select values with `PID-5`, `PID-5.1`, `PID-5.1.2`, `PID-3[2]`, `NK1-*`, `Z*-*`,
//! `*-*` (see [`Hl7Selector`]); user rules come first, then the built-in profile (a table of the
//! PHI-bearing fields of v2.3–2.8 segments by data type, [`types`]), then a safe default: fields
//! no rule or table entry covers go through the free-text detector and are counted as uncovered.
//! The output has the same segments and field counts; a removed value is an emptied field.
//!
//! ```
//! use phiguard_deid::DeidKey;
//! use phiguard_rules::{Config, Engine, ProfileName, Tally};
//!
//! let config = Config::builtin(ProfileName::SafeHarbor);
//! let deid = phiguard_hl7::Hl7Deid::new(&config).unwrap();
//! let engine = Engine::new(DeidKey::from_bytes([1; 32]), config.engine_options());
//! let input = "MSH|^~\\&|APP|FAC|||20240102||ADT^A01|1|P|2.5\rPID|1||12345^^^H^MR||DOE^JANE||19800214|F\r";
//! let mut out = Vec::new();
//! let mut tally = Tally::default();
//! deid.deidentify(&engine, input.as_bytes(), &mut out, &mut tally).unwrap();
//! let out = String::from_utf8(out).unwrap();
//! assert!(!out.contains("DOE") && !out.contains("12345") && out.contains("|1980|F\r"));
//! ```

mod chunked;
mod deid;
pub mod delims;
mod dict;
pub mod parse;
pub mod profile;
pub mod reader;
pub mod selector;
pub mod types;

pub use chunked::CHUNK_MESSAGES;
pub use deid::Hl7Deid;
pub use delims::Delimiters;
pub use parse::{Segment, parse_segments};
pub use selector::{Hl7Selector, SegmentPattern};

/// Errors reading or de-identifying HL7. They name the line (segment number), byte offset,
/// segment and field, never a value.
#[derive(Debug, thiserror::Error)]
pub enum Hl7Error {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line} (byte {offset}): {message}")]
    Syntax {
        line: u64,
        offset: u64,
        message: &'static str,
    },
    #[error("line {line}, {segment}-{field}: {message}")]
    Value {
        line: u64,
        segment: String,
        field: u16,
        message: String,
    },
    #[error("input holds no HL7 message (no MSH, FHS or BHS segment)")]
    Empty,
}

/// True if these first bytes look like HL7 v2: an optional byte order mark and blank lines,
/// then `MSH`, `FHS` or `BHS` and a field separator followed by encoding characters.
pub fn sniff(first_bytes: &[u8]) -> bool {
    let mut b = first_bytes;
    if let Some(rest) = b.strip_prefix(b"\xEF\xBB\xBF") {
        b = rest;
    }
    let start = b
        .iter()
        .position(|c| !matches!(c, b'\r' | b'\n' | b' ' | b'\t'))
        .unwrap_or(b.len());
    let b = &b[start..];
    b.len() >= 8 && selector::is_header(&b[..3]) && Delimiters::from_header(b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_hl7() {
        assert!(sniff(b"MSH|^~\\&|A|B"));
        assert!(sniff(b"\xEF\xBB\xBFMSH|^~\\&|A"));
        assert!(sniff(b"\n\nFHS|^~\\&|A"));
        assert!(sniff(b"MSH^~|\\&^SENDING"));
        assert!(!sniff(b"{\"resourceType\":\"Patient\"}"));
        assert!(!sniff(b"MSHX^~\\&"));
        assert!(!sniff(b"PID|1||x"));
        assert!(!sniff(b""));
    }

    #[test]
    fn deid_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Hl7Deid>();
    }
}
