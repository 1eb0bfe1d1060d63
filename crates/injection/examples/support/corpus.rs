//! Reading the corpus (JSON lines: `{"id","text","label":"injection"|"benign","source"}`).

use std::path::Path;

pub struct Item {
    pub text: String,
    pub injection: bool,
    pub source: String,
}

pub fn load(path: &Path) -> Result<Vec<Item>, String> {
    let raw = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in raw.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let text = v["text"]
            .as_str()
            .ok_or(format!("line {}: no text", n + 1))?;
        let injection = match v["label"].as_str() {
            Some("injection") => true,
            Some("benign") => false,
            _ => return Err(format!("line {}: label must be injection or benign", n + 1)),
        };
        let source = v["source"].as_str().unwrap_or("unknown");
        // Group by dataset (the part before ':'), e.g. leolee99/NotInject.
        let source = source.split(':').next().unwrap_or(source).to_string();
        out.push(Item {
            text: text.to_string(),
            injection,
            source,
        });
    }
    Ok(out)
}
