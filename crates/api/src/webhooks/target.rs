//! Where webhooks may go: HTTPS to public addresses. Loopback, private, link-local and
//! other special addresses are refused (server-side request forgery), unless a
//! switch for local development allows them and plain HTTP.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::ApiError;

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A checked endpoint URL: its host and port, to be connected to only at the
/// addresses [`resolve`] approves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

fn refused(detail: &str) -> ApiError {
    ApiError::WebhookUrlNotAllowed(detail.to_owned())
}

/// Checks the form of an endpoint URL: `https://host[:port]/path` (or `http://` when
/// local development is allowed), no user info, at most 2,048 characters.
pub fn parse(url: &str, allow_local: bool) -> Result<Target, ApiError> {
    if url.len() > MAX_URL_LEN {
        return Err(refused("is longer than 2048 characters"));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| refused("must be an absolute URL"))?;
    let default_port = match scheme {
        "https" => 443,
        "http" if allow_local => 80,
        _ => return Err(refused("must use https")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty()
        || authority.contains('@')
        || rest
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(refused("must name a host, without user info or spaces"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| refused("has a malformed IPv6 host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| refused("has a bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(refused("has a malformed IPv6 host")),
            };
            (addr.to_owned(), port)
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse().map_err(|_| refused("has a bad port"))?,
            ),
            None => (authority.to_owned(), default_port),
        },
    };
    if host.is_empty() {
        return Err(refused("must name a host"));
    }
    Ok(Target {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// True for addresses webhooks must never reach from a production service.
pub fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_special_v4(v4),
            None => is_special_v6(v6),
        },
    }
}

fn is_special_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

fn is_special_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || ip.to_ipv4().is_some_and(|v4| is_special_v4(v4) && !v4.is_unspecified())
}

/// Resolves the target and returns the addresses it may be called at: all of them
/// must be public (a name that resolves to both is refused), unless local
/// development is allowed.
pub async fn resolve(target: &Target, allow_local: bool) -> Result<Vec<SocketAddr>, ApiError> {
    let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|_| refused("names a host that does not resolve"))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(refused("names a host that does not resolve"));
    }
    if !allow_local && addrs.iter().any(|a| is_special(a.ip())) {
        return Err(refused(
            "resolves to a loopback, private or otherwise special address",
        ));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_with_a_host_are_taken() {
        assert_eq!(
            parse("https://hooks.example.com/settlement", false).unwrap(),
            Target {
                host: "hooks.example.com".into(),
                port: 443
            }
        );
        assert_eq!(
            parse("https://[2606:4700::1]:8443/x", false).unwrap().port,
            8443
        );
        for bad in [
            "http://hooks.example.com/x",
            "ftp://x/y",
            "https://user:pw@hooks.example.com/",
            "https:///nohost",
            "hooks.example.com",
            "https://a b/",
        ] {
            assert!(parse(bad, false).is_err(), "{bad}");
        }
        assert_eq!(
            parse("http://127.0.0.1:9000/hook", true).unwrap().port,
            9000
        );
    }

    #[test]
    fn special_addresses_are_recognised() {
        for special in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
        ] {
            assert!(is_special(special.parse().unwrap()), "{special}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_special(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn literal_private_addresses_are_refused_without_the_switch() {
        let target = parse("https://169.254.169.254/latest/meta-data", false).unwrap();
        assert!(resolve(&target, false).await.is_err());
        assert!(resolve(&target, true).await.is_ok());
    }
}
