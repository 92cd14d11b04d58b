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

/// Go's `strconv.ParseUint(s, 0, 64)` (what pflag's `Uint64Var` uses), with
/// its error texts.
pub fn parse_uint64(s: &str) -> Result<u64, String> {
    let syntax = || format!("strconv.ParseUint: parsing {}: invalid syntax", quote(s));
    let range = || {
        format!(
            "strconv.ParseUint: parsing {}: value out of range",
            quote(s)
        )
    };
    let lower: Vec<u8> = s.bytes().map(|b| b.to_ascii_lowercase()).collect();
    let (base, digits): (u32, &[u8]) = match lower.as_slice() {
        [b'0', b'x', rest @ ..] => (16, rest),
        [b'0', b'o', rest @ ..] => (8, rest),
        [b'0', b'b', rest @ ..] => (2, rest),
        [b'0', rest @ ..] if !rest.is_empty() => (8, rest),
        other => (10, other),
    };
    if digits.is_empty() || !underscore_ok(s) {
        return Err(syntax());
    }
    let mut n: u64 = 0;
    for &c in digits {
        if c == b'_' {
            continue;
        }
        let d = match (c as char).to_digit(36) {
            Some(d) if d < base => u64::from(d),
            _ => return Err(syntax()),
        };
        // Go stops at the first overflow, before looking further.
        n = n
            .checked_mul(u64::from(base))
            .and_then(|m| m.checked_add(d))
            .ok_or_else(range)?;
    }
    Ok(n)
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

/// Go's `%q` of a string (`strconv.Quote`) for the characters a flag value
/// holds in practice: `"` and `\` escaped, ASCII controls and DEL as Go
/// writes them, everything else as is.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
