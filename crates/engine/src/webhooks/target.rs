//! Where webhooks may go: HTTPS to public addresses. Loopback, private, link-local and
//! other special addresses are refused (server-side request forgery), unless a
//! switch for local development allows them and plain HTTP.
//!
//! The URL is parsed once, by the same parser the HTTP client uses, so the host that
//! is checked is the host that is called.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

use crate::error::EngineError;

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Which addresses webhooks may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Public addresses over HTTPS only: production.
    PublicOnly,
    /// Also loopback, private and other special addresses, and plain HTTP: local
    /// development (`WEBHOOK_ALLOW_LOCAL_NETWORK=true`).
    LocalAllowed,
}

/// A checked endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as the HTTP client will use it.
    pub url: Url,
    /// Its host: a domain name, or an address literal.
    pub host: String,
    pub port: u16,
}

fn refused(detail: &str) -> EngineError {
    EngineError::WebhookUrlNotAllowed(detail.to_owned())
}

/// Checks the form of an endpoint URL: `https://host[:port]/path` (or `http://` when
/// local development is allowed), no user info, at most 2,048 characters.
pub fn parse(text: &str, reach: Reach) -> Result<Target, EngineError> {
    if text.len() > MAX_URL_LEN {
        return Err(refused("is longer than 2048 characters"));
    }
    let url = Url::parse(text).map_err(|_| refused("must be an absolute URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if reach == Reach::LocalAllowed => {}
        _ => return Err(refused("must use https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("must not carry user info"));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(refused("must name a host")),
    };
    let port = url
        .port_or_known_default()
        .ok_or_else(|| refused("has no port"))?;
    Ok(Target { url, host, port })
}

/// True for addresses webhooks must never reach from a production service.
pub fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => is_special_v6(v6),
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
    let s = ip.segments();
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_special_v4(v4);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link local
        || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0x0000) // Teredo: tunnels to IPv4
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard prefix
        // NAT64 reaches IPv4 through a translator: judge the IPv4 address inside.
        || (s[0] == 0x0064 && s[1] == 0xff9b && (is_special_v4(embedded_v4(s[6], s[7])) || s[2] != 0))
        // 6to4 carries an IPv4 address in bits 16..48.
        || (s[0] == 0x2002 && is_special_v4(embedded_v4(s[1], s[2])))
        // IPv4-compatible (deprecated) ::a.b.c.d
        || (s[..6] == [0, 0, 0, 0, 0, 0] && is_special_v4(embedded_v4(s[6], s[7])))
}

/// What a special address is told.
const SPECIAL: &str = "resolves to a loopback, private or otherwise special address";

/// Refuses a target whose host is a special address literal (unless local
/// development is allowed); a name passes, to be checked when it is resolved.
pub fn check_literal(target: &Target, reach: Reach) -> Result<(), EngineError> {
    let literal = match target.url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if reach == Reach::PublicOnly && is_special(literal) {
        return Err(refused(SPECIAL));
    }
    Ok(())
}

/// Resolves a host name and returns the addresses it may be called at: all of them
/// must be public (a name that resolves to any special address is refused), unless
/// local development is allowed.
pub async fn resolve_host(
    host: &str,
    port: u16,
    reach: Reach,
) -> Result<Vec<SocketAddr>, EngineError> {
    let lookup = tokio::net::lookup_host((host, port));
    let addrs: Vec<SocketAddr> = tokio::time::timeout(std::time::Duration::from_secs(5), lookup)
        .await
        .map_err(|_| refused("names a host that did not resolve in time"))?
        .map_err(|_| refused("names a host that does not resolve"))?
        .collect();
    if addrs.is_empty() {
        return Err(refused("names a host that does not resolve"));
    }
    if reach == Reach::PublicOnly && addrs.iter().any(|a| is_special(a.ip())) {
        return Err(refused(SPECIAL));
    }
    Ok(addrs)
}

/// Checks that the target may be called: an address literal must be public, a name
/// must resolve to public addresses only (unless local development is allowed).
pub async fn resolve(target: &Target, reach: Reach) -> Result<(), EngineError> {
    check_literal(target, reach)?;
    if matches!(target.url.host(), Some(url::Host::Domain(_))) {
        resolve_host(&target.host, target.port, reach).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_with_a_host_are_taken() {
        let t = parse("https://Hooks.Example.com/settlement", Reach::PublicOnly).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("hooks.example.com", 443));
        assert_eq!(
            parse("https://[2606:4700::1]:8443/x", Reach::PublicOnly)
                .unwrap()
                .port,
            8443
        );
        for bad in [
            "http://hooks.example.com/x",
            "ftp://x/y",
            "https://user:pw@hooks.example.com/",
            "https://",
            "hooks.example.com",
        ] {
            assert!(parse(bad, Reach::PublicOnly).is_err(), "{bad}");
        }
        assert_eq!(
            parse("http://127.0.0.1:9000/hook", Reach::LocalAllowed)
                .unwrap()
                .port,
            9000
        );
    }

    #[test]
    fn the_host_checked_is_the_host_the_client_calls() {
        // A backslash ends the host for the URL standard; the host is the loopback literal.
        let t = parse("https://127.0.0.1\\x.attacker.example/", Reach::PublicOnly).unwrap();
        assert_eq!(t.url.host_str(), Some("127.0.0.1"));
        // Decimal and hex forms of an IPv4 address are that address.
        assert_eq!(
            parse("https://2130706433/", Reach::PublicOnly)
                .unwrap()
                .host,
            "127.0.0.1"
        );
        assert_eq!(
            parse("https://0x7f.1/", Reach::PublicOnly).unwrap().host,
            "127.0.0.1"
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
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:0a00:0001::1",
            "2001:0:4136:e378::1",
            "::7f00:1",
        ] {
            assert!(is_special(special.parse().unwrap()), "{special}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::5db8:d822",
        ] {
            assert!(!is_special(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn literal_special_addresses_are_refused_without_the_switch() {
        for url in [
            "https://169.254.169.254/latest/meta-data",
            "https://127.0.0.1\\x.attacker.example/",
            "https://2130706433/",
        ] {
            let target = parse(url, Reach::PublicOnly).unwrap();
            assert!(resolve(&target, Reach::PublicOnly).await.is_err(), "{url}");
        }
        let target = parse("https://169.254.169.254/", Reach::LocalAllowed).unwrap();
        assert!(resolve(&target, Reach::LocalAllowed).await.is_ok());
    }
}
