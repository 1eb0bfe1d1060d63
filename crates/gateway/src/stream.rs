//! The output filter for streams: a sliding window that holds back only the shortest tail
//! that could still turn out to be part of PHI (the last few words, any detection touching the
//! cut, an unclosed `[[` placeholder), so PHI split across chunks is still scrubbed and time to
//! first token stays close to the upstream's.

use std::sync::Arc;

use phiguard_detect::Category;

use crate::guard::{GuardError, OutputMode, PhiScanner, Vault, is_phi, tag};

/// Words held back in scrub mode: a multi-word identifier ("Maria del Carmen Lopez", "(617)
/// 555 0199") can only be recognised once its last word has arrived.
pub const HOLD_WORDS: usize = 3;
/// Bytes of already-emitted text kept as left context for the detector ("Dr." before a name).
pub const CONTEXT_BYTES: usize = 256;
/// The longest placeholder waited for in restore mode.
const MAX_PLACEHOLDER: usize = 48;

/// One text channel of a stream (a choice's content, or one tool call's arguments).
pub struct StreamFilter {
    scanner: Arc<dyn PhiScanner>,
    vault: Arc<Vault>,
    mode: OutputMode,
    /// Restored values are JSON-escaped (tool-call arguments are JSON text).
    json_escape: bool,
    pending: String,
    context: String,
    /// Values scrubbed so far.
    pub scrubbed: u32,
}

impl std::fmt::Debug for StreamFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StreamFilter({:?}, {} bytes held)",
            self.mode,
            self.pending.len()
        )
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl StreamFilter {
    pub fn new(
        scanner: Arc<dyn PhiScanner>,
        vault: Arc<Vault>,
        mode: OutputMode,
        json_escape: bool,
    ) -> Self {
        StreamFilter {
            scanner,
            vault,
            mode,
            json_escape,
            pending: String::new(),
            context: String::new(),
            scrubbed: 0,
        }
    }

    /// Bytes currently held back.
    pub fn held(&self) -> usize {
        self.pending.len()
    }

    /// Adds a delta; returns the text that is safe to emit now (may be empty).
    pub fn push(&mut self, delta: &str) -> Result<String, GuardError> {
        self.pending.push_str(delta);
        self.emit(false)
    }

    /// The stream ended: returns everything still held, filtered.
    pub fn finish(&mut self) -> Result<String, GuardError> {
        self.emit(true)
    }

    fn restore(&self, text: &str) -> String {
        if self.json_escape {
            self.vault.restore_with(text, |v| {
                let q = serde_json::to_string(v).unwrap_or_default();
                q.get(1..q.len().saturating_sub(1))
                    .unwrap_or("")
                    .to_string()
            })
        } else {
            self.vault.restore(text)
        }
    }

    fn emit(&mut self, end: bool) -> Result<String, GuardError> {
        match self.mode {
            OutputMode::Restore => {
                let cut = if end {
                    self.pending.len()
                } else {
                    restore_cut(&self.pending)
                };
                let out = self.restore(&self.pending[..cut]);
                self.pending.drain(..cut);
                Ok(out)
            }
            OutputMode::Scrub => self.emit_scrub(end),
        }
    }

    fn emit_scrub(&mut self, end: bool) -> Result<String, GuardError> {
        let mut cut = if end {
            self.pending.len()
        } else {
            word_cut(&self.pending, HOLD_WORDS)
        };
        if cut == 0 {
            return Ok(String::new());
        }
        let ctx = self.context.len();
        let text = format!("{}{}", self.context, self.pending);
        // Detections plus exact repeats of values from the request.
        let mut spans: Vec<(usize, usize, Category)> = self
            .scanner
            .scan(&text)?
            .into_iter()
            .filter(|s| is_phi(s.category))
            .map(|s| (s.start, s.end, s.category))
            .collect();
        for (value, cat) in self.vault.values_longest_first() {
            if value.is_empty() {
                continue;
            }
            for (i, _) in text.match_indices(value) {
                spans.push((i, i + value.len(), cat));
            }
        }
        spans.sort_by_key(|s| (s.0, std::cmp::Reverse(s.1)));
        let mut merged: Vec<(usize, usize, Category)> = Vec::new();
        for s in spans {
            match merged.last_mut() {
                Some(last) if s.0 < last.1 => last.1 = last.1.max(s.1),
                _ => merged.push(s),
            }
        }
        // Never cut through a detection: hold it back whole.
        if !end {
            let mut abs = ctx + cut;
            for &(s, e, _) in &merged {
                if s < abs && abs < e {
                    abs = s;
                }
            }
            cut = abs.saturating_sub(ctx);
            if cut == 0 {
                return Ok(String::new());
            }
        }
        let abs_cut = ctx + cut;
        let mut out = String::with_capacity(cut);
        let mut pos = ctx;
        for &(s, e, cat) in &merged {
            if e <= ctx || s >= abs_cut {
                continue;
            }
            let s = s.max(ctx);
            out.push_str(&text[pos..s]);
            out.push_str(&tag(cat));
            self.scrubbed += 1;
            pos = e.min(abs_cut);
        }
        out.push_str(&text[pos..abs_cut]);
        // Slide the window.
        self.context.push_str(&self.pending[..cut]);
        self.pending.drain(..cut);
        if self.context.len() > CONTEXT_BYTES {
            let from = floor_boundary(&self.context, self.context.len() - CONTEXT_BYTES);
            self.context.drain(..from);
        }
        Ok(out)
    }
}

/// Restore mode: cut before an unclosed `[[` (or a trailing `[`) that may still become a
/// placeholder.
fn restore_cut(s: &str) -> usize {
    if let Some(open) = s.rfind("[[")
        && !s[open..].contains("]]")
        && s.len() - open <= MAX_PLACEHOLDER
    {
        return open;
    }
    if s.ends_with('[') {
        return s.len() - 1;
    }
    s.len()
}

/// Scrub mode: the start of the last `words` whitespace-separated words (the last one may be
/// incomplete), or 0 when there are fewer.
fn word_cut(s: &str, words: usize) -> usize {
    let mut seen = 0;
    let mut in_word = false;
    for (i, c) in s.char_indices().rev() {
        if c.is_whitespace() {
            if in_word {
                seen += 1;
                if seen == words {
                    return i + c.len_utf8();
                }
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use phiguard_detect::Detector;

    fn run(mode: OutputMode, vault: Vault, pieces: &[&str]) -> (String, usize) {
        let mut f = StreamFilter::new(Arc::new(Detector::new()), Arc::new(vault), mode, false);
        let mut out = String::new();
        let mut max_held = 0;
        for p in pieces {
            out.push_str(&f.push(p).unwrap());
            max_held = max_held.max(f.held());
        }
        out.push_str(&f.finish().unwrap());
        (out, max_held)
    }

    #[test]
    fn phi_split_across_chunks_is_scrubbed() {
        let text = "The patient was seen by Dr. John Carter on 03/14/2021 and can be reached at 617-555-0199 for follow-up questions about the results.";
        // Every split into chunks of 1..7 bytes.
        for size in 1..8 {
            let pieces: Vec<String> = text
                .as_bytes()
                .chunks(size)
                .map(|c| String::from_utf8(c.to_vec()).unwrap())
                .collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let (out, held) = run(OutputMode::Scrub, Vault::default(), &refs);
            for phi in ["Carter", "03/14/2021", "555-0199"] {
                assert!(!out.contains(phi), "size {size}: {out}");
            }
            assert!(out.contains("follow-up questions"), "{out}");
            assert!(held < 60, "held {held} bytes");
        }
    }

    #[test]
    fn placeholders_split_across_chunks_are_restored() {
        let mut v = Vault::default();
        let t = v.token_for(Category::Name, "Maria Lopez");
        let answer = format!("Summary for {t}: stable. Unknown [[NAME_9]] stays.");
        let pieces: Vec<String> = answer.chars().map(String::from).collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let (out, held) = run(OutputMode::Restore, v, &refs);
        assert_eq!(
            out,
            "Summary for Maria Lopez: stable. Unknown [[NAME_9]] stays."
        );
        assert!(held <= MAX_PLACEHOLDER);
    }

    #[test]
    fn word_cut_holds_last_words() {
        assert_eq!(word_cut("a b c d", 3), 2);
        assert_eq!(word_cut("ab cd", 3), 0);
        assert_eq!(word_cut("a b c d ", 3), 2);
    }
}
