//! A synthetic transaction Bundle of any size, generated as it is read (`Read + Seek`, never
//! held whole): pretty-printed like Synthea's, or compact on one line like a FHIR server's
//! response, a Patient every 50 entries and Observations that point at it, with names,
//! identifiers, phone numbers, dates and notes to de-identify.
//! Numbers are written at fixed width, so every entry of a kind has the same length and any
//! position maps to an entry.

use std::io::{Read, Seek, SeekFrom};

use phiguard_fhir::Json;

/// Entries per Patient.
pub const PER_PATIENT: u64 = 50;

const HEAD: &str = "{\n  \"resourceType\": \"Bundle\",\n  \"id\": \"synthetic-0001\",\n  \"type\": \"transaction\",\n  \"entry\": [\n";
const TAIL: &str = "\n  ],\n  \"timestamp\": \"2024-02-03T04:05:06Z\"\n}\n";
const SEP: &str = ",\n";
const HEAD_COMPACT: &str =
    r#"{"resourceType":"Bundle","id":"synthetic-0001","type":"transaction","entry":["#;
const TAIL_COMPACT: &str = "],\"timestamp\":\"2024-02-03T04:05:06Z\"}\n";
const SEP_COMPACT: &str = ",";

fn uuid(i: u64) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// Entry `i`, compact.
fn compact(i: u64) -> String {
    let p = i - i % PER_PATIENT;
    if i.is_multiple_of(PER_PATIENT) {
        format!(
            r#"{{"fullUrl":"urn:uuid:{u}","resource":{{"resourceType":"Patient","id":"{u}","text":{{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Given{i:07} Family{i:07}</div>"}},"identifier":[{{"system":"http://hospital.example/mrn","value":"MRN{i:09}"}}],"name":[{{"use":"official","family":"Family{i:07}","given":["Given{i:07}"]}}],"telecom":[{{"system":"phone","value":"555-{a:03}-{b:04}","use":"home"}}],"gender":"female","birthDate":"19{y:02}-03-14","address":[{{"line":["{i:07} Main Street"],"city":"Springfield","state":"MA","postalCode":"01103","country":"US"}}]}},"request":{{"method":"POST","url":"Patient"}}}}"#,
            u = uuid(i),
            a = (i / 10_000) % 1000,
            b = i % 10_000,
            y = 30 + i % 60,
        )
    } else {
        format!(
            r#"{{"fullUrl":"urn:uuid:{u}","resource":{{"resourceType":"Observation","id":"{u}","status":"final","category":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs","display":"vital signs"}}]}}],"code":{{"coding":[{{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}}],"text":"Heart rate"}},"subject":{{"reference":"urn:uuid:{pu}"}},"effectiveDateTime":"2020-{m:02}-{d:02}T10:20:30+00:00","issued":"2020-{m:02}-{d:02}T10:20:30.000+00:00","valueQuantity":{{"value":{v},"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}},"note":[{{"text":"Family{p:07} seen, pulse {v}; call back on 555-{a:03}-{b:04}."}}]}},"request":{{"method":"POST","url":"Observation"}}}}"#,
            u = uuid(i),
            pu = uuid(p),
            m = 1 + i % 12,
            d = 1 + i % 28,
            v = 60 + i % 40,
            a = (p / 10_000) % 1000,
            b = p % 10_000,
        )
    }
}

/// Entry `i` pretty-printed at its place in the Bundle (two levels deep), without separator.
pub fn entry(i: u64) -> Vec<u8> {
    let j = Json::from_slice(compact(i).as_bytes()).unwrap_or(Json::Null);
    let pretty = serde_json::to_vec_pretty(&j).unwrap_or_default();
    let mut out = Vec::with_capacity(pretty.len() + pretty.len() / 4);
    out.extend_from_slice(b"    ");
    for &c in &pretty {
        out.push(c);
        if c == b'\n' {
            out.extend_from_slice(b"    ");
        }
    }
    out
}

/// A Bundle of `entries` entries as a reader.
pub struct Bundle {
    entries: u64,
    /// On one line (but for a final newline).
    compact: bool,
    /// Length of a Patient entry and of an Observation entry, separator included.
    patient_len: u64,
    other_len: u64,
    pos: u64,
    /// The entry under `pos`: its index and bytes.
    cur: Option<(u64, Vec<u8>)>,
}

impl Bundle {
    pub fn new(entries: u64) -> Bundle {
        Bundle::with(entries, false)
    }

    fn with(entries: u64, compact: bool) -> Bundle {
        let mut b = Bundle {
            entries,
            compact,
            patient_len: 0,
            other_len: 0,
            pos: 0,
            cur: None,
        };
        b.patient_len = b.entry(0).len() as u64 + b.sep().len() as u64;
        b.other_len = b.entry(1).len() as u64 + b.sep().len() as u64;
        b
    }

    /// About `bytes` long, pretty-printed.
    pub fn of_size(bytes: u64) -> Bundle {
        Bundle::sized(bytes, false)
    }

    /// About `bytes` long, compact on one line.
    pub fn compact_of_size(bytes: u64) -> Bundle {
        Bundle::sized(bytes, true)
    }

    fn sized(bytes: u64, compact: bool) -> Bundle {
        let b = Bundle::with(1, compact);
        let per = (b.patient_len + (PER_PATIENT - 1) * b.other_len) / PER_PATIENT;
        Bundle::with((bytes / per).max(1), compact)
    }

    fn head(&self) -> &'static str {
        if self.compact { HEAD_COMPACT } else { HEAD }
    }

    fn tail(&self) -> &'static str {
        if self.compact { TAIL_COMPACT } else { TAIL }
    }

    fn sep(&self) -> &'static str {
        if self.compact { SEP_COMPACT } else { SEP }
    }

    fn entry(&self, i: u64) -> Vec<u8> {
        if self.compact {
            compact(i).into_bytes()
        } else {
            entry(i)
        }
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Where entry `i` starts.
    fn offset(&self, i: u64) -> u64 {
        let patients = i.div_ceil(PER_PATIENT);
        self.head().len() as u64 + patients * self.patient_len + (i - patients) * self.other_len
    }

    pub fn len(&self) -> u64 {
        // The last entry has no separator.
        self.offset(self.entries) - self.sep().len() as u64 + self.tail().len() as u64
    }

    /// The entry holding body position `at` (`at` past the head, before the tail).
    fn entry_at(&self, at: u64) -> u64 {
        let cycle = self.patient_len + (PER_PATIENT - 1) * self.other_len;
        let rel = at - self.head().len() as u64;
        let base = rel / cycle * PER_PATIENT;
        let r = rel % cycle;
        if r < self.patient_len {
            base
        } else {
            base + 1 + (r - self.patient_len) / self.other_len
        }
    }
}

impl Read for Bundle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = self.len();
        if self.pos >= len || buf.is_empty() {
            return Ok(0);
        }
        let (head, tail) = (self.head(), self.tail());
        let tail_at = len - tail.len() as u64;
        let head_len = head.len() as u64;
        let chunk: &[u8];
        let from;
        if self.pos < head_len {
            chunk = head.as_bytes();
            from = self.pos;
        } else if self.pos >= tail_at {
            chunk = tail.as_bytes();
            from = self.pos - tail_at;
        } else {
            let i = self.entry_at(self.pos);
            if self.cur.as_ref().is_none_or(|(c, _)| *c != i) {
                let mut e = self.entry(i);
                if i + 1 < self.entries {
                    e.extend_from_slice(self.sep().as_bytes());
                }
                self.cur = Some((i, e));
            }
            chunk = self.cur.as_ref().map_or(&[][..], |(_, e)| e.as_slice());
            from = self.pos - self.offset(i);
        }
        let rest = &chunk[from as usize..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Bundle {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let to = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = to.ok_or_else(|| std::io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}
