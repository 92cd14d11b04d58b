//! Go's `net/url`: `url.Parse` and `URL.String()`.
//!
//! An independent implementation of the parts of Go's `net/url` that decide
//! acceptance, error texts and the output of `String()` (Go 1.19 rules,
//! which include the `OmitHost` handling of `scheme:/path`). It works on
//! bytes, as Go strings do, because percent-decoding can produce arbitrary
//! bytes in userinfo and path.

use std::fmt;

use super::GoRelease;
use super::quote::quote;

/// Why Go's `net/url.Parse` rejected a string: the reason part of its error.
///
/// Its `Display` is Go's text as Go 1.19 and later print it; use
/// [`ParseReason::message`] for the text of a given Go release (they differ
/// in how a DEL byte is quoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseReason {
    /// A byte below 0x20 or 0x7f inside the URL.
    ControlCharacter,
    /// The string starts with `:`.
    MissingScheme,
    /// No scheme, and the first path segment holds a `:` (e.g. `10.0.0.1:2380`).
    ColonInFirstSegment,
    /// `[` starts the host but no `]` closes it.
    MissingBracket,
    /// What follows the host is not `:` and digits.
    InvalidPort(Vec<u8>),
    /// A byte that may not appear in a host name.
    InvalidHostCharacter(Vec<u8>),
    /// A malformed or forbidden `%` escape.
    InvalidEscape(Vec<u8>),
    /// The userinfo holds a byte outside Go's allowed set.
    InvalidUserinfo,
}

impl ParseReason {
    /// Go's error text, quoted as `release` quotes.
    pub fn message(&self, release: GoRelease) -> String {
        match self {
            ParseReason::ControlCharacter => "net/url: invalid control character in URL".to_owned(),
            ParseReason::MissingScheme => "missing protocol scheme".to_owned(),
            ParseReason::ColonInFirstSegment => {
                "first path segment in URL cannot contain colon".to_owned()
            }
            ParseReason::MissingBracket => "missing ']' in host".to_owned(),
            ParseReason::InvalidPort(p) => {
                format!("invalid port {} after host", quote(p, release))
            }
            ParseReason::InvalidHostCharacter(c) => {
                format!("invalid character {} in host name", quote(c, release))
            }
            ParseReason::InvalidEscape(e) => {
                format!("invalid URL escape {}", quote(e, release))
            }
            ParseReason::InvalidUserinfo => "net/url: invalid userinfo".to_owned(),
        }
    }
}

impl fmt::Display for ParseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(GoRelease::GO1_19))
    }
}

impl std::error::Error for ParseReason {}

/// Go's `*url.Error` from `url.Parse`: `parse "<url>": <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The string Go reports: the input without its `#fragment` unless the
    /// fragment itself was at fault.
    pub url: String,
    /// Why it was rejected.
    pub reason: ParseReason,
}

impl ParseError {
    /// Go's error text, quoted as `release` quotes.
    pub fn message(&self, release: GoRelease) -> String {
        format!(
            "parse {}: {}",
            quote(self.url.as_bytes(), release),
            self.reason.message(release)
        )
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(GoRelease::GO1_19))
    }
}

impl std::error::Error for ParseError {}

/// Parses any string with Go's `url.Parse` and returns `URL.String()` of the
/// result.
///
/// ```
/// use etcdsnap::internal::go::url::url_string;
/// assert_eq!(url_string("HTTP://h/a b?q#f")?, "http://h/a%20b?q#f");
/// # Ok::<(), etcdsnap::internal::go::url::ParseError>(())
/// ```
pub fn url_string(raw: &str) -> Result<String, ParseError> {
    Url::parse(raw).map(|u| u.to_go_string())
}

/// The subset of Go's `url.URL` that `Parse` fills in, as bytes (Go strings
/// are bytes, and percent-decoding can produce any byte).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Url {
    scheme: String,
    opaque: Vec<u8>,
    user: Option<Userinfo>,
    host: Vec<u8>,
    path: Vec<u8>,
    raw_path: Vec<u8>,
    omit_host: bool,
    force_query: bool,
    raw_query: Vec<u8>,
    fragment: Vec<u8>,
    raw_fragment: Vec<u8>,
}

/// Go's `url.Userinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Userinfo {
    username: Vec<u8>,
    password: Option<Vec<u8>>,
}

/// Go's escaping contexts (`encoding` in `net/url`); the query-component mode
/// is never needed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Go's `shouldEscape`: whether `c` must be percent-encoded in `mode`.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone)
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => return c == b'?',
            Mode::UserPassword => return matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::Fragment => return false,
            // Host and zone fall through to "escape everything else".
            Mode::Host | Mode::Zone => {}
        },
        _ => {}
    }
    if mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*') {
        return false;
    }
    true
}

/// Go's `unescape` for every mode but query components.
fn unescape(s: &[u8], mode: Mode) -> Result<Vec<u8>, ParseReason> {
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'%' {
            let (Some(&h1), Some(&h2)) = (s.get(i + 1), s.get(i + 2)) else {
                let end = s.len().min(i + 3);
                return Err(ParseReason::InvalidEscape(
                    s.get(i..end).unwrap_or_default().to_vec(),
                ));
            };
            let triple = s.get(i..i + 3).unwrap_or_default();
            if !is_hex(h1) || !is_hex(h2) {
                return Err(ParseReason::InvalidEscape(triple.to_vec()));
            }
            if mode == Mode::Host && hex_val(h1) < 8 && triple != b"%25" {
                return Err(ParseReason::InvalidEscape(triple.to_vec()));
            }
            if mode == Mode::Zone {
                let v = (hex_val(h1) << 4) | hex_val(h2);
                if triple != b"%25" && v != b' ' && should_escape(v, Mode::Host) {
                    return Err(ParseReason::InvalidEscape(triple.to_vec()));
                }
            }
            i += 3;
        } else {
            if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                return Err(ParseReason::InvalidHostCharacter(vec![c]));
            }
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'%' {
            if let (Some(&h1), Some(&h2)) = (s.get(i + 1), s.get(i + 2)) {
                out.push((hex_val(h1) << 4) | hex_val(h2));
            }
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

/// Go's `escape` for every mode but query components.
fn escape(s: &[u8], mode: Mode) -> Vec<u8> {
    const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        if should_escape(c, mode) {
            out.push(b'%');
            out.push(UPPER_HEX.get(usize::from(c >> 4)).copied().unwrap_or(b'0'));
            out.push(UPPER_HEX.get(usize::from(c & 15)).copied().unwrap_or(b'0'));
        } else {
            out.push(c);
        }
    }
    out
}

/// Go's `validEncoded`: `s` needs no further escaping in `mode`.
fn valid_encoded(s: &[u8], mode: Mode) -> bool {
    s.iter().all(|&c| {
        matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'['
                | b']'
                | b'%'
        ) || !should_escape(c, mode)
    })
}

/// Go's `validOptionalPort`: empty, or `:` followed by ASCII digits.
fn valid_optional_port(port: &[u8]) -> bool {
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// Go's `validUserinfo` (decided per rune, so any non-ASCII fails).
fn valid_userinfo(s: &[u8]) -> bool {
    s.iter().all(|&c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b':'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
                    | b'@'
            )
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Go's `parseHost`: validates and percent-decodes `host[:port]`.
fn parse_host(host: &[u8]) -> Result<Vec<u8>, ParseReason> {
    if host.first() == Some(&b'[') {
        let Some(close) = host.iter().rposition(|&b| b == b']') else {
            return Err(ParseReason::MissingBracket);
        };
        let colon_port = host.get(close + 1..).unwrap_or_default();
        if !valid_optional_port(colon_port) {
            return Err(ParseReason::InvalidPort(colon_port.to_vec()));
        }
        let inside = host.get(..close).unwrap_or_default();
        if let Some(zone) = find(inside, b"%25") {
            let mut out = unescape(inside.get(..zone).unwrap_or_default(), Mode::Host)?;
            out.extend(unescape(
                inside.get(zone..).unwrap_or_default(),
                Mode::Zone,
            )?);
            out.extend(unescape(host.get(close..).unwrap_or_default(), Mode::Host)?);
            return Ok(out);
        }
    } else if let Some(colon) = host.iter().rposition(|&b| b == b':') {
        let colon_port = host.get(colon..).unwrap_or_default();
        if !valid_optional_port(colon_port) {
            return Err(ParseReason::InvalidPort(colon_port.to_vec()));
        }
    }
    unescape(host, Mode::Host)
}

/// Go's `parseAuthority`: `[userinfo@]host[:port]`.
fn parse_authority(authority: &[u8]) -> Result<(Option<Userinfo>, Vec<u8>), ParseReason> {
    let at = authority.iter().rposition(|&b| b == b'@');
    let host_part = match at {
        Some(i) => authority.get(i + 1..).unwrap_or_default(),
        None => authority,
    };
    let host = parse_host(host_part)?;
    let Some(at) = at else {
        return Ok((None, host));
    };
    let userinfo = authority.get(..at).unwrap_or_default();
    if !valid_userinfo(userinfo) {
        return Err(ParseReason::InvalidUserinfo);
    }
    let user = match userinfo.iter().position(|&b| b == b':') {
        None => Userinfo {
            username: unescape(userinfo, Mode::UserPassword)?,
            password: None,
        },
        Some(colon) => Userinfo {
            username: unescape(
                userinfo.get(..colon).unwrap_or_default(),
                Mode::UserPassword,
            )?,
            password: Some(unescape(
                userinfo.get(colon + 1..).unwrap_or_default(),
                Mode::UserPassword,
            )?),
        },
    };
    Ok((Some(user), host))
}

/// Go's `getScheme`: returns (scheme, rest).
fn get_scheme(raw: &[u8]) -> Result<(&[u8], &[u8]), ParseReason> {
    for (i, &c) in raw.iter().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if i == 0 {
                    return Ok((&[], raw));
                }
            }
            b':' => {
                if i == 0 {
                    return Err(ParseReason::MissingScheme);
                }
                return Ok((
                    raw.get(..i).unwrap_or_default(),
                    raw.get(i + 1..).unwrap_or_default(),
                ));
            }
            _ => return Ok((&[], raw)),
        }
    }
    Ok((&[], raw))
}

impl Url {
    /// The scheme, lower-cased as Go's parser leaves it.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The decoded host (`host:port`, IPv6 literals with brackets), Go's
    /// `URL.Host`.
    pub fn host(&self) -> &[u8] {
        &self.host
    }

    /// Replaces the host, as code that assigns Go's `URL.Host` does.
    pub fn set_host(&mut self, host: Vec<u8>) {
        self.host = host;
    }

    /// The decoded path, Go's `URL.Path`.
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// Go's `url.Parse`.
    ///
    /// ```
    /// use etcdsnap::internal::go::{GoRelease, url::Url};
    /// assert_eq!(Url::parse("HTTP://h/a b?q#f")?.to_go_string(), "http://h/a%20b?q#f");
    /// let e = Url::parse("http://h:x").unwrap_err();
    /// assert_eq!(e.message(GoRelease::GO1_19), r#"parse "http://h:x": invalid port ":x" after host"#);
    /// # Ok::<(), etcdsnap::internal::go::url::ParseError>(())
    /// ```
    pub fn parse(raw: &str) -> Result<Url, ParseError> {
        let (before_frag, frag) = match raw.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (raw, None),
        };
        let mut url =
            Url::parse_without_fragment(before_frag.as_bytes()).map_err(|reason| ParseError {
                url: before_frag.to_owned(),
                reason,
            })?;
        if let Some(frag) = frag.filter(|f| !f.is_empty()) {
            url.set_fragment(frag.as_bytes())
                .map_err(|reason| ParseError {
                    url: raw.to_owned(),
                    reason,
                })?;
        }
        Ok(url)
    }

    /// Go's internal `parse(rawURL, viaRequest=false)`.
    fn parse_without_fragment(raw: &[u8]) -> Result<Url, ParseReason> {
        if raw.iter().any(|&b| b < b' ' || b == 0x7f) {
            return Err(ParseReason::ControlCharacter);
        }
        let mut url = Url::default();
        if raw == b"*" {
            url.path = b"*".to_vec();
            return Ok(url);
        }
        let (scheme, mut rest) = get_scheme(raw)?;
        // The scheme holds only ASCII letters, digits, `+`, `-` and `.`.
        url.scheme = String::from_utf8_lossy(scheme).to_ascii_lowercase();

        let question_marks = rest.iter().filter(|&&b| b == b'?').count();
        if rest.last() == Some(&b'?') && question_marks == 1 {
            url.force_query = true;
            rest = rest.get(..rest.len() - 1).unwrap_or_default();
        } else if let Some(q) = rest.iter().position(|&b| b == b'?') {
            url.raw_query = rest.get(q + 1..).unwrap_or_default().to_vec();
            rest = rest.get(..q).unwrap_or_default();
        }

        if rest.first() != Some(&b'/') {
            if !url.scheme.is_empty() {
                url.opaque = rest.to_vec();
                return Ok(url);
            }
            let segment_end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
            if rest.get(..segment_end).unwrap_or_default().contains(&b':') {
                return Err(ParseReason::ColonInFirstSegment);
            }
        }

        if (!url.scheme.is_empty() || !rest.starts_with(b"///")) && rest.starts_with(b"//") {
            let after = rest.get(2..).unwrap_or_default();
            let (authority, path) = match after.iter().position(|&b| b == b'/') {
                Some(i) => (
                    after.get(..i).unwrap_or_default(),
                    after.get(i..).unwrap_or_default(),
                ),
                None => (after, &[][..]),
            };
            let (user, host) = parse_authority(authority)?;
            url.user = user;
            url.host = host;
            rest = path;
        } else if !url.scheme.is_empty() && rest.first() == Some(&b'/') {
            url.omit_host = true;
        }
        url.set_path(rest)?;
        Ok(url)
    }

    fn set_path(&mut self, p: &[u8]) -> Result<(), ParseReason> {
        let path = unescape(p, Mode::Path)?;
        self.raw_path = if escape(&path, Mode::Path) == p {
            Vec::new()
        } else {
            p.to_vec()
        };
        self.path = path;
        Ok(())
    }

    fn set_fragment(&mut self, f: &[u8]) -> Result<(), ParseReason> {
        let frag = unescape(f, Mode::Fragment)?;
        self.raw_fragment = if escape(&frag, Mode::Fragment) == f {
            Vec::new()
        } else {
            f.to_vec()
        };
        self.fragment = frag;
        Ok(())
    }

    fn escaped_path(&self) -> Vec<u8> {
        if !self.raw_path.is_empty()
            && valid_encoded(&self.raw_path, Mode::Path)
            && unescape(&self.raw_path, Mode::Path).is_ok_and(|p| p == self.path)
        {
            return self.raw_path.clone();
        }
        if self.path == b"*" {
            return b"*".to_vec();
        }
        escape(&self.path, Mode::Path)
    }

    fn escaped_fragment(&self) -> Vec<u8> {
        if !self.raw_fragment.is_empty()
            && valid_encoded(&self.raw_fragment, Mode::Fragment)
            && unescape(&self.raw_fragment, Mode::Fragment).is_ok_and(|f| f == self.fragment)
        {
            return self.raw_fragment.clone();
        }
        escape(&self.fragment, Mode::Fragment)
    }

    /// Go's `URL.String()`.
    pub fn to_go_string(&self) -> String {
        let mut buf: Vec<u8> = Vec::new();
        if !self.scheme.is_empty() {
            buf.extend_from_slice(self.scheme.as_bytes());
            buf.push(b':');
        }
        if !self.opaque.is_empty() {
            buf.extend_from_slice(&self.opaque);
        } else {
            if !self.scheme.is_empty() || !self.host.is_empty() || self.user.is_some() {
                if self.omit_host && self.host.is_empty() && self.user.is_none() {
                    // Go 1.19+: `scheme:/path` keeps its empty authority out.
                } else {
                    if !self.host.is_empty() || !self.path.is_empty() || self.user.is_some() {
                        buf.extend_from_slice(b"//");
                    }
                    if let Some(user) = &self.user {
                        buf.extend(escape(&user.username, Mode::UserPassword));
                        if let Some(password) = &user.password {
                            buf.push(b':');
                            buf.extend(escape(password, Mode::UserPassword));
                        }
                        buf.push(b'@');
                    }
                    if !self.host.is_empty() {
                        buf.extend(escape(&self.host, Mode::Host));
                    }
                }
            }
            let path = self.escaped_path();
            if path.first().is_some_and(|&b| b != b'/') && !self.host.is_empty() {
                buf.push(b'/');
            }
            if buf.is_empty() {
                let segment_end = path.iter().position(|&b| b == b'/').unwrap_or(path.len());
                if path.get(..segment_end).unwrap_or_default().contains(&b':') {
                    buf.extend_from_slice(b"./");
                }
            }
            buf.extend(path);
        }
        if self.force_query || !self.raw_query.is_empty() {
            buf.push(b'?');
            buf.extend_from_slice(&self.raw_query);
        }
        if !self.fragment.is_empty() {
            buf.push(b'#');
            buf.extend(self.escaped_fragment());
        }
        // Every byte written is ASCII or copied from the (UTF-8) input in
        // whole runs bounded by ASCII delimiters, so this never replaces.
        String::from_utf8_lossy(&buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_url_string_details() {
        let s = |raw: &str| Url::parse(raw).map(|u| u.to_go_string());
        assert_eq!(s("a/b:c").as_deref(), Ok("a/b:c"));
        assert_eq!(s("/x:y").as_deref(), Ok("/x:y"));
        assert_eq!(s("*").as_deref(), Ok("*"));
        assert_eq!(s("x:/a b").as_deref(), Ok("x:/a%20b"));
        assert_eq!(s("//h/p?q").as_deref(), Ok("//h/p?q"));
        assert_eq!(s("///p").as_deref(), Ok("///p"));
        assert_eq!(s("s://h/a%2Fb").as_deref(), Ok("s://h/a%2Fb"));
        assert_eq!(s("s://h/a%41").as_deref(), Ok("s://h/a%41"));
        assert_eq!(s("s://h/a?b").as_deref(), Ok("s://h/a?b"));
        assert_eq!(
            s("s://[fe80::1%25en%200]:1").as_deref(),
            Ok("s://[fe80::1%25en%200]:1")
        );
        assert!(s("s://[fe80::1%25en%0a]:1").is_err());
    }
}
