//! Run a child process with a timeout, capturing stdout and stderr; killed by PID on timeout.

use std::fmt;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What a finished (or timed-out and killed) command produced.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub argv: String,
    /// Exit status (`None` only if waiting failed).
    pub status: Option<ExitStatus>,
    /// Whether the timeout expired and the process was killed.
    pub timed_out: bool,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

/// How a reference tool reacted to an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit code 0.
    Ok,
    /// A clean error: non-zero exit, no Go panic or signal.
    Error,
    /// A Go panic, a fatal runtime error or death by a signal (SIGSEGV, SIGBUS ...).
    Panic,
    /// Still running when the timeout expired (killed).
    Hang,
}

impl CmdOutput {
    /// Exit code, if the process exited normally.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// Terminating signal, if any.
    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.and_then(|s| s.signal())
    }

    /// Exit code 0 and no timeout.
    pub fn success(&self) -> bool {
        !self.timed_out && self.code() == Some(0)
    }

    /// Whether stderr shows a Go panic / fatal runtime error, or a signal killed the process.
    pub fn panicked(&self) -> bool {
        self.signal().is_some()
            || self.stderr.contains("panic:")
            || self.stderr.contains("fatal error:")
            || self.stderr.contains("unexpected fault address")
            || self.stderr.contains("goroutine ")
    }

    /// Classifies the run as [`Outcome`].
    pub fn outcome(&self) -> Outcome {
        if self.timed_out {
            Outcome::Hang
        } else if self.panicked() {
            Outcome::Panic
        } else if self.success() {
            Outcome::Ok
        } else {
            Outcome::Error
        }
    }

    /// Panics with the full output unless the command succeeded; returns stdout.
    #[track_caller]
    pub fn expect_success(&self, what: &str) -> &str {
        assert!(self.success(), "{what} failed:\n{self}");
        &self.stdout
    }

    /// The first line of stderr that is not a log line, e.g. `Error: ...`.
    pub fn error_line(&self) -> Option<&str> {
        self.stderr
            .lines()
            .find(|l| l.starts_with("Error:") || l.starts_with("panic:"))
    }
}

impl fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.argv)?;
        match (self.timed_out, self.status) {
            (true, _) => writeln!(f, "status: killed after timeout ({:?})", self.elapsed)?,
            (false, Some(s)) => writeln!(f, "status: {s}")?,
            (false, None) => writeln!(f, "status: unknown")?,
        }
        writeln!(f, "--- stdout ---\n{}", tail(&self.stdout, 60))?;
        write!(f, "--- stderr ---\n{}", tail(&self.stderr, 60))
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// Renders a command line for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` (stdin closed) and waits at most `timeout`; on timeout the child is killed (by
/// its PID, SIGKILL) and reaped. Panics only if the program cannot be started at all.
pub fn run(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    run_with_input(cmd, None, timeout)
}

/// Like [`run`], with `input` written to the command's standard input (then closed) when given.
pub fn run_with_input(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> CmdOutput {
    let argv = describe(cmd);
    let start = Instant::now();
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{argv}`: {e}"));
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        use std::io::Write;
        let data = data.to_vec();
        // A thread, so that a child that does not read cannot block the timeout.
        thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let (status, timed_out) = wait_deadline(&mut child, timeout);
    CmdOutput {
        argv,
        status,
        timed_out,
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// Runs `cmd` on a new pseudo-terminal, its controlling terminal (through util-linux
/// `script(1)`), and types `typed` once `prompt` has appeared on the terminal: how a password
/// prompt that reads `/dev/tty` is driven. The environment set on `cmd` is passed on. Standard
/// output and standard error both arrive in `stdout`, with the terminal's `\r\n` line ends.
pub fn run_on_terminal(cmd: &Command, prompt: &str, typed: &str, timeout: Duration) -> CmdOutput {
    let argv = describe(cmd);
    let quote = |a: &std::ffi::OsStr| format!("'{}'", a.to_string_lossy().replace('\'', r"'\''"));
    let mut line = quote(cmd.get_program());
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut script = Command::new("script");
    script.args(["-q", "-e", "-c", &line, "/dev/null"]);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let start = Instant::now();
    let mut child = script
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start script(1) for `{argv}`: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let err = drain(child.stderr.take().expect("piped stderr"));
    // Type only once the prompt is out: typed-ahead input may be discarded when the program
    // switches echo off.
    let deadline = start + timeout;
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(prompt) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(b) => seen.extend(b),
            Err(_) => break, // the program ended or the time is up: no prompt
        }
    }
    if String::from_utf8_lossy(&seen).contains(prompt) {
        use std::io::Write;
        let _ = stdin.write_all(typed.as_bytes());
    }
    drop(stdin);
    let (status, timed_out) = wait_deadline(
        &mut child,
        deadline.saturating_duration_since(Instant::now()),
    );
    let _ = reader.join();
    seen.extend(rx.try_iter().flatten());
    CmdOutput {
        argv,
        status,
        timed_out,
        stdout: String::from_utf8_lossy(&seen).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        elapsed: start.elapsed(),
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Polls `child` until it exits or `timeout` passes; then kills and reaps it.
/// Returns the exit status and whether it was killed.
pub fn wait_deadline(child: &mut Child, timeout: Duration) -> (Option<ExitStatus>, bool) {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return (Some(s), false),
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Ok(None) => {
                let _ = child.kill();
                return (child.wait().ok(), true);
            }
            Err(_) => return (None, false),
        }
    }
}
