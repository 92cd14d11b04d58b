//! Peer URLs as etcd's `types.NewURLs` accepts them.
//!
//! etcd accepts a peer URL when Go's `net/url.Parse` accepts the trimmed
//! string, the scheme is `http`, `https`, `unix` or `unixs`, the host has the
//! form `host:port` (Go's `net.SplitHostPort`) and the path is empty. From then
//! on the URL only exists as the string Go's `URL.String()` makes of the parsed
//! value: that string is hashed into the member ID, written into the member
//! JSON and compared when bootstrap flags are checked. [`PeerUrl::as_str`]
//! returns exactly that string.
//!
//! Which etcd release's rules apply matters: 3.4 and 3.5 (checked against
//! 3.5.1) require `host:port` and an empty path for every scheme, `unix` and
//! `unixs` included; 3.6 (and 3.5.13 and later) skip both checks for `unix`
//! and `unixs`, so `unix:///run/etcd.sock` is a valid peer URL there.

use std::fmt;

use crate::etcd::TargetVersion;
use crate::go::net::split_host_port;
use crate::go::url::Url;

/// Longest single peer URL accepted, in bytes (before trimming).
///
/// etcd has no limit; this one keeps hostile input from costing memory and
/// time. A real peer URL is far shorter.
pub const MAX_URL_LEN: usize = 4096;

/// Longest comma-separated URL list accepted by [`parse_peer_url_list`], in
/// bytes.
pub const MAX_URL_LIST_LEN: usize = 1024 * 1024;

/// A peer URL that etcd would reject, with etcd's error text.
#[derive(Debug, thiserror::Error)]
#[cfg_attr(test, derive(PartialEq, Eq))]
#[non_exhaustive]
pub enum UrlError {
    /// Go's `url.Parse` failed: `parse "<url>": <reason>`, quoted as the
    /// Go release that built the target etcd quotes.
    #[error("{0}")]
    Parse(String),
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
/// use etcdsnap::internal::membership::parse_peer_url;
/// use etcdsnap::TargetVersion;
/// let u = parse_peer_url("  HTTP://Node1:2380 ", TargetVersion::V3_5)?;
/// assert_eq!(u.as_str(), "http://Node1:2380");
/// assert_eq!(u.scheme(), "http");
/// # Ok::<(), etcdsnap::internal::membership::UrlError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PeerUrl {
    parsed: Url,
    canonical: String,
}

impl PeerUrl {
    /// The canonical string: exactly Go's `URL.String()` of the parsed URL.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The scheme, lower-cased as Go's parser leaves it.
    pub fn scheme(&self) -> &str {
        self.parsed.scheme()
    }

    /// The decoded host (`host:port`, IPv6 literals with brackets) as Go's
    /// `URL.Host` holds it. Percent-decoding may leave non-UTF-8 bytes.
    pub fn host(&self) -> &[u8] {
        self.parsed.host()
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
/// use etcdsnap::internal::membership::parse_peer_url;
/// use etcdsnap::TargetVersion;
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
/// # Ok::<(), etcdsnap::internal::membership::UrlError>(())
/// ```
pub fn parse_peer_url(input: &str, version: TargetVersion) -> Result<PeerUrl, UrlError> {
    if input.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong { len: input.len() });
    }
    let trimmed = input.trim();
    let parsed =
        Url::parse(trimmed).map_err(|e| UrlError::Parse(e.message(version.go_release())))?;
    let scheme_ok = matches!(parsed.scheme(), "http" | "https" | "unix" | "unixs");
    if !scheme_ok {
        return Err(UrlError::Scheme(trimmed.to_owned()));
    }
    let unix = matches!(parsed.scheme(), "unix" | "unixs");
    if !(unix && version.relaxed_unix_urls()) {
        if split_host_port(parsed.host()).is_err() {
            return Err(UrlError::HostPort(trimmed.to_owned()));
        }
        if !parsed.path().is_empty() {
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
/// use etcdsnap::internal::membership::parse_peer_url_list;
/// use etcdsnap::TargetVersion;
/// let urls = parse_peer_url_list("http://b:2,HTTP://a:1", TargetVersion::V3_5)?;
/// let strs: Vec<&str> = urls.iter().map(|u| u.as_str()).collect();
/// assert_eq!(strs, ["http://a:1", "http://b:2"]);
/// assert_eq!(
///     parse_peer_url_list("http://a:1,", TargetVersion::V3_5).unwrap_err().to_string(),
///     "URL scheme must be http, https, unix, or unixs: "
/// );
/// # Ok::<(), etcdsnap::internal::membership::UrlError>(())
/// ```
pub fn parse_peer_url_list(list: &str, version: TargetVersion) -> Result<Vec<PeerUrl>, UrlError> {
    if list.len() > MAX_URL_LIST_LEN {
        return Err(UrlError::ListTooLong { len: list.len() });
    }
    let items: Vec<&str> = list.split(',').collect();
    parse_peer_urls(&items, version)
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
}
