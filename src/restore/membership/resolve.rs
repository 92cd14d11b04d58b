//! Name resolution while advertised and cluster URLs are compared, as
//! etcd's `netutil.URLStringsEqual` does it.
//!
//! When the advertised URLs and the member's URLs differ textually, etcd
//! resolves host names (not `localhost`, not IP literals before 3.6) and
//! compares again; so does this module, through a [`HostResolver`]. etcd
//! 3.5.0 to 3.5.5, including the 3.5.1 reference, also resolved when the
//! lists were identical, and so failed (after a 30 s retry loop) on names
//! the restoring machine cannot resolve (etcd issue #14456); this module,
//! like 3.4.22+ and 3.5.6+, never does that. Texts of lookup failures other
//! than Go's own `no such host` cases come from the operating system, not
//! from Go's resolver.

use std::net::{IpAddr, ToSocketAddrs};

use crate::etcd::TargetVersion;
use crate::go::net::{
    addr_error, ip_string, join_host_port, lookup_port, parse_ip, parse_ipv6_zone, split_host_port,
};
use crate::go::quote::{quote, quote_list};
use crate::go::url::Url;

/// Looks up host names while advertised and cluster URLs are compared.
///
/// etcd only resolves when the two URL lists differ textually and only for
/// hosts that are neither `localhost` nor (before 3.6) IP literals.
pub trait HostResolver {
    /// Returns the first address `host` resolves to, or an error text.
    fn lookup(&self, host: &str) -> Result<IpAddr, String>;
}

/// Resolves with the operating system (`std::net::ToSocketAddrs`), one
/// attempt, no timeout of its own.
///
/// Names made only of numeric labels (`127.000.0.1`, `127.1`, `0x7f.1`) are
/// answered `no such host` without a lookup: they only get here when Go's
/// address parser rejected them, and Go's resolver then asks DNS for them as
/// names (verified with etcd 3.4.23), where the C library would read them as
/// addresses. Other failures carry the operating system's text, not Go's.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn lookup(&self, host: &str) -> Result<IpAddr, String> {
        let numeric_label = |label: &str| {
            let digits = label
                .strip_prefix("0x")
                .or_else(|| label.strip_prefix("0X"))
                .map_or_else(
                    || label.bytes().all(|b| b.is_ascii_digit()),
                    |hex| hex.bytes().all(|b| b.is_ascii_hexdigit()),
                );
            !label.is_empty() && digits
        };
        if host.is_empty() || host.split('.').all(numeric_label) {
            return Err(format!("lookup {host}: no such host"));
        }
        let mut addrs = (host, 0u16)
            .to_socket_addrs()
            .map_err(|e| format!("lookup {host}: {e}"))?;
        addrs
            .next()
            .map(|a| a.ip())
            .ok_or_else(|| format!("lookup {host}: no such host"))
    }
}

/// etcd's `netutil.URLStringsEqual` on two sorted lists of canonical URLs;
/// `Err` holds the detail text etcd puts in parentheses.
///
/// Lists that are equal after parsing are accepted without resolving any
/// name (etcd 3.4.22+, 3.5.6+, 3.6; 3.5.0 to 3.5.5 resolved even then).
pub(super) fn url_strings_equal(
    a: &[&str],
    b: &[&str],
    version: TargetVersion,
    resolver: &dyn HostResolver,
) -> Result<(), String> {
    let go = version.go_release();
    if a.len() != b.len() {
        return Err(format!(
            "len({}) != len({})",
            quote_list(a, go),
            quote_list(b, go)
        ));
    }
    let parse_all = |list: &[&str]| -> Result<Vec<Url>, String> {
        list.iter()
            .map(|s| {
                Url::parse(s).map_err(|_| match version {
                    TargetVersion::V3_5 => {
                        format!("failed to parse {}", quote(s.as_bytes(), go))
                    }
                    _ => format!("failed to parse string to URL: {}", quote(s.as_bytes(), go)),
                })
            })
            .collect()
    };
    let mut urls_a = parse_all(a)?;
    let mut urls_b = parse_all(b)?;
    sort_by_go_string(&mut urls_a);
    sort_by_go_string(&mut urls_b);
    if urls_a == urls_b {
        return Ok(());
    }
    let before_a: Vec<String> = urls_a.iter().map(Url::to_go_string).collect();
    let before_b: Vec<String> = urls_b.iter().map(Url::to_go_string).collect();
    let mut resolved_a = resolve_all(&urls_a, version, resolver)?;
    let mut resolved_b = resolve_all(&urls_b, version, resolver)?;
    sort_by_go_string(&mut resolved_a);
    sort_by_go_string(&mut resolved_b);
    let pairs = resolved_a.iter().zip(&resolved_b).enumerate();
    for (i, (ra, rb)) in pairs {
        if ra != rb {
            let ra = ra.to_go_string();
            let rb = rb.to_go_string();
            return Err(match version {
                TargetVersion::V3_5 => format!(
                    "{}(resolved from {}) != {}(resolved from {})",
                    quote(ra.as_bytes(), go),
                    quote(before_a.get(i).map_or(&[][..], |s| s.as_bytes()), go),
                    quote(rb.as_bytes(), go),
                    quote(before_b.get(i).map_or(&[][..], |s| s.as_bytes()), go),
                ),
                _ => format!(
                    "resolved urls: {} != {}",
                    quote(ra.as_bytes(), go),
                    quote(rb.as_bytes(), go)
                ),
            });
        }
    }
    Ok(())
}

fn sort_by_go_string(urls: &mut [Url]) {
    urls.sort_by_cached_key(|u| u.to_go_string().into_bytes());
}

/// etcd's `resolveTCPAddrs` for one list: re-parse, then replace each
/// resolvable host with `ip:port`.
fn resolve_all(
    urls: &[Url],
    version: TargetVersion,
    resolver: &dyn HostResolver,
) -> Result<Vec<Url>, String> {
    let go = version.go_release();
    let mut out = Vec::with_capacity(urls.len());
    for u in urls {
        let text = u.to_go_string();
        let mut reparsed = Url::parse(&text).map_err(|e| {
            format!(
                "failed to parse {} ({})",
                quote(text.as_bytes(), go),
                e.message(go)
            )
        })?;
        match resolve_url(&reparsed, version, resolver) {
            Ok(Some(host)) => reparsed.set_host(host.into_bytes()),
            Ok(None) => {}
            Err(e) => {
                return Err(format!(
                    "failed to resolve {} ({e})",
                    quote(text.as_bytes(), go)
                ));
            }
        }
        out.push(reparsed);
    }
    Ok(out)
}

/// etcd's `resolveURL`: `None` keeps the host as it is.
fn resolve_url(
    u: &Url,
    version: TargetVersion,
    resolver: &dyn HostResolver,
) -> Result<Option<String>, String> {
    if u.scheme() == "unix" || u.scheme() == "unixs" {
        return Ok(None);
    }
    let (host, port) = split_host_port(u.host()).map_err(|why| addr_error(u.host(), why))?;
    if host == b"localhost" {
        return Ok(None);
    }
    let host_text = std::str::from_utf8(host).ok();
    let literal = host_text.and_then(|h| parse_ip(h, version.go_release()));
    if literal.is_some() && version < TargetVersion::V3_6 {
        return Ok(None);
    }
    // resolveTCPAddr: the port first, then the address.
    let port = lookup_port(port)?;
    let (ip, zone) = match literal {
        Some(ip) => (ip, ""),
        None => {
            let name = host_text.unwrap_or_default();
            if name.is_empty() {
                // Go refuses the empty name before any lookup.
                return Err(format!(
                    "lookup {}: no such host",
                    String::from_utf8_lossy(host)
                ));
            }
            match parse_ipv6_zone(name) {
                Some((ip, zone)) => (IpAddr::V6(ip), zone),
                None => (resolver.lookup(name)?, ""),
            }
        }
    };
    let mut text = ip_string(ip);
    if !zone.is_empty() {
        text.push('%');
        text.push_str(zone);
    }
    Ok(Some(join_host_port(&text, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_resolver_refuses_numeric_names() {
        for host in ["", "127.000.0.1", "127.1", "0x7f.1", "2130706433"] {
            assert_eq!(
                SystemResolver.lookup(host),
                Err(format!("lookup {host}: no such host"))
            );
        }
    }
}
