//! Reads segments one at a time from a byte stream: CR, LF and CR LF endings (each segment keeps
//! its own), a UTF-8 byte order mark, blank lines, a last segment with no ending. Memory is one
//! segment (the caller keeps one message).

use std::io::{BufRead, BufReader, Read};

/// How a segment ended in the input (and ends in the output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Cr,
    Lf,
    CrLf,
    /// The end of the input.
    None,
}

impl Ending {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Ending::Cr => b"\r",
            Ending::Lf => b"\n",
            Ending::CrLf => b"\r\n",
            Ending::None => b"",
        }
    }
}

/// A streaming segment reader.
pub struct SegmentReader<R> {
    inner: BufReader<R>,
    /// 1-based line (segment) number of the segment last returned.
    pub line: u64,
    /// Byte offset of the start of the segment last returned.
    pub offset: u64,
    next_offset: u64,
    /// The input started with a UTF-8 byte order mark (removed from the first segment).
    pub bom: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl<R: Read> SegmentReader<R> {
    pub fn new(input: R) -> Self {
        Self::starting_after(input, 0, 0)
    }

    /// A reader of a part of a larger input that follows `lines` lines and `bytes` bytes of it:
    /// lines and offsets count from there (a byte order mark is looked for on line 1 only).
    pub fn starting_after(input: R, lines: u64, bytes: u64) -> Self {
        SegmentReader {
            inner: BufReader::with_capacity(16 * 1024, input),
            line: lines,
            offset: bytes,
            next_offset: bytes,
            bom: false,
        }
    }

    /// Reads the next segment into `buf` (cleared first). `None` at the end of the input.
    pub fn next_segment(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<Ending>> {
        buf.clear();
        self.offset = self.next_offset;
        let ending = loop {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                if buf.is_empty() {
                    return Ok(None);
                }
                break Ending::None;
            }
            match memchr::memchr2(b'\r', b'\n', avail) {
                Some(i) => {
                    let c = avail[i];
                    buf.extend_from_slice(&avail[..i]);
                    self.inner.consume(i + 1);
                    self.next_offset += i as u64 + 1;
                    if c == b'\n' {
                        break Ending::Lf;
                    }
                    let more = self.inner.fill_buf()?;
                    if more.first() == Some(&b'\n') {
                        self.inner.consume(1);
                        self.next_offset += 1;
                        break Ending::CrLf;
                    }
                    break Ending::Cr;
                }
                None => {
                    let n = avail.len();
                    buf.extend_from_slice(avail);
                    self.inner.consume(n);
                    self.next_offset += n as u64;
                }
            }
        };
        self.line += 1;
        if self.line == 1 && buf.starts_with(BOM) {
            self.bom = true;
            buf.drain(..3);
        }
        Ok(Some(ending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> (Vec<(Vec<u8>, Ending)>, bool) {
        let mut r = SegmentReader::new(input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(e) = r.next_segment(&mut buf).unwrap() {
            out.push((buf.clone(), e));
        }
        (out, r.bom)
    }

    #[test]
    fn endings_and_bom() {
        let (segs, bom) = all(b"\xEF\xBB\xBFMSH|a\r\nPID|b\rPV1\n\nOBX");
        assert!(bom);
        let ends: Vec<Ending> = segs.iter().map(|s| s.1).collect();
        assert_eq!(
            ends,
            [
                Ending::CrLf,
                Ending::Cr,
                Ending::Lf,
                Ending::Lf,
                Ending::None
            ]
        );
        assert_eq!(segs[0].0, b"MSH|a");
        assert_eq!(segs[3].0, b"");
        assert_eq!(segs[4].0, b"OBX");
        assert!(all(b"").0.is_empty());
    }
}
