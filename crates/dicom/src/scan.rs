//! A structural check of a DICOM byte stream before it is decoded: preamble, file meta group,
//! transfer syntax, then every element header, sequence, item and delimiter of the data set,
//! with bounds. It reads no values (except the transfer syntax UID), so its errors carry a byte
//! offset and a tag path and never a value. dicom-rs decodes the stream afterwards; this pass is
//! what lets a truncated or malformed file fail with the position of the first problem.

use std::io::Read;

use dicom_core::dictionary::{DataDictionary, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

use crate::DicomError;

/// Transfer syntax UIDs with a non-default encoding.
pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
pub const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
pub const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";

/// Where the parts of a DICOM stream are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Offset of the `DICM` magic code, when the stream has a file meta group.
    pub magic: Option<usize>,
    /// The transfer syntax UID of the data set (from the meta group, or guessed for a bare data
    /// set: implicit or explicit VR little endian).
    pub transfer_syntax: String,
}

#[derive(Clone, Copy)]
struct Ts {
    explicit: bool,
    little: bool,
}

const MAX_DEPTH: usize = 64;
const PIXEL_DATA: u32 = 0x7FE0_0010;
const ITEM: u32 = 0xFFFE_E000;
const ITEM_END: u32 = 0xFFFE_E00D;
const SEQ_END: u32 = 0xFFFE_E0DD;
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// The two-letter VRs of PS3.5 Table 6.2-1.
pub(crate) const VRS: [&[u8; 2]; 34] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB",
    b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
    b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
];

/// VRs with a 2-byte reserved field and a 4-byte length in explicit VR.
pub(crate) const LONG_VRS: [&[u8; 2]; 13] = [
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV",
];

/// True if `bytes` start like a DICOM file: the `DICM` magic after a 128-byte preamble or at
/// the start, or a bare data set whose first element is a group 0008 attribute.
pub fn looks_like_dicom(bytes: &[u8]) -> bool {
    if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        return true;
    }
    if bytes.starts_with(b"DICM") {
        return true;
    }
    bare_dataset_ts(bytes).is_some()
}

/// A bare data set (no meta group): the first element must be a group 0008 attribute with a
/// small element number, in explicit VR (a known VR follows the tag) or implicit VR (a small
/// length follows). Returns the guessed transfer syntax.
pub(crate) fn bare_dataset_ts(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() < 8 || bytes[0] != 0x08 || bytes[1] != 0x00 || bytes[3] != 0x00 {
        return None;
    }
    let vr = [bytes[4], bytes[5]];
    if VRS.iter().any(|v| **v == vr) {
        return Some(EXPLICIT_VR_LE);
    }
    let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    (len < 0x1000).then_some(IMPLICIT_VR_LE)
}

/// The label of offsets in a deflated data set: they count from the start of the inflated data.
pub(crate) const INFLATED: &str = "offset in the inflated data set ";

/// Checks the structure of the whole stream.
pub fn check(bytes: &[u8]) -> Result<Layout, DicomError> {
    check_with(bytes, false)
}

/// [`check`]; with `inflated`, a deflated file's data set is given already inflated.
pub(crate) fn check_with(bytes: &[u8], inflated: bool) -> Result<Layout, DicomError> {
    let (magic, mut pos) = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        (Some(128), 132)
    } else if bytes.starts_with(b"DICM") {
        (Some(0), 4)
    } else {
        (None, 0)
    };
    let transfer_syntax = match magic {
        Some(_) => {
            let (ts, end) = meta_group(bytes, pos)?;
            pos = end;
            ts
        }
        None => match bare_dataset_ts(bytes) {
            Some(ts) => ts.to_string(),
            None => return Err(DicomError::NotDicom),
        },
    };
    let ts = Ts {
        explicit: transfer_syntax != IMPLICIT_VR_LE,
        little: transfer_syntax != EXPLICIT_VR_BE,
    };
    if transfer_syntax == DEFLATED_EXPLICIT_VR_LE && inflated {
        // The data set after the meta group is already inflated (the streaming path's head).
        check_dataset(&bytes[pos..], EXPLICIT_VR_LE, 0, INFLATED, None)?;
    } else if transfer_syntax == DEFLATED_EXPLICIT_VR_LE {
        let mut inflated = Vec::new();
        crate::stream::Inflate::new(&bytes[pos..], pos as u64).read_to_end(&mut inflated)?;
        let mut s = Scanner {
            b: &inflated,
            ts,
            path: Vec::new(),
            base: INFLATED,
            after: None,
        };
        s.dataset(0, Some(inflated.len()), 0)?;
    } else {
        let mut s = Scanner {
            b: bytes,
            ts,
            path: Vec::new(),
            base: "",
            after: None,
        };
        s.dataset(pos, Some(bytes.len()), 0)?;
    }
    Ok(Layout {
        magic,
        transfer_syntax,
    })
}

/// Checks the structure of a data set fragment in `transfer_syntax` (not deflated) that starts
/// at byte `offset` of the file: error offsets are file offsets. With `after`, its first
/// element must come after that tag (the elements after the pixel data).
pub(crate) fn check_dataset(
    bytes: &[u8],
    transfer_syntax: &str,
    offset: u64,
    base: &'static str,
    after: Option<u32>,
) -> Result<(), DicomError> {
    let mut s = Scanner {
        b: bytes,
        ts: Ts {
            explicit: transfer_syntax != IMPLICIT_VR_LE,
            little: transfer_syntax != EXPLICIT_VR_BE,
        },
        path: Vec::new(),
        base,
        after,
    };
    match s.dataset(0, Some(bytes.len()), 0) {
        Ok(_) => Ok(()),
        Err(DicomError::Malformed {
            offset: o,
            path,
            reason,
        }) => Err(DicomError::Malformed {
            offset: o + offset,
            path,
            reason,
        }),
        Err(e) => Err(e),
    }
}

/// Reads the file meta group (explicit VR little endian); returns the transfer syntax UID and
/// where the data set starts.
pub(crate) fn meta_group(b: &[u8], mut pos: usize) -> Result<(String, usize), DicomError> {
    let mut ts = None;
    loop {
        if pos + 2 > b.len() {
            break;
        }
        let group = u16::from_le_bytes([b[pos], b[pos + 1]]);
        if group != 0x0002 {
            break;
        }
        let s = Scanner {
            b,
            ts: Ts {
                explicit: true,
                little: true,
            },
            path: Vec::new(),
            base: "",
            after: None,
        };
        let h = s.header(pos)?;
        if h.len == UNDEFINED {
            return Err(s.err(pos, h.tag, "undefined length in the file meta group"));
        }
        let end = s.value_end(pos + h.header_len, h.len, h.tag)?;
        if h.tag == 0x0002_0010 {
            let v = &b[pos + h.header_len..end];
            let uid: String = String::from_utf8_lossy(v)
                .trim_end_matches(['\0', ' '])
                .to_string();
            if uid.is_empty()
                || uid.len() > 64
                || !uid.bytes().all(|c| c.is_ascii_digit() || c == b'.')
            {
                return Err(s.err(pos, h.tag, "transfer syntax UID is not a UID"));
            }
            ts = Some(uid);
        }
        pos = end;
    }
    match ts {
        Some(t) => Ok((t, pos)),
        None => Err(DicomError::Malformed {
            offset: pos as u64,
            path: "(0002,0010)".into(),
            reason: "the file meta group has no transfer syntax UID",
        }),
    }
}

/// An element header: tag, VR (explicit VR only), value length, header length.
pub(crate) struct Header {
    pub(crate) tag: u32,
    pub(crate) vr: Option<[u8; 2]>,
    pub(crate) len: u32,
    pub(crate) header_len: usize,
}

/// What [`parse_header`] found at a position.
pub(crate) enum Parsed {
    Header(Header),
    /// The bytes end before the header does: `need` bytes from the start of `b` would hold
    /// it; `tag` when the tag itself was read.
    Short {
        need: usize,
        tag: Option<u32>,
    },
    /// An explicit-VR header whose VR is not one of the standard's.
    UnknownVr {
        tag: u32,
    },
}

/// Reads the element header at `pos` of `b` (explicit or implicit VR, little or big endian;
/// items and delimiters, group FFFE, are always implicit). Shared by the whole-file scanner and
/// the streaming reader, which reads more bytes when it gets [`Parsed::Short`].
pub(crate) fn parse_header(b: &[u8], pos: usize, explicit: bool, little: bool) -> Parsed {
    let u16_at = |p: usize| {
        let v = [b[p], b[p + 1]];
        if little {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        }
    };
    let u32_at = |p: usize| {
        let v = [b[p], b[p + 1], b[p + 2], b[p + 3]];
        if little {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    };
    if pos + 8 > b.len() {
        return Parsed::Short {
            need: pos + 8,
            tag: None,
        };
    }
    let tag = (u32::from(u16_at(pos)) << 16) | u32::from(u16_at(pos + 2));
    if tag >> 16 == 0xFFFE || !explicit {
        return Parsed::Header(Header {
            tag,
            vr: None,
            len: u32_at(pos + 4),
            header_len: 8,
        });
    }
    let vr = [b[pos + 4], b[pos + 5]];
    if !VRS.iter().any(|v| **v == vr) {
        return Parsed::UnknownVr { tag };
    }
    if LONG_VRS.iter().any(|v| **v == vr) {
        if pos + 12 > b.len() {
            return Parsed::Short {
                need: pos + 12,
                tag: Some(tag),
            };
        }
        Parsed::Header(Header {
            tag,
            vr: Some(vr),
            len: u32_at(pos + 8),
            header_len: 12,
        })
    } else {
        Parsed::Header(Header {
            tag,
            vr: Some(vr),
            len: u32::from(u16_at(pos + 6)),
            header_len: 8,
        })
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    ts: Ts,
    /// Tags and item numbers from the root to the element being read.
    path: Vec<(u32, Option<usize>)>,
    base: &'static str,
    /// The tag the first top-level element must follow (the pixel data, for the elements after
    /// it), if any.
    after: Option<u32>,
}

/// `(gggg,eeee)`.
pub fn tag_label(tag: u32) -> String {
    format!("({:04X},{:04X})", tag >> 16, tag & 0xFFFF)
}

impl Scanner<'_> {
    fn path_label(&self, tag: Option<u32>) -> String {
        let mut s = String::new();
        for (t, item) in &self.path {
            if !s.is_empty() {
                s.push('/');
            }
            s.push_str(&tag_label(*t));
            if let Some(i) = item {
                s.push_str(&format!("[{i}]"));
            }
        }
        if let Some(t) = tag {
            if !s.is_empty() {
                s.push('/');
            }
            s.push_str(&tag_label(t));
        }
        if s.is_empty() {
            s.push_str("data set");
        }
        s
    }

    fn err(&self, offset: usize, tag: u32, reason: &'static str) -> DicomError {
        DicomError::Malformed {
            offset: offset as u64,
            path: format!("{}{}", self.base, self.path_label(Some(tag))),
            reason,
        }
    }

    fn err_at(&self, offset: usize, reason: &'static str) -> DicomError {
        DicomError::Malformed {
            offset: offset as u64,
            path: format!("{}{}", self.base, self.path_label(None)),
            reason,
        }
    }

    fn u16_at(&self, p: usize) -> u16 {
        let v = [self.b[p], self.b[p + 1]];
        if self.ts.little {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        }
    }

    fn u32_at(&self, p: usize) -> u32 {
        let v = [self.b[p], self.b[p + 1], self.b[p + 2], self.b[p + 3]];
        if self.ts.little {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    }

    fn header(&self, pos: usize) -> Result<Header, DicomError> {
        match parse_header(self.b, pos, self.ts.explicit, self.ts.little) {
            Parsed::Header(h) => Ok(h),
            Parsed::Short { tag: None, .. } => Err(self.err_at(pos, "truncated element header")),
            Parsed::Short { tag: Some(tag), .. } => {
                Err(self.err(pos, tag, "truncated element header"))
            }
            Parsed::UnknownVr { tag } => Err(self.err(pos, tag, "unknown value representation")),
        }
    }

    fn value_end(&self, start: usize, len: u32, tag: u32) -> Result<usize, DicomError> {
        let end = start.checked_add(len as usize);
        match end {
            Some(e) if e <= self.b.len() => Ok(e),
            _ => Err(self.err(
                start,
                tag,
                "value length runs past the end of the data (truncated?)",
            )),
        }
    }

    fn is_sequence(&self, h: &Header) -> bool {
        match h.vr {
            Some(vr) => &vr == b"SQ",
            None => {
                let tag = Tag((h.tag >> 16) as u16, (h.tag & 0xFFFF) as u16);
                matches!(
                    StandardDataDictionary.by_tag(tag).map(|e| e.vr),
                    Some(VirtualVr::Exact(VR::SQ))
                )
            }
        }
    }

    /// Scans a data set from `pos` to `end` (`None`: up to an item delimiter). Returns the
    /// position after it (after the delimiter for `None`).
    fn dataset(
        &mut self,
        mut pos: usize,
        end: Option<usize>,
        depth: usize,
    ) -> Result<usize, DicomError> {
        if depth > MAX_DEPTH {
            return Err(self.err_at(pos, "sequences nested too deep"));
        }
        let limit = end.unwrap_or(self.b.len());
        // Top-level elements in increasing tag order (PS3.5 7.1): one out of place would be
        // moved by the in-memory path, which the streaming path cannot do once the pixel data
        // has gone by, so both refuse it.
        let mut previous = if depth == 0 { self.after } else { None };
        loop {
            if pos == limit {
                return match end {
                    Some(_) => Ok(pos),
                    None => Err(self.err_at(pos, "item delimiter missing (truncated?)")),
                };
            }
            if pos > limit {
                return Err(self.err_at(pos, "element runs past the end of its item"));
            }
            let h = self.header(pos)?;
            if pos + h.header_len > limit {
                return Err(self.err(pos, h.tag, "element header runs past the end of its item"));
            }
            if h.tag == ITEM_END && end.is_none() {
                return Ok(pos + 8);
            }
            if h.tag >> 16 == 0xFFFE {
                return Err(self.err(pos, h.tag, "unexpected item or delimiter tag"));
            }
            if depth == 0 {
                if let Some(p) = previous
                    && h.tag <= p
                {
                    return Err(self.err(
                        pos,
                        h.tag,
                        "out of order: top-level data elements must be in increasing tag order",
                    ));
                }
                previous = Some(h.tag);
            }
            let start = pos + h.header_len;
            if h.len == UNDEFINED {
                self.path.push((h.tag, None));
                let r = if h.tag == PIXEL_DATA {
                    self.fragments(start, depth)
                } else if self.is_sequence(&h) || h.vr.is_none() || h.vr == Some(*b"UN") {
                    self.items(start, None, depth)
                } else {
                    Err(self.err_at(pos, "undefined length on an element that is not a sequence"))
                };
                self.path.pop();
                pos = r?;
            } else {
                let value_end = self.value_end(start, h.len, h.tag)?;
                if value_end > limit {
                    return Err(self.err(pos, h.tag, "value runs past the end of its item"));
                }
                if self.is_sequence(&h) {
                    self.path.push((h.tag, None));
                    let r = self.items(start, Some(value_end), depth);
                    self.path.pop();
                    r?;
                }
                pos = value_end;
            }
        }
    }

    /// Scans the items of a sequence; `end` is the sequence's end, or `None` for a sequence
    /// delimiter.
    fn items(
        &mut self,
        mut pos: usize,
        end: Option<usize>,
        depth: usize,
    ) -> Result<usize, DicomError> {
        let mut n = 0usize;
        loop {
            if let Some(e) = end
                && pos == e
            {
                return Ok(pos);
            }
            if pos + 8 > self.b.len() {
                return Err(self.err_at(pos, "sequence delimiter missing (truncated?)"));
            }
            let h = self.header(pos)?;
            match h.tag {
                SEQ_END if end.is_none() => return Ok(pos + 8),
                ITEM => {
                    if let Some(last) = self.path.last_mut() {
                        last.1 = Some(n);
                    }
                    let start = pos + 8;
                    pos = if h.len == UNDEFINED {
                        self.dataset(start, None, depth + 1)?
                    } else {
                        let item_end = self.value_end(start, h.len, h.tag)?;
                        if let Some(e) = end
                            && item_end > e
                        {
                            return Err(self.err_at(pos, "item runs past the end of its sequence"));
                        }
                        self.dataset(start, Some(item_end), depth + 1)?
                    };
                    n += 1;
                }
                _ => return Err(self.err(pos, h.tag, "item tag expected in a sequence")),
            }
        }
    }

    /// Scans encapsulated pixel data fragments up to the sequence delimiter.
    fn fragments(&self, mut pos: usize, _depth: usize) -> Result<usize, DicomError> {
        loop {
            if pos + 8 > self.b.len() {
                return Err(self.err_at(pos, "pixel data sequence delimiter missing (truncated?)"));
            }
            let tag = (u32::from(self.u16_at(pos)) << 16) | u32::from(self.u16_at(pos + 2));
            let len = self.u32_at(pos + 4);
            match tag {
                SEQ_END => return Ok(pos + 8),
                ITEM if len != UNDEFINED => pos = self.value_end(pos + 8, len, tag)?,
                _ => return Err(self.err(pos, tag, "pixel data fragment expected")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(tag: (u16, u16), vr: &[u8; 2], v: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend_from_slice(&tag.0.to_le_bytes());
        o.extend_from_slice(&tag.1.to_le_bytes());
        o.extend_from_slice(vr);
        o.extend_from_slice(&(v.len() as u16).to_le_bytes());
        o.extend_from_slice(v);
        o
    }

    #[test]
    fn bare_dataset_and_truncation() {
        let mut b = el((0x0008, 0x0016), b"UI", b"1.2.3\0");
        b.extend(el((0x0010, 0x0010), b"PN", b"Doe^Jane"));
        let l = check(&b).unwrap();
        assert_eq!(l.transfer_syntax, EXPLICIT_VR_LE);
        let e = check(&b[..b.len() - 3]).unwrap_err().to_string();
        assert!(e.contains("(0010,0010)") && e.contains("offset 22"), "{e}");
        assert!(!e.contains("Doe"));
        // Inside an undefined-length sequence the path names the item.
        let mut b = el((0x0008, 0x0016), b"UI", b"1.2.3\0");
        b.extend([
            0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        b.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        b.extend(el((0x0040, 0xA123), b"PN", b"Doe^Jane"));
        let e = check(&b[..b.len() - 2]).unwrap_err().to_string();
        assert!(e.contains("(0040,A730)[0]/(0040,A123)"), "{e}");
        let e = check(&b).unwrap_err().to_string();
        assert!(e.contains("delimiter missing"), "{e}");
        assert!(matches!(
            check(b"hello world, not dicom"),
            Err(DicomError::NotDicom)
        ));
    }
}
