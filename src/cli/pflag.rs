//! The command-line rules of etcdutl and etcdctl (Go's spf13/pflag under
//! cobra), on top of clap:
//!
//! * a repeated flag takes its last value (`args_override_self`);
//! * a string flag takes the next argument whatever it looks like
//!   (`--name --x` names the member `--x`);
//! * booleans take `--flag`, `--flag=V` with V one of Go's
//!   `strconv.ParseBool` spellings, never a separate argument;
//! * integers are Go's `strconv.ParseUint(s, 0, 64)`: `0x`, `0o`, `0b`
//!   prefixes, a leading `0` for octal, `_` between digits;
//! * an unknown flag or a bad value prints `Error: <pflag's message>`, the
//!   command's usage and the error again on stderr, and exits 1 (etcdutl's
//!   own checks keep their exit code 128);
//! * subcommands may be abbreviated to a unique prefix (cobra's
//!   `EnablePrefixMatching`, set by etcdutl and etcdctl).
//!
//! The messages are pflag's (v1.0.5, etcd 3.5; unchanged in v1.0.10, etcd
//! 3.6 and 3.7) and Go's strconv's.

use std::ffi::OsStr;

use clap::builder::TypedValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, Command};

/// Exit code of a flag pflag refuses (cobra's error path: 1).
pub const EXIT_FLAG: u8 = 1;

/// Go's `strconv.ParseBool`, with its error text.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            quote(s)
        )),
    }
}

/// Why Go's `strconv.ParseUint` refused a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumError {
    Syntax,
    Range,
}

/// The digits of `s` as Go's `strconv.ParseUint(s, 0, 64)` reads them:
/// `0x`, `0o`, `0b` prefixes, a leading `0` for octal, `_` between digits.
fn uint_base0(s: &str) -> Result<u64, NumError> {
    let lower: Vec<u8> = s.bytes().map(|b| b.to_ascii_lowercase()).collect();
    let (base, digits): (u32, &[u8]) = match lower.as_slice() {
        [b'0', b'x', rest @ ..] => (16, rest),
        [b'0', b'o', rest @ ..] => (8, rest),
        [b'0', b'b', rest @ ..] => (2, rest),
        [b'0', rest @ ..] if !rest.is_empty() => (8, rest),
        other => (10, other),
    };
    if digits.is_empty() {
        return Err(NumError::Syntax);
    }
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        if c == b'_' {
            underscores = true;
            continue;
        }
        let d = match (c as char).to_digit(36) {
            Some(d) if d < base => u64::from(d),
            _ => return Err(NumError::Syntax),
        };
        // Go stops at the first overflow, before looking further.
        n = n
            .checked_mul(u64::from(base))
            .and_then(|m| m.checked_add(d))
            .ok_or(NumError::Range)?;
    }
    // Go checks where the underscores are once the digits have parsed.
    if underscores && !underscore_ok(s) {
        return Err(NumError::Syntax);
    }
    Ok(n)
}

/// Go's `*strconv.NumError` text: `strconv.F: parsing "s": reason`.
fn num_error(func: &str, s: &str, e: NumError) -> String {
    let why = match e {
        NumError::Syntax => "invalid syntax",
        NumError::Range => "value out of range",
    };
    format!("strconv.{func}: parsing {}: {why}", quote(s))
}

/// Go's `strconv.ParseUint(s, 0, 64)` (what pflag's `Uint64Var` uses), with
/// its error texts.
pub fn parse_uint64(s: &str) -> Result<u64, String> {
    uint_base0(s).map_err(|e| num_error("ParseUint", s, e))
}

/// Go's `strconv.ParseInt(s, 0, 64)` (what pflag's `Int64Var` and `IntVar`
/// on a 64-bit machine use), with its error texts: an optional sign, then
/// [`parse_uint64`]'s rules.
pub fn parse_int64(s: &str) -> Result<i64, String> {
    let err = |e| num_error("ParseInt", s, e);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or_default()),
        Some(b'+') => (false, s.get(1..).unwrap_or_default()),
        _ => (false, s),
    };
    if s.is_empty() {
        return Err(err(NumError::Syntax));
    }
    let n = uint_base0(digits).map_err(err)?;
    // i64::MIN's magnitude is one more than i64::MAX's.
    let limit = 1u64 << 63;
    match (negative, n) {
        (false, n) if n < limit => Ok(n as i64),
        (true, n) if n <= limit => Ok((n as i64).wrapping_neg()),
        _ => Err(err(NumError::Range)),
    }
}

/// Go's `underscoreOK`: `_` only between digits, or between a base prefix
/// and a digit.
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    // 'x': after a digit or a base prefix; '_': after an underscore;
    // '!': anything else.
    let mut saw = b'^';
    let mut i = 0;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'x' | b'o' | b'b') {
        i = 2;
        saw = b'0';
    }
    let hex = b.len() >= 2 && b[1].eq_ignore_ascii_case(&b'x');
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `time.ParseDuration` (what pflag's `DurationVar` uses), with its
/// error texts; negative durations are accepted by Go and read as zero.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let invalid = || format!("time: invalid duration {}", quote(s));
    let rest = s.strip_prefix(['-', '+']).unwrap_or(s);
    let negative = s.starts_with('-');
    if rest == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut nanos: u128 = 0;
    let mut rest = rest;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_end);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let end = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(end)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let scale: u128 = match unit {
            "" => return Err(format!("time: missing unit in duration {}", quote(s))),
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            u => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(u),
                    quote(s)
                ));
            }
        };
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| invalid())?
        };
        let mut part = whole.checked_mul(scale).ok_or_else(invalid)?;
        let mut f_scale = scale;
        for d in frac.bytes() {
            f_scale /= 10;
            part = part
                .checked_add(u128::from(d - b'0') * f_scale)
                .ok_or_else(invalid)?;
        }
        nanos = nanos.checked_add(part).ok_or_else(invalid)?;
        if nanos > i64::MAX as u128 {
            return Err(invalid());
        }
        rest = next;
    }
    if negative {
        return Ok(std::time::Duration::ZERO);
    }
    Ok(std::time::Duration::from_nanos(nanos as u64))
}

/// Go's `%q` of a string (`strconv.Quote`), DEL as `\x7f` as Go 1.19 and
/// later write it.
pub fn quote(s: &str) -> String {
    use etcdsnap::internal::go::{GoRelease, quote};
    quote::quote(s.as_bytes(), GoRelease::GO1_19)
}

/// How pflag names a flag in its messages: `--name`, or `-w, --write-out`
/// when it has a shorthand.
pub fn flag_name(arg: &Arg) -> String {
    let long = arg.get_long().unwrap_or_else(|| arg.get_id().as_str());
    match arg.get_short() {
        Some(c) => format!("-{c}, --{long}"),
        None => format!("--{long}"),
    }
}

/// pflag's message for a value a flag's parser refused.
pub fn invalid_argument(value: &str, arg: Option<&Arg>, cause: &str) -> String {
    let name = arg.map(flag_name).unwrap_or_default();
    format!(
        "invalid argument {} for {} flag: {cause}",
        quote(value),
        quote(&name)
    )
}

fn value_error(cmd: &Command, arg: Option<&Arg>, value: &OsStr, cause: &str) -> clap::Error {
    let v = value.to_string_lossy();
    let mut e = clap::Error::new(ErrorKind::ValueValidation).with_cmd(cmd);
    e.insert(
        ContextKind::Custom,
        ContextValue::String(invalid_argument(&v, arg, cause)),
    );
    e
}

/// Declares a clap value parser over one of the Go parsing functions above, so that a bad
/// value gets pflag's `invalid argument` error. `=> Type` keeps the parsed value; `=> text`
/// keeps the text itself once it parses (read later, e.g. merged with `ETCDCTL_*`).
macro_rules! go_value_parser {
    ($(#[$doc:meta])* $name:ident => text, $parse:path) => {
        go_value_parser!(@impl $(#[$doc])* $name, String, |v: &str| $parse(v).map(|_| v.to_owned()));
    };
    ($(#[$doc:meta])* $name:ident => $ty:ty, $parse:path) => {
        go_value_parser!(@impl $(#[$doc])* $name, $ty, $parse);
    };
    (@impl $(#[$doc:meta])* $name:ident, $ty:ty, $parse:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name;

        impl TypedValueParser for $name {
            type Value = $ty;

            fn parse_ref(
                &self,
                cmd: &Command,
                arg: Option<&Arg>,
                value: &OsStr,
            ) -> Result<$ty, clap::Error> {
                ($parse)(&*value.to_string_lossy()).map_err(|e| value_error(cmd, arg, value, &e))
            }
        }
    };
}

go_value_parser!(
    /// A boolean flag's value: `strconv.ParseBool`.
    GoBool => bool, parse_bool
);
go_value_parser!(
    /// An unsigned integer flag's value: `strconv.ParseUint(s, 0, 64)`.
    GoUint64 => u64, parse_uint64
);
go_value_parser!(
    /// A signed integer flag's value: `strconv.ParseInt(s, 0, 64)`.
    GoInt64 => i64, parse_int64
);
go_value_parser!(
    /// A duration flag's value: `time.ParseDuration`.
    GoDuration => std::time::Duration, parse_duration
);
go_value_parser!(
    /// A boolean flag kept as text, checked with `strconv.ParseBool` as it is parsed.
    GoBoolText => text, parse_bool
);
go_value_parser!(
    /// A duration flag kept as text, checked with `time.ParseDuration` as it is parsed.
    GoDurationText => text, parse_duration
);

/// One flag as etcdctl's usage lists it: `  -w, --write-out="simple"`,
/// `      --limit=0`, `      --prefix[=false]` (pflag's `Flag` printed by
/// etcdctl's own `flagUsages`: strings quoted, booleans in brackets).
fn etcdctl_flag_cell(arg: &Arg, help_default: Option<&str>) -> String {
    let long = arg.get_long().unwrap_or_else(|| arg.get_id().as_str());
    let mut cell = match arg.get_short() {
        Some(c) => format!("  -{c}, --{long}"),
        None => format!("      --{long}"),
    };
    let default = arg
        .get_default_values()
        .first()
        .map(|v| v.to_string_lossy().into_owned())
        .or_else(|| help_default.map(str::to_owned));
    let optional_value =
        arg.is_require_equals_set() && arg.get_num_args().is_some_and(|n| n.min_values() == 0);
    let value_name = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    if optional_value {
        cell.push_str(&format!("[={}]", default.as_deref().unwrap_or("false")));
        return cell;
    }
    let numeric = |v: &str| parse_int64(v).is_ok() || parse_duration(v).is_ok();
    match default {
        Some(d) if numeric(&d) && !d.is_empty() => cell.push_str(&format!("={d}")),
        Some(d) => cell.push_str(&format!("={}", quote(&d))),
        None if value_name == "DURATION" => cell.push_str("=0s"),
        None if value_name == "N" || value_name == "BYTES" => cell.push_str("=0"),
        None => cell.push_str("=\"\""),
    }
    cell
}

/// Go's `text/tabwriter` as etcdctl sets it up (minwidth 1, tabwidth 8,
/// padding 1, tabs as padding) over a block of `cell\ttext` lines: each
/// cell is padded with tabs to the same multiple of 8 past the widest.
fn tab_block(rows: &[(String, String)]) -> String {
    let widest = rows
        .iter()
        .map(|(c, _)| c.chars().count())
        .max()
        .unwrap_or(0);
    let column = (widest + 1).div_ceil(8) * 8;
    let mut out = String::new();
    for (cell, text) in rows {
        let gap = column.saturating_sub(cell.chars().count());
        out.push_str(cell);
        out.push_str(&"\t".repeat(gap.div_ceil(8)));
        out.push_str(text);
        out.push('\n');
    }
    out
}

/// etcdctl's usage of a command, printed on stdout for `--help` and after a
/// flag pflag refuses: NAME, USAGE, OPTIONS (the command's own flags and
/// `-h, --help`), GLOBAL OPTIONS, flags sorted by name as pflag visits
/// them. `name` is the command's name, `short` its one-line description,
/// `use_line` the whole usage line.
pub fn etcdctl_usage(cmd: &Command, name: &str, short: &str, use_line: &str) -> String {
    // A flag whose default clap does not hold (it is applied later, e.g.
    // after ETCDCTL_* variables) says it in its help: `[default: 2s]`.
    let help_of = |a: &Arg| {
        let h = a
            .get_help()
            .map(|h| h.to_string().lines().next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        match h
            .strip_suffix(']')
            .and_then(|x| x.rsplit_once(" [default: "))
        {
            Some((text, d)) => (text.to_owned(), Some(d.to_owned())),
            None => (h, None),
        }
    };
    let mut local = Vec::new();
    let mut global = Vec::new();
    for arg in cmd.get_arguments() {
        if arg.is_positional() || arg.is_hide_set() || arg.get_id() == "version" {
            continue;
        }
        let long = arg.get_long().unwrap_or_default().to_owned();
        let row = if arg.get_id() == "help" {
            (
                long,
                "  -h, --help[=false]".to_owned(),
                format!("help for {name}"),
            )
        } else {
            let (help, default) = help_of(arg);
            (long, etcdctl_flag_cell(arg, default.as_deref()), help)
        };
        if arg.is_global_set() {
            global.push(row);
        } else {
            local.push(row);
        }
    }
    local.sort();
    global.sort();
    let rows = |v: Vec<(String, String, String)>| -> Vec<(String, String)> {
        v.into_iter().map(|(_, c, t)| (c, t)).collect()
    };
    let mut out = format!("NAME:\n\t{name} - {short}\n\nUSAGE:\n\t{use_line}\n\n");
    out.push_str("OPTIONS:\n");
    out.push_str(&tab_block(&rows(local)));
    out.push_str("\nGLOBAL OPTIONS:\n");
    out.push_str(&tab_block(&rows(global)));
    out.push('\n');
    out
}

/// What to print for a command line clap refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Help or version asked for: print this on stdout, exit 0.
    Help(String),
    /// pflag's error: `Error: msg`, the usage, `Error: msg`; exit 1.
    Flag(String),
    /// cobra's unknown command: `Error: msg` and a hint; exit 1.
    Command(String),
    /// One of etcdutl's own checks: `Error: msg`, exit 128.
    BadArgs(String),
}

fn context_str(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(" ")),
        _ => None,
    }
}

/// The flag part of a clap argument display (`--name <NAME>` -> `--name`).
fn flag_of(display: &str) -> &str {
    display.split([' ', '=', '[']).next().unwrap_or(display)
}

/// Maps clap's refusal of a command line to what etcdutl prints.
/// `command_path` is the refused (sub)command's path with the program name
/// (`etcdsnap snapshot restore`), for messages.
/// `args` is the command line, for the whole group of shorthands an
/// unknown one came in (clap names only the letter).
pub fn refusal(e: &clap::Error, command_path: &str, args: &[String]) -> Refusal {
    let invalid = context_str(e, ContextKind::InvalidArg).unwrap_or_default();
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => Refusal::Help(e.to_string()),
        ErrorKind::ValueValidation => match context_str(e, ContextKind::Custom) {
            Some(msg) => Refusal::Flag(msg),
            None => Refusal::Flag(first_line(e)),
        },
        ErrorKind::UnknownArgument if invalid.starts_with("--") => {
            let name = &invalid[2..];
            if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
                Refusal::Flag(format!("bad flag syntax: {invalid}"))
            } else {
                Refusal::Flag(format!("unknown flag: --{}", flag_of(name)))
            }
        }
        ErrorKind::UnknownArgument if invalid.starts_with('-') && invalid.len() > 1 => {
            let c = invalid[1..].chars().next().unwrap_or('-');
            let group = args
                .iter()
                .find(|a| !a.starts_with("--") && a.starts_with('-') && a[1..].contains(c))
                .map_or(&invalid[1..], |a| &a[1..]);
            // pflag names the group from the unknown letter on.
            let shorts = group.find(c).map_or(group, |i| &group[i..]);
            Refusal::Flag(format!("unknown shorthand flag: '{c}' in -{shorts}"))
        }
        ErrorKind::InvalidSubcommand | ErrorKind::UnknownArgument => {
            let what = context_str(e, ContextKind::InvalidSubcommand).unwrap_or(invalid);
            Refusal::Command(format!(
                "unknown command {} for {}",
                quote(&what),
                quote(command_path)
            ))
        }
        ErrorKind::InvalidValue | ErrorKind::NoEquals if !invalid.is_empty() => {
            let flag = flag_of(&invalid);
            match context_str(e, ContextKind::InvalidValue) {
                Some(v) if !v.is_empty() => Refusal::Flag(first_line(e)),
                _ => Refusal::Flag(format!("flag needs an argument: {flag}")),
            }
        }
        ErrorKind::MissingRequiredArgument if invalid.starts_with('<') => {
            // etcdutl's words: the command path without the program name.
            let sub = command_path
                .split_once(' ')
                .map_or(command_path, |(_, s)| s);
            // etcdctl words its save its own way.
            if sub == "snapshot save" {
                Refusal::BadArgs(super::save::SAVE_ARGS.into())
            } else {
                Refusal::BadArgs(format!("{sub} requires exactly one argument"))
            }
        }
        ErrorKind::MissingRequiredArgument => {
            Refusal::BadArgs(format!("{} also needs {}", command_path, flag_of(&invalid)))
        }
        ErrorKind::ArgumentConflict => {
            let prior = context_str(e, ContextKind::PriorArg).unwrap_or_default();
            Refusal::BadArgs(format!(
                "{} cannot be used with {}",
                flag_of(&invalid),
                flag_of(&prior)
            ))
        }
        _ => Refusal::Flag(first_line(e)),
    }
}

/// clap's own message, without its `error: ` prefix, first line only.
fn first_line(e: &clap::Error) -> String {
    let s = e.to_string();
    let line = s.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_are_go_parse_bool() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["", "yes", "tRUE", "2", " true"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_bool("abc"),
            Err("strconv.ParseBool: parsing \"abc\": invalid syntax".into())
        );
    }

    #[test]
    fn uints_are_go_parse_uint_base_0() {
        for (s, v) in [
            ("0", 0),
            ("7", 7),
            ("0x1F", 31),
            ("0X1f", 31),
            ("0o17", 15),
            ("017", 15),
            ("0b101", 5),
            ("1_000", 1000),
            ("0x_1f", 31),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_uint64(s), Ok(v), "{s}");
        }
        for s in [
            "", "abc", "-1", "+1", "0x", "08", "1__0", "_1", "1_", "0b2", " 1",
        ] {
            assert_eq!(
                parse_uint64(s),
                Err(format!(
                    "strconv.ParseUint: parsing {}: invalid syntax",
                    quote(s)
                )),
                "{s:?}"
            );
        }
        assert_eq!(
            parse_uint64("18446744073709551616"),
            Err("strconv.ParseUint: parsing \"18446744073709551616\": value out of range".into())
        );
    }

    #[test]
    fn ints_are_go_parse_int_base_0() {
        for (s, v) in [
            ("0", 0),
            ("0100", 64),
            ("010", 8),
            ("-0x10", -16),
            ("+0b11", 3),
            ("-1", -1),
            ("1_0", 10),
            ("-0o17", -15),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(parse_int64(s), Ok(v), "{s}");
        }
        for s in ["", "-", "+", "abc", "--1", "08", "1__0", "- 1", "0x"] {
            assert_eq!(
                parse_int64(s),
                Err(format!(
                    "strconv.ParseInt: parsing {}: invalid syntax",
                    quote(s)
                )),
                "{s:?}"
            );
        }
        for s in [
            "9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
        ] {
            assert_eq!(
                parse_int64(s),
                Err(format!(
                    "strconv.ParseInt: parsing {}: value out of range",
                    quote(s)
                )),
                "{s:?}"
            );
        }
    }

    #[test]
    fn durations_are_go_parse_duration() {
        use std::time::Duration;
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("-1s"), Ok(Duration::ZERO));
        assert_eq!(
            parse_duration("xx"),
            Err("time: invalid duration \"xx\"".into())
        );
        assert_eq!(
            parse_duration("3"),
            Err("time: missing unit in duration \"3\"".into())
        );
        assert_eq!(
            parse_duration("3x"),
            Err("time: unknown unit \"x\" in duration \"3x\"".into())
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration(".s").is_err());
    }

    #[test]
    fn duration_fraction_overflow_is_an_invalid_duration() {
        // The whole part times the unit fits in u128; adding the fraction
        // does not. Go rejects it (out of int64 range) as invalid.
        let s = "340282366920938463463374607431768211.999us";
        assert_eq!(
            parse_duration(s),
            Err(format!("time: invalid duration \"{s}\""))
        );
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("a\"b\\c\n\x01\x7fé"), "\"a\\\"b\\\\c\\n\\x01\\x7fé\"");
    }
}
