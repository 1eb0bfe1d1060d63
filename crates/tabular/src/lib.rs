//! # phiguard-tabular
//!
//! CSV and Parquet de-identification by column rules, streaming, and --suggest.
