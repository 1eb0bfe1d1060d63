//! Splitting a DICOM stream at its top-level Pixel Data element without reading the pixels:
//! the file meta group and every element before (7FE0,0010) are read into a buffer (bounded by
//! a memory limit), following sequences and items the way [`crate::scan`] does; the pixel data
//! element's header is parsed so that its value (or its encapsulated fragments up to the
//! sequence delimiter) can then be copied in fixed-size chunks.
//!
//! Big-endian data sets are walked the same way with the byte order given to the header parser.
//! A deflated data set (everything after the file meta group, one raw deflate stream) is walked
//! on the inflated bytes ([`Inflate`]) and written through one deflate encoder ([`DeflateSink`]),
//! the pixel data passing through both in chunks.

use std::io::{BufRead, Read, Write};

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
    /// The walk lost the structure (malformed, truncated): the rest is read within the memory
    /// limit and the in-memory path reports why.
    Fallback,
    /// A deflated data set: the buffer holds the preamble and file meta group (`at` bytes)
    /// and may hold the start of the deflate stream after them.
    Deflated { at: usize },
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
    little: bool,
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
            little: true,
        }
    }

    /// A reader whose buffer already holds `buf` (the file meta group of a deflated file, the
    /// inflated data set following it), reading an explicit VR little endian data set.
    pub(crate) fn with_buf(r: R, buf: Vec<u8>, limit: u64) -> Self {
        Reader {
            r,
            buf,
            limit,
            explicit: true,
            little: true,
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
            .map_err(|e| Stop::Err(e.into()))?;
        if self.buf.len() as u64 > self.limit {
            return Err(Stop::Err(too_large(
                self.limit,
                "the file outside its top-level pixel data",
            )));
        }
        Ok(self.buf.len() >= n)
    }

    /// Reads the rest of the input into the buffer, within the memory limit.
    pub(crate) fn read_rest(&mut self) -> Result<(), DicomError> {
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
        Ok(())
    }

    fn u16_at(&self, p: usize) -> u16 {
        let v = [self.buf[p], self.buf[p + 1]];
        if self.little {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        }
    }

    fn u32_at(&self, p: usize) -> u32 {
        let v = [
            self.buf[p],
            self.buf[p + 1],
            self.buf[p + 2],
            self.buf[p + 3],
        ];
        if self.little {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    }

    /// Reads up to the top-level pixel data (or, for a deflated file, up to the end of the
    /// file meta group).
    pub(crate) fn split(&mut self) -> Result<Split, DicomError> {
        Self::lost_is_fallback(self.split_inner())
    }

    /// Reads an inflated explicit VR little endian data set starting at `pos` of the buffer up
    /// to the top-level pixel data.
    pub(crate) fn split_from(&mut self, pos: usize, ts: String) -> Result<Split, DicomError> {
        let r = self.dataset_split(pos, ts);
        Self::lost_is_fallback(r)
    }

    fn lost_is_fallback(r: W<Split>) -> Result<Split, DicomError> {
        match r {
            Ok(s) => Ok(s),
            Err(Stop::Lost) => Ok(Split::Fallback),
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
                self.little = true;
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
        if ts == DEFLATED_EXPLICIT_VR_LE {
            return Ok(Split::Deflated { at: pos });
        }
        self.dataset_split(pos, ts)
    }

    fn dataset_split(&mut self, mut pos: usize, ts: String) -> W<Split> {
        self.explicit = ts != IMPLICIT_VR_LE;
        self.little = ts != EXPLICIT_VR_BE;
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
            match parse_header(&self.buf, pos, self.explicit, self.little) {
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

/// How offsets in the pixel data are reported: the byte order of its fragment headers, and a
/// label before the tag path (for a deflated file: offsets are in the inflated data set).
#[derive(Clone, Copy)]
pub(crate) struct At {
    pub(crate) little: bool,
    pub(crate) label: &'static str,
}

impl At {
    fn cut_short(self, offset: u64) -> DicomError {
        DicomError::Malformed {
            offset,
            path: format!("{}{}", self.label, tag_label(PIXEL_DATA)),
            reason: "the file ends inside the pixel data (truncated?)",
        }
    }
}

/// Copies (to `out`, or nowhere) exactly `n` bytes; `offset` is where the input is, advanced.
fn copy_exact<R: Read, W: Write + ?Sized>(
    r: &mut R,
    out: &mut Option<&mut W>,
    mut n: u64,
    offset: &mut u64,
    chunk: &mut [u8],
    at: At,
) -> Result<(), DicomError> {
    while n > 0 {
        let k = chunk.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        let m = match r.read(&mut chunk[..k]) {
            Ok(0) => return Err(at.cut_short(*offset)),
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
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
fn read_full<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    offset: &mut u64,
    at: At,
) -> Result<(), DicomError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Err(at.cut_short(*offset)),
            Ok(m) => {
                got += m;
                *offset += m as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Copies the value of the top-level pixel data (its element header already read, the input at
/// `offset`): `len` bytes, or, for an undefined length, the fragments and the sequence
/// delimiter. With `out` `None` the value is read and checked but not written. The bytes are
/// copied as they are, in either byte order.
pub(crate) fn copy_pixel_value<R: Read, W: Write + ?Sized>(
    r: &mut R,
    mut out: Option<&mut W>,
    len: u32,
    mut offset: u64,
    at: At,
) -> Result<u64, DicomError> {
    let mut chunk = vec![0u8; CHUNK];
    if len != UNDEFINED {
        copy_exact(r, &mut out, u64::from(len), &mut offset, &mut chunk, at)?;
        return Ok(offset);
    }
    loop {
        let mut h = [0u8; 8];
        let start = offset;
        read_full(r, &mut h, &mut offset, at)?;
        let (tag, flen) = if at.little {
            (
                (u32::from(u16::from_le_bytes([h[0], h[1]])) << 16)
                    | u32::from(u16::from_le_bytes([h[2], h[3]])),
                u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
            )
        } else {
            (
                u32::from_be_bytes([h[0], h[1], h[2], h[3]]),
                u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            )
        };
        if let Some(w) = out.as_mut() {
            w.write_all(&h).map_err(|_| DicomError::Write {
                stage: "pixel data",
            })?;
        }
        match tag {
            SEQ_END => return Ok(offset),
            ITEM if flen != UNDEFINED => {
                copy_exact(r, &mut out, u64::from(flen), &mut offset, &mut chunk, at)?;
            }
            _ => {
                return Err(DicomError::Malformed {
                    offset: start,
                    path: format!("{}{}", at.label, tag_label(PIXEL_DATA)),
                    reason: "pixel data fragment expected",
                });
            }
        }
    }
}

/// Why a deflated data set could not be inflated, and where: `offset` is the byte of the file
/// (in the deflate stream) the decoder had reached. Carried inside an [`std::io::Error`] by
/// [`Inflate`] and turned into [`DicomError::Malformed`] by `From<std::io::Error>`.
#[derive(Debug)]
pub(crate) struct InflateError {
    pub(crate) offset: u64,
    pub(crate) reason: &'static str,
}

impl std::fmt::Display for InflateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at byte {} of the file)", self.reason, self.offset)
    }
}

impl std::error::Error for InflateError {}

/// The label of errors in a deflated data set's stream (not in its inflated bytes).
pub(crate) const DEFLATE_STREAM: &str = "deflated data set";

/// Inflates a raw deflate stream (RFC 1951, no zlib header) that starts at byte `base` of the
/// file. A corrupt stream, or one that ends before its last block, is an error naming the file
/// offset the decoder had reached ([`InflateError`]), never a short read that looks like the end.
pub(crate) struct Inflate<R: BufRead> {
    d: flate2::bufread::DeflateDecoder<R>,
    base: u64,
}

impl<R: BufRead> Inflate<R> {
    pub(crate) fn new(r: R, base: u64) -> Self {
        Inflate {
            d: flate2::bufread::DeflateDecoder::new(r),
            base,
        }
    }
}

impl<R: BufRead> Read for Inflate<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.d.read(buf) {
            Ok(n) => Ok(n),
            Err(e) => {
                use std::io::ErrorKind;
                let reason = match e.kind() {
                    ErrorKind::UnexpectedEof => {
                        "the deflate stream ends before its last block (truncated?)"
                    }
                    ErrorKind::InvalidInput | ErrorKind::InvalidData => {
                        "the deflate stream is corrupt"
                    }
                    // The input's own error (the file could not be read).
                    _ => return Err(e),
                };
                Err(std::io::Error::new(
                    ErrorKind::InvalidData,
                    InflateError {
                        offset: self.base + self.d.total_in(),
                        reason,
                    },
                ))
            }
        }
    }
}

/// Passes writes through while open; once closed (on an error), swallows them, so that the
/// deflate encoder finishing its stream when dropped cannot make a failed output end like a
/// complete one.
struct Gate<W> {
    w: W,
    open: bool,
}

impl<W: Write> Write for Gate<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.open {
            self.w.write(buf)
        } else {
            Ok(buf.len())
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.open { self.w.flush() } else { Ok(()) }
    }
}

/// The output of a deflated data set: one raw deflate stream written with the encoder and
/// level dicom-rs uses for this transfer syntax (flate2, `Compression::fast()`), ended as
/// dicom-rs ends it (a sync flush, then the final block), so the bytes are those of
/// [`crate::DicomDeid::deidentify_bytes`]. Dropped without [`DeflateSink::finish`] (an error),
/// it writes nothing more.
pub(crate) struct DeflateSink<W: Write> {
    enc: Option<flate2::write::DeflateEncoder<Gate<W>>>,
}

impl<W: Write> DeflateSink<W> {
    pub(crate) fn new(w: W) -> Self {
        DeflateSink {
            enc: Some(flate2::write::DeflateEncoder::new(
                Gate { w, open: true },
                flate2::Compression::fast(),
            )),
        }
    }

    /// Ends the deflate stream; returns the writer.
    pub(crate) fn finish(mut self) -> std::io::Result<W> {
        match self.enc.take() {
            Some(mut enc) => {
                enc.flush()?;
                Ok(enc.finish()?.w)
            }
            None => Err(std::io::Error::other(
                "the deflate stream was already ended",
            )),
        }
    }
}

impl<W: Write> Write for DeflateSink<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.enc.as_mut() {
            Some(e) => e.write(buf),
            None => Err(std::io::Error::other(
                "the deflate stream was already ended",
            )),
        }
    }

    /// Flushes the writer underneath only: a sync flush would change the deflate stream.
    fn flush(&mut self) -> std::io::Result<()> {
        match self.enc.as_mut() {
            Some(e) => e.get_mut().flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for DeflateSink<W> {
    fn drop(&mut self) {
        if let Some(e) = self.enc.as_mut() {
            e.get_mut().open = false;
        }
    }
}

/// Where the data set after the head goes: straight to the output, or through the deflate
/// stream of a deflated file.
pub(crate) enum Sink<W: Write> {
    Plain(W),
    Deflate(DeflateSink<W>),
}

impl<W: Write> Sink<W> {
    /// Ends the deflate stream, if any; returns the output.
    pub(crate) fn finish(self) -> std::io::Result<W> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Deflate(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Deflate(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Deflate(z) => z.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    #[test]
    fn inflate_errors_name_the_file_offset() {
        let full = deflate(&[7u8; 10_000]);
        let mut v = Vec::new();
        Inflate::new(&full[..], 500).read_to_end(&mut v).unwrap();
        assert_eq!(v, [7u8; 10_000]);
        let cut = full.len() - 1;
        let e: DicomError = Inflate::new(&full[..cut], 500)
            .read_to_end(&mut Vec::new())
            .unwrap_err()
            .into();
        let msg = e.to_string();
        assert_eq!(
            msg,
            format!(
                "malformed DICOM at byte offset {} (deflated data set): the deflate stream ends \
                 before its last block (truncated?)",
                500 + cut
            )
        );
        // BFINAL=1, BTYPE=11: a reserved block type.
        let e: DicomError = Inflate::new(&[0x07u8, 0, 0, 0][..], 10)
            .read_to_end(&mut Vec::new())
            .unwrap_err()
            .into();
        assert!(
            matches!(e, DicomError::Malformed { offset, .. } if (10..=14).contains(&offset)),
            "{e}"
        );
        assert!(
            e.to_string().contains("the deflate stream is corrupt"),
            "{e}"
        );
    }

    #[test]
    fn deflate_sink_matches_flate2_and_writes_no_end_when_dropped() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 / 13) as u8).collect();
        let mut want = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        want.write_all(&data).unwrap();
        want.flush().unwrap();
        let want = want.finish().unwrap();
        let mut z = DeflateSink::new(Vec::new());
        for piece in data.chunks(977) {
            z.write_all(piece).unwrap();
        }
        assert!(z.finish().unwrap() == want);
        // Dropped without finish: what was written does not end as a complete stream.
        let mut out = Vec::new();
        {
            let mut z = DeflateSink::new(&mut out);
            z.write_all(&data).unwrap();
        }
        assert!(out.len() < want.len());
        let r = flate2::read::DeflateDecoder::new(&out[..]).read_to_end(&mut Vec::new());
        assert!(r.is_err());
    }
}
