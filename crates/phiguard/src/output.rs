//! Output files are written to a temporary file beside the target and renamed into place only
//! when complete, so a failed run never leaves a half-written file that looks finished.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A destination: a file written atomically, or stdout.
pub enum Sink {
    File {
        tmp: BufWriter<tempfile::NamedTempFile>,
        path: PathBuf,
    },
    Stdout(BufWriter<std::io::Stdout>),
}

impl Sink {
    /// Opens `path` (atomically written), or stdout for `None` or `-`.
    pub fn open(path: Option<&Path>) -> Result<Sink> {
        match path {
            None => Ok(Sink::Stdout(BufWriter::new(std::io::stdout()))),
            Some(p) if p == Path::new("-") => Ok(Sink::Stdout(BufWriter::new(std::io::stdout()))),
            Some(p) => {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create folder {}", dir.display()))?;
                let tmp = tempfile::NamedTempFile::new_in(dir)
                    .with_context(|| format!("cannot create a file in {}", dir.display()))?;
                Ok(Sink::File {
                    tmp: BufWriter::with_capacity(1 << 20, tmp),
                    path: p.to_path_buf(),
                })
            }
        }
    }

    /// Flushes and, for a file, renames it into place.
    pub fn finish(self) -> Result<()> {
        match self {
            Sink::Stdout(mut w) => Ok(w.flush()?),
            Sink::File { tmp, path } => {
                let tmp = tmp
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                tmp.as_file()
                    .sync_all()
                    .with_context(|| format!("cannot write {}", path.display()))?;
                tmp.persist(&path)
                    .map_err(|e| e.error)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(())
            }
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File { tmp, .. } => tmp.write(buf),
            Sink::Stdout(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File { tmp, .. } => tmp.flush(),
            Sink::Stdout(w) => w.flush(),
        }
    }
}
