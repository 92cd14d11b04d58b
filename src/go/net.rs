//! Go's `net` package helpers that etcd uses on peer URLs: splitting and
//! joining `host:port`, parsing IP literals, printing IPs, ports.

use std::net::IpAddr;

use super::GoRelease;

/// Go's `net.SplitHostPort`: splits `host:port`, `[v6]:port`; the error is
/// Go's reason text.
///
/// ```
/// use etcdsnap::internal::go::net::split_host_port;
/// assert_eq!(split_host_port(b"[::1]:2380"), Ok((&b"::1"[..], &b"2380"[..])));
/// assert_eq!(split_host_port(b"h"), Err("missing port in address"));
/// ```
pub fn split_host_port(hostport: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
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

/// Go's `net.ParseIP` as built into `release`: before Go 1.17 IPv4 fields
/// with leading zeros were accepted (and read as decimal).
///
/// ```
/// use etcdsnap::internal::go::{GoRelease, net::parse_ip};
/// assert!(parse_ip("010.0.0.1", GoRelease::GO1_16).is_some());
/// assert!(parse_ip("010.0.0.1", GoRelease::GO1_19).is_none());
/// ```
pub fn parse_ip(host: &str, release: GoRelease) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    if !release.ipv4_leading_zeros() {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut fields = host.split('.');
    for octet in &mut octets {
        let field = fields.next()?;
        if field.is_empty() || field.len() > 8 || !field.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = u8::try_from(field.parse::<u32>().ok()?).ok()?;
    }
    match fields.next() {
        None => Some(IpAddr::from(octets)),
        Some(_) => None,
    }
}

/// The zone form of an IPv6 literal that Go's resolver accepts without a
/// lookup: `addr%zone`, split at the last `%`.
pub fn parse_ipv6_zone(host: &str) -> Option<(std::net::Ipv6Addr, &str)> {
    let (addr, zone) = host.rsplit_once('%')?;
    if addr.is_empty() {
        return None;
    }
    Some((addr.parse().ok()?, zone))
}

/// Go's `net.AddrError` text.
pub fn addr_error(addr: &[u8], why: &str) -> String {
    if addr.is_empty() {
        why.to_owned()
    } else {
        format!("address {}: {why}", String::from_utf8_lossy(addr))
    }
}

/// Go's `LookupPort("tcp", port)` for the digit strings a parsed URL can
/// hold: empty means 0, more than 65535 is an error.
pub fn lookup_port(port: &[u8]) -> Result<u16, String> {
    if port.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(port)
        .ok()
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| {
            let trimmed = p.trim_start_matches('0');
            if trimmed.len() > 5 {
                None
            } else {
                trimmed.parse::<u32>().ok().or(Some(0))
            }
        })
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| addr_error(port, "invalid port"))
}

/// Go's `net.IP.String()`: IPv4 and IPv4-mapped IPv6 as dotted quads, other
/// IPv6 in RFC 5952 form.
pub fn ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
    }
}

/// Go's `net.JoinHostPort`.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn parse_ip_per_release() {
        // Go 1.16 (etcd 3.5.1) reads 127.000.0.1 as an address; later Go
        // hands it to the resolver.
        let old = GoRelease::GO1_16;
        assert_eq!(
            parse_ip("127.000.0.01", old),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        assert_eq!(parse_ip("127.000.0.01", GoRelease::GO1_19), None);
        assert_eq!(parse_ip("127.0.0.256", old), None);
        assert_eq!(parse_ip("127.0.0", old), None);
        assert_eq!(parse_ip("127.0.0.1.", old), None);
        assert_eq!(
            parse_ipv6_zone("fe80::1%eth0").map(|(_, z)| z),
            Some("eth0")
        );
        assert_eq!(parse_ipv6_zone("fe80::1%a%b"), None);
        assert_eq!(parse_ipv6_zone("%lo"), None);
    }

    #[test]
    fn ports_and_printing() {
        assert_eq!(lookup_port(b""), Ok(0));
        assert_eq!(lookup_port(b"02380"), Ok(2380));
        assert_eq!(lookup_port(b"0000000000065535"), Ok(65535));
        assert_eq!(
            lookup_port(b"65536"),
            Err("address 65536: invalid port".into())
        );
        assert_eq!(
            ip_string("::ffff:1.2.3.4".parse().unwrap_or(IpAddr::from([0u8; 4]))),
            "1.2.3.4"
        );
        assert_eq!(join_host_port("::1", 1), "[::1]:1");
        assert_eq!(join_host_port("h", 1), "h:1");
    }
}
