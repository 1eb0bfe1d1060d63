//! Errors of reading and scoring. They name the file, line and field, never the record text.

use std::path::PathBuf;

/// Why an evaluation could not run. The messages carry file names, line numbers, field names
/// and expectations, never the content of a record (which may hold PHI).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not UTF-8.
    #[error("{}:{line}: invalid UTF-8", path.display())]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// A line is not valid JSON.
    #[error("{}:{line}: invalid JSON at column {column} ({reason})", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column within the line.
        column: usize,
        /// What serde_json found wrong, without the position (it never quotes the input).
        reason: String,
    },
    /// A record's field is missing or has the wrong type.
    #[error("{}:{line}: field {field}: {problem}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The field, such as `spans[3].start`.
        field: String,
        /// What is wrong, such as `expected an integer`.
        problem: &'static str,
    },
    /// Two prediction files were given the same system name.
    #[error("two prediction files are named {name:?}; give them distinct NAME= prefixes")]
    DuplicateSystem {
        /// The repeated name.
        name: String,
    },
}

impl EvalError {
    pub(crate) fn field(
        path: &std::path::Path,
        line: usize,
        field: impl Into<String>,
        problem: &'static str,
    ) -> Self {
        EvalError::Field {
            path: path.to_path_buf(),
            line,
            field: field.into(),
            problem,
        }
    }
}
