//! The export file and its offline verifier.
//!
//! An export is JSON Lines. The first line is the header
//! `{"format":"phiguard-audit-export","version":1,"checkpoint":"<signed note>"}`; each further
//! line is one record of the checkpoint's tree, in index order:
//! `{"index":N,"leaf_hash":"<hex>","leaf":{"appended_at":"…","record":{…}}}`, where the text
//! of `leaf` is exactly the leaf bytes that were hashed. [`verify_export`] needs nothing but
//! the file and the log's public key: it recomputes every leaf hash and the root, checks the
//! checkpoint's signature, and says what is wrong.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::BufRead;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::AuditError;
use crate::hash::{Hash, leaf_hash};
use crate::note::{Checkpoint, VerifierKey, split_note};
use crate::store::{EXPORT_FORMAT, EXPORT_VERSION};
use crate::tree::{Frontier, MemoryTree, consistency_proof};
use crate::verify::verify_consistency;

/// At most this many problems of one kind are listed; the rest are counted.
const MAX_PER_KIND: usize = 20;

/// One thing wrong with an export. Indices, line numbers and sizes only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file is not an export at all.
    NotAnExport { what: &'static str },
    /// A line that is not a well-formed entry.
    Malformed { line: u64, what: &'static str },
    /// The checkpoint's signature does not verify with the given key.
    BadSignature { message: String },
    /// The checkpoint text is not a checkpoint.
    BadCheckpoint { message: String },
    /// A record whose content does not match its leaf hash.
    Modified { index: u64, line: u64 },
    /// Records missing before the end.
    Deleted { first: u64, last: u64 },
    /// A record index seen twice.
    Duplicate { index: u64, line: u64 },
    /// A record index at or beyond the signed size.
    BeyondSize { index: u64, line: u64, size: u64 },
    /// Records out of index order.
    Reordered {
        line: u64,
        index: u64,
        after: u64,
        count: u64,
    },
    /// The file ends before the signed size.
    Truncated { records: u64, signed: u64 },
    /// The recomputed root is not the signed root.
    RootMismatch { size: u64 },
    /// The older checkpoint's signature or text is bad.
    BadOldCheckpoint { message: String },
    /// The older checkpoint is from another log.
    OtherLog,
    /// The older checkpoint covers more records than the export.
    RolledBack { old: u64, new: u64 },
    /// The export's first `old` records are not those the older checkpoint signed.
    Inconsistent { old: u64, new: u64 },
    /// More problems of a kind than are listed.
    More { kind: &'static str, count: u64 },
}

impl Problem {
    /// A stable machine-readable name of the problem.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::NotAnExport { .. } => "not_an_export",
            Problem::Malformed { .. } => "malformed",
            Problem::BadSignature { .. } => "bad_signature",
            Problem::BadCheckpoint { .. } => "bad_checkpoint",
            Problem::Modified { .. } => "modified",
            Problem::Deleted { .. } => "deleted",
            Problem::Duplicate { .. } | Problem::BeyondSize { .. } => "inserted",
            Problem::Reordered { .. } => "reordered",
            Problem::Truncated { .. } => "truncated",
            Problem::RootMismatch { .. } => "root_mismatch",
            Problem::BadOldCheckpoint { .. } => "bad_old_checkpoint",
            Problem::OtherLog => "other_log",
            Problem::RolledBack { .. } => "rolled_back",
            Problem::Inconsistent { .. } => "inconsistent",
            Problem::More { .. } => "more",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NotAnExport { what } => write!(f, "not a phiguard audit export: {what}"),
            Problem::Malformed { line, what } => write!(f, "line {line}: {what}"),
            Problem::BadSignature { message } => {
                write!(
                    f,
                    "bad signature: the checkpoint cannot be trusted: {message}"
                )
            }
            Problem::BadCheckpoint { message } => write!(f, "bad checkpoint: {message}"),
            Problem::Modified { index, line } => write!(
                f,
                "record {index} (line {line}) was modified: its content does not match its leaf hash"
            ),
            Problem::Deleted { first, last } if first == last => {
                write!(f, "record {first} is missing: it was deleted from the log")
            }
            Problem::Deleted { first, last } => write!(
                f,
                "records {first} to {last} are missing: they were deleted from the log"
            ),
            Problem::Duplicate { index, line } => write!(
                f,
                "line {line}: record {index} appears more than once: a record was inserted"
            ),
            Problem::BeyondSize { index, line, size } => write!(
                f,
                "line {line}: record {index} is beyond the {size} records the checkpoint signs: \
                 a record was inserted"
            ),
            Problem::Reordered {
                line,
                index,
                after,
                count,
            } => write!(
                f,
                "line {line}: record {index} comes after record {after}: records were reordered \
                 ({count} out of order)"
            ),
            Problem::Truncated { records, signed } => write!(
                f,
                "the log is truncated: it ends after {records} records but the signed checkpoint \
                 covers {signed}, so the root no longer matches the signed size"
            ),
            Problem::RootMismatch { size } => write!(
                f,
                "the root hash of the {size} records does not match the signed checkpoint: \
                 records were rewritten together with their leaf hashes, or the checkpoint lies"
            ),
            Problem::BadOldCheckpoint { message } => write!(f, "older checkpoint: {message}"),
            Problem::OtherLog => write!(
                f,
                "the older checkpoint is from another log (its origin differs)"
            ),
            Problem::RolledBack { old, new } => write!(
                f,
                "the log was rolled back: the older checkpoint covers {old} records, this log only {new}"
            ),
            Problem::Inconsistent { old, new } => write!(
                f,
                "the log of {new} records is not consistent with the older checkpoint of {old} \
                 records: records before {old} were rewritten"
            ),
            Problem::More { kind, count } => write!(f, "{count} more problems of kind {kind}"),
        }
    }
}

/// What [`verify_export`] found.
#[derive(Debug, Clone, Default)]
pub struct ExportReport {
    /// Well-formed record lines read.
    pub records: u64,
    /// The checkpoint the export carries, when it parses (signed or not: see `problems`).
    pub checkpoint: Option<Checkpoint>,
    /// The older checkpoint, when given and its signature verifies.
    pub older: Option<Checkpoint>,
    /// The root recomputed from the records in file order.
    pub computed_root: Option<Hash>,
    /// Records marked pruned (payload removed after retention): only their leaf hash is
    /// checked, through the root.
    pub pruned: u64,
    /// Everything wrong, most specific first.
    pub problems: Vec<Problem>,
}

impl ExportReport {
    /// True when the export is intact: signed by the key, every record in place and the
    /// root matching (and consistent with the older checkpoint, when given).
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty() && self.checkpoint.is_some()
    }
}

#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
    checkpoint: String,
}

#[derive(Deserialize)]
struct EntryLine<'a> {
    index: u64,
    #[serde(borrow)]
    leaf_hash: Cow<'a, str>,
    #[serde(borrow, default)]
    leaf: Option<&'a RawValue>,
    #[serde(default)]
    pruned: bool,
}

/// Collects problems, capping each kind.
#[derive(Default)]
struct Problems {
    list: Vec<Problem>,
    counts: std::collections::BTreeMap<&'static str, u64>,
}

impl Problems {
    fn push(&mut self, p: Problem) {
        let n = self.counts.entry(p.kind()).or_insert(0);
        *n += 1;
        if *n as usize <= MAX_PER_KIND {
            self.list.push(p);
        }
    }

    fn finish(mut self) -> Vec<Problem> {
        for (kind, count) in self.counts {
            if count as usize > MAX_PER_KIND {
                self.list.push(Problem::More {
                    kind,
                    count: count - MAX_PER_KIND as u64,
                });
            }
        }
        self.list
    }
}

fn strip_newline(buf: &[u8]) -> &[u8] {
    buf.strip_suffix(b"\n").unwrap_or(buf)
}

/// Verifies an export read from `reader` with the log's public key, and, given `older` (a
/// signed checkpoint note kept outside the log), that the export extends it. `Err` only for
/// I/O errors; everything wrong with the content is in the report.
pub fn verify_export<R: BufRead>(
    mut reader: R,
    key: &VerifierKey,
    older: Option<&str>,
) -> Result<ExportReport, AuditError> {
    let mut report = ExportReport::default();
    let mut problems = Problems::default();
    let mut buf = Vec::with_capacity(4096);

    if reader.read_until(b'\n', &mut buf)? == 0 {
        problems.push(Problem::NotAnExport {
            what: "the file is empty",
        });
        report.problems = problems.finish();
        return Ok(report);
    }
    let header: Header = match serde_json::from_slice(strip_newline(&buf)) {
        Ok(h) => h,
        Err(_) => {
            problems.push(Problem::NotAnExport {
                what: "the first line is not an export header",
            });
            report.problems = problems.finish();
            return Ok(report);
        }
    };
    if header.format != EXPORT_FORMAT || header.version != EXPORT_VERSION {
        problems.push(Problem::NotAnExport {
            what: "unknown format or version",
        });
        report.problems = problems.finish();
        return Ok(report);
    }
    // The signature first; when it fails, the unsigned text is still read so that the rest of
    // the file can be checked and reported on.
    let text = match key.open(&header.checkpoint) {
        Ok(text) => Some(text),
        Err(e) => {
            problems.push(Problem::BadSignature {
                message: e.to_string(),
            });
            split_note(&header.checkpoint).ok().map(|(text, _)| text)
        }
    };
    let checkpoint = match text.map(Checkpoint::parse) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            problems.push(Problem::BadCheckpoint {
                message: e.to_string(),
            });
            None
        }
        None => None,
    };

    let mut entries: Vec<(u64, u64)> = Vec::new();
    let mut hashes: Vec<Hash> = Vec::new();
    let mut frontier = Frontier::new();
    let mut line = 1u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        let bytes = strip_newline(&buf);
        if bytes.is_empty() {
            problems.push(Problem::Malformed {
                line,
                what: "empty line",
            });
            continue;
        }
        let Ok(entry) = serde_json::from_slice::<EntryLine<'_>>(bytes) else {
            problems.push(Problem::Malformed {
                line,
                what: "not an export record (index, leaf_hash, leaf)",
            });
            continue;
        };
        let stated = hex::decode(entry.leaf_hash.as_ref()).ok();
        let hash = match (entry.leaf, entry.pruned) {
            (Some(leaf), false) => {
                let hash = leaf_hash(leaf.get().as_bytes());
                if stated.as_deref() != Some(&hash[..]) {
                    problems.push(Problem::Modified {
                        index: entry.index,
                        line,
                    });
                }
                hash
            }
            (None, true) => {
                // The payload was pruned after retention: the stated leaf hash is all that
                // is left, and the root (hence the signature) covers it.
                let Some(hash) = stated.and_then(|h| <Hash>::try_from(h.as_slice()).ok()) else {
                    problems.push(Problem::Malformed {
                        line,
                        what: "a pruned record's leaf_hash is not a 32-byte hex hash",
                    });
                    continue;
                };
                report.pruned += 1;
                hash
            }
            _ => {
                problems.push(Problem::Malformed {
                    line,
                    what: "a record has either a leaf or \"pruned\":true",
                });
                continue;
            }
        };
        entries.push((entry.index, line));
        hashes.push(hash);
        frontier.push(hash, |_, _, _| {});
    }
    let count = entries.len() as u64;
    report.records = count;
    let root = frontier.root();
    report.computed_root = Some(root);
    let signed = checkpoint.as_ref().map_or(count, |c| c.size);

    // Structure of the index sequence against 0..signed.
    let mut sorted: Vec<u64> = entries.iter().map(|e| e.0).collect();
    sorted.sort_unstable();
    let duplicated: HashSet<u64> = sorted
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    let mut seen_dup: HashSet<u64> = HashSet::new();
    let mut prev: Option<u64> = None;
    let mut first_disorder: Option<(u64, u64, u64)> = None;
    let mut disorder = 0u64;
    for &(index, line) in &entries {
        if index >= signed {
            problems.push(Problem::BeyondSize {
                index,
                line,
                size: signed,
            });
            continue;
        }
        if duplicated.contains(&index) && !seen_dup.insert(index) {
            problems.push(Problem::Duplicate { index, line });
            continue;
        }
        if let Some(p) = prev
            && index < p
        {
            disorder += 1;
            first_disorder.get_or_insert((line, index, p));
        }
        prev = Some(index);
    }
    let mut expect = 0u64;
    sorted.dedup();
    for &i in sorted.iter().take_while(|&&i| i < signed) {
        if i > expect {
            problems.push(Problem::Deleted {
                first: expect,
                last: i - 1,
            });
        }
        expect = i + 1;
    }
    if expect < signed {
        problems.push(Problem::Truncated {
            records: expect,
            signed,
        });
    }
    if let Some((line, index, after)) = first_disorder {
        problems.push(Problem::Reordered {
            line,
            index,
            after,
            count: disorder,
        });
    }
    if let Some(c) = &checkpoint
        && count == c.size
        && root != c.root
    {
        problems.push(Problem::RootMismatch { size: c.size });
    }

    if let Some(old_note) = older {
        match key.open_checkpoint(old_note) {
            Err(e) => problems.push(Problem::BadOldCheckpoint {
                message: e.to_string(),
            }),
            Ok(old) => {
                if checkpoint.as_ref().is_some_and(|c| c.origin != old.origin) {
                    problems.push(Problem::OtherLog);
                }
                if old.size > signed || old.size > count {
                    problems.push(Problem::RolledBack {
                        old: old.size,
                        new: signed.min(count),
                    });
                } else {
                    let tree = MemoryTree::from_leaf_hashes(hashes.iter().copied());
                    let proof = consistency_proof(&tree, old.size, count)?;
                    if verify_consistency(old.size, count, &old.root, &root, &proof).is_err() {
                        problems.push(Problem::Inconsistent {
                            old: old.size,
                            new: count,
                        });
                    }
                }
                report.older = Some(old);
            }
        }
    }
    report.checkpoint = checkpoint;
    report.problems = problems.finish();
    Ok(report)
}
