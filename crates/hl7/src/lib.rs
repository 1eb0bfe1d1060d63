//! # phiguard-hl7
//!
//! HL7 v2: a tokenizer that honours the MSH encoding characters, escapes, batches and line endings; de-identification by segment-field rules.
