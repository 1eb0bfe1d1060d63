//! Synthetic DICOM files built by hand, so that pixel data of any size can be written to a file
//! in chunks: a file meta group, a small patient/study header, the Pixel Data element (native
//! or encapsulated), and optionally elements after it.

use std::io::Write;

fn el(o: &mut Vec<u8>, g: u16, e: u16, vr: &[u8; 2], v: &[u8]) {
    o.extend_from_slice(&g.to_le_bytes());
    o.extend_from_slice(&e.to_le_bytes());
    o.extend_from_slice(vr);
    let long = matches!(vr, b"OB" | b"OW" | b"UN" | b"SQ" | b"UT");
    if long {
        o.extend_from_slice(&[0, 0]);
        o.extend_from_slice(&(v.len() as u32).to_le_bytes());
    } else {
        o.extend_from_slice(&(v.len() as u16).to_le_bytes());
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

/// Preamble, meta group and header elements up to (not including) the pixel data.
pub fn head(ts: &str) -> Vec<u8> {
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
    el(&mut o, 0x0028, 0x0002, b"US", &1u16.to_le_bytes());
    el(&mut o, 0x0028, 0x0010, b"US", &512u16.to_le_bytes());
    el(&mut o, 0x0028, 0x0011, b"US", &512u16.to_le_bytes());
    el(&mut o, 0x0028, 0x0100, b"US", &16u16.to_le_bytes());
    o
}

/// The header of a native Pixel Data element of `len` bytes (OW).
pub fn native_pixel_header(len: u32) -> Vec<u8> {
    let mut o = vec![0xE0, 0x7F, 0x10, 0x00];
    o.extend_from_slice(b"OW\0\0");
    o.extend_from_slice(&len.to_le_bytes());
    o
}

/// An encapsulated Pixel Data element: empty offset table, the fragments, the delimiter.
pub fn encapsulated_pixels(fragments: &[Vec<u8>]) -> Vec<u8> {
    let mut o = vec![0xE0, 0x7F, 0x10, 0x00];
    o.extend_from_slice(b"OB\0\0");
    o.extend_from_slice(&[0xFF; 4]);
    o.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
    for f in fragments {
        o.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        o.extend_from_slice(&(f.len() as u32).to_le_bytes());
        o.extend_from_slice(f);
    }
    o.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    o
}

/// Elements after the pixel data: a private group with a creator and a name-like value, a
/// digital signatures sequence, and trailing padding.
pub fn tail() -> Vec<u8> {
    let mut o = Vec::new();
    el(&mut o, 0x7FE1, 0x0010, b"LO", &even("ACME PRIVATE", b' '));
    el(&mut o, 0x7FE1, 0x1001, b"LO", &even("Doe^Jane", b' '));
    // (FFFA,FFFA) Digital Signatures Sequence: one item holding a (0400,0100) UI.
    let mut item = Vec::new();
    el(&mut item, 0x0400, 0x0100, b"UI", &even("1.2.3.4", 0));
    let mut seq = vec![0xFE, 0xFF, 0x00, 0xE0];
    seq.extend_from_slice(&(item.len() as u32).to_le_bytes());
    seq.extend_from_slice(&item);
    el(&mut o, 0xFFFA, 0xFFFA, b"SQ", &seq);
    el(&mut o, 0xFFFC, 0xFFFC, b"OB", &[0u8; 16]);
    o
}

/// Deterministic pixel bytes for offset `at`.
pub fn pixel_byte(at: u64) -> u8 {
    (at.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// Writes a native file with `len` bytes of pixel data (written in 1 MiB chunks) to `w`.
pub fn write_native<W: Write>(mut w: W, len: u32, with_tail: bool) {
    w.write_all(&head(TS_EXPLICIT)).unwrap();
    w.write_all(&native_pixel_header(len)).unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < u64::from(len) {
        let n = chunk.len().min((u64::from(len) - at) as usize);
        for (i, b) in chunk[..n].iter_mut().enumerate() {
            *b = pixel_byte(at + i as u64);
        }
        w.write_all(&chunk[..n]).unwrap();
        at += n as u64;
    }
    if with_tail {
        w.write_all(&tail()).unwrap();
    }
    w.flush().unwrap();
}
