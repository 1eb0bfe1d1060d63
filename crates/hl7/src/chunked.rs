//! One stream on several threads: the input is cut into chunks of whole messages (before an
//! `MSH`) on this thread, worker threads de-identify them, each as its own input, and they are
//! written back in input order as they come back. Memory is bounded by about `2 × threads`
//! chunks.
//!
//! The output is byte for byte that of [`Hl7Deid::deidentify`]: a chunk starts at a message, so
//! no message, batch header or trailer loses the delimiters it is read with, and the walker's
//! caches change only how fast it goes. Each chunk is read with its position in the input, so
//! errors and review labels name the same line and byte as a sequential run (the error is the
//! first in input order). Counts are the same; the review sample is drawn
//! per chunk with a seed of the chunk's number and merged, so it does not depend on the number
//! of threads (chunks have a fixed number of messages).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Mutex, mpsc};

use phiguard_rules::{Engine, Tally};

use crate::Hl7Error;
use crate::deid::Hl7Deid;
use crate::reader::SegmentReader;

/// Messages per chunk. Fixed, so the review sample is the same on any number of threads.
pub const CHUNK_MESSAGES: usize = 256;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A run of whole messages, as read, with where it starts in the input.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    /// Lines (segments) and bytes of the input before it.
    lines_before: u64,
    bytes_before: u64,
    messages: usize,
}

/// What a worker gives back for one chunk: the chunk's number and its output and counts.
type Done = (u64, Result<(Vec<u8>, Tally), Hl7Error>);

impl Hl7Deid {
    /// As [`Hl7Deid::deidentify`], with the messages of the input shared out over `threads`
    /// threads (chunks of [`CHUNK_MESSAGES`]); the same output, counts and errors. On error the
    /// caller discards `out`.
    pub fn deidentify_with_threads<R: Read, W: Write>(
        &self,
        engine: &Engine,
        input: R,
        mut out: W,
        tally: &mut Tally,
        threads: usize,
    ) -> Result<(), Hl7Error> {
        let threads = threads.max(1);
        let mut chunks = Chunks::new(input);
        if threads == 1 {
            while let Some((i, chunk)) = chunks.next_chunk()? {
                let (written, t) = self.chunk(engine, &chunk, fork(tally, i))?;
                finish_chunk(&mut out, tally, written, t)?;
            }
        } else {
            self.pipeline(engine, &mut chunks, &mut out, tally, threads)?;
        }
        out.flush()?;
        tally.files += 1;
        Ok(())
    }

    /// Reads chunks on this thread, de-identifies them on `threads` workers and writes them in
    /// input order as they come back; at most `2 × threads` chunks are in memory.
    fn pipeline<R: Read, W: Write>(
        &self,
        engine: &Engine,
        chunks: &mut Chunks<R>,
        out: &mut W,
        tally: &mut Tally,
        threads: usize,
    ) -> Result<(), Hl7Error> {
        let (work_tx, work_rx) = mpsc::sync_channel::<(u64, Chunk, Tally)>(threads);
        let work_rx = Mutex::new(work_rx);
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        std::thread::scope(|s| {
            for _ in 0..threads {
                let (work_rx, done_tx) = (&work_rx, done_tx.clone());
                s.spawn(move || {
                    loop {
                        let job = match work_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => break,
                        };
                        let Ok((i, chunk, t)) = job else { break };
                        if done_tx.send((i, self.chunk(engine, &chunk, t))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done_tx);
            let mut writer = InOrder::default();
            let mut sent = 0u64;
            while let Some((i, chunk)) = chunks.next_chunk()? {
                // At most 2 × threads chunks between reading and writing, even when an early
                // chunk is slow and later ones wait to be written after it.
                while i >= writer.next + 2 * threads as u64 {
                    let done = done_rx.recv().map_err(|_| worker_failed())?;
                    writer.put(done, out, tally)?;
                }
                let t = fork(tally, i);
                if work_tx.send((i, chunk, t)).is_err() {
                    return Err(worker_failed());
                }
                sent += 1;
                while let Ok(done) = done_rx.try_recv() {
                    writer.put(done, out, tally)?;
                }
            }
            drop(work_tx);
            while writer.next < sent {
                let done = done_rx.recv().map_err(|_| worker_failed())?;
                writer.put(done, out, tally)?;
            }
            Ok(())
        })
    }

    /// De-identifies one chunk as its own input; errors name positions in the whole input.
    fn chunk(
        &self,
        engine: &Engine,
        chunk: &Chunk,
        mut t: Tally,
    ) -> Result<(Vec<u8>, Tally), Hl7Error> {
        let mut written = Vec::with_capacity(chunk.bytes.len() + 64);
        let before = (chunk.lines_before, chunk.bytes_before);
        self.deidentify_at(engine, chunk.bytes.as_slice(), &mut written, &mut t, before)?;
        // Each chunk counted itself as a file; the caller counts the input once.
        t.files = 0;
        Ok((written, t))
    }
}

/// The chunks of one input, read one after another.
struct Chunks<R> {
    reader: SegmentReader<R>,
    buf: Vec<u8>,
    /// The next chunk, started by the `MSH` that ended the one before.
    cur: Chunk,
    index: u64,
    done: bool,
}

impl<R: Read> Chunks<R> {
    fn new(input: R) -> Self {
        Chunks {
            reader: SegmentReader::new(input),
            buf: Vec::new(),
            cur: Chunk::default(),
            index: 0,
            done: false,
        }
    }

    /// The next chunk and its number; the last one is the rest of the input (the whole input
    /// when it is short, empty when the input is, which gives the sequential walker's error).
    fn next_chunk(&mut self) -> Result<Option<(u64, Chunk)>, Hl7Error> {
        if self.done {
            return Ok(None);
        }
        let r = &mut self.reader;
        while let Some(ending) = r.next_segment(&mut self.buf)? {
            let msh = self.buf.starts_with(b"MSH");
            let full = msh && self.cur.messages >= CHUNK_MESSAGES;
            let next = Chunk {
                lines_before: r.line - 1,
                bytes_before: r.offset,
                ..Chunk::default()
            };
            let ready = full.then(|| std::mem::replace(&mut self.cur, next));
            if r.line == 1 && r.bom {
                self.cur.bytes.extend_from_slice(BOM);
            }
            self.cur.bytes.extend_from_slice(&self.buf);
            self.cur.bytes.extend_from_slice(ending.bytes());
            self.cur.messages += usize::from(msh);
            if let Some(chunk) = ready {
                self.index += 1;
                return Ok(Some((self.index - 1, chunk)));
            }
        }
        self.done = true;
        self.index += 1;
        Ok(Some((self.index - 1, std::mem::take(&mut self.cur))))
    }
}

/// Results written in chunk order: the ones that come back early wait.
#[derive(Default)]
struct InOrder {
    next: u64,
    waiting: BTreeMap<u64, Result<(Vec<u8>, Tally), Hl7Error>>,
}

impl InOrder {
    /// Takes one result and writes every result now in order; the first error in input order.
    fn put<W: Write>(
        &mut self,
        (i, r): Done,
        out: &mut W,
        tally: &mut Tally,
    ) -> Result<(), Hl7Error> {
        self.waiting.insert(i, r);
        while let Some(r) = self.waiting.remove(&self.next) {
            let (written, t) = r?;
            finish_chunk(out, tally, written, t)?;
            self.next += 1;
        }
        Ok(())
    }
}

/// Writes a chunk's output and adds its counts.
fn finish_chunk<W: Write>(
    out: &mut W,
    tally: &mut Tally,
    written: Vec<u8>,
    t: Tally,
) -> Result<(), Hl7Error> {
    tally.merge(t);
    out.write_all(&written)?;
    Ok(())
}

/// A fresh tally for chunk `i`, with its own review sample (see the module's doc).
fn fork(tally: &Tally, i: u64) -> Tally {
    Tally {
        review: tally.review.fork(i),
        ..Tally::default()
    }
}

fn worker_failed() -> Hl7Error {
    Hl7Error::Io(std::io::Error::other("a de-identification thread failed"))
}
