#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! The egress proxy over real loopback connections. `127.0.0.1` plays the
//! internet (the only address the test's check lets through); names
//! resolve through a fixed table, so nothing leaves this machine.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use smithers_sandbox::egress::{Allowlist, BoxFuture, EgressEvent, EgressProxy};
use smithers_test_support::sandbox::{Table, loopback_is_the_internet};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

struct Setup {
    proxy: SocketAddr,
    origin_port: u16,
    events: Arc<Mutex<Vec<EgressEvent>>>,
    origin_hits: Arc<Mutex<Vec<String>>>,
}

/// An origin that records the first line it gets and answers `pong`.
async fn setup() -> Setup {
    let origin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_port = origin.local_addr().unwrap().port();
    let origin_hits = Arc::new(Mutex::new(Vec::new()));
    let hits = origin_hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = origin.accept().await else {
                return;
            };
            let hits = hits.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                let n = conn.read(&mut buffer).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                hits.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or_default().to_string());
                let _ = conn.write_all(b"pong").await;
            });
        }
    });
    let table = Table(HashMap::from([
        (
            "public.test".to_string(),
            vec![IpAddr::from([127, 0, 0, 1])],
        ),
        (
            "private.test".to_string(),
            vec![IpAddr::from([10, 0, 0, 1])],
        ),
        (
            "metadata.test".to_string(),
            vec![IpAddr::from([169, 254, 169, 254])],
        ),
        (
            "mixed.test".to_string(),
            vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from([192, 168, 1, 1])],
        ),
        (
            "loopback.test".to_string(),
            vec![IpAddr::from([127, 0, 0, 2])],
        ),
    ]));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let proxy = EgressProxy::new(
        Allowlist::parse(&[
            "public.test",
            "private.test",
            "metadata.test",
            "mixed.test",
            "loopback.test",
        ])
        .unwrap(),
    )
    .with_resolver(Arc::new(table))
    .with_address_check(loopback_is_the_internet)
    .with_events(Arc::new(move |e| sink.lock().unwrap().push(e)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            let proxy = proxy.clone();
            tokio::spawn(async move { proxy.serve(conn).await });
        }
    });
    Setup {
        proxy: address,
        origin_port,
        events,
        origin_hits,
    }
}

async fn exchange(proxy: SocketAddr, request: &[u8]) -> String {
    let mut conn = TcpStream::connect(proxy).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        conn.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn an_allowed_host_with_public_addresses_is_tunnelled() {
    let s = setup().await;
    let mut conn = TcpStream::connect(s.proxy).await.unwrap();
    conn.write_all(
        format!(
            "CONNECT public.test:{} HTTP/1.1\r\nHost: x\r\n\r\n",
            s.origin_port
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut reply = vec![0u8; 39];
    conn.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, b"HTTP/1.1 200 Connection established\r\n\r\n");
    conn.write_all(b"ping\r\n").await.unwrap();
    let mut pong = Vec::new();
    conn.read_to_end(&mut pong).await.unwrap();
    assert_eq!(pong, b"pong");
    let events = s.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert!(
        events[0].allowed && events[0].reason == "allowed by public.test",
        "{events:?}"
    );
    assert_eq!(
        events[0].address,
        Some(SocketAddr::from(([127, 0, 0, 1], s.origin_port)))
    );
}

#[tokio::test]
async fn plain_http_is_forwarded_with_an_origin_form_target() {
    let s = setup().await;
    let reply = exchange(
        s.proxy,
        format!(
            "GET http://public.test:{}/path?q=1 HTTP/1.1\r\nHost: public.test\r\n\r\n",
            s.origin_port
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(reply, "pong");
    assert_eq!(
        s.origin_hits.lock().unwrap().clone(),
        ["GET /path?q=1 HTTP/1.1"]
    );
}

#[tokio::test]
async fn refusals_are_403_with_the_reason_and_nothing_is_dialed() {
    let s = setup().await;
    let port = s.origin_port;
    let cases = [
        ("elsewhere.test", "is not in the egress allowlist"),
        (
            "private.test",
            "resolves to 10.0.0.1, a special-purpose address (10.0.0.0/8, RFC 1918: private use)",
        ),
        (
            "metadata.test",
            "resolves to 169.254.169.254, a special-purpose address (169.254.0.0/16, RFC 3927: link local",
        ),
        ("mixed.test", "resolves to 192.168.1.1"),
        (
            "loopback.test",
            "resolves to 127.0.0.2, a special-purpose address (127.0.0.0/8, RFC 1122: loopback)",
        ),
    ];
    for (host, why) in cases {
        let reply = exchange(
            s.proxy,
            format!("CONNECT {host}:{port} HTTP/1.1\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(
            reply.starts_with("HTTP/1.1 403 Forbidden\r\n"),
            "{host}: {reply}"
        );
        let header = reply
            .lines()
            .find(|l| l.starts_with("X-Smithers-Reason: "))
            .unwrap();
        assert!(header.contains(why), "{host}: {header}");
    }
    // The origin (the only reachable address) saw none of them.
    assert!(s.origin_hits.lock().unwrap().is_empty());
    let events = s.events.lock().unwrap().clone();
    assert_eq!(events.len(), cases.len());
    assert!(
        events.iter().all(|e| !e.allowed && e.address.is_none()),
        "{events:?}"
    );
}

#[tokio::test]
async fn malformed_requests_get_4xx() {
    let s = setup().await;
    for (request, status) in [
        (b"GARBAGE\r\n\r\n".to_vec(), "400"),
        (b"CONNECT public.test HTTP/1.1\r\n\r\n".to_vec(), "400"),
        (b"GET /relative HTTP/1.1\r\n\r\n".to_vec(), "400"),
        (
            format!(
                "GET http://u:p@public.test:{}/ HTTP/1.1\r\n\r\n",
                s.origin_port
            )
            .into_bytes(),
            "400",
        ),
        (
            [
                b"GET http://public.test/ HTTP/1.1\r\nX: ".to_vec(),
                vec![b'a'; 20_000],
            ]
            .concat(),
            "431",
        ),
    ] {
        let reply = exchange(s.proxy, &request).await;
        assert!(reply.starts_with(&format!("HTTP/1.1 {status}")), "{reply}");
    }
    assert!(s.origin_hits.lock().unwrap().is_empty());
}

struct BrokenAudit;

impl smithers_sandbox::egress::EgressRecorder for BrokenAudit {
    fn record(&self, _event: EgressEvent) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Err("the audit store is down".to_string()) })
    }
}

#[tokio::test]
async fn egress_that_cannot_be_recorded_does_not_happen() {
    let s = setup().await;
    let table = Table(HashMap::from([(
        "public.test".to_string(),
        vec![IpAddr::from([127, 0, 0, 1])],
    )]));
    let proxy = EgressProxy::new(Allowlist::parse(&["public.test"]).unwrap())
        .with_resolver(Arc::new(table))
        .with_address_check(loopback_is_the_internet)
        .with_events(Arc::new(BrokenAudit));
    let (mut client, server) = tokio::io::duplex(4096);
    let serving = tokio::spawn(async move { proxy.serve(server).await });
    client
        .write_all(format!("CONNECT public.test:{} HTTP/1.1\r\n\r\n", s.origin_port).as_bytes())
        .await
        .unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).await.unwrap();
    serving.await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("could not be recorded"), "{reply}");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        s.origin_hits.lock().unwrap().is_empty(),
        "the origin was reached"
    );
}
