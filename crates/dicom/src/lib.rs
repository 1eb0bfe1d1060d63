//! # phiguard-dicom
//!
//! DICOM de-identification: the PS3.15 Annex E Basic Application Level Confidentiality Profile
//! and its options (from the machine-readable Table E.1-1), consistent UID remapping, private
//! tags, sequences recursed, and files whose pixels may carry burned-in text flagged.
//!
//! [`DicomDeid::deidentify_stream`] (and [`DicomDeid::deidentify`]) stream a file from a reader
//! to a writer in bounded memory: the header (everything before the top-level Pixel Data) is
//! read and de-identified in memory, the pixel data is copied through in [`CHUNK`]-byte chunks,
//! the elements after it are de-identified too; the output is byte-identical to
//! [`DicomDeid::deidentify_bytes`], which works on a whole file in a slice. Big-endian files
//! stream the same way; a deflated file's data set is inflated and deflated again on the fly
//! (same encoder and level as dicom-rs: same bytes). Files without top-level pixel data are
//! read whole, within [`MAX_IN_MEMORY`]. Parsing and writing use dicom-rs (no image codecs: pixel data
//! passes through in its transfer syntax, never decoded). A structural pass first checks every element header,
//! sequence and item with bounds, so malformed input fails with a byte offset and a tag path.
//!
//! ```no_run
//! use phiguard_dicom::DicomDeid;
//! use phiguard_rules::{Config, Engine, EngineOptions, ProfileName, Tally};
//! use phiguard_deid::DeidKey;
//!
//! let deid = DicomDeid::new(&Config::builtin(ProfileName::SafeHarbor)).unwrap();
//! let engine = Engine::new(DeidKey::from_bytes([7; 32]), EngineOptions::default());
//! let input = std::fs::read("in.dcm").unwrap();
//! let mut tally = Tally::default();
//! let out = deid.deidentify_bytes(&engine, &input, &mut tally).unwrap();
//! if let Some(reason) = out.pixel_flag {
//!     eprintln!("review the pixels: {reason}");
//! }
//! std::fs::write("out.dcm", out.bytes).unwrap();
//! ```

mod deid;
pub mod flags;
pub mod profile;
pub mod scan;
pub mod selector;
mod stream;

pub use deid::{Deidentified, DicomDeid, SAFE_PRIVATE};
pub use flags::burned_in_reason;
pub use profile::{AnnexOption, Code};
pub use selector::DicomSelector;
pub use stream::{CHUNK, MAX_IN_MEMORY};

/// Errors. They name a byte offset and a tag path, never a value.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    #[error("reading the input failed: {0}")]
    Io(std::io::Error),
    #[error("not a DICOM file (no DICM magic code and no recognisable data set)")]
    NotDicom,
    #[error("malformed DICOM at byte {path_offset}: {reason}", path_offset = offset_label(*offset, path))]
    Malformed {
        offset: u64,
        path: String,
        reason: &'static str,
    },
    #[error("unsupported transfer syntax {uid}")]
    UnsupportedTransferSyntax { uid: String },
    #[error(
        "the DICOM decoder rejected the {stage} (the structure checked out; a value may be invalid for its VR)"
    )]
    Decode { stage: &'static str },
    #[error("{path}: the text de-identifier failed: {message}")]
    Rule { path: String, message: String },
    #[error("writing the de-identified DICOM failed ({stage})")]
    Write { stage: &'static str },
    #[error(
        "{what} is over the {limit}-byte memory limit of the streaming path: refused rather than read whole"
    )]
    TooLarge { limit: u64, what: &'static str },
}

/// A read error; one from inflating a deflated data set is malformed input, with the offset.
impl From<std::io::Error> for DicomError {
    fn from(e: std::io::Error) -> Self {
        match e
            .get_ref()
            .and_then(|i| i.downcast_ref::<stream::InflateError>())
        {
            Some(i) => DicomError::Malformed {
                offset: i.offset,
                path: stream::DEFLATE_STREAM.into(),
                reason: i.reason,
            },
            None => DicomError::Io(e),
        }
    }
}

fn offset_label(offset: u64, path: &str) -> String {
    format!("offset {offset} ({path})")
}

/// True if these first bytes look like DICOM: the `DICM` magic code at byte 128 (or at 0), or
/// a bare data set starting with a group 0008 element.
pub fn sniff(first_bytes: &[u8]) -> bool {
    scan::looks_like_dicom(first_bytes)
}
