//! Whether an address is public: the proxy refuses to dial anything on
//! this machine, on a private network, or in the cloud metadata ranges,
//! whatever name led there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused, in words for the 403's reason.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "an unspecified (0.0.0.0/8) address"),
        ([10, 0, 0, 0], 8, "a private (10.0.0.0/8) address"),
        (
            [100, 64, 0, 0],
            10,
            "a carrier-grade NAT (100.64.0.0/10) address",
        ),
        ([127, 0, 0, 0], 8, "a loopback address"),
        (
            [169, 254, 0, 0],
            16,
            "a link-local or cloud metadata (169.254.0.0/16) address",
        ),
        ([172, 16, 0, 0], 12, "a private (172.16.0.0/12) address"),
        (
            [192, 0, 0, 0],
            24,
            "an IETF protocol (192.0.0.0/24) address",
        ),
        ([192, 0, 2, 0], 24, "a documentation (192.0.2.0/24) address"),
        (
            [192, 88, 99, 0],
            24,
            "a 6to4 relay (192.88.99.0/24) address",
        ),
        ([192, 168, 0, 0], 16, "a private (192.168.0.0/16) address"),
        (
            [198, 18, 0, 0],
            15,
            "a benchmarking (198.18.0.0/15) address",
        ),
        (
            [198, 51, 100, 0],
            24,
            "a documentation (198.51.100.0/24) address",
        ),
        (
            [203, 0, 113, 0],
            24,
            "a documentation (203.0.113.0/24) address",
        ),
        ([224, 0, 0, 0], 4, "a multicast address"),
        (
            [240, 0, 0, 0],
            4,
            "a reserved (240.0.0.0/4) or broadcast address",
        ),
    ];
    RANGES
        .iter()
        .find(|(net, bits, _)| in_v4(ip, *net, *bits))
        .map(|(_, _, why)| *why)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    (u128::from(ip) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    // Addresses that carry an IPv4 address are judged by it.
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return refusal_v4(embedded(segments[6], segments[7]))
            .map(|_| "an IPv6 address carrying a non-public IPv4 address");
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return refusal_v4(embedded(segments[1], segments[2]))
            .map(|_| "a 6to4 address carrying a non-public IPv4 address");
    }
    const RANGES: &[([u16; 8], u32, &str)] = &[
        ([0, 0, 0, 0, 0, 0, 0, 0], 128, "the unspecified address"),
        ([0, 0, 0, 0, 0, 0, 0, 1], 128, "a loopback address"),
        (
            [0, 0, 0, 0, 0, 0, 0, 0],
            96,
            "an IPv4-compatible (deprecated) address",
        ),
        (
            [0x100, 0, 0, 0, 0, 0, 0, 0],
            64,
            "a discard (100::/64) address",
        ),
        (
            [0x2001, 0, 0, 0, 0, 0, 0, 0],
            23,
            "an IETF special-purpose (2001::/23) address",
        ),
        (
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
            32,
            "a documentation (2001:db8::/32) address",
        ),
        (
            [0xfc00, 0, 0, 0, 0, 0, 0, 0],
            7,
            "a unique local (fc00::/7) or cloud metadata address",
        ),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "a link-local address"),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "a site-local address"),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "a multicast address"),
    ];
    RANGES
        .iter()
        .find(|(net, bits, _)| in_v6(ip, *net, *bits))
        .map(|(_, _, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        refusal(text.parse().unwrap()).is_some()
    }

    #[test]
    fn non_public_addresses_are_refused() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.100.100.200",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.2.10",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.9",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "::127.0.0.1",
            "100::1",
            "2001:db8::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001::1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:82a::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(
                !refused(ip),
                "{ip} is public: {:?}",
                refusal(ip.parse().unwrap())
            );
        }
    }
}
