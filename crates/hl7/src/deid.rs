//! The de-identification walker: message by message, segment by segment, leaf by leaf.

use std::cell::Cell;
use std::io::{Read, Write};

use phiguard_rules::tally::RuleCount;
use phiguard_rules::{
    Action, Config, ConfigError, Engine, Outcome, PatientRef, ProfileName, Rule, RuleSet, Selector,
    Tally,
};
use rustc_hash::FxHashMap;

use crate::Hl7Error;
use crate::delims::Delimiters;
use crate::dict::Dict;
use crate::parse::{is_blank, segment_id, split};
use crate::profile;
use crate::reader::{Ending, SegmentReader};
use crate::selector::{Hl7Selector, SegmentPattern, is_header};
use crate::types::{self, Role, Type};

/// A built-in rule: segment, field and role.
type BuiltinKey = ([u8; 3], u16, Role);

/// De-identifies HL7 v2 with the rules of one config. Built once per run; `Send + Sync`.
pub struct Hl7Deid {
    profile: ProfileName,
    rules: Vec<Rule<Hl7Selector>>,
    /// Field types per segment id, indexed by field number.
    table: FxHashMap<[u8; 3], Vec<Option<Type>>>,
    /// Per segment id, the fields whose values can go into the message dictionary: their
    /// index among the segment's `|`-separated parts (the field number, less one in a header
    /// segment) and type, in order (segments with none left out).
    collected: FxHashMap<[u8; 3], Vec<(usize, Type)>>,
    patient: Hl7Selector,
    /// Report ids of the built-in rules, `<profile>: <SEG>-<n> <kind>`, made once, in their
    /// sorted order: a built-in rule is counted under its index here (its rank).
    builtin_ids: Vec<String>,
    /// Per segment id and field number, the rank of each role's built-in id (`NO_RANK` for
    /// none), so that counting a value is an index rather than a hash lookup.
    ranks: FxHashMap<[u8; 3], Vec<[u32; Role::ALL.len()]>>,
    /// The profile's action for each role, and whether values of the role go into the
    /// message dictionary, by role (looked up for every value).
    actions: [Action; Role::ALL.len()],
    collects: [bool; Role::ALL.len()],
}

/// No built-in id for this segment, field and role.
const NO_RANK: u32 = u32::MAX;

impl std::fmt::Debug for Hl7Deid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hl7Deid")
            .field("profile", &self.profile)
            .field("rules", &self.rules.len())
            .field("patient", &self.patient.to_string())
            .finish()
    }
}

/// The default patient key: PID-3.1 of the first repetition.
pub const DEFAULT_PATIENT: &str = "PID-3.1";

fn table() -> Result<FxHashMap<[u8; 3], Vec<Option<Type>>>, String> {
    let mut map = FxHashMap::default();
    for line in types::TABLE.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let seg = words.next().unwrap_or_default();
        let id = <[u8; 3]>::try_from(seg.as_bytes()).map_err(|_| format!("segment {seg:?}"))?;
        let mut fields: Vec<Option<Type>> = Vec::new();
        for w in words {
            let (n, t) = w.split_once(':').ok_or_else(|| format!("{seg} {w:?}"))?;
            let n: usize = n.parse().map_err(|_| format!("{seg} {w:?}"))?;
            let ty = types::by_code(t).ok_or_else(|| format!("{seg} {w:?}: unknown type"))?;
            if fields.len() <= n {
                fields.resize(n + 1, None);
            }
            fields[n] = Some(ty);
        }
        map.insert(id, fields);
    }
    Ok(map)
}

impl Hl7Deid {
    /// Compiles `config.hl7.rules` (user rules first), the built-in profile `config.profile`
    /// and the patient selector (`config.hl7.patient`, default `PID-3.1`).
    pub fn new(config: &Config) -> Result<Hl7Deid, ConfigError> {
        let rules = RuleSet::<Hl7Selector>::compile("hl7", &config.hl7.rules)?
            .iter()
            .cloned()
            .collect();
        let table = table().map_err(|message| ConfigError::Rule {
            at: "built-in HL7 field table".into(),
            message,
        })?;
        let patient_text = config.hl7.patient.as_deref().unwrap_or(DEFAULT_PATIENT);
        let patient = Hl7Selector::parse(patient_text)
            .and_then(|s| match (&s.segment, s.field) {
                (SegmentPattern::Exact(_), Some(_)) => Ok(s),
                _ => Err("the patient selector must name one segment and one field".into()),
            })
            .map_err(|message| ConfigError::Rule {
                at: format!("hl7.patient ({patient_text:?})"),
                message,
            })?;
        let mut ids: Vec<(BuiltinKey, String)> = Vec::new();
        let name = config.profile.as_str();
        for (id, fields) in &table {
            let seg = String::from_utf8_lossy(id);
            // The roles a value of each typed field can have (any for OBX-5, whose type is
            // read from OBX-2). Ids for other roles would never be counted.
            let mut typed: Vec<(usize, Vec<Role>)> = fields
                .iter()
                .enumerate()
                .filter_map(|(n, t)| Some((n, t.as_ref()?.roles())))
                .collect();
            if id == b"OBX" {
                typed.retain(|(n, _)| *n != 5);
                typed.push((5, Role::ALL.to_vec()));
            }
            for (n, roles) in typed {
                for role in roles {
                    let key = (*id, u16::try_from(n).unwrap_or(u16::MAX), role);
                    ids.push((key, format!("{name}: {seg}-{n} {}", role.as_str())));
                }
            }
        }
        ids.sort_by(|a, b| a.1.cmp(&b.1));
        let mut ranks: FxHashMap<[u8; 3], Vec<[u32; Role::ALL.len()]>> = FxHashMap::default();
        let mut builtin_ids = Vec::with_capacity(ids.len());
        for (rank, ((id, n, role), text)) in ids.into_iter().enumerate() {
            let fields = ranks.entry(id).or_default();
            let n = usize::from(n);
            if fields.len() <= n {
                fields.resize(n + 1, [NO_RANK; Role::ALL.len()]);
            }
            fields[n][role as usize] = u32::try_from(rank).unwrap_or(NO_RANK);
            builtin_ids.push(text);
        }
        let collected = table
            .iter()
            .filter_map(|(id, fields)| {
                let header = is_header(id);
                let f: Vec<(usize, Type)> = fields
                    .iter()
                    .enumerate()
                    .filter_map(|(n, t)| {
                        let t = t.filter(|&t| type_collects(config.profile, t))?;
                        // Part 0 is the segment id; in a header, part 1 is MSH-2.
                        let k = if header { n.checked_sub(1)? } else { n };
                        (k >= 1).then_some((k, t))
                    })
                    .collect();
                (!f.is_empty()).then_some((*id, f))
            })
            .collect();
        Ok(Hl7Deid {
            profile: config.profile,
            rules,
            table,
            collected,
            patient,
            builtin_ids,
            ranks,
            actions: Role::ALL.map(|r| profile::action(config.profile, r)),
            collects: Role::ALL.map(|r| collects(config.profile, r)),
        })
    }

    /// The user rules, in order.
    pub fn rules(&self) -> &[Rule<Hl7Selector>] {
        &self.rules
    }

    /// Streams one input to `out`, message by message. Counts into `tally` (one file, one record
    /// per message). On error the caller discards `out`.
    pub fn deidentify<R: Read, W: Write>(
        &self,
        engine: &Engine,
        input: R,
        out: W,
        tally: &mut Tally,
    ) -> Result<(), Hl7Error> {
        self.deidentify_at(engine, input, out, tally, (0, 0))
    }

    /// As [`Hl7Deid::deidentify`] for a part of a larger input that starts after `before`
    /// (lines, bytes): errors and review labels name positions in the whole input.
    pub(crate) fn deidentify_at<R: Read, W: Write>(
        &self,
        engine: &Engine,
        input: R,
        out: W,
        tally: &mut Tally,
        before: (u64, u64),
    ) -> Result<(), Hl7Error> {
        let mut reader = SegmentReader::starting_after(input, before.0, before.1);
        let mut b = BUFFERS.with(Cell::take).unwrap_or_default();
        // Returned empty, but start afresh all the same: the caches hold the answers of one
        // engine (one key) and must never serve another's.
        b.pseudonyms.clear();
        b.clean_text.clear();
        b.message.open = false;
        b.sink.clear();
        let mut w = Sink {
            inner: out,
            buf: std::mem::take(&mut b.sink),
        };
        let mut message = std::mem::take(&mut b.message);
        let mut buf = std::mem::take(&mut b.buf);
        let mut walker = Walker {
            deid: self,
            engine,
            counts: std::mem::take(&mut b.counts),
            ranked: std::mem::take(&mut b.ranked),
            touched: std::mem::take(&mut b.touched),
            // The caller's review sample (its size and seed) travels with the walker and is
            // merged back at the end.
            scratch: Tally {
                review: std::mem::take(&mut tally.review),
                ..Tally::default()
            },
            seg_rules: std::mem::take(&mut b.seg_rules),
            field_rules: std::mem::take(&mut b.field_rules),
            out: std::mem::take(&mut b.out),
            dict: std::mem::take(&mut b.dict),
            categories: std::mem::take(&mut b.categories),
            pseudonyms: std::mem::take(&mut b.pseudonyms),
            clean_text: std::mem::take(&mut b.clean_text),
            text_cache: FxHashMap::default(),
            text_patient: None,
        };
        let mut delims: Option<Delimiters> = None;
        // Field separators of a batch or file header or trailer.
        let mut hseps = Vec::new();
        let mut messages = 0u64;
        let mut first = true;
        while let Some(ending) = reader.next_segment(&mut buf)? {
            if first {
                first = false;
                if reader.bom {
                    w.write_all(b"\xEF\xBB\xBF")?;
                }
            }
            if is_blank(&buf) {
                if message.open {
                    message.push(&buf, ending, reader.line);
                } else {
                    w.write_all(&buf)?;
                    w.write_all(ending.bytes())?;
                }
                continue;
            }
            let id = segment_id(&buf, delims.as_ref(), reader.line, reader.offset)?;
            let header = |buf: &[u8]| {
                Delimiters::from_header(buf).map_err(|message| Hl7Error::Syntax {
                    line: reader.line,
                    offset: reader.offset,
                    message,
                })
            };
            match &id {
                b"MSH" => {
                    walker.message(&message, &mut w)?;
                    let d = header(&buf)?;
                    delims = Some(d);
                    message.start(d);
                    message.push(&buf, ending, reader.line);
                    messages += 1;
                }
                b"FHS" | b"BHS" | b"BTS" | b"FTS" => {
                    walker.message(&message, &mut w)?;
                    message.open = false;
                    let d = if is_header(&id) {
                        header(&buf)?
                    } else {
                        delims.ok_or(Hl7Error::Syntax {
                            line: reader.line,
                            offset: reader.offset,
                            message: "batch trailer before any header",
                        })?
                    };
                    delims = Some(d);
                    hseps.clear();
                    field_seps(&buf, d.field, &mut hseps);
                    walker.segment(&d, &buf, &hseps, reader.line, None)?;
                    w.write_all(&walker.out)?;
                    w.write_all(ending.bytes())?;
                }
                _ => {
                    if !message.open {
                        return Err(Hl7Error::Syntax {
                            line: reader.line,
                            offset: reader.offset,
                            message: "segment outside a message (no MSH before it)",
                        });
                    }
                    message.push(&buf, ending, reader.line);
                }
            }
        }
        walker.message(&message, &mut w)?;
        if delims.is_none() {
            return Err(Hl7Error::Empty);
        }
        w.flush()?;
        walker.finish(tally);
        tally.files += 1;
        tally.records += messages;
        // Give the buffers back for the next input on this thread (unless one grew large).
        let large = |cap: usize| cap > 1 << 20;
        if !large(message.data.capacity())
            && !large(walker.out.capacity())
            && !large(w.buf.capacity())
            && !large(buf.capacity())
        {
            // Nothing of this input stays readable through them.
            walker.dict.clear();
            walker.pseudonyms.clear();
            walker.clean_text.clear();
            walker.out.clear();
            message.data.clear();
            message.segments.clear();
            buf.clear();
            w.buf.clear();
            *b = Buffers {
                counts: walker.counts,
                ranked: walker.ranked,
                touched: walker.touched,
                seg_rules: walker.seg_rules,
                field_rules: walker.field_rules,
                out: walker.out,
                dict: walker.dict,
                categories: walker.categories,
                pseudonyms: walker.pseudonyms,
                clean_text: walker.clean_text,
                message,
                buf,
                sink: w.buf,
            };
            BUFFERS.with(|c| c.set(Some(b)));
        }
        Ok(())
    }

    fn patient_id(&self, message: &Message) -> Option<String> {
        let s = &self.patient;
        let SegmentPattern::Exact(id) = &s.segment else {
            return None;
        };
        let field = usize::from(s.field?);
        let d = &message.delims;
        let (seg, seps) = message
            .segments
            .iter()
            .map(|b| (message.bytes(b), message.seps(b)))
            .find(|(m, _)| m.starts_with(id))?;
        let header = is_header(id);
        let k = if header { field.checked_sub(1)? } else { field };
        let raw = part(seg, seps, k)?;
        let rep = split(raw, d.repetition).nth(usize::from(s.repetition.unwrap_or(1)) - 1)?;
        let comp = split(rep, Some(d.component)).nth(usize::from(s.component.unwrap_or(1)) - 1)?;
        let sub = split(comp, d.subcomponent).nth(usize::from(s.subcomponent.unwrap_or(1)) - 1)?;
        let v = d.decode(sub);
        let v = v.trim();
        (!v.is_empty()).then(|| v.to_string())
    }
}

/// The buffers of one input, kept per thread from input to input so that a run over many small
/// files does not allocate them again for each (every one is cleared before use).
#[derive(Default)]
struct Buffers {
    counts: FxHashMap<Counter, Count>,
    ranked: Vec<Option<Count>>,
    touched: Vec<u32>,
    seg_rules: Vec<usize>,
    field_rules: Vec<usize>,
    out: Vec<u8>,
    dict: Dict,
    categories: FxHashMap<phiguard_detect::Category, u64>,
    pseudonyms: FxHashMap<String, String>,
    clean_text: rustc_hash::FxHashSet<String>,
    message: Message,
    buf: Vec<u8>,
    sink: Vec<u8>,
}

thread_local! {
    static BUFFERS: Cell<Option<Box<Buffers>>> = const { Cell::new(None) };
}

/// Output buffered in a reusable vector, written through when it passes 16 KiB and at the end.
struct Sink<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 16 * 1024 {
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.inner.flush()
    }
}

/// One buffered message: its segments' bytes in one arena, reused from message to message.
#[derive(Default)]
struct Message {
    open: bool,
    delims: Delimiters,
    data: Vec<u8>,
    /// The positions of each segment's field separators, relative to the segment's start,
    /// found once (both passes over a message use them).
    seps: Vec<usize>,
    segments: Vec<Buffered>,
}

#[derive(Clone, Copy)]
struct Buffered {
    start: usize,
    end: usize,
    /// This segment's range in `Message::seps`.
    seps: (usize, usize),
    ending: Ending,
    line: u64,
}

impl Message {
    fn start(&mut self, d: Delimiters) {
        self.open = true;
        self.delims = d;
        self.data.clear();
        self.seps.clear();
        self.segments.clear();
    }

    fn push(&mut self, bytes: &[u8], ending: Ending, line: u64) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        let first = self.seps.len();
        field_seps(bytes, self.delims.field, &mut self.seps);
        self.segments.push(Buffered {
            start,
            end: self.data.len(),
            seps: (first, self.seps.len()),
            ending,
            line,
        });
    }

    fn bytes(&self, b: &Buffered) -> &[u8] {
        self.data.get(b.start..b.end).unwrap_or_default()
    }

    fn seps(&self, b: &Buffered) -> &[usize] {
        self.seps.get(b.seps.0..b.seps.1).unwrap_or_default()
    }
}

/// Appends the positions of the field separator `field` in `seg` to `out`.
fn field_seps(seg: &[u8], field: u8, out: &mut Vec<usize>) {
    // Eight bytes at a time (separators are dense, a few bytes apart, where a vectorised
    // search pays its set-up for every one): for y = word XOR separator, the expression below
    // has the high bit set exactly in the bytes where y is zero (no carry crosses a byte).
    const LO7: u64 = u64::from_ne_bytes([0x7F; 8]);
    let wf = u64::from_ne_bytes([field; 8]);
    let mut chunks = seg.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let y = u64::from_le_bytes(bytes) ^ wf;
        let mut hits = !(((y & LO7).wrapping_add(LO7)) | y | LO7);
        while hits != 0 {
            out.push(at + (hits.trailing_zeros() / 8) as usize);
            hits &= hits - 1;
        }
        at += 8;
    }
    for (k, &b) in chunks.remainder().iter().enumerate() {
        if b == field {
            out.push(at + k);
        }
    }
}

/// Part `k` of a segment split at its field separators `seps` (part 0 is the segment id), as
/// `split(seg, Some(field)).nth(k)`.
fn part<'a>(seg: &'a [u8], seps: &[usize], k: usize) -> Option<&'a [u8]> {
    let start = match k.checked_sub(1) {
        None => 0,
        Some(i) => *seps.get(i)? + 1,
    };
    let end = seps.get(k).copied().unwrap_or(seg.len());
    seg.get(start..end)
}

/// What a value was counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    User(usize),
    Builtin([u8; 3], u16, Role),
    Uncovered([u8; 3], u16),
}

impl std::hash::Hash for Counter {
    /// One word: these are looked up once per counted value.
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let seg = |id: &[u8; 3]| u64::from(id[0]) | u64::from(id[1]) << 8 | u64::from(id[2]) << 16;
        h.write_u64(match self {
            Counter::User(i) => *i as u64,
            Counter::Builtin(id, n, role) => {
                1 << 62 | seg(id) << 24 | u64::from(*n) << 8 | *role as u64
            }
            Counter::Uncovered(id, n) => 2 << 62 | seg(id) << 24 | u64::from(*n) << 8,
        });
    }
}

struct Walker<'a> {
    deid: &'a Hl7Deid,
    engine: &'a Engine,
    /// Counts of user rules, uncovered fields and built-in rules without a rank.
    counts: FxHashMap<Counter, Count>,
    /// Counts of the built-in rules, by rank (see `Hl7Deid::ranks`), and the ranks counted.
    ranked: Vec<Option<Count>>,
    touched: Vec<u32>,
    /// Receives the engine's detections and notes, and the review sample (the walker counts
    /// values itself, in `counts` and `ranked`).
    scratch: Tally,
    seg_rules: Vec<usize>,
    field_rules: Vec<usize>,
    out: Vec<u8>,
    /// The message's identifying values (names, addresses, phones, identifiers found in typed
    /// fields), removed wherever else they appear: in a kept component or inside free text.
    dict: Dict,
    /// Detections inside text, per category.
    categories: FxHashMap<phiguard_detect::Category, u64>,
    /// Identifier pseudonyms already computed in this input (keyed by the value alone, as the
    /// engine's are), so a value repeated across segments and messages costs one HMAC.
    pseudonyms: FxHashMap<String, String>,
    /// Text values the detector found nothing in, in this input: kept again without a second
    /// detector run (the detector's answer depends on the value alone).
    clean_text: rustc_hash::FxHashSet<String>,
    /// Text values the detector found something in, with the engine's answer, for the patient
    /// `text_patient` (emptied when the patient changes).
    text_cache: FxHashMap<String, phiguard_rules::engine::TextResult>,
    text_patient: Option<PatientRef>,
}

/// Entries each per-input cache holds before it is emptied (bounds memory on large inputs).
const CACHE_LIMIT: usize = 16 * 1024;

/// A coded field whose coding systems are not codes: not understood, removed.
pub const NOTE_CODE_NOT_CODED: &str = "hl7_code_field_not_coded_removed";

/// A full date in a field the table says holds a code: handled as a date.
pub const NOTE_DATE_IN_CODE: &str = "hl7_date_in_code_field";

/// A kept value equal to an identifying value of the same message: removed.
pub const NOTE_RECORD_VALUE: &str = "hl7_record_value_removed";

/// Where a value is, for errors and the plan.
#[derive(Clone, Copy)]
struct At<'p> {
    line: u64,
    id: [u8; 3],
    field: u16,
    ty: Option<&'p Type>,
    patient: Option<&'p PatientRef>,
    /// The ranks of this field's built-in ids, by role.
    ranks: Option<&'p [u32; Role::ALL.len()]>,
}

impl Walker<'_> {
    /// De-identifies and writes the buffered message, then closes it.
    fn message<W: Write>(&mut self, message: &Message, w: &mut W) -> Result<(), Hl7Error> {
        if !message.open || message.segments.is_empty() {
            return Ok(());
        }
        let patient = self
            .deid
            .patient_id(message)
            .map(|p| self.engine.patient(&p));
        self.dict.clear();
        for seg in &message.segments {
            let bytes = message.bytes(seg);
            if !is_blank(bytes) {
                self.collect(&message.delims, bytes, message.seps(seg));
            }
        }
        for seg in &message.segments {
            let bytes = message.bytes(seg);
            if is_blank(bytes) {
                w.write_all(bytes)?;
            } else {
                let seps = message.seps(seg);
                self.segment(&message.delims, bytes, seps, seg.line, patient.as_ref())?;
                w.write_all(&self.out)?;
            }
            w.write_all(seg.ending.bytes())?;
        }
        Ok(())
    }

    /// Adds the identifying values of one segment's typed fields to the message dictionary.
    fn collect(&mut self, d: &Delimiters, seg: &[u8], seps: &[usize]) {
        let id = [seg[0], seg[1], seg[2]];
        let Some(fields) = self.deid.collected.get(&id) else {
            return;
        };
        let collects = &self.deid.collects;
        for &(k, ty) in fields {
            let Some(raw) = part(seg, seps, k) else {
                break;
            };
            if raw.is_empty() {
                continue;
            }
            let dict = &mut self.dict;
            each_leaf(d, raw, |(_, c, s), sub| {
                if sub.len() < 3 {
                    return;
                }
                let role = ty.role(c, s);
                if !collects[role as usize] {
                    return;
                }
                if let Some(v) = d.plain(sub) {
                    let v = trim_ascii_whitespace(v);
                    if v.len() >= 3 && v.iter().any(u8::is_ascii_alphanumeric) {
                        dict.insert(v, role);
                    }
                    return;
                }
                let v = d.decode(sub);
                let v = v.trim();
                if v.chars().count() >= 3 && v.chars().any(char::is_alphanumeric) {
                    dict.insert(v.as_bytes(), role);
                }
            });
        }
    }

    /// De-identifies one segment into `self.out`.
    fn segment(
        &mut self,
        d: &Delimiters,
        seg: &[u8],
        seps: &[usize],
        line: u64,
        patient: Option<&PatientRef>,
    ) -> Result<(), Hl7Error> {
        self.out.clear();
        let id = [seg[0], seg[1], seg[2]];
        let header = is_header(&id);
        self.seg_rules.clear();
        for (i, r) in self.deid.rules.iter().enumerate() {
            if r.selector.segment.matches(&id) {
                self.seg_rules.push(i);
            }
        }
        let table = self.deid.table.get(&id);
        let seg_ranks = self.deid.ranks.get(&id);
        // OBX-5's type, from the value type in OBX-2 (and whether that one is known).
        let obx5 = (&id == b"OBX")
            .then(|| part(seg, seps, 2))
            .flatten()
            .map(|v| types::obx5(d.decode(v).trim()));
        let mut start = 0;
        for k in 0..=seps.len() {
            let end = seps.get(k).copied().unwrap_or(seg.len());
            let raw = seg.get(start..end).unwrap_or_default();
            start = end + 1;
            if k == 0 {
                self.out.extend_from_slice(raw);
                continue;
            }
            self.out.push(d.field);
            if header && k == 1 {
                self.out.extend_from_slice(raw);
                continue;
            }
            let n = u16::try_from(if header { k + 1 } else { k }).unwrap_or(u16::MAX);
            // Types are borrowed, not copied: copying this enum around cost a store-forwarding
            // stall per field.
            let (ty, covered): (Option<&Type>, bool) = match (&obx5, n) {
                (Some((t, known)), 5) => (Some(t), *known),
                _ => {
                    let t = table
                        .and_then(|f| f.get(usize::from(n)))
                        .and_then(Option::as_ref);
                    (t, t.is_some())
                }
            };
            self.field_rules.clear();
            for &i in &self.seg_rules {
                if self.deid.rules[i].selector.field.is_none_or(|f| f == n) {
                    self.field_rules.push(i);
                }
            }
            if raw.is_empty() {
                self.out.extend_from_slice(raw);
                continue;
            }
            let fast = covered && self.field_rules.is_empty();
            let (ty, keeps) = match ty {
                Some(&Type::Prim(role @ (Role::Code | Role::Keep))) => {
                    match self.scan_coded(d, raw, fast && role == Role::Keep) {
                        // A coded field whose coding-system components are not codes holds
                        // something else (a name, a misplaced field): not understood, removed.
                        (false, _) => {
                            self.scratch.note(NOTE_CODE_NOT_CODED);
                            (Some(&Type::Prim(Role::Remove)), false)
                        }
                        (true, keeps) => (ty, keeps),
                    }
                }
                t => (t, false),
            };
            if fast {
                // Fast paths for primitive fields whose every value gets the same treatment.
                match ty {
                    // Codes are kept and not counted.
                    Some(Type::Prim(Role::Code)) => {
                        self.out.extend_from_slice(raw);
                        continue;
                    }
                    // Table values are kept and not counted unless one is a date or a value of
                    // the message dictionary (then the field takes the general path).
                    Some(Type::Prim(Role::Keep)) if keeps => {
                        self.out.extend_from_slice(raw);
                        continue;
                    }
                    // Every value removed and counted; a field with no value stays as it was.
                    Some(Type::Prim(Role::Remove)) => {
                        let mut values = 0u64;
                        each_leaf(d, raw, |_, _| values += 1);
                        if values == 0 {
                            self.out.extend_from_slice(raw);
                        } else {
                            let action = self.deid.actions[Role::Remove as usize];
                            let ranks = seg_ranks.and_then(|r| r.get(usize::from(n)));
                            let counter = Counter::Builtin(id, n, Role::Remove);
                            let e = self.count(counter, ranks, action);
                            e.values += values;
                            e.changed += values;
                            e.removed += values;
                        }
                        continue;
                    }
                    _ => {}
                }
            }
            let at = At {
                line,
                id,
                field: n,
                ty: if covered { ty } else { None },
                patient,
                ranks: seg_ranks.and_then(|r| r.get(usize::from(n))),
            };
            self.field(d, raw, at)?;
        }
        Ok(())
    }

    /// One pass over a coded or table-value field: whether its coding-system components read
    /// as codes (see `coded_leaf_plausible`), and, when `want_keep`, whether every value is
    /// kept as it is (none is a full date or a value of the message dictionary).
    fn scan_coded(&self, d: &Delimiters, raw: &[u8], want_keep: bool) -> (bool, bool) {
        let dict = !self.dict.is_empty();
        let (mut plausible, mut keep) = (true, want_keep);
        each_leaf(d, raw, |(_, c, _), leaf| {
            if plausible && !coded_leaf_plausible(c, leaf) {
                plausible = false;
            }
            if keep && (looks_like_date(leaf) || dict && leaf.len() >= 3 && self.in_dict(d, leaf)) {
                keep = false;
            }
        });
        (plausible, keep)
    }

    /// True when the value of leaf `raw` (trimmed) is one of the message dictionary's.
    fn in_dict(&self, d: &Delimiters, raw: &[u8]) -> bool {
        match d.plain(raw) {
            Some(v) => self.dict.contains(trim_ascii_whitespace(v)),
            None => self.dict.contains(d.decode(raw).trim().as_bytes()),
        }
    }

    /// De-identifies one field in a single pass over its bytes. Components and repetitions
    /// left with no value are written empty; an unchanged field is copied as it was.
    fn field(&mut self, d: &Delimiters, raw: &[u8], at: At<'_>) -> Result<(), Hl7Error> {
        let start = self.out.len();
        let (mut changed, mut any, mut rep_any, mut comp_any) = (false, false, false, false);
        let (mut r, mut c, mut s) = (1u16, 1u16, 1u16);
        let (mut rep_start, mut comp_start, mut leaf_start) = (start, start, 0usize);
        loop {
            let i = next_sep(d, raw, leaf_start);
            let sep = match raw.get(i) {
                None => Sep::End,
                Some(&b) if b == d.component => Sep::Component,
                Some(&b) if Some(b) == d.repetition => Sep::Repetition,
                Some(_) => Sep::Subcomponent,
            };
            let leaf = &raw[leaf_start..i];
            if !leaf.is_empty() {
                let outcome = match self.common_leaf(d, leaf, (r, c, s), at) {
                    Some(o) => o,
                    None => self.leaf(d, leaf, (r, c, s), at)?,
                };
                match outcome {
                    Outcome::Keep => {
                        self.out.extend_from_slice(leaf);
                        comp_any = true;
                    }
                    Outcome::Remove => changed = true,
                    Outcome::Replace(v) => {
                        changed = true;
                        comp_any |= !v.is_empty();
                        d.encode(&v, &mut self.out);
                    }
                }
            }
            if sep == Sep::Subcomponent {
                self.out.extend(d.subcomponent);
                s = s.saturating_add(1);
            } else {
                if !comp_any {
                    self.out.truncate(comp_start);
                }
                rep_any |= comp_any;
                comp_any = false;
                if sep == Sep::Component {
                    self.out.push(d.component);
                    (c, s) = (c.saturating_add(1), 1);
                    comp_start = self.out.len();
                } else {
                    if !rep_any {
                        self.out.truncate(rep_start);
                    }
                    any |= rep_any;
                    rep_any = false;
                    if sep == Sep::End {
                        break;
                    }
                    self.out.extend(d.repetition);
                    (r, c, s) = (r.saturating_add(1), 1, 1);
                    rep_start = self.out.len();
                    comp_start = rep_start;
                }
            }
            leaf_start = i + 1;
        }
        if !changed {
            self.out.truncate(start);
            self.out.extend_from_slice(raw);
        } else if !any {
            self.out.truncate(start);
        }
        Ok(())
    }

    /// The outcome of the two most common leaves, the way [`Walker::leaf`] would decide it,
    /// without its general machinery: a table value or code kept as it is (not counted), and a
    /// value the profile removes while the review sample wants none (counted). `None` for any
    /// other leaf, or when a user rule applies to the field.
    #[inline]
    fn common_leaf(
        &mut self,
        d: &Delimiters,
        raw: &[u8],
        (_, comp, sub): (u16, u16, u16),
        at: At<'_>,
    ) -> Option<Outcome> {
        let ty = at.ty?;
        if !self.field_rules.is_empty() {
            return None;
        }
        let role = ty.role(comp, sub);
        match role {
            Role::Code => Some(Outcome::Keep),
            Role::Keep => {
                let record_value = !self.dict.is_empty() && raw.len() >= 3 && self.in_dict(d, raw);
                (!record_value && !looks_like_date(raw)).then_some(Outcome::Keep)
            }
            _ => {
                let action = self.deid.actions[role as usize];
                if action != Action::Remove || self.scratch.review.wants_next() {
                    return None;
                }
                self.scratch.review.skip();
                let e = self.count(Counter::Builtin(at.id, at.field, role), at.ranks, action);
                e.values += 1;
                e.changed += 1;
                e.removed += 1;
                Some(Outcome::Remove)
            }
        }
    }

    fn leaf(
        &mut self,
        d: &Delimiters,
        raw: &[u8],
        (rep, comp, sub): (u16, u16, u16),
        at: At<'_>,
    ) -> Result<Outcome, Hl7Error> {
        let deid = self.deid;
        let user = self
            .field_rules
            .iter()
            .copied()
            .find(|&i| deid.rules[i].selector.matches_leaf(rep, comp, sub));
        let (counter, action, kind) = match (user, at.ty) {
            (Some(i), ty) => {
                let action = deid.rules[i].action;
                let kind = match ty.map(|t| t.role(comp, sub)) {
                    Some(Role::Keep | Role::Code | Role::Text | Role::Remove) | None => {
                        profile::kind_for_action(action)
                    }
                    Some(role) => role.kind(),
                };
                (Counter::User(i), action, kind)
            }
            (None, Some(t)) => {
                let role = t.role(comp, sub);
                (
                    Counter::Builtin(at.id, at.field, role),
                    deid.actions[role as usize],
                    role.kind(),
                )
            }
            (None, None) => (
                Counter::Uncovered(at.id, at.field),
                Action::Text,
                phiguard_rules::Kind::Text,
            ),
        };
        let builtin = matches!(counter, Counter::Builtin(_, _, Role::Keep | Role::Text))
            || matches!(counter, Counter::Uncovered(..));
        let dict_applies = builtin && !self.dict.is_empty();
        let (action, kind) = if builtin && action == Action::Keep && looks_like_date(raw) {
            // A full date where the standard expects a code: handled as a date (fail safe).
            self.scratch.note(NOTE_DATE_IN_CODE);
            (deid.actions[Role::Date as usize], Role::Date.kind())
        } else {
            (action, kind)
        };
        let outcome = if action == Action::Keep {
            if dict_applies && raw.len() >= 3 && self.in_dict(d, raw) {
                self.scratch.note(NOTE_RECORD_VALUE);
                Outcome::Remove
            } else {
                Outcome::Keep
            }
        } else if action == Action::Remove {
            // The engine's answer is fixed: no need to decode the value or ask it.
            Outcome::Remove
        } else {
            let value = d.decode(raw);
            let err = |e: phiguard_rules::RuleError| Hl7Error::Value {
                line: at.line,
                segment: String::from_utf8_lossy(&at.id).into_owned(),
                field: at.field,
                message: e.to_string(),
            };
            let outcome = match action {
                Action::Pseudonym if kind == phiguard_rules::Kind::Id => {
                    // Keyed by the value alone: the same answer for the whole input.
                    match self.pseudonyms.get(value.as_ref()) {
                        Some(p) => Outcome::Replace(p.clone()),
                        None => {
                            let o = self
                                .engine
                                .apply(action, kind, &value, at.patient)
                                .map_err(err)?;
                            if let Outcome::Replace(p) = &o {
                                if self.pseudonyms.len() >= CACHE_LIMIT {
                                    self.pseudonyms.clear();
                                }
                                self.pseudonyms.insert(value.to_string(), p.clone());
                            }
                            o
                        }
                    }
                }
                // The engine's answer for these is fixed or needs no notes: skip its bookkeeping.
                Action::Pseudonym | Action::Blank | Action::Redact => self
                    .engine
                    .apply(action, kind, &value, at.patient)
                    .map_err(err)?,
                Action::Text if value.trim().is_empty() => Outcome::Keep,
                Action::Text if self.clean_text.contains(value.as_ref()) => Outcome::Keep,
                Action::Text => {
                    // A text with detections again, for the same patient: the engine's answer
                    // is the same (it depends on the value, the patient and the key alone).
                    if self.text_patient.as_ref() != at.patient {
                        self.text_cache.clear();
                        self.text_patient = at.patient.cloned();
                    }
                    let (text, counts) = match self.text_cache.get(value.as_ref()) {
                        Some((t, c)) => (t.clone(), c.clone()),
                        None => self.engine.text(&value, at.patient).map_err(err)?,
                    };
                    if !counts.is_empty() && !self.text_cache.contains_key(value.as_ref()) {
                        if self.text_cache.len() >= CACHE_LIMIT {
                            self.text_cache.clear();
                        }
                        self.text_cache
                            .insert(value.to_string(), (text.clone(), counts.clone()));
                    }
                    if text.is_none() && counts.is_empty() {
                        if self.clean_text.len() >= CACHE_LIMIT {
                            self.clean_text.clear();
                        }
                        self.clean_text.insert(value.to_string());
                    }
                    for (c, n) in counts {
                        *self.categories.entry(c).or_default() += n;
                    }
                    match text {
                        Some(t) if t != value => Outcome::Replace(t),
                        _ => Outcome::Keep,
                    }
                }
                // Only the engine's notes are wanted here: values are counted and the review
                // sample offered below, with the field's location.
                _ => self
                    .engine
                    .apply_noted(&mut self.scratch, action, kind, &value, at.patient)
                    .map_err(err)?,
            };
            if dict_applies && action == Action::Text {
                let after = match &outcome {
                    Outcome::Replace(t) => self.dict.scrub(t),
                    Outcome::Keep => self.dict.scrub(&value),
                    Outcome::Remove => None,
                };
                match after {
                    Some(t) => {
                        self.scratch.note(NOTE_RECORD_VALUE);
                        Outcome::Replace(t)
                    }
                    None => outcome,
                }
            } else {
                outcome
            }
        };
        if !matches!(outcome, Outcome::Keep) {
            if self.scratch.review.wants_next() {
                let mut label = format!("{}-{}", String::from_utf8_lossy(&at.id), at.field);
                if rep > 1 {
                    label.push_str(&format!("[{rep}]"));
                }
                label.push_str(&format!(".{comp}"));
                if sub > 1 {
                    label.push_str(&format!(".{sub}"));
                }
                label.push_str(&format!(" (line {})", at.line));
                let written = match &outcome {
                    Outcome::Replace(v) => Some(v.as_str()),
                    _ => None,
                };
                self.scratch.sample_change(&label, action, written);
            } else {
                self.scratch.review.skip();
            }
        }
        if matches!(outcome, Outcome::Keep)
            && matches!(counter, Counter::Builtin(_, _, Role::Keep | Role::Code))
        {
            // Kept codes and table values are not counted (they are most of a message).
            return Ok(outcome);
        }
        let e = self.count(counter, at.ranks, action);
        e.values += 1;
        e.changed += u64::from(!matches!(outcome, Outcome::Keep));
        e.removed += u64::from(matches!(outcome, Outcome::Remove));
        Ok(outcome)
    }

    /// The count of `counter` (made with `action` if it is the first), by rank for a built-in
    /// rule that has one.
    fn count(
        &mut self,
        counter: Counter,
        ranks: Option<&[u32; Role::ALL.len()]>,
        action: Action,
    ) -> &mut Count {
        let new = Count {
            action,
            values: 0,
            changed: 0,
            removed: 0,
        };
        let rank = match (counter, ranks) {
            (Counter::Builtin(_, _, role), Some(r)) => r[role as usize],
            _ => NO_RANK,
        };
        if rank == NO_RANK {
            return self.counts.entry(counter).or_insert(new);
        }
        let i = rank as usize;
        if self.ranked.len() <= i {
            self.ranked
                .resize_with(self.deid.builtin_ids.len().max(i + 1), || None);
        }
        let slot = &mut self.ranked[i];
        if slot.is_none() {
            self.touched.push(rank);
        }
        slot.get_or_insert(new)
    }

    /// Moves the counts into `tally`. Into an empty map (one file's tally) the counts are sorted
    /// and the map built in one go; otherwise they are added key by key.
    fn finish(&mut self, tally: &mut Tally) {
        use std::borrow::Cow;
        let profile = self.deid.profile.as_str();
        let mut rules: Vec<(Cow<'_, str>, Option<u32>, Count)> = Vec::new();
        let mut uncovered: Vec<(Cow<'_, str>, Option<u32>, Count)> = Vec::new();
        // Ranked counts first, in rank order (the order of their ids).
        self.touched.sort_unstable();
        for &rank in &self.touched {
            let i = rank as usize;
            if let (Some(count), Some(id)) = (
                self.ranked.get_mut(i).and_then(Option::take),
                self.deid.builtin_ids.get(i),
            ) {
                rules.push((Cow::Borrowed(id.as_str()), Some(rank), count));
            }
        }
        self.touched.clear();
        for (counter, count) in self.counts.drain() {
            match counter {
                Counter::User(i) => {
                    rules.push((Cow::Borrowed(&self.deid.rules[i].id), None, count));
                }
                Counter::Builtin(id, n, role) => {
                    // One the built-in table has no id for.
                    let key = format!(
                        "{profile}: {}-{n} {}",
                        String::from_utf8_lossy(&id),
                        role.as_str()
                    );
                    rules.push((Cow::Owned(key), None, count));
                }
                Counter::Uncovered(id, n) => {
                    // `SEG-n`, without the formatting machinery (one per uncovered field).
                    let mut key = String::with_capacity(9);
                    key.push_str(&String::from_utf8_lossy(&id));
                    key.push('-');
                    let mut digits = [0u8; 5];
                    let mut k = digits.len();
                    let mut v = n;
                    loop {
                        k -= 1;
                        digits[k] = b'0' + (v % 10) as u8;
                        v /= 10;
                        if v == 0 {
                            break;
                        }
                    }
                    key.extend(digits[k..].iter().map(|&b| char::from(b)));
                    uncovered.push((Cow::Owned(key), None, count));
                }
            }
        }
        add_counts(&mut tally.rules, rules);
        add_counts(&mut tally.uncovered, uncovered);
        for (c, n) in self.categories.drain() {
            tally.category(c, n);
        }
        tally.merge(std::mem::take(&mut self.scratch));
    }
}

fn rule_count(c: &Count) -> RuleCount {
    RuleCount {
        action: c.action.as_str(),
        values: c.values,
        changed: c.changed,
        removed: c.removed,
    }
}

/// Adds `counts` (key, rank among the built-in ids when it is one, counts) into `map`.
fn add_counts(
    map: &mut std::collections::BTreeMap<String, RuleCount>,
    mut counts: Vec<(std::borrow::Cow<'_, str>, Option<u32>, Count)>,
) {
    if map.is_empty() {
        // Built-in ids compare by their precomputed rank (the order of their text). The ranked
        // counts come first and already sorted: a stable sort finds that run and merges the
        // few others into it.
        counts.sort_by(|a, b| match (a.1, b.1) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => a.0.cmp(&b.0),
        });
        let mut sorted: Vec<(String, RuleCount)> = Vec::with_capacity(counts.len());
        for (key, _, c) in counts {
            match sorted.last_mut() {
                Some((k, e)) if *k == *key => {
                    e.values += c.values;
                    e.changed += c.changed;
                    e.removed += c.removed;
                }
                _ => sorted.push((key.into_owned(), rule_count(&c))),
            }
        }
        *map = sorted.into_iter().collect();
        return;
    }
    for (key, _, c) in counts {
        let e = match map.get_mut(key.as_ref()) {
            Some(e) => e,
            None => map.entry(key.into_owned()).or_insert_with(|| RuleCount {
                action: c.action.as_str(),
                ..RuleCount::default()
            }),
        };
        e.values += c.values;
        e.changed += c.changed;
        e.removed += c.removed;
    }
}

/// Local counts for one rule or path.
struct Count {
    action: Action,
    values: u64,
    changed: u64,
    removed: u64,
}

/// True for the roles whose values go into the message dictionary under `profile`.
fn collects(profile: ProfileName, role: Role) -> bool {
    matches!(
        role,
        Role::Name
            | Role::Street
            | Role::City
            | Role::County
            | Role::Zip
            | Role::Phone
            | Role::Email
            | Role::Id
    ) && profile::action(profile, role) != Action::Keep
}

/// True when some value of type `ty` can go into the message dictionary under `profile`.
fn type_collects(profile: ProfileName, ty: Type) -> bool {
    match ty {
        Type::Prim(r) => collects(profile, r),
        Type::Composite(comps) => comps.iter().any(|c| match c {
            types::Comp::R(r) => collects(profile, *r),
            types::Comp::S(subs) => subs.iter().any(|r| collects(profile, *r)),
        }),
    }
}

/// False when `leaf`, in component `comp`, is a coding-system component (3 and 6 of
/// CWE/CE/CNE) that reads like a person's name (letters with a space, or more than 20 letters)
/// rather than a coding system.
fn coded_leaf_plausible(comp: u16, leaf: &[u8]) -> bool {
    !((comp == 3 || comp == 6)
        && (leaf.len() > 20 || leaf.contains(&b' '))
        && leaf
            .iter()
            .all(|b| b.is_ascii_alphabetic() || matches!(b, b' ' | b'.' | b'\'' | b'-')))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sep {
    Subcomponent,
    Component,
    Repetition,
    End,
}

/// Calls `f` with the position (repetition, component, subcomponent; 1-based) of every
/// non-empty leaf of a field, in one pass.
fn each_leaf(d: &Delimiters, raw: &[u8], mut f: impl FnMut((u16, u16, u16), &[u8])) {
    let (mut r, mut c, mut s) = (1u16, 1u16, 1u16);
    let mut leaf_start = 0;
    loop {
        let i = next_sep(d, raw, leaf_start);
        if i > leaf_start {
            f((r, c, s), &raw[leaf_start..i]);
        }
        match raw.get(i) {
            None => break,
            Some(&b) if b == d.component => (c, s) = (c.saturating_add(1), 1),
            Some(&b) if Some(b) == d.repetition => (r, c, s) = (r.saturating_add(1), 1, 1),
            Some(_) => s = s.saturating_add(1),
        }
        leaf_start = i + 1;
    }
}

/// The index of the next component, repetition or subcomponent separator in `raw` at or after
/// `from`, or `raw.len()`.
fn next_sep(d: &Delimiters, raw: &[u8], from: usize) -> usize {
    let c = d.component;
    let (r, s) = (d.repetition.unwrap_or(c), d.subcomponent.unwrap_or(c));
    // Eight bytes at a time (leaves are short, so no vector set-up): a byte equal to one of the
    // separators is a zero byte of the word XOR that separator, and the classic test below
    // marks the lowest zero byte of a word exactly (later ones only may be marked falsely).
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let (wc, wr, ws) = (LO * u64::from(c), LO * u64::from(r), LO * u64::from(s));
    let mut i = from;
    while let Some(chunk) = raw.get(i..i + 8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_le_bytes(bytes);
        let hits = zero(x ^ wc) | zero(x ^ wr) | zero(x ^ ws);
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let rest = raw.get(i..).unwrap_or_default();
    rest.iter()
        .position(|&b| b == c || b == r || b == s)
        .map_or(raw.len(), |k| i + k)
}

/// `v` without the leading and trailing bytes `str::trim` removes from ASCII text (tab, line
/// feed, vertical tab, form feed, carriage return and space).
fn trim_ascii_whitespace(v: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b'\t'..=b'\r' | b' ');
    let start = v.iter().position(|b| !ws(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    &v[start..end]
}

/// True for `YYYYMMDD` (years 1800-2199, a real month and day) followed by nothing or by HL7
/// time and zone characters.
fn looks_like_date(raw: &[u8]) -> bool {
    if looks_like_written_date(raw) {
        return true;
    }
    if raw.len() < 8 || !raw[..8].iter().all(u8::is_ascii_digit) {
        return false;
    }
    if !raw[8..]
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'+' | b'-'))
    {
        return false;
    }
    let n = |a: usize, b: usize| {
        raw[a..b]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let (y, m, d) = (n(0, 4), n(4, 6), n(6, 8));
    (1800..2200).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)
}

/// A full date written with separators (`04/24/2007`, `24.04.2007`, `2007-04-24`) where the
/// standard expects a code: also treated as a date (fail safe).
fn looks_like_written_date(raw: &[u8]) -> bool {
    // At most 4 + 2 + 2 digits and two separators; checked without allocating (this runs on
    // every kept value).
    if !(5..=10).contains(&raw.len()) || !raw[0].is_ascii_digit() {
        return false;
    }
    let mut parts: [&[u8]; 3] = [&[]; 3];
    let mut count = 0;
    for p in raw.split(|b| matches!(b, b'/' | b'.' | b'-')) {
        if count == 3 || p.is_empty() || p.len() > 4 || !p.iter().all(u8::is_ascii_digit) {
            return false;
        }
        parts[count] = p;
        count += 1;
    }
    if count != 3 {
        return false;
    }
    let n = |p: &[u8]| p.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    let year = |y: u32| (1800..2200).contains(&y);
    let day_month = |a: u32, b: u32| {
        ((1..=12).contains(&a) && (1..=31).contains(&b))
            || ((1..=31).contains(&a) && (1..=12).contains(&b))
    };
    match (parts[0].len(), parts[1].len(), parts[2].len()) {
        (4, 1..=2, 1..=2) => year(n(parts[0])) && day_month(n(parts[1]), n(parts[2])),
        (1..=2, 1..=2, 4) => year(n(parts[2])) && day_month(n(parts[0]), n(parts[1])),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_dates_in_coded_fields_are_dates() {
        for d in ["04/24/2007", "24.04.2007", "2007-04-24", "4/5/1999"] {
            assert!(looks_like_date(d.as_bytes()), "{d}");
        }
        for d in [
            "2.16.840",
            "1.2.3",
            "12/40/2007",
            "2007",
            "v2.5.1",
            "04/24/07",
            "13/13/2007",
        ] {
            assert!(!looks_like_date(d.as_bytes()), "{d}");
        }
    }

    #[test]
    fn coded_shapes() {
        let d = Delimiters::default();
        let plausible_coded = |d: &Delimiters, raw: &[u8]| {
            let mut ok = true;
            each_leaf(d, raw, |(_, c, _), leaf| {
                ok &= coded_leaf_plausible(c, leaf)
            });
            ok
        };
        assert!(plausible_coded(&d, b"1554-5^GLUCOSE^LN"));
        assert!(plausible_coded(
            &d,
            b"I21^Acute myocardial infarction^I10~X^Y^HL70005"
        ));
        assert!(!plausible_coded(
            &d,
            b"555-55-5555^PRIMARY^PATRICIA P^^^^MD"
        ));
    }

    #[test]
    fn parts_by_separator_positions_are_the_split_parts() {
        for seg in [
            &b"PID|1||123^^^H||DOE^JOHN"[..],
            b"MSH|^~\\&|A|B",
            b"ZZZ",
            b"ZZZ|",
            b"OBX||||",
            b"|",
            b"",
            b"NTE|1||a long comment that runs past a few words|||x",
            "NTE|1||é\u{80}|€|".as_bytes(),
        ] {
            assert_eq!(
                {
                    let mut v = Vec::new();
                    field_seps(seg, b'|', &mut v);
                    v
                },
                memchr::memchr_iter(b'|', seg).collect::<Vec<_>>()
            );
            let mut seps = Vec::new();
            field_seps(seg, b'|', &mut seps);
            let parts: Vec<&[u8]> = split(seg, Some(b'|')).collect();
            for (k, p) in parts.iter().enumerate() {
                assert_eq!(part(seg, &seps, k), Some(*p));
            }
            assert_eq!(part(seg, &seps, parts.len()), None);
        }
    }

    #[test]
    fn separators_are_found_at_every_offset() {
        let d = Delimiters::default();
        let plain = |d: &Delimiters, raw: &[u8], from: usize| {
            let seps = [Some(d.component), d.repetition, d.subcomponent];
            raw[from..]
                .iter()
                .position(|&b| seps.contains(&Some(b)))
                .map_or(raw.len(), |k| from + k)
        };
        // Separators and other bytes (high bytes too, which borrow in the word test) at every
        // position of strings up to three words long.
        let alphabet = [b'a', b'^', b'~', b'&', 0x80, 0xff, 0x00, b'|', b'\\'];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..=24 {
            for _ in 0..200 {
                let raw = crate::parse::tests::random_bytes(&mut seed, len, &alphabet);
                for from in 0..=len {
                    assert_eq!(
                        next_sep(&d, &raw, from),
                        plain(&d, &raw, from),
                        "{raw:?} {from}"
                    );
                }
            }
        }
        let odd = Delimiters {
            repetition: None,
            subcomponent: None,
            ..Delimiters::default()
        };
        assert_eq!(next_sep(&odd, b"abcdefgh~&ij^k", 0), 12);
    }

    #[test]
    fn ascii_trim_is_str_trim() {
        for b in 0u8..0x80 {
            for raw in [vec![b], vec![b, b'x', b], vec![b'x', b, b'y']] {
                let text = std::str::from_utf8(&raw).unwrap_or_default();
                assert_eq!(
                    trim_ascii_whitespace(&raw),
                    text.trim().as_bytes(),
                    "{b:#x}"
                );
            }
        }
        // Plain leaves skip decoding: they must be exactly what decoding gives.
        let d = Delimiters::default();
        for raw in [
            &b" Smith "[..],
            b"O'Brien",
            b"a\\F\\b",
            b"M\xc3\xbcller",
            b"",
        ] {
            match d.plain(raw) {
                Some(p) => assert_eq!(p, d.decode(raw).as_bytes()),
                None => assert!(raw.contains(&b'\\') || !raw.is_ascii()),
            }
        }
    }

    #[test]
    fn date_shapes() {
        assert!(looks_like_date(b"20141006092900+0700"));
        assert!(looks_like_date(b"19800101"));
        assert!(!looks_like_date(b"76164006"));
        assert!(!looks_like_date(b"2014100"));
        assert!(!looks_like_date(b"20141306"));
        assert!(!looks_like_date(b"20141006X"));
    }
}
