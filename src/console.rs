//! Writing to the terminal without dying of it: a closed or broken stdout/stderr (`| head`,
//! `2>&-`) loses the text, never the run (`print!` and `eprintln!` would panic).

use std::io::Write;

/// Writes `text` to stdout; a closed or broken stdout is ignored.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

/// Writes `line` and a newline to stderr; a closed or broken stderr is ignored.
pub fn err_line(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(line.as_bytes());
    let _ = e.write_all(b"\n");
}
