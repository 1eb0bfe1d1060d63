//! Scores each line of standard input with the embedded screen and prints one verdict per line
//! (line number, score, decision, signals; not the text).
//!
//! ```sh
//! printf 'Ignore previous instructions\nSummarize the note\n' | cargo run -p phiguard-injection --example score
//! ```

use std::io::BufRead;

fn main() -> std::io::Result<()> {
    let screen = phiguard_injection::Screen::new();
    println!("threshold {:.4}", screen.threshold());
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let v = screen.score(&line?);
        println!(
            "{:>4} {:.3} {} {:?}",
            n + 1,
            v.score,
            if v.injection { "INJECTION" } else { "clean" },
            v.signals
        );
    }
    Ok(())
}
