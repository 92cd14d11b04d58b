//! SIGINT, SIGTERM, SIGHUP (what a dropped SSH session sends) and SIGQUIT
//! for every command that stages output: what it staged is removed, one
//! line on stderr says what that was, and the exit code is 128 + the
//! signal, as if the signal had killed the process.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;

use super::{EXIT_ERROR, Failure};

/// The signals a staging command cleans up on.
pub const SIGNALS: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// Set once the signal thread has begun to remove what was staged: from
/// then on it owns the exit (see [`park_if_stopping`]).
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Whether the signal thread is removing what was staged and will exit.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Called before the command's outcome is printed: if the signal thread
/// is stopping the process, the outcome (likely an error caused by the
/// removal) is not reported; this thread waits for the exit instead.
pub fn park_if_stopping() {
    while stopping() {
        std::thread::park();
    }
}

/// How a command stops on a signal.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// The command watches the returned flag, removes what it wrote
    /// itself and returns an error that says so (a save: an upload must be
    /// aborted on the server, which only the save can do). A second
    /// signal is handled as [`Mode::Immediate`].
    Cooperative(&'static str),
    /// Everything staged (`etcdsnap::cleanup`) is removed by the signal
    /// thread, which then exits; the text says what did not happen
    /// (`nothing restored`).
    Immediate(&'static str),
}

/// Installs the handlers for the rest of the process and returns the flag
/// that holds the number of the first signal received (0 before).
pub fn install(mode: Mode) -> Result<Arc<AtomicUsize>, Failure> {
    let flag = Arc::new(AtomicUsize::new(0));
    let mut signals = Signals::new(SIGNALS)
        .map_err(|e| Failure::new(EXIT_ERROR, format!("signal handler: {e}")))?;
    let seen = Arc::clone(&flag);
    std::thread::Builder::new()
        .name("etcdsnap-signals".into())
        .spawn(move || {
            let mut first = true;
            for sig in signals.forever() {
                let value = usize::try_from(sig).unwrap_or(1);
                let _ = seen.compare_exchange(0, value, Ordering::SeqCst, Ordering::SeqCst);
                let what = match mode {
                    Mode::Cooperative(_) if first => {
                        first = false;
                        continue;
                    }
                    Mode::Cooperative(what) | Mode::Immediate(what) => what,
                };
                stop(sig, what);
            }
        })
        .map_err(|e| Failure::new(EXIT_ERROR, format!("signal thread: {e}")))?;
    Ok(flag)
}

/// Removes what was staged, says so, exits with 128 + `sig`.
fn stop(sig: i32, what: &str) -> ! {
    STOPPING.store(true, Ordering::SeqCst);
    let removed = etcdsnap::cleanup::abandon();
    let name = etcdsnap::cleanup::signal_name(usize::try_from(sig).unwrap_or(0));
    let detail = if removed.is_empty() {
        "nothing to remove".to_string()
    } else {
        let names: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
        format!("removed {}", names.join(", "))
    };
    // A progress line may be on the terminal.
    let clear = if std::io::stderr().is_terminal() {
        "\r\x1b[2K"
    } else {
        ""
    };
    eprintln!("{clear}Error: interrupted by {name}, {what} ({detail})");
    std::process::exit(128 + sig);
}
