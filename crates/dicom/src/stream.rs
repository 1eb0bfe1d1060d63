//! Splitting a DICOM stream at its top-level Pixel Data element without reading the pixels:
//! the file meta group and every element before (7FE0,0010) are read into a buffer (bounded by
//! a memory limit), following sequences and items the way [`crate::scan`] does; the pixel data
//! element's header is parsed so that its value (or its encapsulated fragments up to the
//! sequence delimiter) can then be copied in fixed-size chunks.

use std::io::{Read, Write};

use dicom_core::dictionary::{DataDictionary, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

use crate::DicomError;
use crate::scan::{
    DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE, Header, IMPLICIT_VR_LE, Parsed, bare_dataset_ts,
    meta_group, parse_header, tag_label,
};

/// Default limit on what the streaming path holds in memory: everything but the top-level pixel
/// data (the header, and the elements after the pixel data). A file with more than this outside
/// its pixel data is refused.
pub const MAX_IN_MEMORY: u64 = 256 << 20;

/// Size of the chunks pixel data is copied in.
pub const CHUNK: usize = 1 << 20;

pub(crate) const PIXEL_DATA: u32 = 0x7FE0_0010;
const ITEM: u32 = 0xFFFE_E000;
const ITEM_END: u32 = 0xFFFE_E00D;
const SEQ_END: u32 = 0xFFFE_E0DD;
const UNDEFINED: u32 = 0xFFFF_FFFF;
const MAX_DEPTH: usize = 64;

/// Where the stream was split.
pub(crate) enum Split {
    /// The buffer holds the whole input (no top-level pixel data).
    Whole,
    /// The streaming path does not apply; `capped`: read the rest only within the memory
    /// limit (the walk lost the structure: the in-memory path reports why), or without a limit
    /// (a transfer syntax whose bytes cannot be copied: deflated, big endian).
    Fallback { capped: bool },
    /// The buffer holds everything before the top-level pixel data (`at` bytes) and then its
    /// element header (`header_len` bytes).
    Pixel {
        at: usize,
        header_len: usize,
        len: u32,
        transfer_syntax: String,
    },
}

enum Stop {
    /// The structure could not be followed (malformed, truncated): fall back.
    Lost,
    Err(DicomError),
}

type W<T> = Result<T, Stop>;

/// Reads the head of a stream into `buf`.
pub(crate) struct Reader<R> {
    pub(crate) r: R,
    pub(crate) buf: Vec<u8>,
    limit: u64,
    explicit: bool,
}

pub(crate) fn too_large(limit: u64, what: &'static str) -> DicomError {
    DicomError::TooLarge { limit, what }
}

impl<R: Read> Reader<R> {
    pub(crate) fn new(r: R, limit: u64) -> Self {
        Reader {
            r,
            buf: Vec::new(),
            limit,
            explicit: true,
        }
    }

    /// Makes the buffer hold at least `n` bytes; false if the input ends before. Past the
    /// memory limit, a file that ends within it is read whole (false), a longer one refused.
    fn need(&mut self, n: usize) -> W<bool> {
        if self.buf.len() >= n {
            return Ok(true);
        }
        let want = if n as u64 > self.limit {
            self.limit + 1
        } else {
            n as u64
        };
        let have = self.buf.len() as u64;
        (&mut self.r)
            .take(want.saturating_sub(have))
            .read_to_end(&mut self.buf)
            .map_err(|e| Stop::Err(DicomError::Io(e)))?;
        if self.buf.len() as u64 > self.limit {
            return Err(Stop::Err(too_large(
                self.limit,
                "the file outside its top-level pixel data",
            )));
        }
        Ok(self.buf.len() >= n)
    }

    /// Reads the rest of the input into the buffer (within the limit when `capped`).
    pub(crate) fn read_rest(&mut self, capped: bool) -> Result<(), DicomError> {
        if capped {
            let have = self.buf.len() as u64;
            (&mut self.r)
                .take((self.limit + 1).saturating_sub(have))
                .read_to_end(&mut self.buf)?;
            if self.buf.len() as u64 > self.limit {
                return Err(too_large(
                    self.limit,
                    "the file outside its top-level pixel data",
                ));
            }
        } else {
            self.r.read_to_end(&mut self.buf)?;
        }
        Ok(())
    }

    fn u16_at(&self, p: usize) -> u16 {
        u16::from_le_bytes([self.buf[p], self.buf[p + 1]])
    }

    fn u32_at(&self, p: usize) -> u32 {
        u32::from_le_bytes([
            self.buf[p],
            self.buf[p + 1],
            self.buf[p + 2],
            self.buf[p + 3],
        ])
    }

    /// Reads up to the top-level pixel data.
    pub(crate) fn split(&mut self) -> Result<Split, DicomError> {
        match self.split_inner() {
            Ok(s) => Ok(s),
            Err(Stop::Lost) => Ok(Split::Fallback { capped: true }),
            Err(Stop::Err(e)) => Err(e),
        }
    }

    fn split_inner(&mut self) -> W<Split> {
        self.need(132)?;
        let b = &self.buf;
        let (magic, mut pos) = if b.len() >= 132 && &b[128..132] == b"DICM" {
            (Some(128), 132)
        } else if b.starts_with(b"DICM") {
            (Some(0), 4)
        } else {
            (None, 0)
        };
        let ts = match magic {
            Some(m) => {
                self.explicit = true;
                loop {
                    if !self.need(pos + 2)? || self.u16_at(pos) != 0x0002 {
                        break;
                    }
                    let h = self.header(pos)?;
                    if h.len == UNDEFINED {
                        return Err(Stop::Lost);
                    }
                    let end = pos + h.header_len + h.len as usize;
                    if !self.need(end)? {
                        return Err(Stop::Lost);
                    }
                    pos = end;
                }
                let (ts, end) = meta_group(&self.buf, m + 4).map_err(|_| Stop::Lost)?;
                pos = end;
                ts
            }
            None => match bare_dataset_ts(&self.buf) {
                Some(ts) => ts.to_string(),
                None => return Err(Stop::Err(DicomError::NotDicom)),
            },
        };
        if ts == DEFLATED_EXPLICIT_VR_LE || ts == EXPLICIT_VR_BE {
            return Ok(Split::Fallback { capped: false });
        }
        self.explicit = ts != IMPLICIT_VR_LE;
        loop {
            if !self.need(pos + 1)? {
                return Ok(Split::Whole);
            }
            let h = self.header(pos)?;
            if h.tag == PIXEL_DATA {
                return Ok(Split::Pixel {
                    at: pos,
                    header_len: h.header_len,
                    len: h.len,
                    transfer_syntax: ts,
                });
            }
            pos = self.element(pos, &h, 0)?;
        }
    }

    fn header(&mut self, pos: usize) -> W<Header> {
        loop {
            match parse_header(&self.buf, pos, self.explicit, true) {
                Parsed::Header(h) => return Ok(h),
                Parsed::Short { need, .. } => {
                    if !self.need(need)? {
                        return Err(Stop::Lost);
                    }
                }
                Parsed::UnknownVr { .. } => return Err(Stop::Lost),
            }
        }
    }

    fn is_sequence(h: &Header) -> bool {
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

    /// Skips one element whose header is at `pos`; returns where the next one starts.
    fn element(&mut self, pos: usize, h: &Header, depth: usize) -> W<usize> {
        if h.tag >> 16 == 0xFFFE {
            return Err(Stop::Lost);
        }
        let start = pos + h.header_len;
        if h.len == UNDEFINED {
            if h.tag == PIXEL_DATA {
                self.fragments(start)
            } else if Self::is_sequence(h) || h.vr.is_none() || h.vr == Some(*b"UN") {
                self.items(start, None, depth)
            } else {
                Err(Stop::Lost)
            }
        } else {
            let end = start + h.len as usize;
            if !self.need(end)? {
                return Err(Stop::Lost);
            }
            if Self::is_sequence(h) {
                self.items(start, Some(end), depth)?;
            }
            Ok(end)
        }
    }

    /// An item's data set: up to `end`, or up to an item delimiter (`None`).
    fn dataset(&mut self, mut pos: usize, end: Option<usize>, depth: usize) -> W<usize> {
        loop {
            if end == Some(pos) {
                return Ok(pos);
            }
            if end.is_some_and(|e| pos > e) {
                return Err(Stop::Lost);
            }
            let h = self.header(pos)?;
            if h.tag == ITEM_END && end.is_none() {
                return Ok(pos + 8);
            }
            pos = self.element(pos, &h, depth)?;
        }
    }

    fn items(&mut self, mut pos: usize, end: Option<usize>, depth: usize) -> W<usize> {
        if depth > MAX_DEPTH {
            return Err(Stop::Lost);
        }
        loop {
            if end == Some(pos) {
                return Ok(pos);
            }
            let h = self.header(pos)?;
            match h.tag {
                SEQ_END if end.is_none() => return Ok(pos + 8),
                ITEM => {
                    let start = pos + 8;
                    pos = if h.len == UNDEFINED {
                        self.dataset(start, None, depth + 1)?
                    } else {
                        let item_end = start + h.len as usize;
                        if end.is_some_and(|e| item_end > e) || !self.need(item_end)? {
                            return Err(Stop::Lost);
                        }
                        self.dataset(start, Some(item_end), depth + 1)?
                    };
                }
                _ => return Err(Stop::Lost),
            }
        }
    }

    fn fragments(&mut self, mut pos: usize) -> W<usize> {
        loop {
            if !self.need(pos + 8)? {
                return Err(Stop::Lost);
            }
            let tag = (u32::from(self.u16_at(pos)) << 16) | u32::from(self.u16_at(pos + 2));
            let len = self.u32_at(pos + 4);
            match tag {
                SEQ_END => return Ok(pos + 8),
                ITEM if len != UNDEFINED => {
                    pos += 8 + len as usize;
                    if !self.need(pos)? {
                        return Err(Stop::Lost);
                    }
                }
                _ => return Err(Stop::Lost),
            }
        }
    }
}

fn cut_short(offset: u64) -> DicomError {
    DicomError::Malformed {
        offset,
        path: tag_label(PIXEL_DATA),
        reason: "the file ends inside the pixel data (truncated?)",
    }
}

/// Copies (to `out`, or nowhere) exactly `n` bytes; `offset` is where the input is, advanced.
fn copy_exact<R: Read, W: Write + ?Sized>(
    r: &mut R,
    out: &mut Option<&mut W>,
    mut n: u64,
    offset: &mut u64,
    chunk: &mut [u8],
) -> Result<(), DicomError> {
    while n > 0 {
        let k = chunk.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        let m = match r.read(&mut chunk[..k]) {
            Ok(0) => return Err(cut_short(*offset)),
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DicomError::Io(e)),
        };
        if let Some(w) = out.as_mut() {
            w.write_all(&chunk[..m]).map_err(|_| DicomError::Write {
                stage: "pixel data",
            })?;
        }
        *offset += m as u64;
        n -= m as u64;
    }
    Ok(())
}

/// Fills `buf` from `r`; `offset` is where the input is, advanced.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8], offset: &mut u64) -> Result<(), DicomError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Err(cut_short(*offset)),
            Ok(m) => {
                got += m;
                *offset += m as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DicomError::Io(e)),
        }
    }
    Ok(())
}

/// Copies the value of the top-level pixel data (its element header already read, the input at
/// `offset`): `len` bytes, or, for an undefined length, the fragments and the sequence
/// delimiter. With `out` `None` the value is read and checked but not written.
pub(crate) fn copy_pixel_value<R: Read, W: Write + ?Sized>(
    r: &mut R,
    mut out: Option<&mut W>,
    len: u32,
    mut offset: u64,
) -> Result<u64, DicomError> {
    let mut chunk = vec![0u8; CHUNK];
    if len != UNDEFINED {
        copy_exact(r, &mut out, u64::from(len), &mut offset, &mut chunk)?;
        return Ok(offset);
    }
    loop {
        let mut h = [0u8; 8];
        let at = offset;
        read_full(r, &mut h, &mut offset)?;
        let tag = (u32::from(u16::from_le_bytes([h[0], h[1]])) << 16)
            | u32::from(u16::from_le_bytes([h[2], h[3]]));
        let flen = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if let Some(w) = out.as_mut() {
            w.write_all(&h).map_err(|_| DicomError::Write {
                stage: "pixel data",
            })?;
        }
        match tag {
            SEQ_END => return Ok(offset),
            ITEM if flen != UNDEFINED => {
                copy_exact(r, &mut out, u64::from(flen), &mut offset, &mut chunk)?;
            }
            _ => {
                return Err(DicomError::Malformed {
                    offset: at,
                    path: tag_label(PIXEL_DATA),
                    reason: "pixel data fragment expected",
                });
            }
        }
    }
}
