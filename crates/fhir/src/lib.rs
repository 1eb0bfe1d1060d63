//! # phiguard-fhir
//!
//! FHIR R4 JSON de-identification: a single resource, a Bundle (any type, with `fullUrl` and
//! `request.url`; from a file, a big one is streamed entry by entry in two passes, see
//! [`FhirDeid::deidentify_seekable`]), or NDJSON bulk export (one resource per line,
//! streamed). One rule language
//! ([`phiguard_rules`]) and one key with the other formats: a patient's ids, references and
//! date shift are the same in their FHIR resources, HL7 messages, CSV rows and DICOM files.
//!
//! - Rules: the user's (`[fhir] rules` in the config) first, then the built-in profile's
//!   (`safe-harbor`, `limited-data-set`, `shifted`), then a fail-safe default for values no rule
//!   covers (strings through the text detector, dates to the year, ids pseudonymised; counted in
//!   [`Tally::uncovered`]). Selectors: see [`selector`] and `docs/fhir.md`.
//! - Type knowledge without the full schema: a compact element → type table plus shape
//!   heuristics ([`types`]).
//! - References: `Patient/abc`, `urn:uuid:abc`, `#abc`, absolute and conditional references
//!   keep their form with the id pseudonymised (UUIDs stay UUIDs), consistent with the
//!   resources' own ids and with identifier values.
//! - Free text (narrative, notes, text attachments, unknown strings) goes through the text
//!   detector on text nodes only, then through the record's own names, streets, phone numbers
//!   and identifier values ([`dictionary`]).
//!
//! ```
//! use phiguard_rules::{Config, Engine, ProfileName, Tally};
//! use phiguard_deid::DeidKey;
//!
//! let config = Config::builtin(ProfileName::SafeHarbor);
//! let fhir = phiguard_fhir::FhirDeid::new(&config).unwrap();
//! let engine = Engine::new(DeidKey::from_bytes([7; 32]), config.engine_options());
//! let input = br#"{"resourceType":"Patient","id":"p1","name":[{"family":"Doe"}],"birthDate":"1970-05-06"}"#;
//! let mut out = Vec::new();
//! fhir.deidentify(&engine, &input[..], &mut out, &mut Tally::default()).unwrap();
//! let text = String::from_utf8(out).unwrap();
//! assert!(!text.contains("Doe") && text.contains("\"birthDate\":\"1970\""));
//! ```

pub mod dictionary;
pub mod json;
pub mod narrative;
pub mod profile;
pub mod selector;
mod stream;
pub mod types;
mod walk;

use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use phiguard_rules::{Config, ConfigError, Engine, ProfileName, Rule, RuleSet, Tally};

pub use json::Json;
pub use selector::FhirSelector;

/// Errors de-identifying FHIR. They name the position (line and column, NDJSON line, JSON
/// pointer), never a value.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    #[error("invalid JSON at line {line}, column {column}: {what}")]
    Json {
        line: usize,
        column: usize,
        what: String,
    },
    #[error("NDJSON line {line}: invalid JSON at column {column}: {what}")]
    NdjsonLine {
        line: usize,
        column: usize,
        what: String,
    },
    #[error("{at}: {what}")]
    Structure { at: String, what: &'static str },
    #[error("{at}: {what}")]
    Rule { at: String, what: String },
    #[error("reading input: {0}")]
    Read(std::io::Error),
    #[error("writing output: {0}")]
    Write(std::io::Error),
}

/// What serde_json says went wrong, without the position suffix. serde_json's syntax messages
/// are fixed texts ("expected `,` or `}`"); data errors could quote input, so they are not used.
fn json_what(e: &serde_json::Error) -> String {
    use serde_json::error::Category as C;
    match e.classify() {
        C::Eof => "unexpected end of input".to_string(),
        C::Io => "read error".to_string(),
        C::Data => "invalid value".to_string(),
        C::Syntax => {
            let s = e.to_string();
            match s.rfind(" at line ") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// JSON documents of at least this many bytes are streamed by
/// [`FhirDeid::deidentify_seekable`] unless [`FhirDeid::with_stream_threshold`] says otherwise.
/// Smaller ones are read whole, which is faster (one pass, serde_json's slice reader).
pub const STREAM_THRESHOLD: u64 = 8 << 20;

/// The FHIR de-identifier for one config. Build once per run; `Send + Sync`.
pub struct FhirDeid {
    rules: Vec<Rule<FhirSelector>>,
    profile: ProfileName,
    stream_threshold: u64,
}

impl FhirDeid {
    /// Compiles `[fhir] rules` and the built-in profile's rules. Errors name the rule.
    pub fn new(config: &Config) -> Result<FhirDeid, ConfigError> {
        let user = RuleSet::<FhirSelector>::compile("fhir", &config.fhir.rules)?;
        let builtin = RuleSet::<FhirSelector>::builtin(
            config.profile.as_str(),
            &profile::rules(config.profile),
        )?;
        let set = user.then(builtin);
        Ok(FhirDeid {
            rules: set.iter().cloned().collect(),
            profile: config.profile,
            stream_threshold: STREAM_THRESHOLD,
        })
    }

    /// Sets the size from which [`FhirDeid::deidentify_seekable`] streams a Bundle document
    /// (default [`STREAM_THRESHOLD`]; `0` streams every Bundle, `u64::MAX` none).
    pub fn with_stream_threshold(mut self, bytes: u64) -> FhirDeid {
        self.stream_threshold = bytes;
        self
    }

    /// The compiled rules, user rules first.
    pub fn rules(&self) -> &[Rule<FhirSelector>] {
        &self.rules
    }

    /// De-identifies one parsed record (a resource or a Bundle) in place.
    pub fn deidentify_value(
        &self,
        engine: &Engine,
        value: &mut Json,
        tally: &mut Tally,
    ) -> Result<(), FhirError> {
        self.record(engine, value, tally, None)
    }

    fn record(
        &self,
        engine: &Engine,
        value: &mut Json,
        tally: &mut Tally,
        line: Option<usize>,
    ) -> Result<(), FhirError> {
        let mut dict = dictionary::Dictionary::default();
        walk::collect(
            value,
            types::DType::Resource,
            "",
            self.profile == ProfileName::LimitedDataSet,
            &mut dict,
        );
        dict.build();
        let index = walk::Index::of(value);
        let mut w = walk::Walker::new(&self.rules, engine, tally, &dict, &index);
        w.line = line;
        w.cap_ages = self.profile != ProfileName::LimitedDataSet;
        w.walk_root(value)
    }

    /// Reads a resource, a Bundle or NDJSON from `input` and writes the de-identified form to
    /// `out`: a document is written pretty-printed, NDJSON one compact resource per line. On
    /// error the caller discards `out`. A document is read whole; for files use
    /// [`FhirDeid::deidentify_seekable`], which streams big Bundles.
    pub fn deidentify<R: Read, W: Write>(
        &self,
        engine: &Engine,
        input: R,
        out: W,
        tally: &mut Tally,
    ) -> Result<(), FhirError> {
        self.deidentify_with_threads(engine, input, out, tally, 1)
    }

    /// As [`FhirDeid::deidentify`], with NDJSON lines spread over `threads` threads (batches
    /// of lines, written back in input order; memory stays bounded by the batch). Documents
    /// are processed on the calling thread. Use it for one big export; for many files, spread
    /// the files instead.
    pub fn deidentify_with_threads<R: Read, W: Write>(
        &self,
        engine: &Engine,
        input: R,
        out: W,
        tally: &mut Tally,
        threads: usize,
    ) -> Result<(), FhirError> {
        let mut reader = BufReader::with_capacity(1 << 16, input);
        let mut out = BufWriter::with_capacity(1 << 16, out);
        let (first, _) = first_line(&mut reader)?;
        tally.files += 1;
        if is_ndjson(&first) {
            self.ndjson(engine, reader, first, &mut out, tally, threads)?;
        } else {
            self.document(engine, reader, first, &mut out, tally)?;
        }
        out.flush().map_err(FhirError::Write)
    }

    /// As [`FhirDeid::deidentify_with_threads`] for an input that can be read twice (a file),
    /// from its current position. A Bundle document of [`STREAM_THRESHOLD`] bytes or more is
    /// streamed: read twice, one entry at a time (the first pass collects the Bundle's
    /// identifying values and Patient entries, the second de-identifies and writes), so memory
    /// is bounded by the largest entry plus those values, not by the Bundle. The output, the
    /// tally and the errors are those of the whole-document path, byte for byte. A document
    /// that is not a Bundle is one record and is read whole, as are the rare Bundles a rule
    /// removes or keeps whole.
    ///
    /// The layout is told from the first line without holding it: a Bundle written compactly
    /// on one line (the whole file one line, then only whitespace) is streamed too, and
    /// written back compact on one line, as [`FhirDeid::deidentify`] writes a one-line file.
    pub fn deidentify_seekable<R: Read + Seek, W: Write>(
        &self,
        engine: &Engine,
        mut input: R,
        out: W,
        tally: &mut Tally,
        threads: usize,
    ) -> Result<(), FhirError> {
        let start = input.stream_position().map_err(FhirError::Read)?;
        let end = input.seek(SeekFrom::End(0)).map_err(FhirError::Read)?;
        input
            .seek(SeekFrom::Start(start))
            .map_err(FhirError::Read)?;
        let body = start + skip_bom(&mut input)?;
        let big = end.saturating_sub(start) >= self.stream_threshold;
        let mut reader = BufReader::with_capacity(1 << 16, input);
        let shape = shape(&mut reader, big)?;
        let mut input = reader.into_inner();
        let mut out = BufWriter::with_capacity(1 << 16, out);
        tally.files += 1;
        let layout = match shape {
            _ if !big => None,
            Shape::Document => Some(stream::Layout::Pretty),
            Shape::OneLine => Some(stream::Layout::Line),
            Shape::Ndjson => None,
        };
        let streamed = match layout {
            Some(layout) => {
                stream::bundle(self, engine, &mut input, body, layout, &mut out, tally)?
            }
            None => stream::Streamed::Whole,
        };
        if let stream::Streamed::Whole = streamed {
            input.seek(SeekFrom::Start(body)).map_err(FhirError::Read)?;
            let mut reader = BufReader::with_capacity(1 << 16, input);
            if shape == Shape::Document {
                self.document(engine, reader, Vec::new(), &mut out, tally)?;
            } else {
                let mut first = Vec::new();
                reader
                    .read_until(b'\n', &mut first)
                    .map_err(FhirError::Read)?;
                self.ndjson(engine, reader, first, &mut out, tally, threads)?;
            }
        }
        out.flush().map_err(FhirError::Write)
    }

    /// A JSON document read whole: `first` (its first line) and the rest of `reader`.
    fn document<R: Read, W: Write>(
        &self,
        engine: &Engine,
        mut reader: R,
        first: Vec<u8>,
        out: &mut W,
        tally: &mut Tally,
    ) -> Result<(), FhirError> {
        let mut all = first;
        reader.read_to_end(&mut all).map_err(FhirError::Read)?;
        let mut v = Json::from_slice(&all).map_err(|e| FhirError::Json {
            line: e.line(),
            column: e.column(),
            what: json_what(&e),
        })?;
        drop(all);
        self.record(engine, &mut v, tally, None)?;
        serde_json::to_writer_pretty(&mut *out, &v).map_err(|e| FhirError::Write(e.into()))?;
        out.write_all(b"\n").map_err(FhirError::Write)
    }

    /// NDJSON: `first` (line 1) and the lines of `reader`, in batches.
    fn ndjson<R: BufRead, W: Write>(
        &self,
        engine: &Engine,
        mut reader: R,
        first: Vec<u8>,
        out: &mut W,
        tally: &mut Tally,
        threads: usize,
    ) -> Result<(), FhirError> {
        let threads = threads.max(1);
        let batch_size = if threads == 1 { 1 } else { threads * 64 };
        let mut batch: Vec<(usize, Vec<u8>)> = vec![(1, first)];
        let mut line_no = 1usize;
        loop {
            let mut eof = false;
            while batch.len() < batch_size {
                let mut buf = Vec::new();
                if reader
                    .read_until(b'\n', &mut buf)
                    .map_err(FhirError::Read)?
                    == 0
                {
                    eof = true;
                    break;
                }
                line_no += 1;
                batch.push((line_no, buf));
            }
            for line in self.lines(engine, &batch, tally, threads)? {
                out.write_all(&line).map_err(FhirError::Write)?;
            }
            batch.clear();
            if eof {
                break;
            }
        }
        Ok(())
    }

    /// De-identifies a batch of NDJSON lines, in order; blank lines produce nothing.
    fn lines(
        &self,
        engine: &Engine,
        batch: &[(usize, Vec<u8>)],
        tally: &mut Tally,
        threads: usize,
    ) -> Result<Vec<Vec<u8>>, FhirError> {
        // Each line's changes are sampled for the review sheet with a seed of its own (from
        // its line number), then merged: the sample does not depend on how lines are shared
        // out between threads.
        let base = tally.review.fork(0);
        if threads == 1 || batch.len() < 2 {
            return batch
                .iter()
                .map(|(n, b)| self.line_sampled(engine, *n, b, tally, &base))
                .filter_map(Result::transpose)
                .collect();
        }
        let chunk = batch.len().div_ceil(threads);
        let base = &base;
        let results: Vec<(LinesResult, Tally)> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        let mut t = Tally {
                            review: base.fork(0),
                            ..Tally::default()
                        };
                        let r = part
                            .iter()
                            .map(|(n, b)| self.line_sampled(engine, *n, b, &mut t, base))
                            .filter_map(Result::transpose)
                            .collect();
                        (r, t)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        (
                            Err(FhirError::Structure {
                                at: "NDJSON batch".into(),
                                what: "a worker thread failed",
                            }),
                            Tally::default(),
                        )
                    })
                })
                .collect()
        });
        let mut out = Vec::with_capacity(batch.len());
        for (r, t) in results {
            tally.merge(t);
            out.extend(r?);
        }
        Ok(out)
    }

    /// One NDJSON line: the de-identified resource and a newline, `None` when blank.
    /// [`FhirDeid::line`] with the line's review sample drawn with a seed of its line number
    /// (from `base`) and merged into `tally`'s.
    fn line_sampled(
        &self,
        engine: &Engine,
        line_no: usize,
        body: &[u8],
        tally: &mut Tally,
        base: &phiguard_rules::ReviewSample,
    ) -> Result<Option<Vec<u8>>, FhirError> {
        let outer = std::mem::replace(&mut tally.review, base.fork(line_no as u64));
        let r = self.line(engine, line_no, body, tally);
        let mine = std::mem::replace(&mut tally.review, outer);
        tally.review.merge(mine);
        r
    }

    fn line(
        &self,
        engine: &Engine,
        line_no: usize,
        body: &[u8],
        tally: &mut Tally,
    ) -> Result<Option<Vec<u8>>, FhirError> {
        if body.trim_ascii().is_empty() {
            return Ok(None);
        }
        let mut v = Json::from_slice(body).map_err(|e| FhirError::NdjsonLine {
            line: line_no,
            column: e.column(),
            what: json_what(&e),
        })?;
        self.record(engine, &mut v, tally, Some(line_no))?;
        let mut out = serde_json::to_vec(&v).map_err(|e| FhirError::Write(e.into()))?;
        out.push(b'\n');
        Ok(Some(out))
    }
}

/// De-identified NDJSON lines of one chunk, or the first error.
type LinesResult = Result<Vec<Vec<u8>>, FhirError>;

/// The first line of the input (with its newline), without a UTF-8 byte-order mark, and
/// whether there was one.
fn first_line<R: BufRead>(reader: &mut R) -> Result<(Vec<u8>, bool), FhirError> {
    let mut first = Vec::new();
    reader
        .read_until(b'\n', &mut first)
        .map_err(FhirError::Read)?;
    match first.strip_prefix(b"\xEF\xBB\xBF") {
        Some(b) => Ok((b.to_vec(), true)),
        None => Ok((first, false)),
    }
}

/// NDJSON when the first line is a whole JSON object by itself.
fn is_ndjson(first: &[u8]) -> bool {
    first.trim_ascii_start().starts_with(b"{")
        && serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok()
}

/// Skips a UTF-8 byte-order mark at the current position of `input`: its length, 3 or 0.
fn skip_bom<R: Read + Seek>(input: &mut R) -> Result<u64, FhirError> {
    let at = input.stream_position().map_err(FhirError::Read)?;
    let mut head = Vec::with_capacity(3);
    input
        .by_ref()
        .take(3)
        .read_to_end(&mut head)
        .map_err(FhirError::Read)?;
    let skip = if head == b"\xEF\xBB\xBF" { 3 } else { 0 };
    input
        .seek(SeekFrom::Start(at + skip))
        .map_err(FhirError::Read)?;
    Ok(skip)
}

/// The layout of an input, told by [`shape`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    /// The first line is not a JSON object by itself: a document over several lines (or not
    /// JSON at all), read or streamed whole and written pretty-printed.
    Document,
    /// The first line is a JSON object by itself ([`is_ndjson`]): NDJSON, written one compact
    /// resource per line. When [`shape`] was asked, another line follows.
    Ndjson,
    /// The first line is a JSON object by itself and only whitespace follows: a resource or
    /// a Bundle written compactly on one line. As NDJSON of one line it is written compact on
    /// one line (as it always was); a big Bundle is streamed in that layout.
    OneLine,
}

/// Tells the layout of the input after any byte-order mark, as [`is_ndjson`] does on its
/// first line, without holding that line: the line is parsed as it is read (a huge Bundle
/// on one line costs one extra reading pass, not memory), and the reading stops early where
/// the line cannot be a whole object (its first byte other than whitespace is not `{`, or a
/// syntax error). With `alone`, an object by itself on line 1 followed only by whitespace is
/// [`Shape::OneLine`]. Leaves `reader` anywhere.
fn shape<R: BufRead>(reader: &mut R, alone: bool) -> Result<Shape, FhirError> {
    let mut line = FirstLine {
        inner: &mut *reader,
        first: None,
        ended: false,
        stopped: false,
    };
    let r = serde_json::from_reader::<_, serde::de::IgnoredAny>(&mut line);
    if line.stopped {
        return Ok(Shape::Document);
    }
    match r {
        Err(e) if e.is_io() => return Err(FhirError::Read(e.into())),
        Err(_) => return Ok(Shape::Document),
        Ok(_) if line.first != Some(b'{') => return Ok(Shape::Document),
        Ok(_) => {}
    }
    if !alone {
        return Ok(Shape::Ndjson);
    }
    // serde_json read the line to its end (trailing whitespace); what follows?
    loop {
        let buf = reader.fill_buf().map_err(FhirError::Read)?;
        if buf.is_empty() {
            return Ok(Shape::OneLine);
        }
        if buf.iter().any(|b| !b.is_ascii_whitespace()) {
            return Ok(Shape::Ndjson);
        }
        let n = buf.len();
        reader.consume(n);
    }
}

/// The first line of a reader (with its newline) and then end of input, for [`shape`]. It
/// notes the line's first byte other than whitespace and stops, with an error, when that is
/// not `{`.
struct FirstLine<'r, R> {
    inner: &'r mut R,
    first: Option<u8>,
    /// The newline was given out.
    ended: bool,
    /// Stopped on a first byte other than `{`.
    stopped: bool,
}

impl<R: BufRead> Read for FirstLine<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ended || buf.is_empty() {
            return Ok(0);
        }
        let avail = self.inner.fill_buf()?;
        let mut n = avail.len().min(buf.len());
        if let Some(i) = avail[..n].iter().position(|&b| b == b'\n') {
            n = i + 1;
            self.ended = true;
        }
        if self.first.is_none()
            && let Some(&c) = avail[..n].iter().find(|b| !b.is_ascii_whitespace())
        {
            self.first = Some(c);
            if c != b'{' {
                self.stopped = true;
                return Err(std::io::Error::other("not an object"));
            }
        }
        buf[..n].copy_from_slice(&avail[..n]);
        self.inner.consume(n);
        Ok(n)
    }
}

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

/// True if these first bytes look like FHIR JSON or NDJSON: an object that names a
/// `resourceType` within the bytes given (the caller chooses how many to read).
pub fn sniff(first_bytes: &[u8]) -> bool {
    let b = strip_bom(first_bytes).trim_ascii_start();
    if !b.starts_with(b"{") {
        return false;
    }
    b.windows(b"\"resourceType\"".len())
        .any(|w| w == b"\"resourceType\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs() {
        assert!(sniff(b"\xEF\xBB\xBF  {\"resourceType\":\"Bundle\""));
        assert!(sniff(b"{\n  \"id\": 1,\n  \"resourceType\": \"Patient\""));
        assert!(!sniff(b"MSH|^~\\&|"));
        assert!(!sniff(b"{\"text\":\"note\"}"));
    }

    fn told(input: &[u8], alone: bool) -> Shape {
        let mut r = BufReader::with_capacity(7, input);
        shape(&mut r, alone).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `shape` (reading) says what `is_ndjson` (on the first line, held) says.
    fn agrees(input: &[u8]) {
        let line = match input.iter().position(|&b| b == b'\n') {
            Some(i) => &input[..=i],
            None => input,
        };
        let rest_blank = input[line.len()..].iter().all(u8::is_ascii_whitespace);
        let want = match (is_ndjson(line), rest_blank) {
            (false, _) => (Shape::Document, Shape::Document),
            (true, true) => (Shape::Ndjson, Shape::OneLine),
            (true, false) => (Shape::Ndjson, Shape::Ndjson),
        };
        assert_eq!((told(input, false), told(input, true)), want);
    }

    #[test]
    fn shapes() {
        let p = br#"{"resourceType":"Patient","id":"a"}"#;
        for (input, want) in [
            (&b""[..], Shape::Document),
            (b"  \n", Shape::Document),
            (b"{\n  \"resourceType\": \"Bundle\"\n}\n", Shape::Document),
            (b"\n{}", Shape::Document),
            (b"[{}]", Shape::Document),
            (b"{} {}", Shape::Document),
            (b"\x0c{}", Shape::Document),
            (b"{}", Shape::OneLine),
            (b" {} \r\n \n\t", Shape::OneLine),
            (b"{}\n{}", Shape::Ndjson),
            (b"{}\n\n  x", Shape::Ndjson),
        ] {
            assert_eq!(
                told(input, true),
                want,
                "{}",
                String::from_utf8_lossy(input)
            );
            agrees(input);
        }
        // A line longer than the reader's buffer, an object, then blank lines or another line.
        let long = [
            &b"{\"a\":["[..],
            &vec![&p[..]; 1000].join(&b","[..]),
            b"]}\n\n",
        ]
        .concat();
        assert_eq!(told(&long, true), Shape::OneLine);
        agrees(&long);
        let more = [&long[..], b"{}"].concat();
        assert_eq!(told(&more, true), Shape::Ndjson);
    }

    proptest::proptest! {
        #[test]
        fn shape_agrees_with_is_ndjson(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                &b"{"[..], b"}", b"[", b"]", b":", b",", b"\"a\"", b"\"\\n\"", b"1", b"1e999",
                b"-", b"x", b" ", b"\t", b"\r", b"\n", b"\x0c", b"\"\\u00e9\"", b"\"\xc3\xa9\"",
                b"\"\xff\"", b"null", b"{\"a\":1}",
            ]),
            0..24,
        )) {
            agrees(&parts.concat());
        }
    }
}
