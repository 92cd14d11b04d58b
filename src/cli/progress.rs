//! A one-line progress display on stderr, shown only when stderr is a
//! terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::format::humanize;
use etcdsnap::{Phase, Progress};

/// Redraw interval.
const EVERY: Duration = Duration::from_millis(100);

struct State {
    read: Option<(u64, u64)>,
    hash: Option<(u64, u64)>,
    copy: Option<(u64, u64)>,
    other: Option<(Phase, u64, u64)>,
    /// Bytes received of the total announced, and when receiving began.
    receive: Option<(u64, u64, Instant)>,
    last: Option<Instant>,
    drawn: bool,
}

/// Renders [`Progress`] events; inert when stderr is not a terminal.
pub struct Bar {
    enabled: bool,
    state: Mutex<State>,
}

impl Bar {
    pub fn new() -> Bar {
        Bar {
            enabled: std::io::stderr().is_terminal(),
            state: Mutex::new(State {
                read: None,
                hash: None,
                copy: None,
                other: None,
                receive: None,
                last: None,
                drawn: false,
            }),
        }
    }

    pub fn update(&self, p: Progress) {
        // Once a signal is being handled, its message is the last line.
        if !self.enabled || super::interrupt::stopping() {
            return;
        }
        let Ok(mut s) = self.state.lock() else { return };
        match p.phase {
            Phase::Hash => s.hash = Some((p.done, p.total)),
            Phase::Copy => s.copy = Some((p.done, p.total)),
            Phase::Read => s.read = Some((p.done, p.total)),
            Phase::Receive => {
                let since = s.receive.map_or_else(Instant::now, |(_, _, t)| t);
                s.receive = Some((p.done, p.total, since));
            }
            other => s.other = Some((other, p.done, p.total)),
        }
        let finished = p.done >= p.total;
        if !finished && s.last.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        s.last = Some(Instant::now());
        let mut parts = Vec::new();
        let bytes = |(d, t): (u64, u64)| {
            format!(
                "{:>3}% ({} / {})",
                d.saturating_mul(100).checked_div(t).unwrap_or(100),
                humanize::bytes(d),
                humanize::bytes(t)
            )
        };
        if let Some(r) = s.read {
            parts.push(format!("read {}", bytes(r)));
        }
        if let Some((d, t, since)) = s.receive {
            let secs = since.elapsed().as_secs_f64();
            let rate = if secs > 0.0 {
                (d as f64 / secs) as u64
            } else {
                0
            };
            parts.push(format!(
                "receiving {}  {}/s",
                bytes((d, t)),
                humanize::bytes(rate)
            ));
        }
        if let Some(h) = s.hash {
            parts.push(format!("sha256 {}", bytes(h)));
        }
        if let Some(c) = s.copy {
            parts.push(format!("copy {}", bytes(c)));
        }
        if let Some((_, d, t)) = s.other {
            parts.push(format!("writing members {d}/{t}"));
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", parts.join("  "));
        let _ = err.flush();
        s.drawn = true;
    }

    /// Ends the line, if anything was drawn.
    pub fn finish(&self) {
        if let Ok(s) = self.state.lock()
            && s.drawn
        {
            let _ = writeln!(std::io::stderr());
        }
    }
}
