//! The DNS stub client and the forward-confirmed reverse lookup against fake nameservers on
//! 127.0.0.1 (UDP, and TCP on the same port for truncated replies). The replies are built here
//! byte by byte, independently of the client's encoder.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sdash_collector::dns::{self, DnsError, ResolverConfig, TYPE_A, TYPE_AAAA, TYPE_PTR};
use sdash_collector::vendors::topology::{Forward, NameSources, dns_names};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::time::Instant;

const TYPE_CNAME: u16 = 5;

#[derive(Clone)]
enum Data {
    Name(&'static str),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// One answer record; `owner: None` is the question's name (written as a pointer to it).
#[derive(Clone)]
struct Rr {
    owner: Option<&'static str>,
    rtype: u16,
    data: Data,
}

fn ptr(name: &'static str) -> Rr {
    Rr {
        owner: None,
        rtype: TYPE_PTR,
        data: Data::Name(name),
    }
}

fn a(ip: &str) -> Rr {
    Rr {
        owner: None,
        rtype: TYPE_A,
        data: Data::V4(ip.parse().expect("ipv4")),
    }
}

fn aaaa(ip: &str) -> Rr {
    Rr {
        owner: None,
        rtype: TYPE_AAAA,
        data: Data::V6(ip.parse().expect("ipv6")),
    }
}

#[derive(Clone, Copy)]
enum Broken {
    /// An answer whose owner name is a pointer to itself.
    PointerLoop,
    /// Two answers announced, none sent.
    Short,
    /// An A record of 3 bytes.
    BadA,
}

/// What a fake nameserver does with one query.
#[derive(Clone)]
enum Behaviour {
    Answer(Vec<Rr>),
    Rcode(u16),
    Silent,
    /// TC on UDP, the records over TCP.
    Truncated(Vec<Rr>),
    Broken(Broken),
    /// A reply with another id and one with another question (both naming `forged.example`),
    /// then the real one.
    ForgedFirst(Vec<Rr>),
}

type Handler = Arc<dyn Fn(&str, u16) -> Behaviour + Send + Sync>;

struct Server {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
}

fn encode_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// The question name and type of a query, and where its question section ends.
fn parse_query(q: &[u8]) -> Option<(String, u16, usize)> {
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*q.get(pos)?);
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8(q.get(pos + 1..pos + 1 + len)?.to_vec()).ok()?);
        pos += 1 + len;
    }
    let qtype = u16::from_be_bytes([*q.get(pos + 1)?, *q.get(pos + 2)?]);
    Some((labels.join("."), qtype, pos + 5))
}

fn message(id: [u8; 2], flags: u16, question: &[u8], an: u16, records: &[Rr]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id);
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&an.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(question);
    for r in records {
        match r.owner {
            None => m.extend_from_slice(&[0xc0, 12]),
            Some(owner) => encode_name(&mut m, owner),
        }
        m.extend_from_slice(&r.rtype.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        let mut rdata = Vec::new();
        match &r.data {
            Data::Name(n) => encode_name(&mut rdata, n),
            Data::V4(ip) => rdata.extend_from_slice(&ip.octets()),
            Data::V6(ip) => rdata.extend_from_slice(&ip.octets()),
        }
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
    }
    m
}

/// The replies to `query` (none for a silent server, several for the forgeries).
fn replies(handler: &Handler, query: &[u8], tcp: bool) -> Vec<Vec<u8>> {
    let Some((name, qtype, end)) = parse_query(query) else {
        return Vec::new();
    };
    let id = [query[0], query[1]];
    let question = &query[12..end];
    let ok = |records: &[Rr], flags: u16| {
        message(id, 0x8180 | flags, question, records.len() as u16, records)
    };
    match handler(&name, qtype) {
        Behaviour::Answer(records) => vec![ok(&records, 0)],
        Behaviour::Rcode(code) => vec![ok(&[], code)],
        Behaviour::Silent => Vec::new(),
        Behaviour::Truncated(records) if tcp => vec![ok(&records, 0)],
        Behaviour::Truncated(_) => vec![ok(&[], 0x0200)],
        Behaviour::Broken(kind) => {
            let mut m = ok(&[], 0);
            match kind {
                Broken::PointerLoop => {
                    m[7] = 1;
                    let at = m.len() as u8;
                    m.extend_from_slice(&[0xc0, at, 0, 12, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12]);
                }
                Broken::Short => m[7] = 2,
                Broken::BadA => {
                    m[7] = 1;
                    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 3, 1, 2, 3]);
                }
            }
            vec![m]
        }
        Behaviour::ForgedFirst(records) => {
            let forged = [ptr("forged.example")];
            let other_id = [id[0] ^ 0x55, id[1] ^ 0xaa];
            let mut other_question = Vec::new();
            encode_name(&mut other_question, "1.1.1.1.in-addr.arpa");
            other_question.extend_from_slice(&[0, 12, 0, 1]);
            let mut other = message(id, 0x8180, &other_question, 1, &[]);
            let mut rr = Vec::new();
            rr.extend_from_slice(&[0xc0, 12, 0, 12, 0, 1, 0, 0, 0, 60]);
            let mut target = Vec::new();
            encode_name(&mut target, "forged.example");
            rr.extend_from_slice(&(target.len() as u16).to_be_bytes());
            rr.extend_from_slice(&target);
            other.extend_from_slice(&rr);
            vec![
                message(other_id, 0x8180, question, 1, &forged),
                other,
                ok(&records, 0),
            ]
        }
    }
}

/// A fake nameserver on 127.0.0.1: UDP and TCP on one port.
async fn serve(handler: impl Fn(&str, u16) -> Behaviour + Send + Sync + 'static) -> Server {
    let handler: Handler = Arc::new(handler);
    let queries = Arc::new(AtomicUsize::new(0));
    // The TCP port must equal the UDP one; retry if another process holds it.
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("udp bind");
        let addr = udp.local_addr().expect("udp addr");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().expect("udp addr");
    let (h, q) = (handler.clone(), queries.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            q.fetch_add(1, Ordering::SeqCst);
            for reply in replies(&h, &buf[..n], false) {
                let _ = udp.send_to(&reply, from).await;
            }
        }
    });
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = tcp.accept().await {
            let h = handler.clone();
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut query).await.is_err() {
                    return;
                }
                for reply in replies(&h, &query, true) {
                    let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&reply);
                    let _ = stream.write_all(&framed).await;
                }
            });
        }
    });
    Server { addr, queries }
}

fn config(servers: &[&Server]) -> ResolverConfig {
    ResolverConfig::new(servers.iter().map(|s| s.addr).collect())
}

/// A hosts file in a temporary directory (kept alive by the returned guard).
fn hosts_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hosts");
    std::fs::write(&path, text).expect("write hosts");
    (dir, path)
}

/// The test zone: 192.0.2.10 has a confirmed PTR, a PTR whose A record points elsewhere, and a
/// PTR target that is no host name; 192.0.2.99 does not exist.
fn zone(name: &str, qtype: u16) -> Behaviour {
    match (name, qtype) {
        ("10.2.0.192.in-addr.arpa", TYPE_PTR) => Behaviour::Answer(vec![
            ptr("fa.example"),
            ptr("spoof.example"),
            ptr("bad/name.example"),
        ]),
        ("fa.example", TYPE_A) => Behaviour::Answer(vec![a("192.0.2.10")]),
        ("spoof.example", TYPE_A) => Behaviour::Answer(vec![a("198.51.100.7")]),
        ("hosts-fa.example", TYPE_A) => Behaviour::Answer(vec![a("192.0.2.10")]),
        (_, TYPE_A | TYPE_AAAA) => Behaviour::Answer(Vec::new()),
        _ => Behaviour::Rcode(3),
    }
}

fn deadline(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

#[tokio::test]
async fn names_are_kept_only_when_they_resolve_back() {
    let server = serve(zone).await;
    let cfg = config(&[&server]);
    let ip: IpAddr = "192.0.2.10".parse().expect("ip");

    let reverse = dns::reverse_lookup(&cfg, ip, deadline(2000))
        .await
        .expect("reverse lookup");
    assert_eq!(
        reverse,
        vec!["fa.example", "spoof.example"],
        "no host name dropped"
    );
    let forward = dns::forward_lookup(&cfg, "spoof.example", deadline(2000))
        .await
        .expect("forward lookup");
    assert_eq!(forward, vec!["198.51.100.7".parse::<IpAddr>().expect("ip")]);

    let (_dir, hosts) = hosts_file("# test\n192.0.2.10 hosts-fa.example\n");
    let sources = NameSources {
        hosts_file: hosts,
        dns: Some(cfg.clone()),
        forward: Forward::Dns(cfg),
    };
    let addresses = ["192.0.2.10".into(), "192.0.2.99".into(), "not-an-ip".into()];
    let names = dns_names(&sources, &addresses, Duration::from_secs(2)).await;
    assert_eq!(
        names,
        vec!["hosts-fa.example", "fa.example"],
        "hosts file first"
    );
}

#[tokio::test]
async fn cname_chains_ipv6_and_truncated_replies_over_tcp() {
    let v6: IpAddr = "2001:db8::10".parse().expect("ip");
    let v6_ptr = dns::reverse_name(v6);
    let server = serve(move |name, qtype| match (name, qtype) {
        (n, TYPE_PTR) if n == v6_ptr => Behaviour::Truncated(vec![ptr("fa6.example")]),
        ("fa6.example", TYPE_AAAA) => Behaviour::Answer(vec![aaaa("2001:db8::10")]),
        // RFC 2317 classless delegation: the PTR lives behind a CNAME.
        ("20.2.0.192.in-addr.arpa", TYPE_PTR) => Behaviour::Answer(vec![
            Rr {
                owner: None,
                rtype: TYPE_CNAME,
                data: Data::Name("20.0-26.2.0.192.in-addr.arpa"),
            },
            Rr {
                owner: Some("20.0-26.2.0.192.in-addr.arpa"),
                rtype: TYPE_PTR,
                data: Data::Name("cn.example"),
            },
        ]),
        ("cn.example", TYPE_A) => Behaviour::Answer(vec![a("192.0.2.20")]),
        (_, TYPE_A | TYPE_AAAA) => Behaviour::Answer(Vec::new()),
        _ => Behaviour::Rcode(3),
    })
    .await;
    let cfg = config(&[&server]);
    let sources = NameSources {
        hosts_file: PathBuf::from("/nonexistent/hosts"),
        dns: Some(cfg.clone()),
        forward: Forward::Dns(cfg),
    };
    let addresses = ["2001:db8::10".into(), "192.0.2.20".into()];
    let names = dns_names(&sources, &addresses, Duration::from_secs(2)).await;
    assert_eq!(names, vec!["fa6.example", "cn.example"]);
}

#[tokio::test]
async fn a_silent_nameserver_costs_the_timeout_once_and_keeps_the_hosts_names() {
    let silent = serve(|_, _| Behaviour::Silent).await;
    let silent2 = serve(|_, _| Behaviour::Silent).await;
    let confirming = serve(zone).await;
    let (_dir, hosts) = hosts_file("192.0.2.10 hosts-fa.example\n");
    let sources = NameSources {
        hosts_file: hosts,
        // resolv.conf defaults: 5 s per try, 2 attempts; the 400 ms budget must win.
        dns: Some(config(&[&silent, &silent2])),
        forward: Forward::Dns(config(&[&confirming])),
    };
    let bound = Duration::from_millis(400);
    let addresses = [
        "192.0.2.10".into(),
        "192.0.2.11".into(),
        "192.0.2.12".into(),
    ];
    let started = std::time::Instant::now();
    let names = dns_names(&sources, &addresses, bound).await;
    let elapsed = started.elapsed();
    assert_eq!(names, vec!["hosts-fa.example"]);
    assert!(elapsed >= bound - Duration::from_millis(50), "{elapsed:?}");
    assert!(elapsed < bound + Duration::from_millis(500), "{elapsed:?}");
    // Each address's lookup went to both servers, both rounds, within the budget.
    assert!(
        silent.queries.load(Ordering::SeqCst) >= 6,
        "first server asked per round"
    );
    assert!(
        silent2.queries.load(Ordering::SeqCst) >= 6,
        "second server asked per round"
    );

    let started = std::time::Instant::now();
    let result = dns::query(&config(&[&silent]), "x.example", TYPE_A, deadline(300)).await;
    assert!(matches!(result, Err(DnsError::Timeout)), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_dead_first_nameserver_leaves_time_for_the_next() {
    let silent = serve(|_, _| Behaviour::Silent).await;
    let good = serve(zone).await;
    let mut cfg = config(&[&silent, &good]);
    cfg.attempts = 1;
    let started = std::time::Instant::now();
    let names = dns::reverse_lookup(&cfg, "192.0.2.10".parse().expect("ip"), deadline(1000))
        .await
        .expect("answer from the second server");
    assert_eq!(names, vec!["fa.example", "spoof.example"]);
    let elapsed = started.elapsed();
    // The first try got half the budget, not the 5 s of `options timeout`.
    assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
    assert_eq!(silent.queries.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn replies_with_another_id_or_question_are_ignored() {
    let server = serve(|name, qtype| match (name, qtype) {
        ("10.2.0.192.in-addr.arpa", TYPE_PTR) => Behaviour::ForgedFirst(vec![ptr("fa.example")]),
        _ => Behaviour::Rcode(3),
    })
    .await;
    let names = dns::reverse_lookup(
        &config(&[&server]),
        "192.0.2.10".parse().expect("ip"),
        deadline(2000),
    )
    .await
    .expect("reverse lookup");
    assert_eq!(names, vec!["fa.example"]);
}

#[tokio::test]
async fn malformed_replies_move_on_to_the_next_server_without_panicking() {
    let good = serve(zone).await;
    let ip: IpAddr = "192.0.2.10".parse().expect("ip");
    for kind in [Broken::PointerLoop, Broken::Short, Broken::BadA] {
        let broken = serve(move |_, _| Behaviour::Broken(kind)).await;
        let alone = dns::reverse_lookup(&config(&[&broken]), ip, deadline(3000)).await;
        assert!(matches!(alone, Err(DnsError::Malformed(_))), "{alone:?}");
        let started = std::time::Instant::now();
        let names = dns::reverse_lookup(&config(&[&broken, &good]), ip, deadline(3000))
            .await
            .expect("answer from the good server");
        assert_eq!(names, vec!["fa.example", "spoof.example"]);
        // Not a timeout: the broken reply ended its try at once.
        assert!(started.elapsed() < Duration::from_millis(1000));
    }
}

#[tokio::test]
async fn nxdomain_is_an_answer_and_refused_is_not() {
    let nx = serve(|_, _| Behaviour::Rcode(3)).await;
    let refused = serve(|_, _| Behaviour::Rcode(5)).await;
    let good = serve(zone).await;
    let ip: IpAddr = "192.0.2.10".parse().expect("ip");

    let names = dns::reverse_lookup(&config(&[&nx, &good]), ip, deadline(2000))
        .await
        .expect("nxdomain");
    assert!(names.is_empty());
    assert_eq!(good.queries.load(Ordering::SeqCst), 0, "NXDOMAIN is final");

    let names = dns::reverse_lookup(&config(&[&refused, &good]), ip, deadline(2000))
        .await
        .expect("answer after REFUSED");
    assert_eq!(names, vec!["fa.example", "spoof.example"]);
    let only_refused = dns::reverse_lookup(&config(&[&refused]), ip, deadline(2000)).await;
    assert!(
        matches!(only_refused, Err(DnsError::Rcode(5))),
        "{only_refused:?}"
    );
}

/// A topology with `addresses` as its management addresses.
fn topology_of(addresses: &[&str]) -> sdash_proto::Topology {
    sdash_proto::Topology {
        management_addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
        ..sdash_proto::Topology::default()
    }
}

#[tokio::test]
async fn a_failed_lookup_keeps_the_names_of_the_last_topology_poll() {
    use sdash_collector::vendors::topology::TopologyState;
    let (_dir, hosts) = hosts_file("");
    let answering = serve(zone).await;
    let silent = serve(|_, _| Behaviour::Silent).await;
    let sources = |server: &Server| NameSources {
        hosts_file: hosts.clone(),
        dns: Some(ResolverConfig {
            timeout: Duration::from_millis(200),
            attempts: 1,
            ..config(&[server])
        }),
        forward: Forward::Dns(config(&[server])),
    };
    let mut state = TopologyState::default();
    let first = state
        .resolve_with(
            true,
            topology_of(&["192.0.2.10"]),
            Some(&sources(&answering)),
        )
        .await;
    assert_eq!(first.dns_names, vec!["fa.example"]);

    // The nameserver stops answering: the next topology poll keeps the names it had.
    let started = Instant::now();
    let second = state
        .resolve_with(true, topology_of(&["192.0.2.10"]), Some(&sources(&silent)))
        .await;
    assert_eq!(second.dns_names, vec!["fa.example"]);
    assert!(started.elapsed() < Duration::from_secs(3), "bounded");
    assert!(silent.queries.load(Ordering::SeqCst) > 0, "it was asked");

    // An answer without the name (NXDOMAIN for this address) is an answer: the name goes.
    let nxdomain = serve(|_, _| Behaviour::Rcode(3)).await;
    let third = state
        .resolve_with(
            true,
            topology_of(&["192.0.2.10"]),
            Some(&sources(&nxdomain)),
        )
        .await;
    assert_eq!(third.dns_names, Vec::<String>::new());
}

#[tokio::test]
async fn without_name_sources_a_topology_poll_asks_no_nameserver() {
    use sdash_collector::vendors::topology::TopologyState;
    let mut state = TopologyState::default();
    let out = state
        .resolve_with(true, topology_of(&["192.0.2.10"]), None)
        .await;
    assert_eq!(out.dns_names, Vec::<String>::new());
    assert_eq!(out.management_addresses, vec!["192.0.2.10"]);
}
