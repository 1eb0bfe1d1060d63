//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`), as Bedrock's
//! ConverseStream sends it. Each message:
//!
//! ```text
//! total length u32 BE | headers length u32 BE | prelude CRC32 (of the 8 bytes before)
//! headers: name length u8, name, type u8, value …
//! payload
//! message CRC32 (of everything before it)
//! ```
//!
//! Header value types: 0 true, 1 false, 2 byte, 3 i16, 4 i32, 5 i64, 6 bytes (u16 length),
//! 7 string (u16 length, UTF-8), 8 timestamp (i64 ms), 9 UUID (16 bytes). Both CRCs are
//! checked; anything malformed is an error, never a panic.

use bytes::{Buf, Bytes, BytesMut};

/// The smallest message: the 12-byte prelude and the 4-byte message CRC.
const MIN_MESSAGE: usize = 16;
/// AWS caps a message at 16 MiB.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// And its headers at 128 KiB.
const MAX_HEADERS: usize = 128 * 1024;

/// Why a frame cannot be decoded. Carries no frame content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("event-stream prelude CRC mismatch")]
    PreludeCrc,
    #[error("event-stream message CRC mismatch")]
    MessageCrc,
    #[error("event-stream message length out of range")]
    Length,
    #[error("event-stream headers are malformed")]
    Headers,
    #[error("event-stream header type is unknown")]
    HeaderType,
    #[error("the event stream ended inside a message")]
    Truncated,
}

impl FrameError {
    /// A static description (for `UpstreamError::BadResponse`).
    pub fn as_str(self) -> &'static str {
        match self {
            FrameError::PreludeCrc => "event-stream prelude CRC mismatch",
            FrameError::MessageCrc => "event-stream message CRC mismatch",
            FrameError::Length => "event-stream message length out of range",
            FrameError::Headers => "event-stream headers are malformed",
            FrameError::HeaderType => "event-stream header type is unknown",
            FrameError::Truncated => "the event stream ended inside a message",
        }
    }
}

/// A header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Bytes,
}

impl Message {
    /// A string header's value.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

/// Decodes the first complete message in `buf` (consuming it). `Ok(None)`: more bytes are
/// needed. The prelude is checked as soon as its 12 bytes are there, so a corrupt length is
/// refused at once rather than waited for.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Message>, FrameError> {
    if buf.len() < 12 {
        return Ok(None);
    }
    let total = be_u32(&buf[0..4]) as usize;
    let headers_len = be_u32(&buf[4..8]) as usize;
    if crc32fast::hash(&buf[0..8]) != be_u32(&buf[8..12]) {
        return Err(FrameError::PreludeCrc);
    }
    if !(MIN_MESSAGE..=MAX_MESSAGE).contains(&total)
        || headers_len > MAX_HEADERS
        || headers_len > total - MIN_MESSAGE
    {
        return Err(FrameError::Length);
    }
    if buf.len() < total {
        return Ok(None);
    }
    if crc32fast::hash(&buf[..total - 4]) != be_u32(&buf[total - 4..total]) {
        return Err(FrameError::MessageCrc);
    }
    let headers = parse_headers(&buf[12..12 + headers_len])?;
    let mut frame = buf.split_to(total).freeze();
    frame.advance(12 + headers_len);
    frame.truncate(frame.len() - 4);
    Ok(Some(Message {
        headers,
        payload: frame,
    }))
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], FrameError> {
    if b.len() < n {
        return Err(FrameError::Headers);
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn take_array<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], FrameError> {
    let mut a = [0u8; N];
    a.copy_from_slice(take(b, N)?);
    Ok(a)
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let name_len = usize::from(take(&mut b, 1)?[0]);
        if name_len == 0 {
            return Err(FrameError::Headers);
        }
        let name = std::str::from_utf8(take(&mut b, name_len)?)
            .map_err(|_| FrameError::Headers)?
            .to_string();
        let ty = take(&mut b, 1)?[0];
        let value = match ty {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(take_array(&mut b)?)),
            3 => HeaderValue::Short(i16::from_be_bytes(take_array(&mut b)?)),
            4 => HeaderValue::Int(i32::from_be_bytes(take_array(&mut b)?)),
            5 => HeaderValue::Long(i64::from_be_bytes(take_array(&mut b)?)),
            6 | 7 => {
                let len = usize::from(u16::from_be_bytes(take_array(&mut b)?));
                let v = take(&mut b, len)?;
                if ty == 6 {
                    HeaderValue::Bytes(v.to_vec())
                } else {
                    HeaderValue::String(
                        std::str::from_utf8(v)
                            .map_err(|_| FrameError::Headers)?
                            .to_string(),
                    )
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(take_array(&mut b)?)),
            9 => HeaderValue::Uuid(take_array(&mut b)?),
            _ => return Err(FrameError::HeaderType),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// Encodes a message (tests and mocks). Header values of every type are written.
pub fn encode(headers: &[(&str, HeaderValue)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        match value {
            HeaderValue::Bool(true) => h.push(0),
            HeaderValue::Bool(false) => h.push(1),
            HeaderValue::Byte(v) => {
                h.push(2);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Short(v) => {
                h.push(3);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int(v) => {
                h.push(4);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Long(v) => {
                h.push(5);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(v) => {
                h.push(6);
                h.extend_from_slice(&(v.len() as u16).to_be_bytes());
                h.extend_from_slice(v);
            }
            HeaderValue::String(v) => {
                h.push(7);
                h.extend_from_slice(&(v.len() as u16).to_be_bytes());
                h.extend_from_slice(v.as_bytes());
            }
            HeaderValue::Timestamp(v) => {
                h.push(8);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(v) => {
                h.push(9);
                h.extend_from_slice(v);
            }
        }
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn event(kind: &str, payload: &str) -> Vec<u8> {
        encode(
            &[
                (":event-type", HeaderValue::String(kind.into())),
                (
                    ":content-type",
                    HeaderValue::String("application/json".into()),
                ),
                (":message-type", HeaderValue::String("event".into())),
            ],
            payload.as_bytes(),
        )
    }

    #[test]
    fn round_trip_every_header_type_and_split_points() {
        let headers = vec![
            ("t", HeaderValue::Bool(true)),
            ("f", HeaderValue::Bool(false)),
            ("b", HeaderValue::Byte(-3)),
            ("s", HeaderValue::Short(-300)),
            ("i", HeaderValue::Int(70000)),
            ("l", HeaderValue::Long(-1 << 40)),
            ("y", HeaderValue::Bytes(vec![0, 1, 255])),
            (
                ":event-type",
                HeaderValue::String("contentBlockDelta".into()),
            ),
            ("ts", HeaderValue::Timestamp(1_700_000_000_000)),
            ("u", HeaderValue::Uuid([7; 16])),
        ];
        let one = encode(&headers, b"{\"x\":1}");
        let mut all = one.clone();
        all.extend(event("messageStop", "{\"stopReason\":\"end_turn\"}"));
        // Fed in every split, byte by byte boundaries included.
        for split in 0..=all.len() {
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for part in [&all[..split], &all[split..]] {
                buf.extend_from_slice(part);
                while let Some(m) = decode(&mut buf).unwrap() {
                    got.push(m);
                }
            }
            assert!(buf.is_empty());
            assert_eq!(got.len(), 2, "split {split}");
            assert_eq!(&got[0].payload[..], b"{\"x\":1}");
            let names: Vec<_> = got[0].headers.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names.len(), headers.len());
            for ((n, v), (en, ev)) in got[0].headers.iter().zip(&headers) {
                assert_eq!((n.as_str(), v), (*en, ev));
            }
            assert_eq!(got[0].header_str(":event-type"), Some("contentBlockDelta"));
            assert_eq!(got[1].header_str(":event-type"), Some("messageStop"));
        }
    }

    #[test]
    fn truncated_frame_waits_then_is_incomplete() {
        let f = event("messageStart", "{\"role\":\"assistant\"}");
        let mut buf = BytesMut::from(&f[..f.len() - 1]);
        assert_eq!(decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), f.len() - 1, "nothing consumed");
    }

    #[test]
    fn bad_prelude_crc() {
        let mut f = event("messageStart", "{}");
        f[9] ^= 0xff;
        assert_eq!(
            decode(&mut BytesMut::from(&f[..])),
            Err(FrameError::PreludeCrc)
        );
        // A corrupted length is caught by the prelude CRC before waiting for 4 GiB.
        let mut f = event("messageStart", "{}");
        f[0] = 0x7f;
        assert_eq!(
            decode(&mut BytesMut::from(&f[..12])),
            Err(FrameError::PreludeCrc)
        );
    }

    #[test]
    fn bad_message_crc() {
        let mut f = event("contentBlockDelta", "{\"delta\":{\"text\":\"hi\"}}");
        let n = f.len();
        f[n - 6] ^= 0x01; // a payload byte
        assert_eq!(
            decode(&mut BytesMut::from(&f[..])),
            Err(FrameError::MessageCrc)
        );
    }

    #[test]
    fn every_single_byte_corruption_is_an_error_not_a_panic() {
        let f = encode(
            &[
                (
                    ":event-type",
                    HeaderValue::String("contentBlockDelta".into()),
                ),
                ("n", HeaderValue::Long(5)),
            ],
            b"{\"delta\":{\"text\":\"hi\"}}",
        );
        for i in 0..f.len() {
            for bit in 0..8 {
                let mut g = f.clone();
                g[i] ^= 1 << bit;
                let mut buf = BytesMut::from(&g[..]);
                // Either an error, or (a length grown by the flip) a wait for more bytes.
                match decode(&mut buf) {
                    Err(_) | Ok(None) => {}
                    Ok(Some(m)) => panic!("byte {i} bit {bit} decoded as {m:?}"),
                }
            }
        }
        for cut in 0..f.len() {
            assert_eq!(
                decode(&mut BytesMut::from(&f[..cut])),
                Ok(None),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn bad_lengths_and_headers() {
        // A consistent prelude claiming fewer bytes than a message needs.
        let mut p = Vec::new();
        p.extend_from_slice(&8u32.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        let c = crc32fast::hash(&p);
        p.extend_from_slice(&c.to_be_bytes());
        assert_eq!(decode(&mut BytesMut::from(&p[..])), Err(FrameError::Length));
        // Headers longer than the message.
        let mut p = Vec::new();
        p.extend_from_slice(&20u32.to_be_bytes());
        p.extend_from_slice(&10u32.to_be_bytes());
        let c = crc32fast::hash(&p);
        p.extend_from_slice(&c.to_be_bytes());
        assert_eq!(decode(&mut BytesMut::from(&p[..])), Err(FrameError::Length));
        // An unknown header type (with correct CRCs).
        let mut f = encode(&[("a", HeaderValue::Bool(true))], b"");
        f[14] = 42; // the type byte of header "a"
        let n = f.len();
        let crc = crc32fast::hash(&f[..n - 4]);
        f[n - 4..].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            decode(&mut BytesMut::from(&f[..])),
            Err(FrameError::HeaderType)
        );
        // A string header running past the headers section.
        let mut f = encode(&[("a", HeaderValue::String("xyz".into()))], b"");
        f[15..17].copy_from_slice(&200u16.to_be_bytes());
        let n = f.len();
        let crc = crc32fast::hash(&f[..n - 4]);
        f[n - 4..].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            decode(&mut BytesMut::from(&f[..])),
            Err(FrameError::Headers)
        );
    }
}
