//! Whether the egress proxy may dial an address: it refuses anything on
//! this machine, on a private network, in the cloud metadata ranges or in
//! any other special-purpose block, whatever name led there.
//!
//! # Policy
//!
//! The tables below hold every entry of the IANA IPv4 Special-Purpose
//! Address Registry and the IANA IPv6 Special-Purpose Address Registry
//! (RFC 6890, as last updated 2025-10-09:
//! <https://www.iana.org/assignments/iana-ipv4-special-registry/> and
//! <https://www.iana.org/assignments/iana-ipv6-special-registry/>), the
//! entries that have since ended (`192.88.99.0/24`, `2001:10::/28`)
//! included, plus the blocks those registries leave to others: multicast
//! (`224.0.0.0/4`, RFC 5771; `ff00::/8`, RFC 4291), the deprecated
//! site-local `fec0::/10` (RFC 3879) and the deprecated IPv4-compatible
//! `::/96` (RFC 4291 section 2.5.5.1).
//!
//! * Every address in any of these blocks is refused, even where the
//!   registry calls the block globally reachable: those are anycast
//!   service addresses (PCP, TURN, AS112, AMT, DNS-SD) or identifiers
//!   (ORCHIDv2, DRIP), none of them a host a sandbox has business with.
//! * Two IPv6 blocks only wrap an IPv4 address that is the very address
//!   dialed, and are judged by that IPv4 address: IPv4-mapped
//!   `::ffff:0:0/96` (RFC 4291 section 2.5.5.2: the socket dials the IPv4
//!   address itself) and the well-known NAT64 prefix `64:ff9b::/96`
//!   (RFC 6052: the translator dials the IPv4 address in the low 32 bits).
//!   So a public host reached through NAT64 passes and
//!   `::ffff:169.254.169.254` does not.
//! * 6to4 `2002::/16` (RFC 3056) and Teredo `2001::/32` (RFC 4380) also
//!   carry an IPv4 address, but it is a tunnel end, not the host: the host
//!   sits behind it at an address of that site's choosing, possibly a
//!   network the IPv4 address says nothing about. Both are refused whole,
//!   as is the local-use NAT64 prefix `64:ff9b:1::/48` (RFC 8215), whose
//!   translator is a network's own and whose IPv4 address sits where that
//!   network chose.
//! * An IPv6 address outside `2000::/3`, the only block allocated for
//!   global unicast (RFC 4291 section 2.4, IANA IPv6 Address Space
//!   registry), is refused too, so that a block set aside after these
//!   tables were written is refused until it is understood.
//!
//! Each refusal names the block, its RFC and its purpose, for the 403.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` is refused, in words for the 403's reason (e.g. "a
/// special-purpose address (64:ff9b:1::/48, RFC 8215: local-use IPv4/IPv6
/// translation)"), or `None` when the proxy may dial it. The reason names
/// the most specific block holding `ip`; see the module documentation for
/// the policy.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4).map(|block| block.why),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

/// An IPv4 block with its reasons: met directly, inside an IPv4-mapped
/// address, inside a NAT64 address.
struct V4Block {
    net: [u8; 4],
    bits: u32,
    why: &'static str,
    mapped: &'static str,
    nat64: &'static str,
}

/// One IPv4 block; `$why` is the reason in words, written once and
/// reused for the wrapped forms.
macro_rules! v4 {
    ($net:expr, $bits:literal, $why:literal) => {
        V4Block {
            net: $net,
            bits: $bits,
            why: $why,
            mapped: concat!(
                "an IPv4-mapped address (::ffff:0:0/96, RFC 4291) carrying ",
                $why
            ),
            nat64: concat!("a NAT64 address (64:ff9b::/96, RFC 6052) carrying ", $why),
        }
    };
}

/// The IANA IPv4 Special-Purpose Address Registry, every entry, then
/// multicast.
const V4_BLOCKS: &[V4Block] = &[
    v4!(
        [0, 0, 0, 0],
        8,
        "a special-purpose address (0.0.0.0/8, RFC 791: \"this network\")"
    ),
    v4!(
        [0, 0, 0, 0],
        32,
        "a special-purpose address (0.0.0.0/32, RFC 1122: \"this host on this network\")"
    ),
    v4!(
        [10, 0, 0, 0],
        8,
        "a special-purpose address (10.0.0.0/8, RFC 1918: private use)"
    ),
    v4!(
        [100, 64, 0, 0],
        10,
        "a special-purpose address (100.64.0.0/10, RFC 6598: shared address space, carrier-grade NAT)"
    ),
    v4!(
        [127, 0, 0, 0],
        8,
        "a special-purpose address (127.0.0.0/8, RFC 1122: loopback)"
    ),
    v4!(
        [169, 254, 0, 0],
        16,
        "a special-purpose address (169.254.0.0/16, RFC 3927: link local, where cloud metadata services answer)"
    ),
    v4!(
        [172, 16, 0, 0],
        12,
        "a special-purpose address (172.16.0.0/12, RFC 1918: private use)"
    ),
    v4!(
        [192, 0, 0, 0],
        24,
        "a special-purpose address (192.0.0.0/24, RFC 6890: IETF protocol assignments)"
    ),
    v4!(
        [192, 0, 0, 0],
        29,
        "a special-purpose address (192.0.0.0/29, RFC 7335: IPv4 service continuity prefix)"
    ),
    v4!(
        [192, 0, 0, 8],
        32,
        "a special-purpose address (192.0.0.8/32, RFC 7600: IPv4 dummy address)"
    ),
    v4!(
        [192, 0, 0, 9],
        32,
        "a special-purpose address (192.0.0.9/32, RFC 7723: Port Control Protocol anycast)"
    ),
    v4!(
        [192, 0, 0, 10],
        32,
        "a special-purpose address (192.0.0.10/32, RFC 8155: TURN anycast)"
    ),
    v4!(
        [192, 0, 0, 170],
        32,
        "a special-purpose address (192.0.0.170/32, RFC 8880: NAT64/DNS64 discovery)"
    ),
    v4!(
        [192, 0, 0, 171],
        32,
        "a special-purpose address (192.0.0.171/32, RFC 8880: NAT64/DNS64 discovery)"
    ),
    v4!(
        [192, 0, 2, 0],
        24,
        "a special-purpose address (192.0.2.0/24, RFC 5737: documentation, TEST-NET-1)"
    ),
    v4!(
        [192, 31, 196, 0],
        24,
        "a special-purpose address (192.31.196.0/24, RFC 7535: AS112 service)"
    ),
    v4!(
        [192, 52, 193, 0],
        24,
        "a special-purpose address (192.52.193.0/24, RFC 7450: AMT relay anycast)"
    ),
    v4!(
        [192, 88, 99, 0],
        24,
        "a special-purpose address (192.88.99.0/24, RFC 7526: deprecated 6to4 relay anycast)"
    ),
    v4!(
        [192, 88, 99, 2],
        32,
        "a special-purpose address (192.88.99.2/32, RFC 6751: 6a44 relay anycast)"
    ),
    v4!(
        [192, 168, 0, 0],
        16,
        "a special-purpose address (192.168.0.0/16, RFC 1918: private use)"
    ),
    v4!(
        [192, 175, 48, 0],
        24,
        "a special-purpose address (192.175.48.0/24, RFC 7534: direct delegation AS112 service)"
    ),
    v4!(
        [198, 18, 0, 0],
        15,
        "a special-purpose address (198.18.0.0/15, RFC 2544: benchmarking)"
    ),
    v4!(
        [198, 51, 100, 0],
        24,
        "a special-purpose address (198.51.100.0/24, RFC 5737: documentation, TEST-NET-2)"
    ),
    v4!(
        [203, 0, 113, 0],
        24,
        "a special-purpose address (203.0.113.0/24, RFC 5737: documentation, TEST-NET-3)"
    ),
    v4!(
        [240, 0, 0, 0],
        4,
        "a special-purpose address (240.0.0.0/4, RFC 1112: reserved)"
    ),
    v4!(
        [255, 255, 255, 255],
        32,
        "a special-purpose address (255.255.255.255/32, RFC 919: limited broadcast)"
    ),
    // Not in the special-purpose registry: multicast has its own (IANA
    // IPv4 Multicast Address Space), and is never a host to connect to.
    v4!(
        [224, 0, 0, 0],
        4,
        "a multicast address (224.0.0.0/4, RFC 5771)"
    ),
];

fn mask(bits: u32, width: u32) -> u128 {
    // `checked_shl` because a shift by the full width is an overflow: a
    // /0 block has an empty mask.
    u128::MAX.checked_shl(width - bits).unwrap_or(0) & (u128::MAX >> (128 - width))
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = mask(bits, 32);
    (u128::from(u32::from(ip)) & mask) == (u128::from(u32::from(Ipv4Addr::from(net))) & mask)
}

/// The most specific block holding `ip`, if any.
fn refusal_v4(ip: Ipv4Addr) -> Option<&'static V4Block> {
    V4_BLOCKS
        .iter()
        .filter(|block| in_v4(ip, block.net, block.bits))
        .max_by_key(|block| block.bits)
}

/// The IANA IPv6 Special-Purpose Address Registry, every entry but the
/// two judged by the IPv4 address they carry (`::ffff:0:0/96` and
/// `64:ff9b::/96`, see [`embedded_v4`]), then the blocks other registries
/// keep: (prefix, length, reason).
const V6_BLOCKS: &[([u16; 8], u32, &str)] = &[
    (
        [0, 0, 0, 0, 0, 0, 0, 1],
        128,
        "a special-purpose address (::1/128, RFC 4291: loopback)",
    ),
    (
        [0, 0, 0, 0, 0, 0, 0, 0],
        128,
        "a special-purpose address (::/128, RFC 4291: unspecified)",
    ),
    (
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        "a special-purpose address (64:ff9b:1::/48, RFC 8215: local-use IPv4/IPv6 translation)",
    ),
    (
        [0x100, 0, 0, 0, 0, 0, 0, 0],
        64,
        "a special-purpose address (100::/64, RFC 6666: discard only)",
    ),
    (
        [0x100, 0, 0, 1, 0, 0, 0, 0],
        64,
        "a special-purpose address (100:0:0:1::/64, RFC 9780: dummy IPv6 prefix)",
    ),
    (
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "a special-purpose address (2001::/23, RFC 2928: IETF protocol assignments)",
    ),
    (
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        32,
        "a special-purpose address (2001::/32, RFC 4380: Teredo)",
    ),
    (
        [0x2001, 1, 0, 0, 0, 0, 0, 1],
        128,
        "a special-purpose address (2001:1::1/128, RFC 7723: Port Control Protocol anycast)",
    ),
    (
        [0x2001, 1, 0, 0, 0, 0, 0, 2],
        128,
        "a special-purpose address (2001:1::2/128, RFC 8155: TURN anycast)",
    ),
    (
        [0x2001, 1, 0, 0, 0, 0, 0, 3],
        128,
        "a special-purpose address (2001:1::3/128, RFC 9665: DNS-SD service registration anycast)",
    ),
    (
        [0x2001, 2, 0, 0, 0, 0, 0, 0],
        48,
        "a special-purpose address (2001:2::/48, RFC 5180: benchmarking)",
    ),
    (
        [0x2001, 3, 0, 0, 0, 0, 0, 0],
        32,
        "a special-purpose address (2001:3::/32, RFC 7450: AMT)",
    ),
    (
        [0x2001, 4, 0x112, 0, 0, 0, 0, 0],
        48,
        "a special-purpose address (2001:4:112::/48, RFC 7535: AS112 service)",
    ),
    (
        [0x2001, 0x10, 0, 0, 0, 0, 0, 0],
        28,
        "a special-purpose address (2001:10::/28, RFC 4843: deprecated ORCHID)",
    ),
    (
        [0x2001, 0x20, 0, 0, 0, 0, 0, 0],
        28,
        "a special-purpose address (2001:20::/28, RFC 7343: ORCHIDv2)",
    ),
    (
        [0x2001, 0x30, 0, 0, 0, 0, 0, 0],
        28,
        "a special-purpose address (2001:30::/28, RFC 9374: DRIP entity tags)",
    ),
    (
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "a special-purpose address (2001:db8::/32, RFC 3849: documentation)",
    ),
    (
        [0x2002, 0, 0, 0, 0, 0, 0, 0],
        16,
        "a special-purpose address (2002::/16, RFC 3056: 6to4)",
    ),
    (
        [0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0],
        48,
        "a special-purpose address (2620:4f:8000::/48, RFC 7534: direct delegation AS112 service)",
    ),
    (
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "a special-purpose address (3fff::/20, RFC 9637: documentation)",
    ),
    (
        [0x5f00, 0, 0, 0, 0, 0, 0, 0],
        16,
        "a special-purpose address (5f00::/16, RFC 9602: segment routing (SRv6) SIDs)",
    ),
    (
        [0xfc00, 0, 0, 0, 0, 0, 0, 0],
        7,
        "a special-purpose address (fc00::/7, RFC 4193: unique local, where some cloud metadata services answer)",
    ),
    (
        [0xfe80, 0, 0, 0, 0, 0, 0, 0],
        10,
        "a special-purpose address (fe80::/10, RFC 4291: link-local unicast)",
    ),
    // Deprecated blocks the registry no longer lists, and multicast,
    // which has its own registry (IANA IPv6 Multicast Address Space).
    (
        [0, 0, 0, 0, 0, 0, 0, 0],
        96,
        "a deprecated IPv4-compatible address (::/96, RFC 4291 section 2.5.5.1)",
    ),
    (
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        "a deprecated site-local address (fec0::/10, RFC 3879)",
    ),
    (
        [0xff00, 0, 0, 0, 0, 0, 0, 0],
        8,
        "a multicast address (ff00::/8, RFC 4291)",
    ),
];

/// Outside the only block allocated for global unicast.
const NOT_GLOBAL_UNICAST: &str =
    "an address outside global unicast (2000::/3, RFC 4291 section 2.4: not allocated for hosts)";

fn in_v6(ip: Ipv6Addr, net: [u16; 8], bits: u32) -> bool {
    let mask = mask(bits, 128);
    (u128::from(ip) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
}

/// The two ways an IPv6 address carries the IPv4 address it reaches.
#[derive(Clone, Copy)]
enum Wrapper {
    /// `::ffff:0:0/96` (RFC 4291 section 2.5.5.2).
    Mapped,
    /// `64:ff9b::/96` (RFC 6052).
    Nat64,
}

impl Wrapper {
    fn reason(self, block: &V4Block) -> &'static str {
        match self {
            Wrapper::Mapped => block.mapped,
            Wrapper::Nat64 => block.nat64,
        }
    }
}

/// The IPv4 address `ip` carries when it is IPv4-mapped or in the
/// well-known NAT64 prefix: in both, the low 32 bits (RFC 4291 section
/// 2.5.5.2; RFC 6052 section 2.2, for a /96).
fn embedded_v4(ip: Ipv6Addr) -> Option<(Wrapper, Ipv4Addr)> {
    // The low 32 bits; the truncation is the point.
    let low = Ipv4Addr::from(u128::from(ip) as u32);
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96) {
        Some((Wrapper::Mapped, low))
    } else if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        Some((Wrapper::Nat64, low))
    } else {
        None
    }
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some((wrapper, v4)) = embedded_v4(ip) {
        return refusal_v4(v4).map(|block| wrapper.reason(block));
    }
    let special = V6_BLOCKS
        .iter()
        .filter(|(net, bits, _)| in_v6(ip, *net, *bits))
        .max_by_key(|(_, bits, _)| *bits)
        .map(|(_, _, why)| *why);
    special.or_else(|| (!in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3)).then_some(NOT_GLOBAL_UNICAST))
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
            "192.0.0.9",
            "192.31.196.1",
            "192.52.193.1",
            "192.175.48.6",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:192.0.0.170",
            "64:ff9b::a00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::808:808",
            "64:ff9b:1::7f00:1",
            "2002:a00:1::",
            // 6to4 names a tunnel end, not the host: refused whole.
            "2002:808:808::",
            "::127.0.0.1",
            "::8.8.8.8",
            "100::1",
            "100:0:0:1::1",
            "2001:db8::1",
            "2001:1::1",
            "2001:4:112::1",
            "2620:4f:8000::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001::1",
            // Outside 2000::/3 and in no registry: refused all the same.
            "4000::1",
            "::ffff:0:8.8.8.8",
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
            "192.0.1.1",
            "192.88.98.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:82a::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "64:ff9b::1.1.1.1",
        ] {
            assert!(
                !refused(ip),
                "{ip} is public: {:?}",
                refusal(ip.parse().unwrap())
            );
        }
    }

    #[test]
    fn a_refusal_names_the_most_specific_block() {
        let why = |text: &str| refusal(text.parse().unwrap()).unwrap();
        assert_eq!(
            why("64:ff9b:1::1"),
            "a special-purpose address (64:ff9b:1::/48, RFC 8215: local-use IPv4/IPv6 translation)"
        );
        assert!(why("192.0.0.9").contains("192.0.0.9/32"));
        assert!(why("0.0.0.0").contains("0.0.0.0/32"));
        assert!(why("2001::1").contains("2001::/32, RFC 4380"));
        assert_eq!(
            why("::ffff:10.0.0.1"),
            "an IPv4-mapped address (::ffff:0:0/96, RFC 4291) carrying a special-purpose \
             address (10.0.0.0/8, RFC 1918: private use)"
        );
        assert!(why("64:ff9b::a9fe:a9fe").starts_with("a NAT64 address (64:ff9b::/96"));
        assert!(why("64:ff9b::a9fe:a9fe").contains("169.254.0.0/16"));
        assert_eq!(why("4000::1"), NOT_GLOBAL_UNICAST);
    }
}
