//! Synthetic DICOM files built by hand, so that pixel data of any size can be written to a file
//! in chunks: a file meta group, a small patient/study header, the Pixel Data element (native
//! or encapsulated), and optionally elements after it. In explicit VR little endian, explicit
//! VR big endian, or deflated explicit VR little endian (the data set after the meta group
//! deflated), so that those transfer syntaxes can be tested at any size.

use std::io::Write;

/// How the data set is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Explicit,
    BigEndian,
    Deflated,
}

impl Coding {
    pub fn ts(self) -> &'static str {
        match self {
            Coding::Explicit => TS_EXPLICIT,
            Coding::BigEndian => TS_BIG_ENDIAN,
            Coding::Deflated => TS_DEFLATED,
        }
    }

    fn little(self) -> bool {
        self != Coding::BigEndian
    }
}

fn u16b(v: u16, little: bool) -> [u8; 2] {
    if little {
        v.to_le_bytes()
    } else {
        v.to_be_bytes()
    }
}

fn u32b(v: u32, little: bool) -> [u8; 4] {
    if little {
        v.to_le_bytes()
    } else {
        v.to_be_bytes()
    }
}

fn el(o: &mut Vec<u8>, g: u16, e: u16, vr: &[u8; 2], v: &[u8]) {
    el_in(o, true, g, e, vr, v);
}

fn el_in(o: &mut Vec<u8>, little: bool, g: u16, e: u16, vr: &[u8; 2], v: &[u8]) {
    o.extend_from_slice(&u16b(g, little));
    o.extend_from_slice(&u16b(e, little));
    o.extend_from_slice(vr);
    let long = matches!(vr, b"OB" | b"OW" | b"UN" | b"SQ" | b"UT");
    if long {
        o.extend_from_slice(&[0, 0]);
        o.extend_from_slice(&u32b(v.len() as u32, little));
    } else {
        o.extend_from_slice(&u16b(v.len() as u16, little));
    }
    o.extend_from_slice(v);
}

fn even(s: &str, pad: u8) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(pad);
    }
    v
}

pub const TS_EXPLICIT: &str = "1.2.840.10008.1.2.1";
pub const TS_JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
pub const TS_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
pub const TS_DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// Preamble, meta group and header elements up to (not including) the pixel data.
pub fn head(ts: &str) -> Vec<u8> {
    let mut o = preamble_and_meta(ts);
    o.extend(elements(true));
    o
}

/// The preamble and the file meta group (always explicit VR little endian).
pub fn preamble_and_meta(ts: &str) -> Vec<u8> {
    let sop_class = "1.2.840.10008.5.1.4.1.1.4";
    let sop = "1.2.826.0.1.3680043.2.1125.1.999";
    let mut meta = Vec::new();
    el(&mut meta, 0x0002, 0x0001, b"OB", &[0, 1]);
    el(&mut meta, 0x0002, 0x0002, b"UI", &even(sop_class, 0));
    el(&mut meta, 0x0002, 0x0003, b"UI", &even(sop, 0));
    el(&mut meta, 0x0002, 0x0010, b"UI", &even(ts, 0));
    el(
        &mut meta,
        0x0002,
        0x0013,
        b"SH",
        &even("PHIGUARD_TEST", b' '),
    );
    let mut o = vec![0u8; 128];
    o.extend_from_slice(b"DICM");
    el(
        &mut o,
        0x0002,
        0x0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    );
    o.extend_from_slice(&meta);
    o
}

/// The header elements up to (not including) the pixel data, in either byte order.
pub fn elements(little: bool) -> Vec<u8> {
    let sop_class = "1.2.840.10008.5.1.4.1.1.4";
    let sop = "1.2.826.0.1.3680043.2.1125.1.999";
    let mut o = Vec::new();
    let el = |o: &mut Vec<u8>, g, e, vr: &[u8; 2], v: &[u8]| el_in(o, little, g, e, vr, v);
    el(&mut o, 0x0008, 0x0016, b"UI", &even(sop_class, 0));
    el(&mut o, 0x0008, 0x0018, b"UI", &even(sop, 0));
    el(&mut o, 0x0008, 0x0020, b"DA", b"20200115");
    el(&mut o, 0x0008, 0x0060, b"CS", b"MR");
    el(
        &mut o,
        0x0008,
        0x0080,
        b"LO",
        &even("GENERAL HOSPITAL", b' '),
    );
    el(&mut o, 0x0010, 0x0010, b"PN", &even("Doe^Jane", b' '));
    el(&mut o, 0x0010, 0x0020, b"LO", &even("PID12345", b' '));
    el(&mut o, 0x0010, 0x0030, b"DA", b"19610203");
    el(
        &mut o,
        0x0020,
        0x000D,
        b"UI",
        &even("1.2.826.0.1.3680043.2.1125.2.7", 0),
    );
    el(&mut o, 0x0028, 0x0002, b"US", &u16b(1, little));
    el(&mut o, 0x0028, 0x0010, b"US", &u16b(512, little));
    el(&mut o, 0x0028, 0x0011, b"US", &u16b(512, little));
    el(&mut o, 0x0028, 0x0100, b"US", &u16b(16, little));
    o
}

/// The header of a native Pixel Data element of `len` bytes (OW).
pub fn native_pixel_header_in(len: u32, little: bool) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend_from_slice(&u16b(0x7FE0, little));
    o.extend_from_slice(&u16b(0x0010, little));
    o.extend_from_slice(b"OW\0\0");
    o.extend_from_slice(&u32b(len, little));
    o
}

/// An encapsulated Pixel Data element: empty offset table, the fragments, the delimiter.
pub fn encapsulated_pixels(fragments: &[Vec<u8>]) -> Vec<u8> {
    encapsulated_pixels_in(fragments, true)
}

pub fn encapsulated_pixels_in(fragments: &[Vec<u8>], little: bool) -> Vec<u8> {
    let tag = |o: &mut Vec<u8>, g: u16, e: u16| {
        o.extend_from_slice(&u16b(g, little));
        o.extend_from_slice(&u16b(e, little));
    };
    let mut o = Vec::new();
    tag(&mut o, 0x7FE0, 0x0010);
    o.extend_from_slice(b"OB\0\0");
    o.extend_from_slice(&[0xFF; 4]);
    tag(&mut o, 0xFFFE, 0xE000);
    o.extend_from_slice(&[0; 4]);
    for f in fragments {
        tag(&mut o, 0xFFFE, 0xE000);
        o.extend_from_slice(&u32b(f.len() as u32, little));
        o.extend_from_slice(f);
    }
    tag(&mut o, 0xFFFE, 0xE0DD);
    o.extend_from_slice(&[0; 4]);
    o
}

/// Elements after the pixel data: a private group with a creator and a name-like value, a
/// digital signatures sequence, and trailing padding.
pub fn tail() -> Vec<u8> {
    tail_in(true)
}

pub fn tail_in(little: bool) -> Vec<u8> {
    let el = |o: &mut Vec<u8>, g, e, vr: &[u8; 2], v: &[u8]| el_in(o, little, g, e, vr, v);
    let mut o = Vec::new();
    el(&mut o, 0x7FE1, 0x0010, b"LO", &even("ACME PRIVATE", b' '));
    el(&mut o, 0x7FE1, 0x1001, b"LO", &even("Doe^Jane", b' '));
    // (FFFA,FFFA) Digital Signatures Sequence: one item holding a (0400,0100) UI.
    let mut item = Vec::new();
    el(&mut item, 0x0400, 0x0100, b"UI", &even("1.2.3.4", 0));
    let mut seq = Vec::new();
    seq.extend_from_slice(&u16b(0xFFFE, little));
    seq.extend_from_slice(&u16b(0xE000, little));
    seq.extend_from_slice(&u32b(item.len() as u32, little));
    seq.extend_from_slice(&item);
    el(&mut o, 0xFFFA, 0xFFFA, b"SQ", &seq);
    el(&mut o, 0xFFFC, 0xFFFC, b"OB", &[0u8; 16]);
    o
}

/// Deterministic pixel bytes for offset `at`.
pub fn pixel_byte(at: u64) -> u8 {
    (at.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// Pixel bytes that repeat every 4 KiB (within the deflate window): they compress well. For
/// the large deflated files of `stream_memory.rs` and the `stream_dicom` example.
#[allow(dead_code)]
pub fn periodic_byte(at: u64) -> u8 {
    pixel_byte(at % 4096)
}

/// Writes a native file with `len` bytes of pixel data (written in 1 MiB chunks) to `w`.
pub fn write_native<W: Write>(w: W, len: u32, with_tail: bool) {
    write_coded(w, Coding::Explicit, len, with_tail, pixel_byte);
}

/// Writes a native file in `coding` with `len` bytes of pixel data `byte(offset)`, written in
/// 1 MiB chunks (deflated as they are written for [`Coding::Deflated`]).
pub fn write_coded<W: Write>(
    mut w: W,
    coding: Coding,
    len: u32,
    with_tail: bool,
    byte: fn(u64) -> u8,
) {
    w.write_all(&preamble_and_meta(coding.ts())).unwrap();
    let mut data: Box<dyn Write + '_> = match coding {
        Coding::Deflated => Box::new(flate2::write::DeflateEncoder::new(
            &mut w,
            flate2::Compression::fast(),
        )),
        _ => Box::new(&mut w),
    };
    let little = coding.little();
    data.write_all(&elements(little)).unwrap();
    data.write_all(&native_pixel_header_in(len, little))
        .unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < u64::from(len) {
        let n = chunk.len().min((u64::from(len) - at) as usize);
        for (i, b) in chunk[..n].iter_mut().enumerate() {
            *b = byte(at + i as u64);
        }
        data.write_all(&chunk[..n]).unwrap();
        at += n as u64;
    }
    if with_tail {
        data.write_all(&tail_in(little)).unwrap();
    }
    data.flush().unwrap();
    drop(data);
    w.flush().unwrap();
}

/// A whole file in `coding` with the given pixel data element bytes (from
/// [`native_pixel_header_in`] + value, or [`encapsulated_pixels_in`]) and optional tail.
pub fn file(coding: Coding, pixels: &[u8], with_tail: bool) -> Vec<u8> {
    let little = coding.little();
    let mut data = elements(little);
    data.extend_from_slice(pixels);
    if with_tail {
        data.extend(tail_in(little));
    }
    let mut o = preamble_and_meta(coding.ts());
    if coding == Coding::Deflated {
        let mut z = flate2::write::DeflateEncoder::new(&mut o, flate2::Compression::default());
        z.write_all(&data).unwrap();
        z.finish().unwrap();
    } else {
        o.extend(data);
    }
    o
}
