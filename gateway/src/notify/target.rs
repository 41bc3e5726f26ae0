//! Where a notification may be sent: `http(s)` URLs whose host resolves
//! only to public addresses — never loopback, private, link-local (cloud
//! metadata lives there), carrier-grade NAT, multicast or reserved ranges,
//! including those hidden in IPv4-mapped, NAT64 and 6to4 IPv6 forms —
//! unless `[notify] allow_private_targets`. Checked at registration and
//! again at every delivery (DNS can change); a delivery connects to the
//! addresses that were checked, so a rebinding answer in between is moot.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Url;

/// Longest target URL accepted.
pub const MAX_URL: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("must be an http or https URL of at most {MAX_URL} bytes")]
    BadUrl,
    #[error("must not carry credentials")]
    Credentials,
    #[error("{0} does not resolve")]
    Unresolved(String),
    #[error("{0} is a loopback, private, link-local or reserved address")]
    Private(IpAddr),
}

/// Parses a target URL (syntax only).
pub fn parse(url: &str) -> Result<Url, TargetError> {
    if url.len() > MAX_URL {
        return Err(TargetError::BadUrl);
    }
    let u = Url::parse(url).map_err(|_| TargetError::BadUrl)?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(TargetError::BadUrl);
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(TargetError::Credentials);
    }
    Ok(u)
}

/// The addresses `url` may be delivered to: all of its host's, each
/// checked. With `allow_private`, none is refused.
pub async fn resolve(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, TargetError> {
    let host = url.host_str().ok_or(TargetError::BadUrl)?;
    let port = url.port_or_known_default().ok_or(TargetError::BadUrl)?;
    // `[::1]` comes bracketed from the URL; lookup_host wants it bare.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|_| TargetError::Unresolved(host.to_string()))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(TargetError::Unresolved(host.to_string()));
    }
    if !allow_private {
        if let Some(a) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(TargetError::Private(a.ip()));
        }
    }
    Ok(addrs)
}

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    const BLOCKED: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network"
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // carrier-grade NAT
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local, cloud metadata
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation
        ([192, 88, 99, 0], 24),  // 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation
        ([203, 0, 113, 0], 24),  // documentation
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, broadcast
    ];
    !BLOCKED.iter().any(|(net, bits)| in_v4(ip, *net, *bits))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if ip.is_unspecified() || ip.is_loopback() {
        return false;
    }
    // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d).
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    // 6to4 (2002::/16) carries one in bits 16..48.
    if s[0] == 0x2002 {
        return is_public_v4(embedded_v4(s[1], s[2]));
    }
    let blocked = (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]); // discard-only 100::/64
    !blocked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a} passed");
        }
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::",
        ] {
            assert!(is_public(a.parse().unwrap()), "{a} refused");
        }
    }

    #[test]
    fn urls_are_http_without_credentials() {
        assert!(parse("https://hooks.example.com/x?y=1").is_ok());
        assert!(parse("http://[2606:4700::1]:8443/").is_ok());
        assert_eq!(parse("ftp://example.com/"), Err(TargetError::BadUrl));
        assert_eq!(parse("file:///etc/passwd"), Err(TargetError::BadUrl));
        assert_eq!(parse("not a url"), Err(TargetError::BadUrl));
        assert_eq!(
            parse("https://u:p@example.com/"),
            Err(TargetError::Credentials)
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert_eq!(parse(&long), Err(TargetError::BadUrl));
    }

    #[tokio::test]
    async fn resolution_is_checked() {
        let u = parse("http://127.0.0.1:9/hook").unwrap();
        assert!(matches!(
            resolve(&u, false).await,
            Err(TargetError::Private(_))
        ));
        assert_eq!(
            resolve(&u, true).await.unwrap(),
            vec!["127.0.0.1:9".parse().unwrap()]
        );
        let u = parse("http://[::ffff:169.254.169.254]/latest/meta-data").unwrap();
        assert!(matches!(
            resolve(&u, false).await,
            Err(TargetError::Private(_))
        ));
        // `localhost` resolves (from /etc/hosts) to loopback only.
        let u = parse("http://localhost:8080/").unwrap();
        assert!(matches!(
            resolve(&u, false).await,
            Err(TargetError::Private(_))
        ));
        let u = parse("https://8.8.8.8/").unwrap();
        assert_eq!(
            resolve(&u, false).await.unwrap(),
            vec!["8.8.8.8:443".parse().unwrap()]
        );
    }
}
