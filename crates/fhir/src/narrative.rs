//! Narrative XHTML (`text.div`): the detector runs on text nodes only, so the markup stays valid.
//!
//! Tags are rebuilt from their element names; attributes are dropped (an `href`, `title` or
//! `alt` can hold identifiers) except `xmlns`. Comments, processing instructions and CDATA are
//! dropped. Text nodes are unescaped, de-identified, and escaped again. A div that cannot be
//! read as tags and text is replaced by [`PLACEHOLDER`].

/// What replaces a narrative that cannot be processed safely.
pub const PLACEHOLDER: &str =
    r#"<div xmlns="http://www.w3.org/1999/xhtml">[narrative removed]</div>"#;

/// Rewrites `div`, passing every non-blank text node through `text` (which returns the new
/// text, or `None` to keep it). `Ok(None)` when nothing changed.
pub fn rewrite<E>(
    div: &str,
    mut text: impl FnMut(&str) -> Result<Option<String>, E>,
) -> Result<Option<String>, E> {
    let mut out = String::with_capacity(div.len());
    let mut rest = div;
    let mut changed = false;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('<') {
            let (end, skip) = if after.starts_with("!--") {
                match after.find("-->") {
                    Some(i) => (i + 3, true),
                    None => return Ok(Some(PLACEHOLDER.to_string())),
                }
            } else if after.starts_with('!') || after.starts_with('?') {
                match after.find('>') {
                    Some(i) => (i + 1, true),
                    None => return Ok(Some(PLACEHOLDER.to_string())),
                }
            } else {
                match tag_end(after) {
                    Some(i) => (i + 1, false),
                    None => return Ok(Some(PLACEHOLDER.to_string())),
                }
            };
            let raw = &rest[..end + 1];
            if skip {
                changed = true;
            } else {
                match rebuild_tag(&after[..end - 1]) {
                    Some(t) => {
                        changed |= t != raw;
                        out.push_str(&t);
                    }
                    None => return Ok(Some(PLACEHOLDER.to_string())),
                }
            }
            rest = &rest[end + 1..];
        } else {
            let i = rest.find('<').unwrap_or(rest.len());
            let node = &rest[..i];
            rest = &rest[i..];
            if node.trim().is_empty() {
                out.push_str(node);
                continue;
            }
            let plain = unescape(node);
            match text(&plain)? {
                Some(new) => {
                    changed = true;
                    escape_into(&new, &mut out);
                }
                None => out.push_str(node),
            }
        }
    }
    Ok(changed.then_some(out))
}

/// The index of the `>` closing a tag, skipping quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

/// `inner` is what is between `<` and `>`.
fn rebuild_tag(inner: &str) -> Option<String> {
    let (closing, body) = match inner.strip_prefix('/') {
        Some(b) => (true, b),
        None => (false, inner),
    };
    let (body, self_closing) = match body.trim_end().strip_suffix('/') {
        Some(b) => (b, true),
        None => (body, false),
    };
    let name_end = body
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(body.len());
    let name = &body[..name_end];
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.'))
    {
        return None;
    }
    let mut t = String::with_capacity(name.len() + 8);
    t.push('<');
    if closing {
        t.push('/');
    }
    t.push_str(name);
    if !closing && let Some(ns) = xmlns(&body[name_end..]) {
        t.push_str(" xmlns=\"");
        t.push_str(ns);
        t.push('"');
    }
    if self_closing {
        t.push('/');
    }
    t.push('>');
    Some(t)
}

/// The XHTML namespace when the attributes declare it (no other value is copied).
fn xmlns(attrs: &str) -> Option<&'static str> {
    const NS: &str = "http://www.w3.org/1999/xhtml";
    let a = attrs.trim_start();
    let v = a
        .strip_prefix("xmlns")?
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let v = v.strip_prefix(['"', '\''])?;
    v.starts_with(NS).then_some(NS)
}

/// Decodes the XML entities and character references; unknown ones are kept as written.
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.bytes().take(12).position(|b| b == b';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..end];
        let c = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => ent
                .strip_prefix("#x")
                .or_else(|| ent.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(s: &str) -> Result<Option<String>, ()> {
        Ok(Some(s.to_uppercase()))
    }

    #[test]
    fn text_nodes_only_and_attributes_dropped() {
        let div = r#"<div xmlns="http://www.w3.org/1999/xhtml">a &amp; b<br/><a href="http://x/Patient/1" title='t'>link</a><!-- c --></div>"#;
        let out = rewrite(div, upper).unwrap().unwrap();
        assert_eq!(
            out,
            r#"<div xmlns="http://www.w3.org/1999/xhtml">A &amp; B<br/><a>LINK</a></div>"#
        );
        let same = r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div>"#;
        assert_eq!(rewrite(same, |_| Ok::<_, ()>(None)).unwrap(), None);
        assert_eq!(
            rewrite("<div>unterminated <b", upper).unwrap().as_deref(),
            Some(PLACEHOLDER)
        );
        assert_eq!(unescape("&lt;&#65;&#x42;&bogus;&"), "<AB&bogus;&");
    }
}
