//! Ciphertext files (`*.pgenc`): finding them and rewrapping them in place.
//!
//! A rewrap rewrites one file at a time: the new header and the unchanged frames go to a
//! temporary file in the same folder (with the original's permissions), which is synced and
//! renamed over the original. A reader that opened the file before the rename keeps reading
//! the old, complete file; one that opens it after reads the new one; both decrypt as long as
//! the old KEK version is not revoked. A file already under the current KEK is skipped
//! without being written, so an interrupted run is resumed by running it again.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::CryptoError;
use crate::envelope::{RewrapOutcome, rewrap_header};
use crate::header::Header;
use crate::provider::KeyProvider;
use crate::provider::local::{parent_dir, sync_dir};

/// The extension of phiguard ciphertext files.
pub const EXTENSION: &str = "pgenc";

/// The files named by `paths`: a file is taken as given (whatever its extension); a folder
/// is searched recursively for `*.pgenc` files (symbolic links to folders are not followed).
/// Sorted and without duplicates.
pub fn collect_ciphertext_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CryptoError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(CryptoError::io(format!("cannot read {}", p.display())))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CryptoError> {
    let entries = std::fs::read_dir(dir).map_err(CryptoError::io(format!(
        "cannot list folder {}",
        dir.display()
    )))?;
    for entry in entries {
        let entry = entry.map_err(CryptoError::io(format!(
            "cannot list folder {}",
            dir.display()
        )))?;
        let path = entry.path();
        let ty = entry
            .file_type()
            .map_err(CryptoError::io(format!("cannot read {}", path.display())))?;
        if ty.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == EXTENSION)
            && (ty.is_file() || (ty.is_symlink() && path.is_file()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Moves the file at `path` to the provider's current KEK (see the module docs).
pub fn rewrap_file(provider: &dyn KeyProvider, path: &Path) -> Result<RewrapOutcome, CryptoError> {
    let read_err = || CryptoError::io(format!("cannot read {}", path.display()));
    let write_err = || CryptoError::io(format!("cannot write {}", path.display()));
    let file = File::open(path).map_err(read_err())?;
    let meta = file.metadata().map_err(read_err())?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let parsed = Header::read_from(&mut reader)?;
    let (outcome, new_header) = rewrap_header(provider, &parsed)?;
    let Some(new_header) = new_header else {
        return Ok(outcome);
    };
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".rewrap.tmp")
        .tempfile_in(dir)
        .map_err(write_err())?;
    tmp.as_file()
        .set_permissions(meta.permissions())
        .map_err(write_err())?;
    let mut w = BufWriter::with_capacity(1 << 16, tmp);
    w.write_all(&new_header).map_err(write_err())?;
    std::io::copy(&mut reader, &mut w).map_err(write_err())?;
    let tmp = w.into_inner().map_err(|e| write_err()(e.into_error()))?;
    tmp.as_file().sync_all().map_err(write_err())?;
    tmp.persist(path).map_err(|e| write_err()(e.error))?;
    sync_dir(dir);
    Ok(outcome)
}

/// What a rewrap of many files did.
#[derive(Debug, Default)]
pub struct RewrapReport {
    /// Files moved to the current KEK.
    pub rewrapped: Vec<PathBuf>,
    /// Files already under the current KEK (left untouched).
    pub already_current: Vec<PathBuf>,
    /// Files that could not be rewrapped, with the reason (they are left untouched).
    pub failed: Vec<(PathBuf, CryptoError)>,
}

/// Rewraps every file, one at a time, continuing past failures; `progress` is called after
/// each file.
pub fn rewrap_files(
    provider: &dyn KeyProvider,
    files: &[PathBuf],
    mut progress: impl FnMut(&Path, &Result<RewrapOutcome, CryptoError>),
) -> RewrapReport {
    let mut report = RewrapReport::default();
    for path in files {
        let result = rewrap_file(provider, path);
        progress(path, &result);
        match result {
            Ok(RewrapOutcome::Rewrapped { .. }) => report.rewrapped.push(path.clone()),
            Ok(RewrapOutcome::AlreadyCurrent { .. }) => report.already_current.push(path.clone()),
            Err(e) => report.failed.push((path.clone(), e)),
        }
    }
    report
}

/// Reads the header of the file at `path`.
pub fn read_file_header(path: &Path) -> Result<Header, CryptoError> {
    let file =
        File::open(path).map_err(CryptoError::io(format!("cannot read {}", path.display())))?;
    let mut reader = BufReader::new(file);
    Ok(Header::read_from(&mut reader)?.header)
}
