//! A shard's OS thread, for both protocols (CWMP's `shard`, USP's `mtp::shards`): named
//! `shard-N`, one current-thread tokio runtime, and a panic caught and turned into the line the
//! run reports and fails with ([`panic_line`]).

use std::any::Any;

/// Starts shard `id` on its own thread, running `body` with the thread's current-thread tokio
/// runtime inside a `shard` tracing span. A panic in `body` (or a runtime that cannot start) is
/// caught and its message handed to `on_panic`, on the shard's thread.
///
/// # Errors
/// The thread could not be created.
pub fn spawn_shard<B, P>(id: u16, body: B, on_panic: P) -> std::io::Result<std::thread::JoinHandle<()>>
where
    B: FnOnce(&tokio::runtime::Runtime) + Send + 'static,
    P: FnOnce(String) + Send + 'static,
{
    std::thread::Builder::new().name(format!("shard-{id}")).spawn(move || {
        let run = std::panic::AssertUnwindSafe(|| {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => panic!("cannot start the shard's runtime: {e}"),
            };
            let span = tracing::info_span!("shard", id);
            let _g = span.enter();
            body(&rt);
        });
        if let Err(payload) = std::panic::catch_unwind(run) {
            on_panic(panic_message(payload.as_ref()));
        }
    })
}

/// How long past `--drain-timeout` a stopping run waits for its shards to notice the stop and
/// report their end; a shard still running then is left behind (the process exits anyway).
pub const STOP_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Joins the shard threads that have ended; the others are left behind.
pub fn join_finished(threads: Vec<std::thread::JoinHandle<()>>) {
    for t in threads {
        if t.is_finished() {
            let _ = t.join();
        }
    }
}

/// The message a panic carried (`panic!` with a literal or a formatted string).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message")
        .to_string()
}

/// How a run names a shard that died: `shard N panicked: message` (the log, the report's
/// `panics`).
pub fn panic_line(shard: u16, message: &str) -> String {
    format!("shard {shard} panicked: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_caught_and_named() {
        let (tx, rx) = std::sync::mpsc::channel();
        let t = spawn_shard(
            3,
            |rt| rt.block_on(async { panic!("boom {}", 7) }),
            move |m| {
                let _ = tx.send(panic_line(3, &m));
            },
        )
        .unwrap();
        assert!(t.join().is_ok(), "the thread itself ends normally");
        assert_eq!(rx.recv().unwrap(), "shard 3 panicked: boom 7");
    }
}
