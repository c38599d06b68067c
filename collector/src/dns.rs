//! A small DNS stub client: PTR, A and AAAA queries over UDP, retried over TCP when the reply is
//! truncated. It exists for the forward-confirmed reverse lookup of management addresses
//! (`vendors::topology`): the standard library and tokio resolve forward only, a `getnameinfo`
//! binding needs `unsafe`, and the resolver crates are much heavier than these few hundred lines.
//!
//! * [`ResolverConfig`]: nameservers and `options timeout:n attempts:n`, from `/etc/resolv.conf`
//!   ([`ResolverConfig::system`]) or given directly (tests point it at a server of their own).
//! * [`reverse_lookup`], [`forward_lookup`], [`query`]: ask the nameservers in resolv.conf order,
//!   `attempts` rounds, until `deadline`; each try gets at most `timeout` and its share of the
//!   time left, so a dead first server leaves time for the next one.
//! * [`encode_query`], [`decode_reply`], [`answers`]: the wire format (RFC 1035): name
//!   compression (pointers must point backwards, so a loop cannot be built), CNAME chains in the
//!   answer section. A reply is used only when its id (random per query) and question match.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

/// The system resolver configuration.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// Record types used here.
pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
/// resolv.conf defaults and caps (as glibc: `MAXNS`, `RES_MAXRETRANS`, `RES_MAXRETRY`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_ATTEMPTS: u32 = 2;
const MAX_NAMESERVERS: usize = 3;
const MAX_TIMEOUT_SECS: u64 = 30;
const MAX_ATTEMPTS: u32 = 5;
/// Longest CNAME chain followed in one answer section.
const MAX_CNAME_HOPS: usize = 8;
/// Largest name on the wire (RFC 1035 §2.3.4).
const MAX_NAME_WIRE: usize = 255;
/// Receive buffer: replies without EDNS are at most 512 bytes, but some servers send more.
const UDP_BUFFER: usize = 4096;

/// Why a DNS query gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("no nameservers configured")]
    NoServers,
    #[error("cannot encode the name {0:?}")]
    BadName(String),
    #[error("malformed reply: {0}")]
    Malformed(&'static str),
    #[error("the server answered with rcode {0}")]
    Rcode(u8),
    #[error("no reply in time")]
    Timeout,
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
}

/// Where and how long to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    /// Asked in this order, each try on the next one.
    pub nameservers: Vec<SocketAddr>,
    /// The longest one try may take (`options timeout:n`, default 5 s).
    pub timeout: Duration,
    /// Rounds over all nameservers (`options attempts:n`, default 2).
    pub attempts: u32,
}

impl ResolverConfig {
    /// These nameservers with the resolv.conf defaults.
    pub fn new(nameservers: Vec<SocketAddr>) -> Self {
        ResolverConfig {
            nameservers,
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
        }
    }

    /// The configuration in resolv.conf `text`: `nameserver` lines (at most 3, port 53; link-local
    /// addresses with a `%zone` are skipped) and `options timeout:n attempts:n`. Without a
    /// nameserver the local one (127.0.0.1) is asked, as the C library does.
    pub fn parse(text: &str) -> Self {
        let mut config = ResolverConfig::new(Vec::new());
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok())
                        && config.nameservers.len() < MAX_NAMESERVERS
                    {
                        config.nameservers.push(SocketAddr::new(ip, 53));
                    }
                }
                Some("options") => {
                    for option in words {
                        if let Some(n) = option.strip_prefix("timeout:")
                            && let Ok(n) = n.parse::<u64>()
                        {
                            config.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_SECS));
                        } else if let Some(n) = option.strip_prefix("attempts:")
                            && let Ok(n) = n.parse::<u32>()
                        {
                            config.attempts = n.clamp(1, MAX_ATTEMPTS);
                        }
                    }
                }
                _ => {}
            }
        }
        if config.nameservers.is_empty() {
            config
                .nameservers
                .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        config
    }

    /// The system's configuration ([`RESOLV_CONF`]), read now (it may change while running).
    pub async fn system() -> Self {
        let text = tokio::fs::read_to_string(RESOLV_CONF)
            .await
            .unwrap_or_default();
        ResolverConfig::parse(&text)
    }
}

/// The data of one answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// PTR and CNAME targets, in presentation form without the trailing dot.
    Name(String),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// A type (or class) not read here.
    Other,
}

/// One record of the answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    pub data: RData,
}

/// A decoded reply: its header and the answer section (authority and additional are not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: u16,
    pub truncated: bool,
    pub rcode: u8,
    /// The first question (name, type), if the reply repeats it.
    pub question: Option<(String, u16)>,
    pub answers: Vec<Record>,
}

/// The name a PTR query asks for: `d.c.b.a.in-addr.arpa`, or the nibbles of an IPv6 address in
/// reverse under `ip6.arpa`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            out.push_str("ip6.arpa");
            out
        }
    }
}

/// Whether `name` is a host name (letters, digits, `-` and `_`, labels of 1 to 63 characters,
/// at most 253 in all): a PTR target that is not one is not used.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A recursive query (RD set) for `name` of type `qtype` with id `id`. `name` is dotted labels,
/// with or without the trailing dot, without escapes.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(12 + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let start = out.len();
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            let len = u8::try_from(label.len())
                .ok()
                .filter(|l| (1..=63).contains(l))
                .ok_or_else(|| DnsError::BadName(name.to_owned()))?;
            out.push(len);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - start > MAX_NAME_WIRE {
        return Err(DnsError::BadName(name.to_owned()));
    }
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

fn u16_at(msg: &[u8], pos: usize) -> Result<u16, DnsError> {
    match msg.get(pos..pos + 2) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(DnsError::Malformed("message ends inside a field")),
    }
}

/// Appends one label in presentation form: `.` and `\` escaped, bytes that are not printable
/// ASCII as `\DDD`, so a decoded name never contains a label separator it did not have.
fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x21..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
}

/// The name at `pos` and the position after it. A compression pointer must point before the
/// start of the name or of the part it continues, so pointers cannot form a loop.
pub fn read_name(msg: &[u8], start: usize) -> Result<(String, usize), DnsError> {
    let mut out = String::new();
    let mut pos = start;
    let mut limit = start;
    let mut after = None;
    let mut wire = 1usize;
    loop {
        let len = *msg
            .get(pos)
            .ok_or(DnsError::Malformed("name runs past the end"))?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                let end = after.unwrap_or(pos + 1);
                return Ok((out, end));
            }
            0x00 => {
                let label = msg
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or(DnsError::Malformed("label runs past the end"))?;
                wire += 1 + label.len();
                if wire > MAX_NAME_WIRE {
                    return Err(DnsError::Malformed("name longer than 255 bytes"));
                }
                if !out.is_empty() {
                    out.push('.');
                }
                push_label(&mut out, label);
                pos += 1 + label.len();
            }
            0xc0 => {
                let low = *msg
                    .get(pos + 1)
                    .ok_or(DnsError::Malformed("pointer runs past the end"))?;
                let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                if target >= limit {
                    return Err(DnsError::Malformed(
                        "compression pointer does not point backwards",
                    ));
                }
                after.get_or_insert(pos + 2);
                limit = target;
                pos = target;
            }
            _ => return Err(DnsError::Malformed("reserved label type")),
        }
    }
}

/// Decodes a reply: header, the first question, the answer section.
pub fn decode_reply(msg: &[u8]) -> Result<Reply, DnsError> {
    if msg.len() < 12 {
        return Err(DnsError::Malformed("shorter than a header"));
    }
    let id = u16_at(msg, 0)?;
    let flags = u16_at(msg, 2)?;
    if flags & 0x8000 == 0 {
        return Err(DnsError::Malformed("not a response"));
    }
    let qdcount = u16_at(msg, 4)?;
    let ancount = u16_at(msg, 6)?;
    let mut pos = 12;
    let mut question = None;
    for _ in 0..qdcount {
        let (name, next) = read_name(msg, pos)?;
        let qtype = u16_at(msg, next)?;
        u16_at(msg, next + 2)?;
        question.get_or_insert((name, qtype));
        pos = next + 4;
    }
    let mut answers = Vec::new();
    for _ in 0..ancount {
        let (name, next) = read_name(msg, pos)?;
        let rtype = u16_at(msg, next)?;
        let class = u16_at(msg, next + 2)?;
        let rdlen = usize::from(u16_at(msg, next + 8)?);
        let rdata_at = next + 10;
        let rdata = msg
            .get(rdata_at..rdata_at + rdlen)
            .ok_or(DnsError::Malformed("record data runs past the end"))?;
        let data = match (class, rtype) {
            (CLASS_IN, TYPE_A) => {
                let octets: [u8; 4] = rdata
                    .try_into()
                    .map_err(|_| DnsError::Malformed("A record is not 4 bytes"))?;
                RData::A(Ipv4Addr::from(octets))
            }
            (CLASS_IN, TYPE_AAAA) => {
                let octets: [u8; 16] = rdata
                    .try_into()
                    .map_err(|_| DnsError::Malformed("AAAA record is not 16 bytes"))?;
                RData::Aaaa(Ipv6Addr::from(octets))
            }
            (CLASS_IN, TYPE_PTR | TYPE_CNAME) => {
                let (target, end) = read_name(msg, rdata_at)?;
                if end != rdata_at + rdlen {
                    return Err(DnsError::Malformed("name does not fill the record data"));
                }
                RData::Name(target)
            }
            _ => RData::Other,
        };
        answers.push(Record { name, rtype, data });
        pos = rdata_at + rdlen;
    }
    Ok(Reply {
        id,
        truncated: flags & 0x0200 != 0,
        rcode: (flags & 0x000f) as u8,
        question,
        answers,
    })
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// The data of the records of type `qtype` that answer `name`, following the CNAME chain from
/// `name` in the answer section (at most 8 hops, a loop ends it).
pub fn answers<'a>(reply: &'a Reply, name: &str, qtype: u16) -> Vec<&'a RData> {
    let mut chain: Vec<&str> = vec![name];
    for _ in 0..MAX_CNAME_HOPS {
        let Some(current) = chain.last() else {
            break;
        };
        let next = reply.answers.iter().find_map(|r| match &r.data {
            RData::Name(target) if r.rtype == TYPE_CNAME && same_name(&r.name, current) => {
                Some(target.as_str())
            }
            _ => None,
        });
        match next {
            Some(target) if !chain.iter().any(|c| same_name(c, target)) => chain.push(target),
            _ => break,
        }
    }
    reply
        .answers
        .iter()
        .filter(|r| r.rtype == qtype && chain.iter().any(|c| same_name(c, &r.name)))
        .map(|r| &r.data)
        .collect()
}

/// A query id nobody off the path can guess: SipHash with the process's random keys over a
/// counter and the clock (the standard library has no public random number generator).
fn random_id() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(now);
    (hasher.finish() & 0xffff) as u16
}

/// One query on the wire and what its reply must repeat.
struct Asked<'a> {
    packet: Vec<u8>,
    id: u16,
    name: &'a str,
    qtype: u16,
}

impl Asked<'_> {
    /// Whether `reply` answers this query: same id and question (a reply to an error may leave
    /// the question out).
    fn answered_by(&self, reply: &Reply) -> bool {
        reply.id == self.id
            && match &reply.question {
                Some((qname, t)) => *t == self.qtype && same_name(qname, self.name),
                None => reply.rcode != 0,
            }
    }
}

/// One try against `server`: UDP, then TCP if the reply was truncated.
async fn exchange(server: SocketAddr, asked: &Asked<'_>) -> Result<Reply, DnsError> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    // Connected: the kernel drops datagrams from other addresses, and a closed port is an error
    // at once instead of a wait.
    socket.connect(server).await?;
    socket.send(&asked.packet).await?;
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let n = socket.recv(&mut buf).await?;
        let msg = buf.get(..n).unwrap_or_default();
        match decode_reply(msg) {
            Ok(reply) if asked.answered_by(&reply) => {
                if reply.truncated {
                    return exchange_tcp(server, asked).await;
                }
                return Ok(reply);
            }
            // A late reply to an earlier query or a forgery: keep waiting for ours.
            Ok(_) => {}
            // Unreadable but carrying our id: the server is broken, ask the next one.
            Err(e) if u16_at(msg, 0).ok() == Some(asked.id) => return Err(e),
            Err(_) => {}
        }
    }
}

async fn exchange_tcp(server: SocketAddr, asked: &Asked<'_>) -> Result<Reply, DnsError> {
    let mut stream = TcpStream::connect(server).await?;
    // A query is at most 12 + 255 + 4 bytes, so its length fits the 2-byte prefix.
    let len =
        u16::try_from(asked.packet.len()).map_err(|_| DnsError::BadName(asked.name.to_owned()))?;
    let mut framed = Vec::with_capacity(asked.packet.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&asked.packet);
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut msg).await?;
    let reply = decode_reply(&msg)?;
    if asked.answered_by(&reply) {
        Ok(reply)
    } else {
        Err(DnsError::Malformed("TCP reply to another query"))
    }
}

/// The records of type `qtype` answering `name` (CNAMEs followed), asking the nameservers of
/// `config` until one answers or `deadline` passes. An empty answer or NXDOMAIN is an answer
/// (no records); SERVFAIL, REFUSED, a malformed reply or silence move on to the next try.
pub async fn query(
    config: &ResolverConfig,
    name: &str,
    qtype: u16,
    deadline: Instant,
) -> Result<Vec<RData>, DnsError> {
    if config.nameservers.is_empty() {
        return Err(DnsError::NoServers);
    }
    let attempts = config.attempts.max(1);
    let total = config.nameservers.len() as u32 * attempts;
    let mut last = DnsError::Timeout;
    let mut tried = 0u32;
    for _ in 0..attempts {
        for server in &config.nameservers {
            let now = Instant::now();
            if now >= deadline {
                return Err(last);
            }
            // An even share of the time left, so the later servers get asked too.
            let limit = config.timeout.min((deadline - now) / (total - tried));
            tried += 1;
            let id = random_id();
            let asked = Asked {
                packet: encode_query(id, name, qtype)?,
                id,
                name,
                qtype,
            };
            match tokio::time::timeout(limit, exchange(*server, &asked)).await {
                Ok(Ok(reply)) if reply.rcode == 0 || reply.rcode == 3 => {
                    return Ok(answers(&reply, name, qtype).into_iter().cloned().collect());
                }
                Ok(Ok(reply)) => last = DnsError::Rcode(reply.rcode),
                Ok(Err(e)) => last = e,
                Err(_) => last = DnsError::Timeout,
            }
        }
    }
    Err(last)
}

/// The host names the PTR records of `ip` give (see [`is_host_name`]), in answer order.
pub async fn reverse_lookup(
    config: &ResolverConfig,
    ip: IpAddr,
    deadline: Instant,
) -> Result<Vec<String>, DnsError> {
    let found = query(config, &reverse_name(ip), TYPE_PTR, deadline).await?;
    let mut out: Vec<String> = Vec::new();
    for data in found {
        if let RData::Name(name) = data
            && is_host_name(&name)
            && !out.iter().any(|n| same_name(n, &name))
        {
            out.push(name);
        }
    }
    Ok(out)
}

/// The addresses of `name` (A and AAAA, asked at once); an error only when both queries failed.
pub async fn forward_lookup(
    config: &ResolverConfig,
    name: &str,
    deadline: Instant,
) -> Result<Vec<IpAddr>, DnsError> {
    let (v4, v6) = futures::join!(
        query(config, name, TYPE_A, deadline),
        query(config, name, TYPE_AAAA, deadline)
    );
    let (v4, v6) = match (v4, v6) {
        (Err(e), Err(_)) => return Err(e),
        (v4, v6) => (v4.unwrap_or_default(), v6.unwrap_or_default()),
    };
    let addresses = v4
        .into_iter()
        .chain(v6)
        .filter_map(|d| match d {
            RData::A(a) => Some(IpAddr::V4(a)),
            RData::Aaaa(a) => Some(IpAddr::V6(a)),
            _ => None,
        })
        .collect();
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply header (QR and RD/RA set) with `an` answers, the question of `query` copied.
    fn reply_to(query: &[u8], flags: u16, an: u16) -> Vec<u8> {
        let mut msg = query.to_vec();
        msg[2..4].copy_from_slice(&(0x8180 | flags).to_be_bytes());
        msg[6..8].copy_from_slice(&an.to_be_bytes());
        msg
    }

    fn record(msg: &mut Vec<u8>, owner: &[u8], rtype: u16, rdata: &[u8]) {
        msg.extend_from_slice(owner);
        msg.extend_from_slice(&rtype.to_be_bytes());
        msg.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
        msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        msg.extend_from_slice(rdata);
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.10".parse().expect("ip")),
            "10.2.0.192.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::567:89ab".parse().expect("ip")),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn query_bytes() {
        let q = encode_query(0xbeef, "10.2.0.192.in-addr.arpa.", TYPE_PTR).expect("query");
        let mut expected = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["10", "2", "0", "192", "in-addr", "arpa"] {
            expected.push(label.len() as u8);
            expected.extend_from_slice(label.as_bytes());
        }
        expected.extend_from_slice(&[0, 0, 12, 0, 1]);
        assert_eq!(q, expected);
        assert!(encode_query(1, "a..b", TYPE_A).is_err());
        assert!(encode_query(1, &"x".repeat(64), TYPE_A).is_err());
        let long = vec!["a".repeat(63); 4].join(".");
        assert!(
            encode_query(1, &long, TYPE_A).is_err(),
            "257 bytes on the wire"
        );
    }

    #[test]
    fn ptr_answer_with_compression_and_a_cname_chain() {
        let q = encode_query(7, "10.2.0.192.in-addr.arpa", TYPE_PTR).expect("query");
        let mut msg = reply_to(&q, 0, 3);
        // CNAME 10.2.0.192.in-addr.arpa -> 10.0/25.2.0.192.in-addr.arpa (RFC 2317), written as
        // labels "10" "0/25" and a pointer to "2.0.192.in-addr.arpa" inside the question.
        let cname_target_at = msg.len() + 12;
        record(
            &mut msg,
            &[0xc0, 12],
            TYPE_CNAME,
            &[2, b'1', b'0', 4, b'0', b'/', b'2', b'5', 0xc0, 15],
        );
        let ptr_owner = [0xc0 | (cname_target_at >> 8) as u8, cname_target_at as u8];
        record(
            &mut msg,
            &ptr_owner,
            TYPE_PTR,
            &[
                2, b'f', b'a', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0,
            ],
        );
        // A PTR for an unrelated owner is not part of the answer.
        record(&mut msg, &[1, b'x', 0], TYPE_PTR, &[1, b'y', 0]);
        let reply = decode_reply(&msg).expect("decode");
        assert_eq!(reply.id, 7);
        assert_eq!(
            reply.question,
            Some(("10.2.0.192.in-addr.arpa".to_owned(), TYPE_PTR))
        );
        assert_eq!(
            reply.answers[0].data,
            RData::Name("10.0/25.2.0.192.in-addr.arpa".into())
        );
        assert_eq!(
            answers(&reply, "10.2.0.192.IN-ADDR.arpa", TYPE_PTR),
            vec![&RData::Name("fa.example".into())]
        );
    }

    #[test]
    fn pointer_loops_and_forward_pointers_are_refused() {
        let q = encode_query(1, "a", TYPE_PTR).expect("query");
        // A pointer to itself.
        let mut msg = reply_to(&q, 0, 1);
        let at = msg.len();
        msg.extend_from_slice(&[0xc0, at as u8]);
        msg.extend_from_slice(&[0, 12, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(decode_reply(&msg), Err(DnsError::Malformed(_))));
        // Two names pointing at each other: the second pointer points forward.
        let mut msg = reply_to(&q, 0, 1);
        let at = msg.len();
        msg.extend_from_slice(&[1, b'x', 0xc0, (at + 4) as u8, 0xc0, at as u8]);
        assert!(matches!(read_name(&msg, at), Err(DnsError::Malformed(_))));
        // A label type 0x40 and a pointer past the end.
        assert!(read_name(&[0x41, 0], 0).is_err());
        assert!(read_name(&[0xc0], 0).is_err());
        // 128 one-byte labels exceed 255 bytes.
        let mut long: Vec<u8> = (0..128).flat_map(|_| [1, b'a']).collect();
        long.push(0);
        assert!(read_name(&long, 0).is_err());
    }

    #[test]
    fn labels_are_escaped_and_only_host_names_pass() {
        let (name, end) = read_name(&[3, b'a', b'.', 0x07, 2, b'o', b'k', 0], 0).expect("name");
        assert_eq!(name, "a\\.\\007.ok");
        assert_eq!(end, 8);
        assert!(!is_host_name(&name));
        assert!(is_host_name("fa-01.example_x"));
        assert!(!is_host_name("10.0/25.example"));
        assert!(!is_host_name(""));
        assert!(!is_host_name("a..b"));
    }

    #[test]
    fn every_truncation_of_a_reply_is_an_error_not_a_panic() {
        let q = encode_query(9, "fa.example", TYPE_A).expect("query");
        let mut msg = reply_to(&q, 0, 2);
        record(&mut msg, &[0xc0, 12], TYPE_A, &[192, 0, 2, 10]);
        record(
            &mut msg,
            &[0xc0, 12],
            TYPE_AAAA,
            &[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        );
        let full = decode_reply(&msg).expect("full reply");
        assert_eq!(
            answers(&full, "fa.example", TYPE_A),
            vec![&RData::A(Ipv4Addr::new(192, 0, 2, 10))]
        );
        for n in 0..msg.len() {
            assert!(decode_reply(&msg[..n]).is_err(), "prefix of {n} bytes");
        }
        // A record of the wrong size.
        let mut bad = reply_to(&q, 0, 1);
        record(&mut bad, &[0xc0, 12], TYPE_A, &[1, 2, 3]);
        assert!(decode_reply(&bad).is_err());
        // A query is not a reply.
        assert!(decode_reply(&q).is_err());
    }

    #[test]
    fn header_flags() {
        let q = encode_query(3, "x", TYPE_PTR).expect("query");
        let reply = decode_reply(&reply_to(&q, 0x0200 | 3, 0)).expect("decode");
        assert!(reply.truncated);
        assert_eq!(reply.rcode, 3);
        assert!(answers(&reply, "x", TYPE_PTR).is_empty());
    }

    #[test]
    fn cname_loops_end() {
        let reply = Reply {
            id: 0,
            truncated: false,
            rcode: 0,
            question: None,
            answers: vec![
                Record {
                    name: "a".into(),
                    rtype: TYPE_CNAME,
                    data: RData::Name("b".into()),
                },
                Record {
                    name: "b".into(),
                    rtype: TYPE_CNAME,
                    data: RData::Name("a".into()),
                },
                Record {
                    name: "b".into(),
                    rtype: TYPE_PTR,
                    data: RData::Name("host".into()),
                },
            ],
        };
        assert_eq!(
            answers(&reply, "a", TYPE_PTR),
            vec![&RData::Name("host".into())]
        );
    }

    #[test]
    fn resolv_conf() {
        let c = ResolverConfig::parse(
            "# comment\nsearch example\nnameserver 10.0.0.53\nnameserver ::1 ; x\n\
             nameserver fe80::1%eth0\nnameserver 10.0.0.54\nnameserver 10.0.0.55\n\
             options ndots:2 timeout:1 attempts:9\n",
        );
        assert_eq!(
            c.nameservers,
            vec![
                "10.0.0.53:53".parse().expect("addr"),
                "[::1]:53".parse().expect("addr"),
                "10.0.0.54:53".parse().expect("addr"),
            ]
        );
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert_eq!(c.attempts, MAX_ATTEMPTS);
        let empty = ResolverConfig::parse("");
        assert_eq!(
            empty.nameservers,
            vec!["127.0.0.1:53".parse().expect("addr")]
        );
        assert_eq!(empty.timeout, DEFAULT_TIMEOUT);
        assert_eq!(empty.attempts, DEFAULT_ATTEMPTS);
    }

    #[test]
    fn ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| random_id()).collect();
        assert!(ids.len() > 48, "{} distinct ids of 64", ids.len());
    }
}
