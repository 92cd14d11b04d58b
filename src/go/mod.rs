//! Ports of the Go standard library behaviour that etcd's output depends on.
//!
//! etcd writes peer URLs, member JSON and error texts through Go's
//! `net/url`, `net`, `strconv` and `encoding/json`. To be byte-identical we
//! reproduce the parts that matter, each in its own file, knowing nothing of
//! etcd:
//!
//! * [`url`]: `url.Parse` and `URL.String()`;
//! * [`net`]: `net.SplitHostPort`, `net.ParseIP`, `net.JoinHostPort`,
//!   `IP.String()`, `LookupPort`;
//! * [`quote`]: `strconv.Quote` (`%q`);
//! * [`json`]: `encoding/json`'s string encoder;
//! * [`errno`]: how Go prints an OS error;
//! * [`hex`]: `encoding/hex`'s `EncodeToString`;
//! * [`time`]: RFC 3339 times as `time.Time.Format` prints them in UTC.
//!
//! Some of these changed between Go releases, and each etcd release was
//! built with a different Go; [`GoRelease`] names the release whose
//! behaviour to reproduce.

pub mod errno;
pub mod hex;
pub mod isprint;
pub mod json;
pub mod net;
pub mod quote;
pub mod time;
pub mod url;

/// A Go toolchain release (Go 1.x), for the library behaviours that changed
/// between releases.
///
/// ```
/// use etcdsnap::internal::go::GoRelease;
/// assert!(GoRelease::GO1_16 < GoRelease::GO1_22);
/// assert!(!GoRelease::GO1_16.quotes_del_as_hex());
/// assert!(GoRelease::GO1_22.json_short_escapes());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoRelease {
    minor: u32,
}

impl GoRelease {
    /// Go 1.16 (built etcd 3.5.1).
    pub const GO1_16: GoRelease = GoRelease { minor: 16 };
    /// Go 1.19 (built Debian's etcd 3.4.23).
    pub const GO1_19: GoRelease = GoRelease { minor: 19 };
    /// Go 1.22.
    pub const GO1_22: GoRelease = GoRelease { minor: 22 };
    /// Go 1.24.
    pub const GO1_24: GoRelease = GoRelease { minor: 24 };
    /// Go 1.25 (etcd v3.6.14's `.go-version`).
    pub const GO1_25: GoRelease = GoRelease { minor: 25 };
    /// Go 1.26 (etcd v3.7.1's `.go-version`).
    pub const GO1_26: GoRelease = GoRelease { minor: 26 };

    /// Go 1.`minor`.
    pub const fn new(minor: u32) -> GoRelease {
        GoRelease { minor }
    }

    /// The minor version.
    pub const fn minor(self) -> u32 {
        self.minor
    }

    /// `strconv.Quote` writes DEL as `\x7f` from Go 1.19 on (`\u007f` before).
    pub fn quotes_del_as_hex(self) -> bool {
        self.minor >= 19
    }

    /// `encoding/json` writes backspace and form feed as `\b` and `\f` from
    /// Go 1.22 on (`\u0008` and `\u000c` before).
    pub fn json_short_escapes(self) -> bool {
        self.minor >= 22
    }

    /// `net.ParseIP` accepts IPv4 fields with leading zeros before Go 1.17.
    pub fn ipv4_leading_zeros(self) -> bool {
        self.minor < 17
    }
}
