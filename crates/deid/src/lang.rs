//! A small language guess for reading numeric dates (m/d/y in English, d/m/y in Spanish and
//! German) when the caller does not name the language: common function words are counted in
//! the first few kilobytes of the document.

use phiguard_detect::Lang;

const EN: &[&str] = &[
    "the", "and", "of", "with", "was", "is", "for", "on", "to", "in", "he", "she", "his", "her",
    "patient", "no", "at", "by", "denies", "history",
];
const ES: &[&str] = &[
    "el", "la", "los", "las", "de", "del", "y", "con", "que", "en", "por", "se", "paciente", "una",
    "un", "para", "sin", "años", "presenta", "refiere",
];
const DE: &[&str] = &[
    "der",
    "die",
    "das",
    "und",
    "mit",
    "ist",
    "wurde",
    "nicht",
    "den",
    "dem",
    "des",
    "ein",
    "eine",
    "bei",
    "im",
    "zur",
    "vom",
    "patient",
    "patientin",
    "jahre",
];

/// Guesses the language of `text`; `None` when no function word decides it.
pub fn guess(text: &str) -> Option<Lang> {
    let mut end = text.len().min(4096);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut scores = [0u32; 3];
    for word in text[..end]
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
    {
        let lower = word.to_lowercase();
        for (i, list) in [EN, ES, DE].iter().enumerate() {
            if list.contains(&lower.as_str()) {
                scores[i] += 1;
            }
        }
    }
    let best = scores.iter().copied().max().unwrap_or(0);
    if best == 0 || scores.iter().filter(|&&s| s == best).count() > 1 {
        return None;
    }
    match scores.iter().position(|&s| s == best) {
        Some(0) => Some(Lang::En),
        Some(1) => Some(Lang::Es),
        Some(2) => Some(Lang::De),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_common_texts() {
        assert_eq!(
            guess("The patient was seen on 03/04/2021 with a history of asthma."),
            Some(Lang::En)
        );
        assert_eq!(
            guess("Paciente de 45 años que refiere dolor desde el 03/04/2021."),
            Some(Lang::Es)
        );
        assert_eq!(
            guess("Die Patientin wurde am 03.04.2021 mit Fieber aufgenommen."),
            Some(Lang::De)
        );
        assert_eq!(guess("03/04/2021"), None);
        assert_eq!(guess(""), None);
    }
}
