//! # phiguard-eval
//!
//! Token-level scoring of predicted PHI spans against gold spans, agreeing exactly with the
//! project's reference scorer `score.py` (a copy lives in `tests/data/score.py`).
//!
//! * **Tokens** are maximal runs of Unicode letters and digits (Python's `[^\W_]+`, see
//!   [`is_token_char`]); offsets are Unicode code points, end exclusive.
//! * A **gold PHI token** overlaps (shares at least one character with) a gold span; a
//!   **predicted PHI token** overlaps a predicted span.
//! * Binary token precision, recall and F1 are micro-averaged over the tokens of the scored
//!   documents; per gold category come token recall, span full-recall (every token of the span
//!   predicted), span any-hit, the spans without tokens and the most frequently missed spans and
//!   tokens; per predicted label, token precision; and the most frequent false-positive tokens.
//! * **Don't-care** categories ([`ScoreOptions::dont_care`], and with
//!   [`ScoreOptions::year_only_dont_care`] the spans flagged `year_only` or `country`): tokens
//!   covered only by such gold spans count neither way in P/R/F1.
//!   [`ScoreOptions::with_safe_harbor`] is score.py's `--safe-harbor`.
//! * Only gold documents present in every prediction file are scored ([`Selection::common`]).
//!
//! ```
//! use std::path::Path;
//! use phiguard_eval::{DocSet, ScoreOptions, Selection, score_system};
//!
//! let gold = DocSet::parse(Path::new("gold.jsonl"), br#"{"id": "1", "text": "Seen by Dr. Ana Ruiz.", "spans": [{"start": 12, "end": 20, "category": "NAME"}]}"#)?;
//! let pred = DocSet::parse(Path::new("pred.jsonl"), br#"{"id": "1", "spans": [{"start": 16, "end": 20, "category": "NAME"}]}"#)?;
//! let selection = Selection::common(&gold, &[&pred]);
//! let r = score_system(&selection, &pred, &ScoreOptions::default())?;
//! assert_eq!((r.tp, r.fp, r.r#fn), (1, 0, 1)); // "Ruiz" found, "Ana" missed
//! assert_eq!(r.recall, 0.5);
//! assert_eq!(r.per_category["NAME"].top_missed, [("Ana Ruiz".to_string(), 1)]);
//! # Ok::<(), phiguard_eval::EvalError>(())
//! ```

#![warn(missing_docs)]

mod alnum_exceptions;
mod counter;
mod error;
mod jsonl;
pub mod python;
mod report;
mod score;
mod tokenize;

pub use counter::OrderedCounter;
pub use error::EvalError;
pub use jsonl::{Doc, DocId, DocSet, Score, SpanRecord, TextField};
pub use report::{
    CategoryResult, LabelResult, OrderedMap, Report, SystemResult, TopList, markdown,
};
pub use score::{
    SAFE_HARBOR_DONT_CARE, ScoreOptions, Selection, ids_not_in_gold, read_split_ids, score_all,
    score_system,
};
pub use tokenize::{Token, count_tokens, is_token_char, overlapping, tokens, tokens_into};
