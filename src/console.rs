//! Lines for the user on stdout and stderr that a closed stream or a broken pipe cannot turn into
//! a panic (`cpe-sim … 2>&-`, `cpe-sim … | head -1`): `print!` and `eprintln!` panic when a write
//! fails, these do not.
//!
//! Rust ignores SIGPIPE, so a write to a pipe whose reader left returns EPIPE; that and EBADF are
//! a reader that no longer listens, not a failure of the run. Logging goes through tracing, whose
//! writer already drops errors. Called by `main.rs` and `the engine's progress line`.

use std::io::{self, Write};

/// Reopens stdin, stdout and stderr on `/dev/null` where they are closed.
///
/// With a closed stderr the next socket or file the process opens would get descriptor 2, and
/// every log line would be written into it (an ACS connection, a report file). Call this first
/// thing in `main`. Does nothing where the descriptors are open or `/dev/null` cannot be opened.
pub fn guard_std_fds() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only reads the descriptor's flags; no memory is passed.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
        if closed {
            // SAFETY: the path is a NUL-terminated literal; open returns the lowest free
            // descriptor, which is `fd` because the lower ones are open (checked in order).
            // The descriptor is kept open for the life of the process on purpose.
            unsafe {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
    }
}

/// Whether a write error only means that nobody reads the stream any more.
fn reader_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe || e.raw_os_error() == Some(libc::EBADF)
}

/// Writes `text` to stdout as is (no newline added) and flushes it.
///
/// # Errors
/// Other write errors than a closed stdout or a broken pipe (e.g. a full disk behind `>`);
/// those two are `Ok`, the text is dropped.
pub fn out(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if !reader_gone(&e) => Err(e),
        _ => Ok(()),
    }
}

/// Writes `line` and a newline to stderr, dropping every error: stderr is where errors would go.
pub fn err_line(line: &str) {
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_all(line.as_bytes()).and_then(|()| stderr.write_all(b"\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_reader_is_not_an_error() {
        assert!(reader_gone(&io::Error::from(io::ErrorKind::BrokenPipe)));
        assert!(reader_gone(&io::Error::from_raw_os_error(libc::EBADF)));
        assert!(!reader_gone(&io::Error::from_raw_os_error(libc::ENOSPC)));
    }
}
