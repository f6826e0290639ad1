#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! The egress address check against IANA's special-purpose registries,
//! read from copies of IANA's own CSV files (`tests/data/`), not from the
//! check's tables: every entry's first, middle and last address is
//! refused, and the refusal names the most specific entry holding it;
//! the two prefixes that carry the dialed IPv4 address (`::ffff:0:0/96`,
//! `64:ff9b::/96`) are judged by that address instead.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smithers_sandbox::egress::address_refusal;

/// The columns of both registries (RFC 6890 section 2.1).
const HEADER: [&str; 10] = [
    "Address Block",
    "Name",
    "RFC",
    "Allocation Date",
    "Termination Date",
    "Source",
    "Destination",
    "Forwardable",
    "Globally Reachable",
    "Reserved-by-Protocol",
];

/// A registry block: its text as IANA writes it (footnote marks dropped),
/// first address and prefix length.
#[derive(Debug, Clone)]
struct Block {
    text: String,
    net: IpAddr,
    bits: u32,
}

impl Block {
    fn width(&self) -> u32 {
        if self.net.is_ipv4() { 32 } else { 128 }
    }

    fn first(&self) -> u128 {
        to_bits(self.net)
    }

    fn last(&self) -> u128 {
        let host = if self.bits == self.width() {
            0
        } else {
            u128::MAX >> (128 - (self.width() - self.bits))
        };
        self.first() | host
    }

    fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.net.is_ipv4() && (self.first()..=self.last()).contains(&to_bits(ip))
    }

    /// The first, a middle and the last address.
    fn samples(&self) -> [IpAddr; 3] {
        let (first, last) = (self.first(), self.last());
        let middle = first + (last - first) / 2 + 1;
        [first, middle.min(last), last].map(|bits| from_bits(bits, self.net.is_ipv4()))
    }
}

fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_bits(bits: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(bits).unwrap()))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

/// The records of a CSV file (RFC 4180: quoted fields may hold commas,
/// line breaks and doubled quotes), after the leading `#` comment lines.
fn records(text: &str) -> Vec<Vec<String>> {
    let body: String = text
        .lines()
        .skip_while(|line| line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let mut quoted = false;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "an unterminated quoted field");
    records
}

/// `text` without IANA's footnote marks (" [2]").
fn without_footnotes(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let close = rest[open..].find(']').map(|i| open + i);
        match close {
            Some(close) if rest[open + 1..close].chars().all(|c| c.is_ascii_digit()) => {
                out.push_str(rest[..open].trim_end());
                rest = &rest[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out.trim().to_string()
}

/// Every block of a registry file, one per address in the first column.
fn registry(file: &str) -> Vec<Block> {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let records = records(&text);
    assert_eq!(records[0], HEADER, "{file}: the registry's columns");
    let mut blocks = Vec::new();
    for record in &records[1..] {
        assert_eq!(record.len(), HEADER.len(), "{file}: {record:?}");
        for text in without_footnotes(&record[0]).split(',') {
            let text = text.trim().to_string();
            let (net, bits) = text.split_once('/').unwrap();
            blocks.push(Block {
                net: net.parse().unwrap(),
                bits: bits.parse().unwrap(),
                text,
            });
        }
    }
    blocks
}

/// Multicast: a registry of its own (IANA IPv4 Multicast Address Space),
/// refused as well.
fn multicast_v4() -> Block {
    Block {
        text: "224.0.0.0/4".into(),
        net: "224.0.0.0".parse().unwrap(),
        bits: 4,
    }
}

/// The most specific of `blocks` holding `ip`.
fn most_specific(blocks: &[Block], ip: IpAddr) -> Option<&Block> {
    blocks
        .iter()
        .filter(|block| block.contains(ip))
        .max_by_key(|block| block.bits)
}

/// The prefixes whose addresses are judged by the IPv4 address in their
/// low 32 bits, with the words a refusal through them starts with.
const EMBEDDING: [(&str, &str); 2] = [
    ("::ffff:0:0/96", "an IPv4-mapped address (::ffff:0:0/96"),
    ("64:ff9b::/96", "a NAT64 address (64:ff9b::/96"),
];

fn embedding(ip: IpAddr) -> Option<(Ipv4Addr, &'static str)> {
    let IpAddr::V6(v6) = ip else { return None };
    EMBEDDING.iter().find_map(|(prefix, words)| {
        let (net, _) = prefix.split_once('/').unwrap();
        let net: Ipv6Addr = net.parse().unwrap();
        (u128::from(v6) >> 32 == u128::from(net) >> 32).then(|| {
            (
                Ipv4Addr::from(u32::try_from(u128::from(v6) & 0xffff_ffff).unwrap()),
                *words,
            )
        })
    })
}

/// What the check must answer for `ip`: refused, naming `block`, after
/// `wrapper` when the address was judged by the IPv4 address it carries.
fn expect(ip: IpAddr, v4: &[Block], v6: &[Block]) -> Option<(String, Option<&'static str>)> {
    if let Some((inner, words)) = embedding(ip) {
        return most_specific(v4, IpAddr::V4(inner)).map(|b| (b.text.clone(), Some(words)));
    }
    let table = if ip.is_ipv4() { v4 } else { v6 };
    let block = most_specific(table, ip).unwrap();
    Some((block.text.clone(), None))
}

fn check(ip: IpAddr, v4: &[Block], v6: &[Block], failures: &mut Vec<String>) {
    let got = address_refusal(ip);
    match (expect(ip, v4, v6), got) {
        (None, None) => {}
        (None, Some(why)) => failures.push(format!(
            "{ip}: refused ({why}), but carries a public IPv4 address"
        )),
        (Some((block, _)), None) => failures.push(format!("{ip}: passed, but is in {block}")),
        (Some((block, wrapper)), Some(why)) => {
            if !why.contains(&format!("({block},")) {
                failures.push(format!(
                    "{ip}: refused as \"{why}\", which does not name {block}"
                ));
            }
            if wrapper.is_some_and(|words| !why.starts_with(words)) {
                let words = wrapper.unwrap_or_default();
                failures.push(format!("{ip}: refused as \"{why}\", not as \"{words}…\""));
            }
        }
    }
}

fn registries() -> (Vec<Block>, Vec<Block>) {
    let mut v4 = registry("iana-ipv4-special-registry-1.csv");
    let v6 = registry("iana-ipv6-special-registry-1.csv");
    // The registries' size on their last update: a truncated copy fails here.
    assert_eq!(v4.len(), 26, "IPv4 blocks");
    assert_eq!(v6.len(), 25, "IPv6 blocks");
    assert!(v4.iter().all(|b| b.net.is_ipv4()) && v6.iter().all(|b| b.net.is_ipv6()));
    v4.push(multicast_v4());
    (v4, v6)
}

#[test]
fn every_address_of_every_registry_entry_is_refused() {
    let (v4, v6) = registries();
    let mut failures = Vec::new();
    let mut checked = 0;
    for block in v4.iter().chain(&v6) {
        for ip in block.samples() {
            check(ip, &v4, &v6, &mut failures);
            checked += 1;
        }
    }
    assert!(checked >= 3 * (26 + 25));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every IPv4 entry, met again inside each prefix that carries an IPv4
/// address, is refused through it; and a public IPv4 address passes
/// through both.
#[test]
fn an_embedded_ipv4_address_is_judged_as_itself() {
    let (v4, v6) = registries();
    let mut failures = Vec::new();
    for (prefix, _) in EMBEDDING {
        let (net, _) = prefix.split_once('/').unwrap();
        let net = u128::from(net.parse::<Ipv6Addr>().unwrap());
        for block in &v4 {
            for inner in block.samples() {
                let ip = IpAddr::V6(Ipv6Addr::from(net | to_bits(inner)));
                assert!(embedding(ip).is_some());
                check(ip, &v4, &v6, &mut failures);
            }
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "128.0.0.0",
            "223.255.255.255",
        ] {
            let inner: Ipv4Addr = public.parse().unwrap();
            let ip = IpAddr::V6(Ipv6Addr::from(net | u128::from(u32::from(inner))));
            if let Some(why) = address_refusal(ip) {
                failures.push(format!("{ip} carries public {inner}, yet: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_csv_reader_reads_iana_quoting() {
    let text = "# comment\nA,B\n\"x, y\",\"\"\"q\"\"\"\n\"two\n   lines\",z\n";
    assert_eq!(
        records(text),
        [
            vec!["A", "B"],
            vec!["x, y", "\"q\""],
            vec!["two\n   lines", "z"]
        ]
    );
    assert_eq!(without_footnotes("2002::/16 [3]"), "2002::/16");
    assert_eq!(without_footnotes("[RFC1918]"), "[RFC1918]");
}
