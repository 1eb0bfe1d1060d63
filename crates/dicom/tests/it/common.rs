use std::path::{Path, PathBuf};

use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_object::InMemDicomObject;
use dicom_object::file::ReadPreamble;
use phiguard_deid::DeidKey;
use phiguard_dicom::DicomDeid;
use phiguard_rules::{Config, Engine, EngineOptions, ProfileName, Tally};

pub fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

/// Every `.dcm` of the shared corpus (expected outputs excluded), or `None` when absent.
pub fn corpus() -> Option<Vec<PathBuf>> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/structured/dicom");
    if !dir.is_dir() {
        eprintln!("note: {} absent, corpus test skipped", dir.display());
        return None;
    }
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "dcm")
                && !p.to_string_lossy().contains(".expected")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Some(out)
}

pub fn engine(key: u8) -> Engine {
    Engine::new(DeidKey::from_bytes([key; 32]), EngineOptions::default())
}

pub fn deid(profile: ProfileName) -> DicomDeid {
    DicomDeid::new(&Config::builtin(profile)).unwrap()
}

pub fn run(d: &DicomDeid, e: &Engine, input: &[u8]) -> Vec<u8> {
    let mut t = Tally::default();
    d.deidentify_bytes(e, input, &mut t).unwrap().bytes
}

/// Parses a file (with or without a meta group) with dicom-rs.
pub fn parse(bytes: &[u8]) -> (InMemDicomObject, Option<dicom_object::FileMetaTable>) {
    if bytes.len() > 132 && &bytes[128..132] == b"DICM" {
        let f = dicom_object::OpenFileOptions::new()
            .read_preamble(ReadPreamble::Never)
            .from_reader(&bytes[128..])
            .unwrap();
        let meta = f.meta().clone();
        (f.into_inner(), Some(meta))
    } else {
        let ts = dicom_transfer_syntax_registry::TransferSyntaxRegistry
            .get("1.2.840.10008.1.2")
            .unwrap();
        (
            InMemDicomObject::read_dataset_with_ts(bytes, ts).unwrap(),
            None,
        )
    }
}

use dicom_encoding::TransferSyntaxIndex;

/// One element met in a walk: its tag path, VR and string values (empty for binary).
pub struct Seen {
    pub path: Vec<u32>,
    pub vr: VR,
    pub strings: Vec<String>,
    pub bytes: Vec<u8>,
}

pub fn walk(obj: &InMemDicomObject) -> Vec<Seen> {
    let mut out = Vec::new();
    walk_into(obj, &mut Vec::new(), &mut out);
    out
}

fn walk_into(obj: &InMemDicomObject, path: &mut Vec<u32>, out: &mut Vec<Seen>) {
    for e in obj.iter() {
        let t = e.tag();
        let tag = (u32::from(t.group()) << 16) | u32::from(t.element());
        path.push(tag);
        match e.value() {
            Value::Sequence(s) => {
                out.push(Seen {
                    path: path.clone(),
                    vr: VR::SQ,
                    strings: vec![],
                    bytes: vec![],
                });
                for item in s.items() {
                    walk_into(item, path, out);
                }
            }
            Value::PixelSequence(p) => out.push(Seen {
                path: path.clone(),
                vr: e.vr(),
                strings: vec![],
                bytes: p.fragments().iter().flatten().copied().collect(),
            }),
            Value::Primitive(v) => {
                let strings = match v {
                    PrimitiveValue::Str(_) | PrimitiveValue::Strs(_) => v
                        .to_multi_str()
                        .iter()
                        .map(|s| s.trim_matches(['\0', ' ']).to_string())
                        .collect(),
                    _ => vec![],
                };
                out.push(Seen {
                    path: path.clone(),
                    vr: e.vr(),
                    strings,
                    bytes: v.to_bytes().to_vec(),
                });
            }
        }
        path.pop();
    }
}

pub fn top_string(obj: &InMemDicomObject, g: u16, e: u16) -> Option<String> {
    obj.get(Tag(g, e)).and_then(|el| {
        el.value()
            .primitive()
            .map(|v| v.to_str().trim_matches(['\0', ' ']).to_string())
    })
}

/// One safe-harbor de-identifier and one engine for the whole test binary (building the
/// detector is the slow part).
pub fn safe_harbor() -> &'static DicomDeid {
    static D: std::sync::OnceLock<DicomDeid> = std::sync::OnceLock::new();
    D.get_or_init(|| deid(ProfileName::SafeHarbor))
}

pub fn shared_engine() -> &'static Engine {
    static E: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    E.get_or_init(|| engine(1))
}
