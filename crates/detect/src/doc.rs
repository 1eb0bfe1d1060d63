//! Per-document working state shared by the recognizers: the tokens, their dictionary flags,
//! which tokens a span already claimed, and the spans found so far.

use crate::dict::{self, Dictionaries};
use crate::tokens::{Kind, Tok};
use crate::{Category, Lang, Span};

pub struct Doc<'a> {
    pub text: &'a str,
    pub toks: &'a [Tok],
    pub flags: &'a [u64],
    pub lang: Lang,
    pub dict: &'a Dictionaries,
    pub spans: Vec<Span>,
    /// Token i is inside a span already.
    pub claimed: Vec<bool>,
    /// Flags that mark a word as ordinary language in this document's language.
    pub common_mask: u64,
    lowercase: bool,
}

impl<'a> Doc<'a> {
    pub fn new(
        text: &'a str,
        toks: &'a [Tok],
        flags: &'a [u64],
        lang: Lang,
        dict: &'a Dictionaries,
    ) -> Self {
        let common_mask = match lang {
            Lang::En => dict::COMMON_EN,
            Lang::Es => dict::COMMON_ES,
            Lang::De => dict::COMMON_DE,
        };
        Doc {
            text,
            toks,
            flags,
            lang,
            dict,
            spans: Vec::new(),
            claimed: vec![false; toks.len()],
            common_mask,
            lowercase: !text.chars().any(char::is_uppercase),
        }
    }

    #[inline]
    pub fn s(&self, i: usize) -> &'a str {
        &self.text[self.toks[i].range()]
    }

    #[inline]
    pub fn f(&self, i: usize) -> u64 {
        self.flags.get(i).copied().unwrap_or(0)
    }

    #[inline]
    pub fn has(&self, i: usize, flag: u64) -> bool {
        i < self.toks.len() && self.flags[i] & flag != 0
    }

    #[inline]
    pub fn is_punct(&self, i: usize, c: char) -> bool {
        i < self.toks.len() && self.toks[i].is_punct(c)
    }

    /// Ordinary word in this language (or a medical term).
    #[inline]
    pub fn common(&self, i: usize) -> bool {
        self.f(i) & (self.common_mask | dict::MEDICAL) != 0
    }

    /// Index of the first token starting at or after byte `b`.
    pub fn tok_at(&self, b: usize) -> usize {
        self.toks.partition_point(|t| (t.start as usize) < b)
    }

    /// Index one past the last token ending at or before byte `b`.
    pub fn tok_end(&self, b: usize) -> usize {
        self.toks.partition_point(|t| (t.end as usize) <= b)
    }

    /// The previous word token before `i` on the same line, skipping up to `skip` punctuation
    /// marks and the given filler words.
    pub fn prev_word(&self, i: usize, max_back: usize) -> Option<usize> {
        let mut j = i;
        let mut n = 0;
        while j > 0 && n < max_back {
            if self.toks[j].newline_before {
                return None;
            }
            j -= 1;
            n += 1;
            if self.toks[j].kind != Kind::Punct {
                return Some(j);
            }
        }
        None
    }

    /// True when the text has no capital letters at all (chat, transcripts).
    pub fn is_lowercase_doc(&self) -> bool {
        self.lowercase
    }

    /// Records a span over bytes `start..end` and claims its tokens.
    pub fn push(
        &mut self,
        start: usize,
        end: usize,
        category: Category,
        confidence: f32,
        recognizer: &'static str,
    ) {
        if start >= end {
            return;
        }
        let a = self.tok_at(start);
        let b = self.tok_end(end);
        for c in a..b.min(self.claimed.len()) {
            self.claimed[c] = true;
        }
        self.spans.push(Span {
            start,
            end,
            category,
            confidence,
            recognizer,
        });
    }

    /// Records a span over tokens `a..=b`.
    pub fn push_toks(
        &mut self,
        a: usize,
        b: usize,
        category: Category,
        confidence: f32,
        recognizer: &'static str,
    ) {
        let (s, e) = (self.toks[a].start as usize, self.toks[b].end as usize);
        self.push(s, e, category, confidence, recognizer);
    }

    pub fn any_claimed(&self, a: usize, b: usize) -> bool {
        self.claimed[a..=b.min(self.claimed.len().saturating_sub(1))]
            .iter()
            .any(|&c| c)
    }
}
