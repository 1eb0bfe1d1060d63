//! A Bundle document streamed in two passes, in memory bounded by its largest entry plus the
//! Bundle's dictionary and index, never the whole Bundle.
//!
//! A Bundle is one record: its free text is scrubbed with the identifying values of every
//! entry ([`Dictionary`]) and its references resolved through its Patient entries ([`Index`]).
//! Pass 1 reads the document with serde_json's streaming deserializer, one `entry` item at a
//! time, collecting both; the Bundle's other members (`id`, `meta`, `link`, `signature`...)
//! are small and kept. Pass 2 reads it again and de-identifies each entry and member in
//! document order, writing it at once at its place in serde_json's pretty layout, so the
//! output, the tally and the errors (JSON pointers `/entry/12/...` included) are those of the
//! whole-document path, byte for byte.
//!
//! A Bundle written compactly on one line (what FHIR servers return) is written back compact on
//! one line ([`Layout::Line`]), as the NDJSON path writes a one-line file, with that path's
//! errors (`NDJSON line 1: ...`, `line 1, /entry/12/...`).

use std::io::{BufReader, Read, Seek, SeekFrom, Write};

use serde::Serialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::ser::Serializer;

use crate::dictionary::Dictionary;
use crate::json::{Json, JsonVisitor};
use crate::types::DType;
use crate::walk::{self, Index, Walker};
use crate::{FhirDeid, FhirError, json_what};

/// What [`bundle`] did.
pub(crate) enum Streamed {
    /// The Bundle was de-identified and written.
    Done,
    /// Nothing was written: the document is not an object whose first `resourceType` is
    /// `"Bundle"`, or a rule takes the Bundle whole. The caller uses the whole-document path.
    Whole,
}

/// How the streamed Bundle is written, and which path's output and errors it reproduces.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Pretty-printed, as the whole-document path writes a document.
    Pretty,
    /// Compact on one line, as the NDJSON path writes line 1 of a file.
    Line,
}

/// One member of the top-level object, in document order.
struct Member {
    name: String,
    slot: Slot,
}

enum Slot {
    /// Parsed in pass 1 and kept for pass 2.
    Kept(Json),
    /// The (first) `entry` array, streamed; the number of items.
    Entries(usize),
}

/// Writes through to `inner`, indenting every line after the first by `depth` levels (two
/// spaces each): serde_json's pretty output written through it comes out as it does `depth`
/// levels deep in a whole document. JSON strings escape line breaks, so every `\n` is the
/// formatter's.
struct Indented<'a, W: ?Sized> {
    inner: &'a mut W,
    depth: usize,
}

impl<W: Write + ?Sized> Write for Indented<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            self.inner.write_all(&buf[..=i])?;
            for _ in 0..self.depth {
                self.inner.write_all(b"  ")?;
            }
            buf = &buf[i + 1..];
        }
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `v` as if it stood `depth` levels deep in a document: pretty-printed, or compact.
fn write_at<W: Write, T: Serialize + ?Sized>(
    out: &mut W,
    layout: Layout,
    depth: usize,
    v: &T,
) -> Result<(), FhirError> {
    match layout {
        Layout::Pretty => v.serialize(&mut Serializer::pretty(Indented { inner: out, depth })),
        Layout::Line => v.serialize(&mut Serializer::new(out)),
    }
    .map_err(|e| FhirError::Write(e.into()))
}

/// A serde_json error of either pass as the whole-document path (or, for a Bundle on one
/// line, the NDJSON path) reports it.
fn json_error(layout: Layout, e: serde_json::Error) -> FhirError {
    if e.classify() == serde_json::error::Category::Io {
        return FhirError::Read(e.into());
    }
    let (line, column, what) = (e.line(), e.column(), json_what(&e));
    match layout {
        Layout::Pretty => FhirError::Json { line, column, what },
        Layout::Line => FhirError::NdjsonLine { line, column, what },
    }
}

/// The error when pass 2 does not read what pass 1 read.
fn changed() -> FhirError {
    FhirError::Structure {
        at: "/".into(),
        what: "the input changed between the two reading passes",
    }
}

/// De-identifies the Bundle document that starts at `start` in `input` (after any byte-order
/// mark) into `out` in `layout`, or returns [`Streamed::Whole`] having written nothing. `out`
/// gets the document and a newline; on error the caller discards it.
pub(crate) fn bundle<R: Read + Seek, W: Write>(
    deid: &FhirDeid,
    engine: &phiguard_rules::Engine,
    input: &mut R,
    start: u64,
    layout: Layout,
    out: &mut W,
    tally: &mut phiguard_rules::Tally,
) -> Result<Streamed, FhirError> {
    // Pass 1: the dictionary, the index and the members other than the entries.
    let keep_city = deid.profile == phiguard_rules::ProfileName::LimitedDataSet;
    let mut dict = Dictionary::default();
    let mut index = Index::default();
    let mut scan = Scan {
        keep_city,
        dict: &mut dict,
        index: &mut index,
        members: Vec::new(),
        object: false,
        bundle: None,
        entry_seen: false,
    };
    input
        .seek(SeekFrom::Start(start))
        .map_err(FhirError::Read)?;
    {
        let mut de =
            serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, &mut *input));
        let r = de.deserialize_map(&mut scan).and_then(|()| de.end());
        if scan.bundle == Some(false) || (!scan.object && r.is_err()) {
            return Ok(Streamed::Whole);
        }
        r.map_err(|e| json_error(layout, e))?;
    }
    if scan.bundle != Some(true) {
        return Ok(Streamed::Whole);
    }
    let mut members = scan.members;
    for m in &members {
        let Slot::Kept(v) = &m.slot else { continue };
        let items = match v {
            Json::Arr(a) => a.as_slice(),
            one => std::slice::from_ref(one),
        };
        for item in items {
            walk::collect_item(
                item,
                DType::Resource,
                "Bundle",
                &m.name,
                false,
                keep_city,
                &mut dict,
            );
        }
    }
    dict.build();

    // Pass 2: walk and write, member by member and entry by entry.
    let mut walker = Walker::new(&deid.rules, engine, tally, &dict, &index);
    walker.cap_ages = !keep_city;
    if layout == Layout::Line {
        walker.line = Some(1);
    }
    let Some(inherited) = walker.begin_bundle() else {
        return Ok(Streamed::Whole);
    };
    let r = emit(
        &mut walker,
        inherited,
        &mut members,
        input,
        start,
        layout,
        out,
    );
    // As `walk_root`: the rule counts go into the tally even when the walk failed.
    walker.end_bundle();
    r.map(|()| Streamed::Done)
}

/// Pass 2.
fn emit<R: Read + Seek, W: Write>(
    walker: &mut Walker<'_>,
    inherited: Option<usize>,
    members: &mut [Member],
    input: &mut R,
    start: u64,
    layout: Layout,
    out: &mut W,
) -> Result<(), FhirError> {
    input
        .seek(SeekFrom::Start(start))
        .map_err(FhirError::Read)?;
    let mut emit = Emit {
        walker,
        inherited,
        members,
        next: 0,
        out,
        layout,
        wrote: false,
        failed: None,
    };
    emit.out.write_all(b"{").map_err(FhirError::Write)?;
    let mut de =
        serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, &mut *input));
    let r = de.deserialize_map(&mut emit).and_then(|()| de.end());
    if let Some(e) = emit.failed.take() {
        return Err(e);
    }
    r.map_err(|e| json_error(layout, e))?;
    if emit.next != emit.members.len() {
        return Err(changed());
    }
    let end: &[u8] = if emit.wrote && layout == Layout::Pretty {
        b"\n}\n"
    } else {
        b"}\n"
    };
    emit.out.write_all(end).map_err(FhirError::Write)
}

/// Pass 1 over the top-level object.
struct Scan<'a> {
    keep_city: bool,
    dict: &'a mut Dictionary,
    index: &'a mut Index,
    members: Vec<Member>,
    /// The top level is an object.
    object: bool,
    /// Whether the first `resourceType` member is the string `"Bundle"`, once seen.
    bundle: Option<bool>,
    entry_seen: bool,
}

impl<'de> Visitor<'de> for &mut Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a FHIR resource")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.object = true;
        while let Some(name) = map.next_key::<String>()? {
            // The first `entry` is the one the index reads (`Index::of`); an array is
            // streamed, assuming a Bundle until `resourceType` says otherwise.
            let slot = if name == "entry" && !self.entry_seen {
                self.entry_seen = true;
                match map.next_value_seed(ScanEntries(&mut *self))? {
                    Ok(n) => Slot::Entries(n),
                    Err(v) => Slot::Kept(v),
                }
            } else {
                let v: Json = map.next_value()?;
                if name == "resourceType" && self.bundle.is_none() {
                    let bundle = v.as_str() == Some("Bundle");
                    self.bundle = Some(bundle);
                    if !bundle {
                        return Err(de::Error::custom("not a Bundle"));
                    }
                }
                Slot::Kept(v)
            };
            self.members.push(Member { name, slot });
        }
        Ok(())
    }
}

/// Pass 1 over the first `entry` member: `Ok(items)` when it is an array (streamed),
/// `Err(value)` otherwise.
struct ScanEntries<'s, 'a>(&'s mut Scan<'a>);

impl<'de> DeserializeSeed<'de> for ScanEntries<'_, '_> {
    type Value = Result<usize, Json>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Everything but an array is kept as the whole-document tree would hold it.
macro_rules! keep_as_json {
    ($($method:ident($t:ty)),*) => {
        $(fn $method<E: de::Error>(self, v: $t) -> Result<Self::Value, E> {
            JsonVisitor.$method(v).map(Err)
        })*
    };
}

impl<'de> Visitor<'de> for ScanEntries<'_, '_> {
    type Value = Result<usize, Json>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    keep_as_json!(
        visit_bool(bool),
        visit_i64(i64),
        visit_u64(u64),
        visit_f64(f64),
        visit_str(&str),
        visit_string(String)
    );

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        JsonVisitor.visit_unit().map(Err)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        JsonVisitor.visit_map(map).map(Err)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut n = 0usize;
        while let Some(entry) = seq.next_element::<Json>()? {
            self.0.index.add_entry(&entry);
            walk::collect_item(
                &entry,
                DType::Resource,
                "Bundle",
                "entry",
                false,
                self.0.keep_city,
                self.0.dict,
            );
            n += 1;
        }
        Ok(Ok(n))
    }
}

/// Pass 2 over the top-level object.
struct Emit<'e, 'a, W> {
    walker: &'e mut Walker<'a>,
    inherited: Option<usize>,
    members: &'e mut [Member],
    /// The next member expected.
    next: usize,
    out: &'e mut W,
    layout: Layout,
    /// A member has been written.
    wrote: bool,
    /// Why pass 2 stopped, when it was not serde_json.
    failed: Option<FhirError>,
}

impl<W: Write> Emit<'_, '_, W> {
    /// Stops pass 2 with `e`.
    fn fail<E: de::Error>(&mut self, e: FhirError) -> E {
        self.failed = Some(e);
        E::custom("stopped")
    }

    /// The separator and key of the next member written.
    fn key(&mut self, name: &str) -> Result<(), FhirError> {
        let (sep, colon): (&[u8], &[u8]) = match (self.layout, self.wrote) {
            (Layout::Pretty, true) => (b",\n  ", b": "),
            (Layout::Pretty, false) => (b"\n  ", b": "),
            (Layout::Line, true) => (b",", b":"),
            (Layout::Line, false) => (b"", b":"),
        };
        self.wrote = true;
        self.out.write_all(sep).map_err(FhirError::Write)?;
        write_at(self.out, self.layout, 1, name)?;
        self.out.write_all(colon).map_err(FhirError::Write)
    }

    fn kept(&mut self, name: &str, mut v: Json) -> Result<(), FhirError> {
        self.walker.bundle_member(name, &mut v, self.inherited)?;
        if matches!(v, Json::Gone) {
            return Ok(());
        }
        self.key(name)?;
        write_at(self.out, self.layout, 1, &v)
    }

    /// Entry `i`; `open` says whether the `entry` array has been opened in the output.
    fn entry(&mut self, i: usize, mut e: Json, open: &mut bool) -> Result<(), FhirError> {
        self.walker.bundle_entry(i, &mut e, self.inherited)?;
        if matches!(e, Json::Gone) {
            return Ok(());
        }
        let pretty = self.layout == Layout::Pretty;
        let sep: &[u8] = match (*open, pretty) {
            (true, true) => b",\n    ",
            (true, false) => b",",
            (false, _) => {
                self.key("entry")?;
                *open = true;
                if pretty { b"[\n    " } else { b"[" }
            }
        };
        self.out.write_all(sep).map_err(FhirError::Write)?;
        write_at(self.out, self.layout, 2, &e)
    }
}

impl<'de, W: Write> Visitor<'de> for &mut Emit<'_, '_, W> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a FHIR resource")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<String>()? {
            let slot = match self.members.get_mut(self.next) {
                Some(m) if m.name == name => match &mut m.slot {
                    Slot::Kept(v) => Slot::Kept(std::mem::replace(v, Json::Null)),
                    Slot::Entries(n) => Slot::Entries(*n),
                },
                _ => return Err(self.fail(changed())),
            };
            self.next += 1;
            match slot {
                Slot::Kept(v) => {
                    map.next_value::<IgnoredAny>()?;
                    if let Err(e) = self.kept(&name, v) {
                        return Err(self.fail(e));
                    }
                }
                Slot::Entries(n) => {
                    if map.next_value_seed(EmitEntries(&mut *self))? != n {
                        return Err(self.fail(changed()));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Pass 2 over the streamed `entry` array: the number of items.
struct EmitEntries<'s, 'e, 'a, W>(&'s mut Emit<'e, 'a, W>);

impl<'de, W: Write> DeserializeSeed<'de> for EmitEntries<'_, '_, '_, W> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, W: Write> Visitor<'de> for EmitEntries<'_, '_, '_, W> {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let emit = self.0;
        let mut n = 0usize;
        let mut open = false;
        while let Some(e) = seq.next_element::<Json>()? {
            if let Err(err) = emit.entry(n, e, &mut open) {
                return Err(emit.fail(err));
            }
            n += 1;
        }
        let end: &[u8] = match emit.layout {
            Layout::Pretty => b"\n  ]",
            Layout::Line => b"]",
        };
        if open && let Err(e) = emit.out.write_all(end) {
            return Err(emit.fail(FhirError::Write(e)));
        }
        Ok(n)
    }
}
