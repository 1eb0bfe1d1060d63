//! Integration tests of phiguard-eval: agreement with the reference score.py (run with python3;
//! skipped with a message when python3 is missing) on fixtures, perturbed predictions and, when
//! present beside the workspace, the dev corpora.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/score_py.rs"]
mod score_py;

mod agrees_with_score_py;
mod unicode_agrees_with_python;
