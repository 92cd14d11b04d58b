//! Peer URL parsing and canonicalisation, as etcd's `types.NewURLs` does it.
//!
//! etcd accepts a peer URL when Go's `net/url.Parse` accepts the trimmed
//! string, the scheme is `http`, `https`, `unix` or `unixs`, the host has the
//! form `host:port` (Go's `net.SplitHostPort`) and the path is empty. From then
//! on the URL only exists as the string Go's `URL.String()` makes of the parsed
//! value: that string is hashed into the member ID, written into the member
//! JSON and compared when bootstrap flags are checked. [`PeerUrl::as_str`]
//! returns exactly that string.
//!
//! The parser here is an independent implementation of the parts of Go's
//! `net/url` that decide acceptance, error texts and the output of `String()`
//! (Go 1.19 rules, which include the `OmitHost` handling of `scheme:/path`).
//! It works on bytes, as Go strings do, because percent-decoding can produce
//! arbitrary bytes in userinfo and path.

use std::fmt;

/// Longest single peer URL accepted, in bytes (before trimming).
///
/// etcd has no limit; this one keeps hostile input from costing memory and
/// time. A real peer URL is far shorter.
pub const MAX_URL_LEN: usize = 4096;

/// Longest comma-separated URL list accepted by [`parse_peer_url_list`], in
/// bytes.
pub const MAX_URL_LIST_LEN: usize = 1024 * 1024;

/// The etcd release family whose behaviour is reproduced.
///
/// The differences that matter here:
///
/// * [`V3_4`](TargetVersion::V3_4) (`etcdctl snapshot restore`, all 3.4
///   releases) and [`V3_5`](TargetVersion::V3_5) (`etcdutl snapshot restore`
///   as in 3.5.0 to 3.5.12, checked against 3.5.1) require `host:port` and an
///   empty path for every scheme, `unix` and `unixs` included.
/// * [`V3_6`](TargetVersion::V3_6) (and 3.5.13 and later) skip both checks
///   for `unix` and `unixs`, so `unix:///run/etcd.sock` is a valid peer URL.
/// * When `--initial-advertise-peer-urls` and `--initial-cluster` disagree,
///   the wording of the detail in parentheses differs (see
///   `restore::cluster`).
pub use crate::etcd::TargetVersion;

/// Why Go's `net/url.Parse` rejected a string.
///
/// Its `Display` is Go's error text as Go 1.19 and later print it; use
/// [`GoParseError::message`] for the text of a given etcd release (they
/// differ in how a DEL byte is quoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoParseError {
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

impl GoParseError {
    /// Go's error text, quoted as the Go release that built `version`'s
    /// reference binary quotes.
    pub fn message(&self, version: TargetVersion) -> String {
        match self {
            GoParseError::ControlCharacter => {
                "net/url: invalid control character in URL".to_owned()
            }
            GoParseError::MissingScheme => "missing protocol scheme".to_owned(),
            GoParseError::ColonInFirstSegment => {
                "first path segment in URL cannot contain colon".to_owned()
            }
            GoParseError::MissingBracket => "missing ']' in host".to_owned(),
            GoParseError::InvalidPort(p) => {
                format!("invalid port {} after host", go_quote(p, version))
            }
            GoParseError::InvalidHostCharacter(c) => {
                format!("invalid character {} in host name", go_quote(c, version))
            }
            GoParseError::InvalidEscape(e) => {
                format!("invalid URL escape {}", go_quote(e, version))
            }
            GoParseError::InvalidUserinfo => "net/url: invalid userinfo".to_owned(),
        }
    }
}

impl fmt::Display for GoParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(TargetVersion::V3_6))
    }
}

impl std::error::Error for GoParseError {}

/// A peer URL that etcd would reject, with etcd's error text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Go's `url.Parse` failed: `parse "<url>": <reason>`.
    #[error("parse {}: {}", go_quote(.url.as_bytes(), *.version), .reason.message(*.version))]
    Parse {
        /// The string Go reports: the trimmed input, without its `#fragment`
        /// unless the fragment itself was at fault.
        url: String,
        /// The underlying Go error.
        reason: GoParseError,
        /// Whose quoting the message uses.
        version: TargetVersion,
    },
    /// The scheme is not one etcd accepts.
    #[error("URL scheme must be http, https, unix, or unixs: {0}")]
    Scheme(String),
    /// The host does not split into host and port.
    #[error("URL address does not have the form \"host:port\": {0}")]
    HostPort(String),
    /// The URL has a path (a lone trailing `/` counts).
    #[error("URL must not contain a path: {0}")]
    Path(String),
    /// An empty list was given (unreachable from a command line, where a
    /// split always yields at least one item).
    #[error("no valid URLs given")]
    NoUrls,
    /// A URL exceeds [`MAX_URL_LEN`].
    #[error("peer URL is {len} bytes long; at most {max} bytes are accepted", max = MAX_URL_LEN)]
    TooLong {
        /// Length of the offending URL in bytes.
        len: usize,
    },
    /// A URL list exceeds [`MAX_URL_LIST_LEN`].
    #[error("peer URL list is {len} bytes long; at most {max} bytes are accepted", max = MAX_URL_LIST_LEN)]
    ListTooLong {
        /// Length of the list in bytes.
        len: usize,
    },
}

/// A peer URL accepted by etcd, held in its canonical form.
///
/// Equality and ordering are those of the canonical strings (byte order), as
/// etcd sorts and compares them.
///
/// ```
/// use etcdsnap::restore::urls::{parse_peer_url, TargetVersion};
/// let u = parse_peer_url("  HTTP://Node1:2380 ", TargetVersion::V3_5)?;
/// assert_eq!(u.as_str(), "http://Node1:2380");
/// assert_eq!(u.scheme(), "http");
/// # Ok::<(), etcdsnap::restore::urls::UrlError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PeerUrl {
    parsed: GoUrl,
    canonical: String,
}

impl PeerUrl {
    /// The canonical string: exactly Go's `URL.String()` of the parsed URL.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The scheme, lower-cased as Go's parser leaves it.
    pub fn scheme(&self) -> &str {
        &self.parsed.scheme
    }

    /// The decoded host (`host:port`, IPv6 literals with brackets) as Go's
    /// `URL.Host` holds it. Percent-decoding may leave non-UTF-8 bytes.
    pub fn host(&self) -> &[u8] {
        &self.parsed.host
    }

    /// Consumes the URL, returning its canonical string.
    pub fn into_string(self) -> String {
        self.canonical
    }
}

impl PartialEq for PeerUrl {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}

impl Eq for PeerUrl {}

impl PartialOrd for PeerUrl {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PeerUrl {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.canonical.as_bytes().cmp(other.canonical.as_bytes())
    }
}

impl std::hash::Hash for PeerUrl {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
    }
}

impl fmt::Display for PeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl AsRef<str> for PeerUrl {
    fn as_ref(&self) -> &str {
        &self.canonical
    }
}

/// Parses one peer URL as an element of etcd's `types.NewURLs`.
///
/// Surrounding white space (Unicode `White_Space`, as Go's
/// `strings.TrimSpace`) is removed first; error texts quote the trimmed
/// string.
///
/// ```
/// use etcdsnap::restore::urls::{parse_peer_url, TargetVersion};
/// let v = TargetVersion::V3_4;
/// assert_eq!(parse_peer_url("http://[::1]:2380", v)?.as_str(), "http://[::1]:2380");
/// assert_eq!(
///     parse_peer_url("http://127.0.0.1:2380/", v).unwrap_err().to_string(),
///     "URL must not contain a path: http://127.0.0.1:2380/"
/// );
/// assert_eq!(
///     parse_peer_url("127.0.0.1:2380", v).unwrap_err().to_string(),
///     "parse \"127.0.0.1:2380\": first path segment in URL cannot contain colon"
/// );
/// # Ok::<(), etcdsnap::restore::urls::UrlError>(())
/// ```
pub fn parse_peer_url(input: &str, version: TargetVersion) -> Result<PeerUrl, UrlError> {
    if input.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong { len: input.len() });
    }
    let trimmed = input.trim();
    let parsed = GoUrl::parse(trimmed, version)?;
    let scheme_ok = matches!(parsed.scheme.as_str(), "http" | "https" | "unix" | "unixs");
    if !scheme_ok {
        return Err(UrlError::Scheme(trimmed.to_owned()));
    }
    let unix = matches!(parsed.scheme.as_str(), "unix" | "unixs");
    if !(unix && version.relaxed_unix_urls()) {
        if split_host_port(&parsed.host).is_err() {
            return Err(UrlError::HostPort(trimmed.to_owned()));
        }
        if !parsed.path.is_empty() {
            return Err(UrlError::Path(trimmed.to_owned()));
        }
    }
    let canonical = parsed.to_go_string();
    Ok(PeerUrl { parsed, canonical })
}

/// Parses a list of peer URLs as etcd's `types.NewURLs` does after the
/// caller split it, and sorts the result by canonical string.
///
/// Fails on the first bad URL in list order. An empty slice is an error
/// (`no valid URLs given`).
pub fn parse_peer_urls<S: AsRef<str>>(
    inputs: &[S],
    version: TargetVersion,
) -> Result<Vec<PeerUrl>, UrlError> {
    if inputs.is_empty() {
        return Err(UrlError::NoUrls);
    }
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        out.push(parse_peer_url(input.as_ref(), version)?);
    }
    out.sort();
    Ok(out)
}

/// Parses a comma-separated list such as `--initial-advertise-peer-urls`:
/// split on every `,` (empty items are kept, and rejected as an empty
/// scheme), canonicalise each, sort bytewise.
///
/// ```
/// use etcdsnap::restore::urls::{parse_peer_url_list, TargetVersion};
/// let urls = parse_peer_url_list("http://b:2,HTTP://a:1", TargetVersion::V3_5)?;
/// let strs: Vec<&str> = urls.iter().map(|u| u.as_str()).collect();
/// assert_eq!(strs, ["http://a:1", "http://b:2"]);
/// assert_eq!(
///     parse_peer_url_list("http://a:1,", TargetVersion::V3_5).unwrap_err().to_string(),
///     "URL scheme must be http, https, unix, or unixs: "
/// );
/// # Ok::<(), etcdsnap::restore::urls::UrlError>(())
/// ```
pub fn parse_peer_url_list(list: &str, version: TargetVersion) -> Result<Vec<PeerUrl>, UrlError> {
    if list.len() > MAX_URL_LIST_LEN {
        return Err(UrlError::ListTooLong { len: list.len() });
    }
    let items: Vec<&str> = list.split(',').collect();
    parse_peer_urls(&items, version)
}

/// Parses any string with Go's `url.Parse` and returns `URL.String()` of the
/// result, without etcd's peer URL checks. Error texts are quoted as Go 1.19
/// and later quote them.
///
/// ```
/// use etcdsnap::restore::urls::go_url_string;
/// assert_eq!(go_url_string("HTTP://h/a b?q#f")?, "http://h/a%20b?q#f");
/// # Ok::<(), etcdsnap::restore::urls::UrlError>(())
/// ```
pub fn go_url_string(raw: &str) -> Result<String, UrlError> {
    GoUrl::parse(raw, TargetVersion::V3_6).map(|u| u.to_go_string())
}

/// Go's `net.SplitHostPort`: splits `host:port`, `[v6]:port`; the error is
/// Go's reason text (only used in resolution error messages).
pub(crate) fn split_host_port(hostport: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    const MISSING_PORT: &str = "missing port in address";
    const TOO_MANY_COLONS: &str = "too many colons in address";
    let Some(last_colon) = hostport.iter().rposition(|&b| b == b':') else {
        return Err(MISSING_PORT);
    };
    let (host, search_open_from, search_close_from) = if hostport.first() == Some(&b'[') {
        let Some(close) = hostport.iter().position(|&b| b == b']') else {
            return Err("missing ']' in address");
        };
        if close + 1 == hostport.len() {
            return Err(MISSING_PORT);
        }
        if close + 1 != last_colon {
            return if hostport.get(close + 1) == Some(&b':') {
                Err(TOO_MANY_COLONS)
            } else {
                Err(MISSING_PORT)
            };
        }
        (hostport.get(1..close).unwrap_or_default(), 1, close + 1)
    } else {
        let host = hostport.get(..last_colon).unwrap_or_default();
        if host.contains(&b':') {
            return Err(TOO_MANY_COLONS);
        }
        (host, 0, 0)
    };
    if hostport
        .get(search_open_from..)
        .unwrap_or_default()
        .contains(&b'[')
    {
        return Err("unexpected '[' in address");
    }
    if hostport
        .get(search_close_from..)
        .unwrap_or_default()
        .contains(&b']')
    {
        return Err("unexpected ']' in address");
    }
    let port = hostport.get(last_colon + 1..).unwrap_or_default();
    Ok((host, port))
}

/// Quotes bytes as Go's `strconv.Quote` (and so `fmt`'s `%q`) does.
///
/// Printable runes stay as they are; `"` and `\` are backslashed; `\a \b \f
/// \n \r \t \v` use their short forms; other ASCII controls become `\xNN`,
/// other non-printable runes `\uNNNN` / `\UNNNNNNNN`; each byte of invalid
/// UTF-8 becomes `\xNN` (see `is_go_printable`). Go before 1.19 (which built etcd
/// 3.5.1) wrote DEL as `\u007f`, later releases as `\x7f`.
pub(crate) fn go_quote(s: &[u8], version: TargetVersion) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_ascii() && (' '..='~').contains(&c) => out.push(c),
                c if !c.is_ascii() && is_go_printable(c) => out.push(c),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                '\u{7f}' if version == TargetVersion::V3_5 => out.push_str("\\u007f"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if (c as u32) < 0x10000 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.IsPrint` for non-ASCII runes (Unicode 13.0.0, the tables
/// of the Go releases that built etcd 3.4.23 and 3.5.1).
fn is_go_printable(c: char) -> bool {
    crate::format::goprint::is_print(c)
}

/// The subset of Go's `url.URL` that `Parse` fills in, as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct GoUrl {
    pub(crate) scheme: String,
    pub(crate) opaque: Vec<u8>,
    pub(crate) user: Option<GoUserinfo>,
    pub(crate) host: Vec<u8>,
    pub(crate) path: Vec<u8>,
    pub(crate) raw_path: Vec<u8>,
    pub(crate) omit_host: bool,
    pub(crate) force_query: bool,
    pub(crate) raw_query: Vec<u8>,
    pub(crate) fragment: Vec<u8>,
    pub(crate) raw_fragment: Vec<u8>,
}

/// Go's `url.Userinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GoUserinfo {
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
fn unescape(s: &[u8], mode: Mode) -> Result<Vec<u8>, GoParseError> {
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'%' {
            let (Some(&h1), Some(&h2)) = (s.get(i + 1), s.get(i + 2)) else {
                let end = s.len().min(i + 3);
                return Err(GoParseError::InvalidEscape(
                    s.get(i..end).unwrap_or_default().to_vec(),
                ));
            };
            let triple = s.get(i..i + 3).unwrap_or_default();
            if !is_hex(h1) || !is_hex(h2) {
                return Err(GoParseError::InvalidEscape(triple.to_vec()));
            }
            if mode == Mode::Host && hex_val(h1) < 8 && triple != b"%25" {
                return Err(GoParseError::InvalidEscape(triple.to_vec()));
            }
            if mode == Mode::Zone {
                let v = (hex_val(h1) << 4) | hex_val(h2);
                if triple != b"%25" && v != b' ' && should_escape(v, Mode::Host) {
                    return Err(GoParseError::InvalidEscape(triple.to_vec()));
                }
            }
            i += 3;
        } else {
            if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                return Err(GoParseError::InvalidHostCharacter(vec![c]));
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
fn parse_host(host: &[u8]) -> Result<Vec<u8>, GoParseError> {
    if host.first() == Some(&b'[') {
        let Some(close) = host.iter().rposition(|&b| b == b']') else {
            return Err(GoParseError::MissingBracket);
        };
        let colon_port = host.get(close + 1..).unwrap_or_default();
        if !valid_optional_port(colon_port) {
            return Err(GoParseError::InvalidPort(colon_port.to_vec()));
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
            return Err(GoParseError::InvalidPort(colon_port.to_vec()));
        }
    }
    unescape(host, Mode::Host)
}

/// Go's `parseAuthority`: `[userinfo@]host[:port]`.
fn parse_authority(authority: &[u8]) -> Result<(Option<GoUserinfo>, Vec<u8>), GoParseError> {
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
        return Err(GoParseError::InvalidUserinfo);
    }
    let user = match userinfo.iter().position(|&b| b == b':') {
        None => GoUserinfo {
            username: unescape(userinfo, Mode::UserPassword)?,
            password: None,
        },
        Some(colon) => GoUserinfo {
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
fn get_scheme(raw: &[u8]) -> Result<(&[u8], &[u8]), GoParseError> {
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
                    return Err(GoParseError::MissingScheme);
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

impl GoUrl {
    /// Go's `url.Parse`.
    pub(crate) fn parse(raw: &str, version: TargetVersion) -> Result<GoUrl, UrlError> {
        let (before_frag, frag) = match raw.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (raw, None),
        };
        let mut url = GoUrl::parse_without_fragment(before_frag.as_bytes()).map_err(|reason| {
            UrlError::Parse {
                url: before_frag.to_owned(),
                reason,
                version,
            }
        })?;
        if let Some(frag) = frag.filter(|f| !f.is_empty()) {
            url.set_fragment(frag.as_bytes())
                .map_err(|reason| UrlError::Parse {
                    url: raw.to_owned(),
                    reason,
                    version,
                })?;
        }
        Ok(url)
    }

    /// Go's internal `parse(rawURL, viaRequest=false)`.
    fn parse_without_fragment(raw: &[u8]) -> Result<GoUrl, GoParseError> {
        if raw.iter().any(|&b| b < b' ' || b == 0x7f) {
            return Err(GoParseError::ControlCharacter);
        }
        let mut url = GoUrl::default();
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
                return Err(GoParseError::ColonInFirstSegment);
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

    fn set_path(&mut self, p: &[u8]) -> Result<(), GoParseError> {
        let path = unescape(p, Mode::Path)?;
        self.raw_path = if escape(&path, Mode::Path) == p {
            Vec::new()
        } else {
            p.to_vec()
        };
        self.path = path;
        Ok(())
    }

    fn set_fragment(&mut self, f: &[u8]) -> Result<(), GoParseError> {
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
    pub(crate) fn to_go_string(&self) -> String {
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

    const ALL: [TargetVersion; 3] = [
        TargetVersion::V3_4,
        TargetVersion::V3_5,
        TargetVersion::V3_6,
    ];

    fn canon(s: &str) -> String {
        match parse_peer_url(s, TargetVersion::V3_5) {
            Ok(u) => u.into_string(),
            Err(e) => format!("ERR {e}"),
        }
    }

    #[test]
    fn canonical_forms() {
        let cases = [
            ("http://localhost:2380", "http://localhost:2380"),
            ("HTTP://Node1:2380", "http://Node1:2380"),
            ("HtTpS://127.0.0.1:2380", "https://127.0.0.1:2380"),
            ("  http://127.0.0.1:2380\t\n", "http://127.0.0.1:2380"),
            (
                "\u{a0}http://127.0.0.1:2380\u{3000}",
                "http://127.0.0.1:2380",
            ),
            ("http://[::1]:2380", "http://[::1]:2380"),
            ("http://[::1%25lo]:2380", "http://[::1%25lo]:2380"),
            ("http://127.0.0.1:", "http://127.0.0.1:"),
            ("http://:2380", "http://:2380"),
            ("http://127.0.0.1:02380", "http://127.0.0.1:02380"),
            ("http://127.0.0.1:2380?a=b", "http://127.0.0.1:2380?a=b"),
            ("http://127.0.0.1:2380?", "http://127.0.0.1:2380?"),
            ("http://127.0.0.1:2380?a?", "http://127.0.0.1:2380?a?"),
            ("http://127.0.0.1:2380#", "http://127.0.0.1:2380"),
            ("http://127.0.0.1:2380#f g", "http://127.0.0.1:2380#f%20g"),
            ("http://127.0.0.1:2380#%41", "http://127.0.0.1:2380#%41"),
            ("http://127.0.0.1:2380#é", "http://127.0.0.1:2380#%C3%A9"),
            ("http://127.0.0.1:2380?é#x", "http://127.0.0.1:2380?é#x"),
            ("http://u:p@127.0.0.1:2380", "http://u:p@127.0.0.1:2380"),
            (
                "http://u%40x:@127.0.0.1:2380",
                "http://u%40x:@127.0.0.1:2380",
            ),
            ("http://a@b@127.0.0.1:2380", "http://a%40b@127.0.0.1:2380"),
            ("http://%C3%A9:2380", "http://%C3%A9:2380"),
            ("unix://127.0.0.1:2380", "unix://127.0.0.1:2380"),
            ("UNIXS://localhost:1", "unixs://localhost:1"),
        ];
        for (input, want) in cases {
            assert_eq!(canon(input), want, "input {input:?}");
        }
    }

    #[test]
    fn error_texts() {
        let cases = [
            (
                "ftp://127.0.0.1:1",
                "URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:1",
            ),
            ("", "URL scheme must be http, https, unix, or unixs: "),
            (
                "localhost:2380",
                "URL scheme must be http, https, unix, or unixs: localhost:2380",
            ),
            (
                "http://127.0.0.1",
                "URL address does not have the form \"host:port\": http://127.0.0.1",
            ),
            (
                "http://[::1]",
                "URL address does not have the form \"host:port\": http://[::1]",
            ),
            (
                "http:127.0.0.1:2380",
                "URL address does not have the form \"host:port\": http:127.0.0.1:2380",
            ),
            (
                "http:///127.0.0.1:2380",
                "URL address does not have the form \"host:port\": http:///127.0.0.1:2380",
            ),
            (
                "http://1:2:3",
                "URL address does not have the form \"host:port\": http://1:2:3",
            ),
            (
                "http://127.0.0.1:2380/",
                "URL must not contain a path: http://127.0.0.1:2380/",
            ),
            (
                "unix:///tmp/s",
                "URL address does not have the form \"host:port\": unix:///tmp/s",
            ),
            (
                "127.0.0.1:2380",
                "parse \"127.0.0.1:2380\": first path segment in URL cannot contain colon",
            ),
            (":2380", "parse \":2380\": missing protocol scheme"),
            (
                "http://[::1:2380",
                "parse \"http://[::1:2380\": missing ']' in host",
            ),
            (
                "http://127.0.0.1:x",
                "parse \"http://127.0.0.1:x\": invalid port \":x\" after host",
            ),
            (
                "http://[::1]x:1",
                "parse \"http://[::1]x:1\": invalid port \"x:1\" after host",
            ),
            (
                "http://127.0.0.1 :1",
                "parse \"http://127.0.0.1 :1\": invalid character \" \" in host name",
            ),
            (
                "http://%31:1",
                "parse \"http://%31:1\": invalid URL escape \"%31\"",
            ),
            (
                "http://127.0.0.1:1/%z",
                "parse \"http://127.0.0.1:1/%z\": invalid URL escape \"%z\"",
            ),
            (
                "http://127.0.0.1:1/%zé",
                "parse \"http://127.0.0.1:1/%zé\": invalid URL escape \"%z\\xc3\"",
            ),
            (
                "http://127.0.0.1:1#%zz",
                "parse \"http://127.0.0.1:1#%zz\": invalid URL escape \"%zz\"",
            ),
            (
                "http://é@127.0.0.1:1",
                "parse \"http://é@127.0.0.1:1\": net/url: invalid userinfo",
            ),
            (
                "http://127.0.0.1:2\t380",
                "parse \"http://127.0.0.1:2\\t380\": net/url: invalid control character in URL",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(canon(input), format!("ERR {want}"), "input {input:?}");
        }
    }

    #[test]
    fn fragment_control_character_goes_through_set_fragment() {
        // Go checks control characters only before the `#`; in the fragment
        // a raw control byte is simply escaped.
        assert_eq!(canon("http://127.0.0.1:1#\u{1}"), "http://127.0.0.1:1#%01");
    }

    #[test]
    fn unix_urls_per_version() {
        for v in [TargetVersion::V3_4, TargetVersion::V3_5] {
            assert!(matches!(
                parse_peer_url("unix:///run/e.sock", v),
                Err(UrlError::HostPort(_))
            ));
            assert!(matches!(
                parse_peer_url("unix://e.sock", v),
                Err(UrlError::HostPort(_))
            ));
            assert!(matches!(
                parse_peer_url("unix://h:1/p", v),
                Err(UrlError::Path(_))
            ));
        }
        let v = TargetVersion::V3_6;
        let ok = |s: &str| parse_peer_url(s, v).map(PeerUrl::into_string);
        assert_eq!(
            ok("unix:///run/e.sock").as_deref(),
            Ok("unix:///run/e.sock")
        );
        assert_eq!(ok("unix://e.sock").as_deref(), Ok("unix://e.sock"));
        assert_eq!(ok("unixs:/run/e.sock").as_deref(), Ok("unixs:/run/e.sock"));
        assert_eq!(ok("unix:e.sock").as_deref(), Ok("unix:e.sock"));
        assert_eq!(ok("unix://h:1/a%2fb").as_deref(), Ok("unix://h:1/a%2fb"));
        assert!(matches!(
            parse_peer_url("http://h:1/", v),
            Err(UrlError::Path(_))
        ));
    }

    #[test]
    fn go_url_string_details() {
        let s = |raw: &str| GoUrl::parse(raw, TargetVersion::V3_4).map(|u| u.to_go_string());
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

    #[test]
    fn lists_sort_bytewise() {
        let urls = parse_peer_url_list(
            "http://b:1,https://a:1,http://B:1,http://a:10,http://a:1",
            TargetVersion::V3_4,
        )
        .map(|v| v.into_iter().map(PeerUrl::into_string).collect::<Vec<_>>());
        assert_eq!(
            urls.as_deref(),
            Ok(&[
                "http://B:1",
                "http://a:1",
                "http://a:10",
                "http://b:1",
                "https://a:1"
            ]
            .map(String::from)[..])
        );
        assert_eq!(
            parse_peer_urls::<&str>(&[], TargetVersion::V3_4),
            Err(UrlError::NoUrls)
        );
    }

    #[test]
    fn limits() {
        let long = format!("http://{}:1", "a".repeat(MAX_URL_LEN));
        for v in ALL {
            assert_eq!(
                parse_peer_url(&long, v),
                Err(UrlError::TooLong { len: long.len() })
            );
        }
        let list = "x".repeat(MAX_URL_LIST_LEN + 1);
        assert_eq!(
            parse_peer_url_list(&list, TargetVersion::V3_5),
            Err(UrlError::ListTooLong { len: list.len() })
        );
    }

    #[test]
    fn split_host_port_like_go() {
        let ok = |s: &str| split_host_port(s.as_bytes()).map(|(h, p)| (h.to_vec(), p.to_vec()));
        assert_eq!(ok("h:1"), Ok((b"h".to_vec(), b"1".to_vec())));
        assert_eq!(ok(":1"), Ok((b"".to_vec(), b"1".to_vec())));
        assert_eq!(ok("h:"), Ok((b"h".to_vec(), b"".to_vec())));
        assert_eq!(ok("[::1]:1"), Ok((b"::1".to_vec(), b"1".to_vec())));
        assert_eq!(ok("h"), Err("missing port in address"));
        assert_eq!(ok(""), Err("missing port in address"));
        assert_eq!(ok("[::1]"), Err("missing port in address"));
        assert_eq!(ok("[::1]x:1"), Err("missing port in address"));
        assert_eq!(ok("[::1]:1:2"), Err("too many colons in address"));
        assert_eq!(ok("a:b:1"), Err("too many colons in address"));
        assert_eq!(ok("[::1:1"), Err("missing ']' in address"));
        assert_eq!(ok("a[b:1"), Err("unexpected '[' in address"));
        assert_eq!(ok("ab]:1"), Err("unexpected ']' in address"));
        assert_eq!(ok("[a[b]:1"), Err("unexpected '[' in address"));
    }

    #[test]
    fn go_quote_matches_strconv() {
        let q = |b: &[u8]| go_quote(b, TargetVersion::V3_4);
        assert_eq!(q(b"plain"), "\"plain\"");
        assert_eq!(q(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            q(b"\x07\x08\x0c\n\r\t\x0b\x00\x7f"),
            "\"\\a\\b\\f\\n\\r\\t\\v\\x00\\x7f\""
        );
        assert_eq!(q("é€😀".as_bytes()), "\"é€😀\"");
        assert_eq!(
            q("\u{a0}\u{200b}\u{85}\u{feff}".as_bytes()),
            "\"\\u00a0\\u200b\\u0085\\ufeff\""
        );
        assert_eq!(q("\u{f0000}".as_bytes()), "\"\\U000f0000\"");
        assert_eq!(q(b"a\xffb\xe2\x82"), "\"a\\xffb\\xe2\\x82\"");
        // Go 1.16 (etcd 3.5.1) quoted DEL as \u007f; Go 1.19+ as \x7f.
        assert_eq!(go_quote(b"\x7f", TargetVersion::V3_5), "\"\\u007f\"");
        assert_eq!(go_quote(b"\x7f", TargetVersion::V3_6), "\"\\x7f\"");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn mixed_case(word: &'static str) -> impl Strategy<Value = String> {
            proptest::collection::vec(any::<bool>(), word.len()).prop_map(move |upper| {
                word.chars()
                    .zip(upper)
                    .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                    .collect()
            })
        }

        fn space() -> impl Strategy<Value = String> {
            "[ \t\n\u{a0}\u{3000}]{0,2}"
        }

        /// URL-like strings, many of them invalid, over every scheme etcd
        /// knows and a few it does not.
        fn url_like() -> impl Strategy<Value = String> {
            let scheme = prop_oneof![
                mixed_case("http"),
                mixed_case("https"),
                mixed_case("unix"),
                mixed_case("unixs"),
                Just("ftp".to_owned()),
                Just(String::new()),
            ];
            let sep = prop_oneof![Just("://"), Just(":"), Just(":/"), Just(":///"), Just("//")];
            let user = prop_oneof![Just(String::new()), "[a-zA-Z0-9%@:!$&'()*+;=._~/é-]{0,8}@",];
            let host = prop_oneof![
                "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
                "[a-zA-Z0-9._~!$&'()*+;=<>\"-]{0,12}",
                "\\[[0-9a-fA-F:.]{0,12}(%25[a-z0-9 %]{1,5})?\\]",
                "(%[0-9A-Fa-f]{2}|[a-z]|é| ){0,6}",
            ];
            let port = prop_oneof![Just(String::new()), ":[0-9]{0,6}", ":[0-9a-z%]{0,3}"];
            let path = prop_oneof![Just(String::new()), "/[a-z%0-9/]{0,5}"];
            let query = prop_oneof![Just(String::new()), "\\?[a-z0-9?=&%<>é ]{0,8}"];
            let fragment = prop_oneof![Just(String::new()), "#[a-z0-9#%<>é \u{1}]{0,8}"];
            (
                space(),
                scheme,
                sep,
                user,
                host,
                port,
                path,
                query,
                fragment,
                space(),
            )
                .prop_map(
                    |(lead, scheme, sep, user, host, port, path, query, fragment, trail)| {
                        format!(
                            "{lead}{scheme}{sep}{user}{host}{port}{path}{query}{fragment}{trail}"
                        )
                    },
                )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]

            /// Canonicalising a canonical peer URL changes nothing (for the
            /// releases that require `host:port`; 3.6 unix URLs inherit a
            /// Go ambiguity around `scheme:/%2f...` paths). Not when the
            /// canonical form ends in white space (`http://h:1? #` keeps
            /// its query `? `): etcd trims its input, so in Go too the
            /// second round differs.
            #[test]
            fn canonical_form_is_stable(raw in url_like()) {
                for version in [TargetVersion::V3_4, TargetVersion::V3_5] {
                    if let Ok(first) = parse_peer_url(&raw, version)
                        .map_err(drop)
                        .and_then(|u| if u.as_str().trim() == u.as_str() { Ok(u) } else { Err(()) })
                    {
                        let again = parse_peer_url(first.as_str(), version);
                        prop_assert_eq!(again.as_ref().map(PeerUrl::as_str), Ok(first.as_str()));
                    }
                }
            }

            /// Plain http/https host:port URLs canonicalise to the lower-cased
            /// scheme and the untouched host and port.
            #[test]
            fn plain_host_port_urls_canonicalise_as_go_does(
                lead in space(),
                scheme in prop_oneof![mixed_case("http"), mixed_case("https")],
                host in prop_oneof![
                    "[a-zA-Z0-9][a-zA-Z0-9.-]{0,20}",
                    "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
                    "\\[[0-9a-fA-F]{0,4}(:[0-9a-fA-F]{0,4}){2,7}\\]",
                ],
                port in "[0-9]{0,5}",
                trail in space(),
            ) {
                let raw = format!("{lead}{scheme}://{host}:{port}{trail}");
                let want = format!("{}://{host}:{port}", scheme.to_ascii_lowercase());
                for version in [TargetVersion::V3_4, TargetVersion::V3_5, TargetVersion::V3_6] {
                    let got = parse_peer_url(&raw, version).map(PeerUrl::into_string);
                    prop_assert_eq!(got.as_deref(), Ok(want.as_str()));
                }
            }
        }
    }

    #[test]
    fn version_display() {
        let shown: Vec<String> = ALL.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["3.4", "3.5", "3.6"]);
    }
}
