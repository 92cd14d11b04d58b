//! The `etcdsnap` command: argument parsing and printing over the
//! `etcdsnap` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
