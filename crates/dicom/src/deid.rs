//! The de-identification walk: every element of the data set, recursively through sequence
//! items, gets the first matching user rule, else the profile's Annex E action, else a safe
//! default; the result is written back in the input transfer syntax.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Write as _;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::file::ReadPreamble;
use dicom_object::mem::InMemElement;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use phiguard_detect::Category;
use phiguard_rules::{
    Action, Config, ConfigError, DateFormat, Engine, Generalize, Kind, Outcome, PatientRef,
    ProfileName, RuleSet, Tally,
};

use crate::profile::{self, AnnexOption, Code, Index};
use crate::scan::{self, tag_label};
use crate::selector::DicomSelector;
use crate::{DicomError, flags, stream};

/// Private attributes kept by the `retain-safe-private` option: `(group, private creator,
/// element byte)`. A small subset of PS3.15 Table E.3.10-1 limited to numeric acquisition
/// parameters (diffusion b-values and directions, PET quantitation factors).
pub const SAFE_PRIVATE: &[(u16, &str, u8)] = &[
    (0x0019, "SIEMENS MR HEADER", 0x0C),
    (0x0019, "SIEMENS MR HEADER", 0x0D),
    (0x0019, "SIEMENS MR HEADER", 0x0E),
    (0x0019, "SIEMENS MR HEADER", 0x27),
    (0x0043, "GEMS_PARM_01", 0x39),
    (0x2001, "Philips Imaging DD 001", 0x03),
    (0x2001, "Philips Imaging DD 001", 0x04),
    (0x2005, "Philips MR Imaging DD 001", 0xB0),
    (0x2005, "Philips MR Imaging DD 001", 0xB1),
    (0x2005, "Philips MR Imaging DD 001", 0xB2),
    (0x7053, "Philips PET Private Group", 0x00),
    (0x7053, "Philips PET Private Group", 0x09),
];

const PATIENT_ID: u32 = 0x0010_0020;
const PATIENT_BIRTH_DATE: u32 = 0x0010_0030;
const PATIENT_AGE: u32 = 0x0010_1010;
const SOP_INSTANCE_UID: u32 = 0x0008_0018;

/// The result of de-identifying one file.
pub struct Deidentified {
    /// The de-identified file, in the input's transfer syntax.
    pub bytes: Vec<u8>,
    /// Why the pixels need a human review for burned-in text, if they may show any.
    pub pixel_flag: Option<&'static str>,
}

impl std::fmt::Debug for Deidentified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deidentified")
            .field("bytes", &self.bytes.len())
            .field("pixel_flag", &self.pixel_flag)
            .finish()
    }
}

/// What happens to one element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// An engine action; the value's kind comes from its VR and attribute.
    Act(Action),
    /// Annex E D: a dummy value of the right VR (names and ids pseudonymised, dates per the
    /// profile's date policy).
    Dummy,
    /// Annex E U: keyed UID (sequences: recursed).
    Uid,
    /// Annex E C: clean (text detector, dates shifted, sequences recursed in clean mode).
    Clean,
    /// Safe default for UIDs no rule covers: standard UIDs kept, others remapped.
    UidUnlessStandard,
    /// Private attribute under retain-safe-private: kept if on the allow-list.
    SafePrivate,
}

struct ProfileRule {
    id: String,
    code: Code,
    temporal: bool,
}

/// De-identifies DICOM files with one config. Built once per run; `Send + Sync`.
pub struct DicomDeid {
    profile: ProfileName,
    options: Vec<AnnexOption>,
    user: RuleSet<DicomSelector>,
    exact: HashMap<u32, ProfileRule>,
    patterns: Vec<(profile::Pattern, ProfileRule)>,
    date_policy: Action,
    birth_policy: Action,
    retain_uids: bool,
    memory_limit: u64,
}

impl std::fmt::Debug for DicomDeid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DicomDeid")
            .field("profile", &self.profile)
            .field("options", &self.options)
            .field("user_rules", &self.user.len())
            .finish()
    }
}

/// Per-file state.
struct Ctx<'a> {
    engine: &'a Engine,
    tally: &'a mut Tally,
    patient: Option<PatientRef>,
}

impl DicomDeid {
    /// Compiles `config.dicom` (user rules, options) over the profile `config.profile`:
    /// safe-harbor = Basic Profile + retain-patient-characteristics (ages over 89 → `090Y`,
    /// dates to their year, birth dates over 89 removed); shifted = the same with
    /// retain-long-modified-dates (dates shifted per patient); limited-data-set = Basic Profile
    /// + retain-long-full-dates + retain-patient-characteristics, birth date kept.
    pub fn new(config: &Config) -> Result<DicomDeid, ConfigError> {
        let mut options = vec![AnnexOption::RetainPatientCharacteristics];
        match config.profile {
            ProfileName::SafeHarbor => {}
            ProfileName::Shifted => options.push(AnnexOption::RetainLongModifiedDates),
            ProfileName::LimitedDataSet => options.push(AnnexOption::RetainLongFullDates),
        }
        for (i, o) in config.dicom.options.iter().enumerate() {
            let opt = AnnexOption::parse(o).ok_or_else(|| ConfigError::Rule {
                at: format!("dicom.options[{i}] ({o:?})"),
                message: format!(
                    "unknown DICOM option; expected one of {}",
                    AnnexOption::ALL.map(AnnexOption::as_str).join(", ")
                ),
            })?;
            if !options.contains(&opt) {
                options.push(opt);
            }
        }
        options.sort();
        let user = RuleSet::<DicomSelector>::compile("dicom", &config.dicom.rules)?;
        let entries = profile::entries(&options).map_err(|message| ConfigError::Rule {
            at: "dicom profile".into(),
            message,
        })?;
        let label = config.profile.as_str();
        let index = Index::new(entries);
        let rule = |e: &profile::Entry| ProfileRule {
            id: format!(
                "dicom {label}: {} {} ({})",
                pattern_label(e.pattern),
                e.name,
                e.basic
            ),
            code: e.code,
            temporal: e.temporal,
        };
        let exact = index.exact.iter().map(|(t, e)| (*t, rule(e))).collect();
        let patterns = index
            .patterns
            .iter()
            .map(|e| (e.pattern, rule(e)))
            .collect();
        let (date_policy, birth_policy) = match config.profile {
            ProfileName::SafeHarbor => (
                Action::Generalize(Generalize::Year),
                Action::Generalize(Generalize::Year),
            ),
            ProfileName::Shifted => (Action::DateShift, Action::DateShift),
            ProfileName::LimitedDataSet => (Action::Keep, Action::Keep),
        };
        Ok(DicomDeid {
            profile: config.profile,
            retain_uids: options.contains(&AnnexOption::RetainUids),
            options,
            user,
            exact,
            patterns,
            date_policy,
            birth_policy,
            memory_limit: stream::MAX_IN_MEMORY,
        })
    }

    /// The Annex E options in force (the profile's and the config's).
    pub fn options(&self) -> &[AnnexOption] {
        &self.options
    }

    /// Reads one file from `input` and writes the de-identified file to `out`, streaming the
    /// pixel data (see [`DicomDeid::deidentify_stream`]). Counts into `tally`; a pixel flag is
    /// counted in `tally.notes` as `dicom_pixels_flagged:<reason>`. On error `out` may hold a
    /// partial file: the caller discards it.
    pub fn deidentify<R: std::io::Read, W: std::io::Write>(
        &self,
        engine: &Engine,
        input: R,
        out: W,
        tally: &mut Tally,
    ) -> Result<(), DicomError> {
        self.deidentify_stream(engine, input, out, tally)
            .map(|_| ())
    }

    /// The memory limit of [`DicomDeid::deidentify_stream`] (default [`crate::MAX_IN_MEMORY`]):
    /// the most it holds of a file outside its pixel data.
    pub fn set_memory_limit(&mut self, bytes: u64) {
        self.memory_limit = bytes;
    }

    /// De-identifies one file read from `input` into `out` in bounded memory, with the same
    /// output as [`DicomDeid::deidentify_bytes`]: the file meta group and the data set up to
    /// the top-level Pixel Data (7FE0,0010) are read (at most the memory limit) and
    /// de-identified with the pixel data standing in as an empty element, written, then the
    /// pixel data element is copied from `input` to `out` in [`crate::CHUNK`]-byte chunks (its
    /// value, or its encapsulated fragments up to the sequence delimiter), then the elements
    /// after it are read (within the limit), de-identified and written. Returns the pixel
    /// review flag.
    ///
    /// Explicit VR big endian streams the same way (the pixel bytes are copied as they are, as
    /// dicom-rs writes them back). Deflated Explicit VR Little Endian is inflated as it is read
    /// and the output data set deflated as it is written (flate2, the level dicom-rs uses, so
    /// the bytes are the same); a corrupt or truncated deflate stream fails with the file
    /// offset. A file without top-level pixel data is read whole (refused over the memory
    /// limit). On error `out` may hold a partial file (never a finished deflate stream): the
    /// caller discards it. A file cut inside its pixel data fails with the byte offset.
    pub fn deidentify_stream<R: std::io::Read, W: std::io::Write>(
        &self,
        engine: &Engine,
        input: R,
        out: W,
        tally: &mut Tally,
    ) -> Result<Option<&'static str>, DicomError> {
        let mut rd = stream::Reader::new(
            std::io::BufReader::with_capacity(1 << 16, input),
            self.memory_limit,
        );
        match rd.split()? {
            stream::Split::Deflated { at } => {
                // The meta group stays in the buffer; what follows it is inflated as it is read.
                let stream::Reader { r, mut buf, .. } = rd;
                let rest = buf.split_off(at);
                let inflate = stream::Inflate::new(
                    std::io::Read::chain(std::io::Cursor::new(rest), r),
                    at as u64,
                );
                let mut rd = stream::Reader::with_buf(inflate, buf, self.memory_limit);
                let split = rd.split_from(at, scan::EXPLICIT_VR_LE.to_string())?;
                self.stream_split(engine, rd, split, Some(at), out, tally)
            }
            split => self.stream_split(engine, rd, split, None, out, tally),
        }
    }

    /// The rest of [`DicomDeid::deidentify_stream`] once the head is read; `deflated`: the
    /// length of the meta group of a deflated file, whose data set `rd` reads inflated.
    fn stream_split<R: std::io::Read, W: std::io::Write>(
        &self,
        engine: &Engine,
        mut rd: stream::Reader<R>,
        split: stream::Split,
        deflated: Option<usize>,
        mut out: W,
        tally: &mut Tally,
    ) -> Result<Option<&'static str>, DicomError> {
        let write_err = |_| DicomError::Write { stage: "output" };
        let (at, header_len, len, ts) = match split {
            stream::Split::Pixel {
                at,
                header_len,
                len,
                transfer_syntax,
            } => (at, header_len, len, transfer_syntax),
            stream::Split::Whole | stream::Split::Fallback if deflated.is_none() => {
                if matches!(split, stream::Split::Fallback) {
                    rd.read_rest()?;
                }
                let d = self.deidentify_bytes(engine, &rd.buf, tally)?;
                out.write_all(&d.bytes).map_err(write_err)?;
                out.flush().map_err(write_err)?;
                return Ok(d.pixel_flag);
            }
            stream::Split::Whole | stream::Split::Fallback => {
                // Deflated: the meta group and the whole inflated data set, within the limit
                // (read to the end of the deflate stream, which must be complete).
                rd.read_rest()?;
                let Processed {
                    dataset,
                    meta,
                    pixel_flag,
                    mut local,
                    ..
                } = self.process(engine, &rd.buf, true)?;
                rd.buf = Vec::new();
                let (plain, data) = self.write_inflated(engine, dataset, meta)?;
                out.write_all(&plain).map_err(write_err)?;
                let mut z = stream::DeflateSink::new(out);
                z.write_all(&data).map_err(write_err)?;
                let mut out = z.finish().map_err(write_err)?;
                out.flush().map_err(write_err)?;
                local.files += 1;
                local.records += 1;
                tally.merge(local);
                return Ok(pixel_flag);
            }
            // Only the first split finds a deflated data set.
            stream::Split::Deflated { .. } => return Err(DicomError::Decode { stage: "file" }),
        };
        let little = ts != scan::EXPLICIT_VR_BE;
        let item = |tag: u32| {
            let (g, e) = ((tag >> 16) as u16, tag as u16);
            let mut h = [0u8; 8];
            if little {
                h[..2].copy_from_slice(&g.to_le_bytes());
                h[2..4].copy_from_slice(&e.to_le_bytes());
            } else {
                h[..2].copy_from_slice(&g.to_be_bytes());
                h[2..4].copy_from_slice(&e.to_be_bytes());
            }
            h
        };
        // The head, with the pixel data standing in as an empty element of the same kind.
        let pixel_header = rd.buf[at..at + header_len].to_vec();
        rd.buf.truncate(at);
        let encapsulated = len == 0xFFFF_FFFF;
        rd.buf.extend_from_slice(&pixel_header[..header_len - 4]);
        if encapsulated {
            rd.buf.extend_from_slice(&[0xFF; 4]);
            rd.buf.extend_from_slice(&item(0xFFFE_E000));
            rd.buf.extend_from_slice(&item(0xFFFE_E0DD));
        } else {
            rd.buf.extend_from_slice(&[0; 4]);
        }
        let Processed {
            mut dataset,
            meta,
            transfer_syntax: _,
            pixel_flag,
            mut patient,
            mut local,
        } = self.process(engine, &rd.buf, deflated.is_some())?;
        rd.buf = Vec::new();
        let pixel_tag = Tag(0x7FE0, 0x0010);
        // Copied through when the rules keep it as it is (what the walk did to the stand-in
        // says so for encapsulated pixel data; native pixel data is kept by a keep action).
        let raw = match dataset.get(pixel_tag) {
            None => false,
            Some(_) if encapsulated => true,
            Some(e) => {
                let (_, _, op) = self.decide(stream::PIXEL_DATA, e.vr(), false);
                matches!(
                    op,
                    Op::Act(Action::Keep) | Op::Uid | Op::UidUnlessStandard | Op::Clean
                )
            }
        };
        if raw {
            dataset.remove_element(pixel_tag);
        }
        // Offsets past the head: in the file, or in the inflated data set.
        let (mut sink, origin, label) = match deflated {
            None => {
                let head = self.write(engine, dataset, meta, &ts)?;
                out.write_all(&head).map_err(write_err)?;
                (stream::Sink::Plain(out), 0, "")
            }
            Some(meta_len) => {
                let (plain, data) = self.write_inflated(engine, dataset, meta)?;
                out.write_all(&plain).map_err(write_err)?;
                let mut z = stream::DeflateSink::new(out);
                z.write_all(&data).map_err(write_err)?;
                (stream::Sink::Deflate(z), meta_len as u64, scan::INFLATED)
            }
        };
        let at_px = stream::At { little, label };
        let offset = (at + header_len) as u64 - origin;
        let end = if raw {
            sink.write_all(&pixel_header).map_err(write_err)?;
            stream::copy_pixel_value(&mut rd.r, Some(&mut sink), len, offset, at_px)?
        } else {
            stream::copy_pixel_value(&mut rd.r, None::<&mut W>, len, offset, at_px)?
        };
        // The elements after the pixel data (signatures, padding, private groups): read within
        // the limit, de-identified with the same rules, written after it. For a deflated file
        // this reads to the end of the deflate stream, which must be complete.
        let mut tail = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut rd.r, self.memory_limit + 1),
            &mut tail,
        )?;
        if tail.len() as u64 > self.memory_limit {
            return Err(stream::too_large(
                self.memory_limit,
                "the file outside its top-level pixel data",
            ));
        }
        if !tail.is_empty() {
            scan::check_dataset(&tail, &ts, end, label, Some(stream::PIXEL_DATA))?;
            let tsx = TransferSyntaxRegistry
                .get(&ts)
                .ok_or_else(|| unsupported(&ts))?;
            let obj = InMemDicomObject::read_dataset_with_ts(&tail[..], tsx).map_err(|_| {
                DicomError::Decode {
                    stage: "elements after the pixel data",
                }
            })?;
            drop(tail);
            let mut ctx = Ctx {
                engine,
                tally: &mut local,
                patient: patient.take(),
            };
            let obj = self.dataset(&mut ctx, obj, false, &mut Vec::new(), 0)?;
            let mut bytes = Vec::new();
            obj.write_dataset_with_ts(&mut bytes, tsx)
                .map_err(|_| DicomError::Write { stage: "data set" })?;
            sink.write_all(&bytes).map_err(write_err)?;
        }
        let mut out = sink.finish().map_err(write_err)?;
        out.flush().map_err(write_err)?;
        local.files += 1;
        local.records += 1;
        tally.merge(local);
        Ok(pixel_flag)
    }

    /// Why the pixels of this file may show burned-in text, without de-identifying it.
    pub fn pixel_flag(&self, input: &[u8]) -> Result<Option<&'static str>, DicomError> {
        let (obj, _) = read(input)?;
        Ok(flags::burned_in_reason(&obj.dataset))
    }

    /// De-identifies one whole file held in memory.
    pub fn deidentify_bytes(
        &self,
        engine: &Engine,
        input: &[u8],
        tally: &mut Tally,
    ) -> Result<Deidentified, DicomError> {
        let Processed {
            dataset,
            meta,
            transfer_syntax,
            pixel_flag,
            patient: _,
            mut local,
        } = self.process(engine, input, false)?;
        let bytes = self.write(engine, dataset, meta, &transfer_syntax)?;
        local.files += 1;
        local.records += 1;
        tally.merge(local);
        Ok(Deidentified { bytes, pixel_flag })
    }

    /// Reads and de-identifies one file (or head of a file) held in memory; `inflated`: a
    /// deflated file's data set is given inflated (the streaming path's head).
    fn process(
        &self,
        engine: &Engine,
        input: &[u8],
        inflated: bool,
    ) -> Result<Processed, DicomError> {
        let (obj, layout) = read_with(input, inflated)?;
        let Parsed { dataset, meta } = obj;
        let pixel_flag = flags::burned_in_reason(&dataset);
        let mut local = Tally::default();
        let patient = first_string(&dataset, PATIENT_ID).map(|id| engine.patient(&id));
        let mut ctx = Ctx {
            engine,
            tally: &mut local,
            patient,
        };
        let mut path = Vec::new();
        let mut dataset = self.dataset(&mut ctx, dataset, false, &mut path, 0)?;
        let patient = ctx.patient.take();
        self.mark(&mut dataset);
        // Overlays kept (clean-graphics or a user rule) are bitmaps that may hold text too.
        let pixel_flag = pixel_flag.or_else(|| {
            dataset
                .tags()
                .any(|t| t.group() & 0xFF01 == 0x6000 && t.element() == 0x3000)
                .then_some("overlay_data_kept")
        });
        if let Some(reason) = pixel_flag {
            local.note(&format!("dicom_pixels_flagged:{reason}"));
        }
        Ok(Processed {
            dataset,
            meta,
            transfer_syntax: layout.transfer_syntax,
            pixel_flag,
            patient,
            local,
        })
    }

    /// Writes a processed data set (with its updated meta group) in its transfer syntax.
    fn write(
        &self,
        engine: &Engine,
        dataset: InMemDicomObject,
        meta: Option<dicom_object::FileMetaTable>,
        transfer_syntax: &str,
    ) -> Result<Vec<u8>, DicomError> {
        let mut out = Vec::new();
        match meta {
            Some(meta) => {
                let meta = self.final_meta(engine, &dataset, meta);
                let file = dataset.with_exact_meta(meta);
                file.write_all(&mut out)
                    .map_err(|_| DicomError::Write { stage: "data set" })?;
            }
            None => {
                let ts = TransferSyntaxRegistry
                    .get(transfer_syntax)
                    .ok_or_else(|| unsupported(transfer_syntax))?;
                dataset
                    .write_dataset_with_ts(&mut out, ts)
                    .map_err(|_| DicomError::Write { stage: "data set" })?;
            }
        }
        Ok(out)
    }

    /// A deflated file as [`DicomDeid::write`] would write it, before deflating: the preamble
    /// and meta group, and the data set in explicit VR little endian (what dicom-rs deflates).
    fn write_inflated(
        &self,
        engine: &Engine,
        dataset: InMemDicomObject,
        meta: Option<dicom_object::FileMetaTable>,
    ) -> Result<(Vec<u8>, Vec<u8>), DicomError> {
        let meta = meta.ok_or(DicomError::Decode {
            stage: "file meta group",
        })?;
        let meta = self.final_meta(engine, &dataset, meta);
        let mut plain = vec![0u8; 128];
        plain.extend_from_slice(b"DICM");
        meta.write(&mut plain).map_err(|_| DicomError::Write {
            stage: "file meta group",
        })?;
        let ts = TransferSyntaxRegistry
            .get(scan::EXPLICIT_VR_LE)
            .ok_or_else(|| unsupported(scan::EXPLICIT_VR_LE))?;
        let mut data = Vec::new();
        dataset
            .write_dataset_with_ts(&mut data, ts)
            .map_err(|_| DicomError::Write { stage: "data set" })?;
        Ok((plain, data))
    }

    /// The meta group written out: the SOP instance UID of the data set, no AE titles, no
    /// private information, the group length updated.
    fn final_meta(
        &self,
        engine: &Engine,
        dataset: &InMemDicomObject,
        mut meta: dicom_object::FileMetaTable,
    ) -> dicom_object::FileMetaTable {
        let sop = first_string(dataset, SOP_INSTANCE_UID);
        meta.media_storage_sop_instance_uid = match sop {
            Some(s) => s,
            None if self.retain_uids => meta.media_storage_sop_instance_uid.clone(),
            None => engine.uid(&meta.media_storage_sop_instance_uid),
        };
        meta.source_application_entity_title = None;
        meta.sending_application_entity_title = None;
        meta.receiving_application_entity_title = None;
        meta.private_information_creator_uid = None;
        meta.private_information = None;
        meta.update_information_group_length();
        meta
    }

    /// PatientIdentityRemoved, DeidentificationMethod, DeidentificationMethodCodeSequence and
    /// LongitudinalTemporalInformationModified (PS3.15 E.1.1, PS3.3 C.12.1).
    fn mark(&self, ds: &mut InMemDicomObject) {
        ds.put(DataElement::new(
            Tag(0x0012, 0x0062),
            VR::CS,
            PrimitiveValue::from("YES"),
        ));
        let method = format!(
            "phiguard {}: PS3.15 Annex E Basic Profile",
            self.profile.as_str()
        );
        ds.put(DataElement::new(
            Tag(0x0012, 0x0063),
            VR::LO,
            PrimitiveValue::from(method.as_str()),
        ));
        let mut items = vec![code_item(
            "113100",
            "Basic Application Confidentiality Profile",
        )];
        for o in &self.options {
            let (code, meaning) = o.code();
            items.push(code_item(code, meaning));
        }
        ds.put(DataElement::new(
            Tag(0x0012, 0x0064),
            VR::SQ,
            DataSetSequence::new(items, Length::UNDEFINED),
        ));
        let temporal = match self.profile {
            ProfileName::LimitedDataSet => "UNMODIFIED",
            ProfileName::Shifted | ProfileName::SafeHarbor => "MODIFIED",
        };
        ds.put(DataElement::new(
            Tag(0x0028, 0x0303),
            VR::CS,
            PrimitiveValue::from(temporal),
        ));
    }

    fn dataset(
        &self,
        ctx: &mut Ctx<'_>,
        obj: InMemDicomObject,
        clean: bool,
        path: &mut Vec<(u32, usize)>,
        depth: usize,
    ) -> Result<InMemDicomObject, DicomError> {
        let elements: Vec<InMemElement> = obj.into_iter().collect();
        let kept_private = if self.options.contains(&AnnexOption::RetainSafePrivate) {
            safe_private(&elements)
        } else {
            HashSet::new()
        };
        let mut out = Vec::with_capacity(elements.len());
        for e in elements {
            let tag = tag_u32(e.tag());
            if let Some(e) = self.element(ctx, e, tag, clean, &kept_private, path, depth)? {
                out.push(e);
            }
        }
        Ok(InMemDicomObject::from_element_iter(out))
    }

    /// The rule for `tag`: (rule id, covered, op).
    fn decide(&self, tag: u32, vr: VR, clean: bool) -> (Cow<'_, str>, bool, Op) {
        if let Some(r) = self.user.first(|s| s.matches(tag)) {
            return (Cow::Borrowed(r.id.as_str()), true, Op::Act(r.action));
        }
        let rule = self.exact.get(&tag).or_else(|| {
            self.patterns
                .iter()
                .find(|(p, _)| p.matches(tag))
                .map(|(_, r)| r)
        });
        let is_date = matches!(vr, VR::DA | VR::DT);
        if let Some(r) = rule {
            if tag >> 16 & 1 == 1 {
                let op = if r.code == Code::Clean {
                    Op::SafePrivate
                } else {
                    Op::Act(Action::Remove)
                };
                return (Cow::Borrowed(r.id.as_str()), true, op);
            }
            let op = match r.code {
                Code::Keep if tag == PATIENT_AGE && self.profile != ProfileName::LimitedDataSet => {
                    Op::Act(Action::Generalize(Generalize::Age))
                }
                Code::Keep => Op::Act(Action::Keep),
                Code::Remove if clean && vr != VR::SQ && is_text_vr(vr) => Op::Clean,
                Code::Remove if clean && vr == VR::PN => Op::Dummy,
                Code::Remove => Op::Act(Action::Remove),
                Code::Zero if tag == PATIENT_BIRTH_DATE => Op::Act(self.birth_policy),
                Code::Zero if r.temporal && is_date => Op::Act(self.date_policy),
                Code::Zero => Op::Act(Action::Blank),
                Code::Dummy if is_date => Op::Act(self.date_policy),
                Code::Dummy => Op::Dummy,
                Code::Uid => Op::Uid,
                Code::Clean => Op::Clean,
            };
            return (Cow::Borrowed(r.id.as_str()), true, op);
        }
        let keyword = StandardDataDictionary
            .by_tag(Tag((tag >> 16) as u16, (tag & 0xFFFF) as u16))
            .map(|e| e.alias());
        let op = match vr {
            VR::PN => Op::Act(Action::Remove),
            VR::DA | VR::DT => Op::Act(self.date_policy),
            VR::UI if self.retain_uids => Op::Act(Action::Keep),
            VR::UI if keyword.is_some_and(is_class_uid) => Op::Act(Action::Keep),
            VR::UI => Op::UidUnlessStandard,
            VR::ST | VR::LT | VR::UT | VR::UC => Op::Act(Action::Text),
            _ if kind_of(tag, vr) == Kind::Id => Op::Act(Action::Pseudonym),
            _ if matches!(kind_of(tag, vr), Kind::Phi(_)) => Op::Act(Action::Remove),
            _ if keyword.is_none() && (is_text_vr(vr) || vr == VR::UN) && tag & 0xFFFF != 0 => {
                Op::Act(Action::Remove)
            }
            _ => Op::Act(Action::Keep),
        };
        // Uncovered values that are kept are not counted: only build a label for the others.
        let id = if op == Op::Act(Action::Keep) {
            Cow::Borrowed("")
        } else {
            Cow::Owned(format!(
                "dicom default: {} {}",
                tag_label(tag),
                keyword.unwrap_or("(not in the dictionary)")
            ))
        };
        (id, false, op)
    }

    #[allow(clippy::too_many_arguments)]
    fn element(
        &self,
        ctx: &mut Ctx<'_>,
        e: InMemElement,
        tag: u32,
        clean: bool,
        kept_private: &HashSet<u32>,
        path: &mut Vec<(u32, usize)>,
        depth: usize,
    ) -> Result<Option<InMemElement>, DicomError> {
        let vr = e.vr();
        let (id, covered, op) = self.decide(tag, vr, clean);
        let op = match op {
            Op::SafePrivate if kept_private.contains(&tag) => Op::Act(Action::Keep),
            Op::SafePrivate => Op::Act(Action::Remove),
            o => o,
        };
        let (header, value) = e.into_parts();
        match value {
            Value::Sequence(seq) => {
                let action = match op {
                    Op::Act(a @ (Action::Remove | Action::Blank | Action::Keep)) => a,
                    _ => Action::Text,
                };
                match action {
                    Action::Remove | Action::Blank => {
                        ctx.engine
                            .apply_counted(ctx.tally, &id, covered, action, Kind::Text, "#", None)
                            .map_err(|e| rule_err(path, tag, e))?;
                        if action == Action::Remove {
                            Ok(None)
                        } else {
                            Ok(Some(DataElement::new(
                                header.tag,
                                VR::SQ,
                                DataSetSequence::new(
                                    Vec::<InMemDicomObject>::new(),
                                    Length::UNDEFINED,
                                ),
                            )))
                        }
                    }
                    // A rule that keeps a sequence keeps it whole; a sequence no rule covers
                    // is recursed like any other.
                    Action::Keep if covered => Ok(Some(DataElement::new(header.tag, VR::SQ, seq))),
                    _ => {
                        let clean = clean || op == Op::Clean;
                        let items = seq.into_items();
                        let mut out = Vec::with_capacity(items.len());
                        for (i, item) in items.into_iter().enumerate() {
                            path.push((tag, i));
                            let r = self.dataset(ctx, item, clean, path, depth + 1);
                            path.pop();
                            out.push(r?);
                        }
                        Ok(Some(DataElement::new(
                            header.tag,
                            VR::SQ,
                            DataSetSequence::new(out, Length::UNDEFINED),
                        )))
                    }
                }
            }
            Value::PixelSequence(px) => match op {
                Op::Act(Action::Remove) => {
                    count(ctx, &id, covered, Action::Remove, path, tag)?;
                    Ok(None)
                }
                _ => Ok(Some(DataElement::new(header.tag, vr, px))),
            },
            Value::Primitive(v) => {
                let strings = match &v {
                    PrimitiveValue::Str(_) | PrimitiveValue::Strs(_) => true,
                    PrimitiveValue::Empty => is_text_vr(vr),
                    _ => false,
                };
                if !strings {
                    return self.binary(ctx, header.tag, vr, v, op, &id, covered, path);
                }
                self.strings(ctx, header.tag, vr, v, op, &id, covered, path)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn binary(
        &self,
        ctx: &mut Ctx<'_>,
        tag: Tag,
        vr: VR,
        v: PrimitiveValue,
        op: Op,
        id: &str,
        covered: bool,
        path: &[(u32, usize)],
    ) -> Result<Option<InMemElement>, DicomError> {
        let t = tag_u32(tag);
        let action = match op {
            Op::Act(a) => a,
            Op::Dummy => Action::Redact,
            Op::Uid | Op::UidUnlessStandard | Op::Clean | Op::SafePrivate => Action::Keep,
        };
        if !covered && action == Action::Keep {
            return Ok(Some(DataElement::new(tag, vr, v)));
        }
        count(ctx, id, covered, action, path, t)?;
        Ok(match action {
            Action::Keep => Some(DataElement::new(tag, vr, v)),
            Action::Blank => Some(DataElement::new(tag, vr, PrimitiveValue::Empty)),
            Action::Redact | Action::Generalize(_) | Action::DateShift | Action::Surrogate
                if is_numeric_vr(vr) =>
            {
                Some(DataElement::new(tag, vr, zero_of(vr, v.multiplicity())))
            }
            // Anything else cannot be applied to opaque bytes: removed (fail closed).
            _ => None,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn strings(
        &self,
        ctx: &mut Ctx<'_>,
        tag: Tag,
        vr: VR,
        v: PrimitiveValue,
        op: Op,
        id: &str,
        covered: bool,
        path: &[(u32, usize)],
    ) -> Result<Option<InMemElement>, DicomError> {
        let t = tag_u32(tag);
        let kind = kind_of(t, vr);
        let action = match op {
            Op::Act(a) => a,
            Op::Dummy => match kind {
                Kind::Phi(_) | Kind::Id | Kind::Uid => Action::Pseudonym,
                Kind::Date(_) | Kind::BirthDate(_) => self.date_policy,
                Kind::Age => Action::Generalize(Generalize::Age),
                Kind::Text | Kind::Zip => Action::Redact,
            },
            Op::Uid => Action::Pseudonym,
            Op::UidUnlessStandard => {
                if v.to_multi_str().iter().all(|s| is_standard_uid(s)) {
                    Action::Keep
                } else {
                    Action::Pseudonym
                }
            }
            Op::Clean => match kind {
                Kind::Phi(Category::Name) | Kind::Id | Kind::Uid => Action::Pseudonym,
                Kind::Date(_) | Kind::BirthDate(_) => {
                    if self.options.contains(&AnnexOption::RetainLongModifiedDates) {
                        Action::DateShift
                    } else {
                        self.date_policy
                    }
                }
                Kind::Age => Action::Generalize(Generalize::Age),
                _ if vr == VR::TM => Action::Keep,
                _ if matches!(vr, VR::CS | VR::DS | VR::IS | VR::AS) => Action::Keep,
                _ => Action::Text,
            },
            Op::SafePrivate => Action::Keep,
        };
        // Times carry no date: date actions leave them alone (a dummy replaces them).
        let action = if vr == VR::TM
            && matches!(
                action,
                Action::DateShift | Action::Generalize(Generalize::Year)
            ) {
            Action::Keep
        } else {
            action
        };
        let engine = ctx.engine;
        let patient = ctx.patient.as_ref();
        if action == Action::Remove {
            engine
                .apply_counted(ctx.tally, id, covered, action, kind, "#", patient)
                .map_err(|e| rule_err(path, t, e))?;
            return Ok(None);
        }
        let values = v.to_multi_str();
        if !covered && action == Action::Keep {
            return Ok(Some(DataElement::new(tag, vr, v)));
        }
        if action == Action::Blank {
            let joined = values.join("");
            let o = engine
                .apply_counted(ctx.tally, id, covered, action, kind, joined.trim(), patient)
                .map_err(|e| rule_err(path, t, e))?;
            return Ok(Some(match o {
                Outcome::Keep => DataElement::new(tag, vr, v),
                _ => DataElement::new(tag, vr, PrimitiveValue::Empty),
            }));
        }
        let mut changed = false;
        let mut out: Vec<String> = Vec::with_capacity(values.len());
        for s in values.iter() {
            let trimmed = s.trim_matches(['\0', ' ']);
            let o = engine
                .apply_counted(ctx.tally, id, covered, action, kind, trimmed, patient)
                .map_err(|e| rule_err(path, t, e))?;
            match o {
                Outcome::Keep => out.push(s.clone()),
                Outcome::Remove => changed = true,
                Outcome::Replace(r) => {
                    changed = true;
                    out.push(conform(vr, r, action));
                }
            }
        }
        if !changed {
            return Ok(Some(DataElement::new(tag, vr, v)));
        }
        if out.iter().all(String::is_empty) {
            return Ok(Some(DataElement::new(tag, vr, PrimitiveValue::Empty)));
        }
        Ok(Some(DataElement::new(
            tag,
            vr,
            PrimitiveValue::Strs(out.into_iter().collect()),
        )))
    }
}

fn count(
    ctx: &mut Ctx<'_>,
    id: &str,
    covered: bool,
    action: Action,
    path: &[(u32, usize)],
    tag: u32,
) -> Result<(), DicomError> {
    ctx.engine
        .apply_counted(ctx.tally, id, covered, action, Kind::Text, "#", None)
        .map(|_| ())
        .map_err(|e| rule_err(path, tag, e))
}

fn rule_err(path: &[(u32, usize)], tag: u32, e: phiguard_rules::RuleError) -> DicomError {
    DicomError::Rule {
        path: path_label(path, tag),
        message: e.to_string(),
    }
}

/// `(0040,A730)[2]/(0040,A123)`.
pub(crate) fn path_label(path: &[(u32, usize)], tag: u32) -> String {
    let mut s = String::new();
    for (t, i) in path {
        s.push_str(&format!("{}[{i}]/", tag_label(*t)));
    }
    s.push_str(&tag_label(tag));
    s
}

fn pattern_label(p: profile::Pattern) -> String {
    match p {
        profile::Pattern::Tag(t) => tag_label(t),
        profile::Pattern::Mask { mask, value } => {
            let mut s = String::from("(");
            for i in (0..8).rev() {
                if i == 3 {
                    s.push(',');
                }
                let m = (mask >> (i * 4)) & 0xF;
                let v = (value >> (i * 4)) & 0xF;
                if m == 0 {
                    s.push('x');
                } else {
                    s.push_str(&format!("{v:X}"));
                }
            }
            s.push(')');
            s
        }
        profile::Pattern::Private => "private".into(),
    }
}

fn code_item(code: &str, meaning: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(Tag(0x0008, 0x0100), VR::SH, PrimitiveValue::from(code)),
        DataElement::new(Tag(0x0008, 0x0102), VR::SH, PrimitiveValue::from("DCM")),
        DataElement::new(Tag(0x0008, 0x0104), VR::LO, PrimitiveValue::from(meaning)),
    ])
}

fn tag_u32(t: Tag) -> u32 {
    (u32::from(t.group()) << 16) | u32::from(t.element())
}

fn first_string(obj: &InMemDicomObject, tag: u32) -> Option<String> {
    let e = obj.get(Tag((tag >> 16) as u16, (tag & 0xFFFF) as u16))?;
    let v = e.value().primitive()?;
    let s = v
        .to_multi_str()
        .first()?
        .trim_matches(['\0', ' '])
        .to_string();
    (!s.is_empty()).then_some(s)
}

fn is_text_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE
            | VR::AS
            | VR::CS
            | VR::DA
            | VR::DS
            | VR::DT
            | VR::IS
            | VR::LO
            | VR::LT
            | VR::PN
            | VR::SH
            | VR::ST
            | VR::TM
            | VR::UC
            | VR::UI
            | VR::UR
            | VR::UT
    )
}

fn is_numeric_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::US | VR::SS | VR::UL | VR::SL | VR::UV | VR::SV | VR::FL | VR::FD
    )
}

fn zero_of(vr: VR, n: u32) -> PrimitiveValue {
    let n = n.max(1) as usize;
    match vr {
        VR::US => PrimitiveValue::U16(vec![0; n].into()),
        VR::SS => PrimitiveValue::I16(vec![0; n].into()),
        VR::UL => PrimitiveValue::U32(vec![0; n].into()),
        VR::SL => PrimitiveValue::I32(vec![0; n].into()),
        VR::UV => PrimitiveValue::U64(vec![0; n].into()),
        VR::SV => PrimitiveValue::I64(vec![0; n].into()),
        VR::FL => PrimitiveValue::F32(vec![0.0; n].into()),
        VR::FD => PrimitiveValue::F64(vec![0.0; n].into()),
        _ => PrimitiveValue::Empty,
    }
}

/// UIDs defined by the standard (SOP classes, transfer syntaxes, coding schemes): not instance
/// identifiers.
fn is_standard_uid(s: &str) -> bool {
    let t = s.trim_matches(['\0', ' ']);
    t.is_empty() || t.starts_with("1.2.840.10008.")
}

/// UIDs of classes and coding schemes rather than instances (kept when no rule covers them).
fn is_class_uid(keyword: &str) -> bool {
    keyword.ends_with("ClassUID")
        || keyword.contains("CodingScheme")
        || keyword.contains("TransferSyntax")
        || keyword.contains("MappingResource")
        || keyword.contains("ContextGroup")
        || keyword.contains("TemplateExtension")
        || keyword.ends_with("ClassesInStudy")
}

/// The kind of a value, from its VR and attribute.
fn kind_of(tag: u32, vr: VR) -> Kind {
    let birth = tag == PATIENT_BIRTH_DATE;
    match vr {
        VR::PN => Kind::Phi(Category::Name),
        VR::UI => Kind::Uid,
        VR::DA if birth => Kind::BirthDate(DateFormat::DicomDa),
        VR::DA => Kind::Date(DateFormat::DicomDa),
        VR::DT if birth => Kind::BirthDate(DateFormat::DicomDt),
        VR::DT => Kind::Date(DateFormat::DicomDt),
        VR::AS => Kind::Age,
        VR::LO | VR::SH | VR::CS | VR::UC | VR::ST | VR::LT | VR::UT | VR::AE | VR::UR => {
            let keyword = StandardDataDictionary
                .by_tag(Tag((tag >> 16) as u16, (tag & 0xFFFF) as u16))
                .map(|e| e.alias());
            match keyword {
                Some(k)
                    if k.ends_with("ID")
                        || k.ends_with("IDs")
                        || k.ends_with("Number")
                        || k.ends_with("Numbers") =>
                {
                    // Code, template and context identifiers are vocabulary, not people.
                    let vocabulary = ["Code", "Context", "Template", "Mapping", "Version"]
                        .iter()
                        .any(|w| k.contains(w));
                    if matches!(vr, VR::LO | VR::SH | VR::CS) && !vocabulary {
                        Kind::Id
                    } else {
                        Kind::Text
                    }
                }
                Some(k) if k.contains("Telephone") => Kind::Phi(Category::Phone),
                Some(k) if k.contains("Address") && !k.contains("Retrieve") => {
                    Kind::Phi(Category::Location)
                }
                Some(k) if k.contains("EMail") || k.contains("Email") => Kind::Phi(Category::Email),
                _ => Kind::Text,
            }
        }
        _ => Kind::Text,
    }
}

/// Makes a replacement valid for `vr`: lengths within the VR's maximum, CS upper case, numbers
/// for DS/IS, a valid DA/TM/AS or nothing.
fn conform(vr: VR, s: String, action: Action) -> String {
    let max = match vr {
        VR::AE | VR::CS | VR::SH => 16,
        VR::AS => 4,
        VR::DA => 8,
        VR::DS => 16,
        VR::IS => 12,
        VR::LO | VR::UI => 64,
        VR::PN => 64 * 3,
        VR::ST => 1024,
        VR::TM => 16,
        VR::DT => 26,
        VR::LT => 10240,
        _ => usize::MAX,
    };
    let redacted = action == Action::Redact;
    let s = match vr {
        VR::CS => s
            .chars()
            .map(|c| {
                let c = c.to_ascii_uppercase();
                if c.is_ascii_alphanumeric() || c == ' ' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
        VR::DS | VR::IS if redacted || s.parse::<f64>().is_err() => "0".to_string(),
        VR::TM if redacted || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
            "000000".to_string()
        }
        VR::AS if s.len() != 4 => String::new(),
        VR::DA if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) => String::new(),
        VR::DT if !s.bytes().all(|b| b.is_ascii_digit() || b"+-.".contains(&b)) => String::new(),
        VR::AE | VR::SH | VR::LO | VR::PN | VR::UC => s.replace('\\', "/"),
        _ => s,
    };
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Private elements (and their creators) on the safe allow-list, in one data set.
fn safe_private(elements: &[InMemElement]) -> HashSet<u32> {
    let mut creators: HashMap<(u16, u8), String> = HashMap::new();
    for e in elements {
        let t = e.tag();
        if t.group() & 1 == 1
            && (0x0010..=0x00FF).contains(&t.element())
            && let Some(v) = e.value().primitive()
        {
            let s = v.to_multi_str().join("\\");
            creators.insert(
                (t.group(), t.element() as u8),
                s.trim_matches(['\0', ' ']).to_string(),
            );
        }
    }
    let mut kept = HashSet::new();
    for e in elements {
        let t = e.tag();
        if t.group() & 1 == 0 || t.element() < 0x1000 {
            continue;
        }
        let block = (t.element() >> 8) as u8;
        let byte = (t.element() & 0xFF) as u8;
        if let Some(c) = creators.get(&(t.group(), block))
            && SAFE_PRIVATE
                .iter()
                .any(|(g, name, b)| *g == t.group() && *b == byte && name.eq_ignore_ascii_case(c))
        {
            kept.insert(tag_u32(t));
            kept.insert((u32::from(t.group()) << 16) | u32::from(block));
        }
    }
    kept
}

/// A data set after the walk, before it is written.
struct Processed {
    dataset: InMemDicomObject,
    meta: Option<dicom_object::FileMetaTable>,
    transfer_syntax: String,
    pixel_flag: Option<&'static str>,
    patient: Option<PatientRef>,
    local: Tally,
}

pub(crate) struct Parsed {
    pub dataset: InMemDicomObject,
    pub meta: Option<dicom_object::FileMetaTable>,
}

fn unsupported(uid: &str) -> DicomError {
    let printable = uid.len() <= 64 && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    DicomError::UnsupportedTransferSyntax {
        uid: if printable {
            uid.to_string()
        } else {
            "(not a UID)".into()
        },
    }
}

/// The registry, except that Deflated Explicit VR Little Endian reads as Explicit VR Little
/// Endian: for a deflated file whose data set is given already inflated.
struct InflatedIndex;

impl TransferSyntaxIndex for InflatedIndex {
    fn get(&self, uid: &str) -> Option<&dicom_encoding::TransferSyntax> {
        let trimmed = uid.trim_end_matches(|c: char| c.is_whitespace() || c == '\0');
        if trimmed == scan::DEFLATED_EXPLICIT_VR_LE {
            TransferSyntaxRegistry.get(scan::EXPLICIT_VR_LE)
        } else {
            TransferSyntaxRegistry.get(uid)
        }
    }
}

/// Checks the structure, then decodes with dicom-rs.
pub(crate) fn read(input: &[u8]) -> Result<(Parsed, scan::Layout), DicomError> {
    read_with(input, false)
}

/// [`read`]; with `inflated`, a deflated file's data set is given already inflated.
fn read_with(input: &[u8], inflated: bool) -> Result<(Parsed, scan::Layout), DicomError> {
    let layout = scan::check_with(input, inflated)?;
    let ts = TransferSyntaxRegistry
        .get(&layout.transfer_syntax)
        .ok_or_else(|| unsupported(&layout.transfer_syntax))?;
    if ts.is_unsupported() {
        return Err(unsupported(&layout.transfer_syntax));
    }
    let parsed = match layout.magic {
        Some(at) => {
            let options = OpenFileOptions::new().read_preamble(ReadPreamble::Never);
            let file = if inflated {
                options
                    .transfer_syntax_index(InflatedIndex)
                    .from_reader(&input[at..])
            } else {
                options.from_reader(&input[at..])
            }
            .map_err(|_| DicomError::Decode { stage: "file" })?;
            let meta = file.meta().clone();
            Parsed {
                dataset: file.into_inner(),
                meta: Some(meta),
            }
        }
        None => Parsed {
            dataset: InMemDicomObject::read_dataset_with_ts(input, ts)
                .map_err(|_| DicomError::Decode { stage: "data set" })?,
            meta: None,
        },
    };
    Ok((parsed, layout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conform_keeps_values_valid() {
        assert_eq!(
            conform(VR::CS, "[REDACTED]".into(), Action::Redact),
            "_REDACTED_"
        );
        assert_eq!(conform(VR::TM, "[DATE]".into(), Action::Redact), "000000");
        assert_eq!(
            conform(VR::DA, "2020".into(), Action::Generalize(Generalize::Year)),
            ""
        );
        assert_eq!(
            conform(VR::SH, "0123456789abcdef0".into(), Action::Pseudonym).len(),
            16
        );
        assert_eq!(conform(VR::IS, "[ID]".into(), Action::Redact), "0");
    }

    #[test]
    fn kinds() {
        assert_eq!(kind_of(0x0010_0020, VR::LO), Kind::Id);
        assert_eq!(kind_of(0x0008_0050, VR::SH), Kind::Id);
        assert_eq!(
            kind_of(0x0010_0030, VR::DA),
            Kind::BirthDate(DateFormat::DicomDa)
        );
        assert_eq!(kind_of(0x0010_1040, VR::LO), Kind::Phi(Category::Location));
        assert_eq!(kind_of(0x0008_1030, VR::LO), Kind::Text);
    }
}
