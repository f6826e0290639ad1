#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! Egress from a sandbox, with every provider: the sandbox still has no route out; it
//! reaches the proxy through the bridge at 127.0.0.1:3128, and the proxy
//! decides. The host's loopback plays the internet only where a test says
//! so (its address check lets 127.0.0.1 through); nothing leaves this
//! machine.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use smithers_sandbox::EgressSettings;
use smithers_sandbox::egress::EgressEvent;
use smithers_sandbox::{Provider, SandboxSpec};
use smithers_test_support::against_every_provider_with_egress;
use smithers_test_support::sandbox::{HasProvider, Table, loopback_is_the_internet, sh, spec};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// An HTTP origin on the host's loopback that answers every request `pong`
/// and counts them.
async fn origin() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(Mutex::new(Vec::new()));
    let seen = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                let n = conn.read(&mut buffer).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                seen.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or_default().to_string());
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\npong",
                    )
                    .await;
            });
        }
    });
    (port, hits)
}

async fn an_allowed_host_is_reached_through_the_proxy_and_audited<F: HasProvider>(
    make: impl AsyncFn(EgressSettings) -> F,
) {
    let (port, hits) = origin().await;
    let events: Arc<Mutex<Vec<EgressEvent>>> = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let f = make(EgressSettings {
        resolver: Arc::new(Table(HashMap::from([(
            "public.test".to_string(),
            vec![IpAddr::from([127, 0, 0, 1])],
        )]))),
        check: loopback_is_the_internet,
        events: Arc::new(move |e| sink.lock().unwrap().push(e)),
    })
    .await;
    let spec = SandboxSpec {
        egress: vec!["public.test".into()],
        ..spec()
    };
    let id = f.provider().create(spec).await.unwrap();
    // Plain HTTP through HTTP_PROXY, then a CONNECT tunnel.
    let ran = sh(
        f.provider(),
        &id,
        &format!(
            "curl -sS http://public.test:{port}/plain; echo; \
             curl -sS --proxytunnel http://public.test:{port}/tunnel; echo; \
             echo $HTTPS_PROXY"
        ),
    )
    .await;
    assert_eq!(
        ran.stdout, "pong\npong\nhttp://127.0.0.1:3128\n",
        "{}",
        ran.stderr
    );
    let seen = hits.lock().unwrap().clone();
    assert_eq!(seen, ["GET /plain HTTP/1.1", "GET /tunnel HTTP/1.1"]);
    let events = events.lock().unwrap().clone();
    assert_eq!(events.len(), 2);
    assert!(
        events.iter().all(|e| e.allowed && e.host == "public.test"),
        "{events:?}"
    );
    // Still no route of its own: straight to the origin fails.
    let ran = sh(
        f.provider(),
        &id,
        &format!("curl -sS --noproxy '*' http://127.0.0.1:{port}/direct"),
    )
    .await;
    assert_ne!(ran.outcome.exit_code, 0);
    assert_eq!(
        hits.lock().unwrap().len(),
        2,
        "the direct attempt reached nothing"
    );
    assert!(f.provider().destroy(&id).await.unwrap().is_clean());
}

async fn hosts_off_the_allowlist_and_names_resolving_privately_are_refused<F: HasProvider>(
    make: impl AsyncFn(EgressSettings) -> F,
) {
    let (port, hits) = origin().await;
    // A fixed table, so no name is looked up anywhere.
    let f = make(EgressSettings {
        resolver: Arc::new(Table(HashMap::from([
            ("localhost".to_string(), vec![IpAddr::from([127, 0, 0, 1])]),
            (
                "metadata.allowed.test".to_string(),
                vec![IpAddr::from([169, 254, 169, 254])],
            ),
        ]))),
        ..EgressSettings::default()
    })
    .await;
    // `localhost` and the metadata name are on the list but resolve to
    // loopback and to the metadata address; example.com is not on it.
    let spec = SandboxSpec {
        egress: vec!["localhost".into(), "*.allowed.test".into()],
        ..spec()
    };
    let id = f.provider().create(spec).await.unwrap();
    let ran = sh(
        f.provider(),
        &id,
        &format!(
            "curl -sS -o /dev/null -D - --noproxy '' -x http://127.0.0.1:3128 http://localhost:{port}/; \
             curl -sS -o /dev/null -D - --noproxy '' -x http://127.0.0.1:3128 http://example.com/; \
             curl -sS -o /dev/null -D - --proxytunnel --noproxy '' -x http://127.0.0.1:3128 http://metadata.allowed.test/"
        ),
    )
    .await;
    let reasons: Vec<&str> = ran
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("X-Smithers-Reason: "))
        .collect();
    assert_eq!(reasons.len(), 3, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        reasons[0].contains(
            "localhost resolves to 127.0.0.1, a special-purpose address (127.0.0.0/8, RFC 1122: loopback)"
        ),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("example.com:80 is not in the egress allowlist"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("resolves to 169.254.169.254"),
        "{reasons:?}"
    );
    assert!(
        hits.lock().unwrap().is_empty(),
        "the host's server was reached"
    );
    assert!(f.provider().destroy(&id).await.unwrap().is_clean());
}

async fn without_an_allowlist_there_is_no_proxy_and_no_inet_socket<F: HasProvider>(
    make: impl AsyncFn(EgressSettings) -> F,
) {
    let f = make(EgressSettings::default()).await;
    let id = f.provider().create(spec()).await.unwrap();
    let ran = sh(
        f.provider(),
        &id,
        "curl -sS -x http://127.0.0.1:3128 http://example.com/ || echo no-proxy; echo \"[$HTTP_PROXY]\"; test -S /.smithers/proxy.sock && echo socket || echo no-socket",
    )
    .await;
    assert_eq!(ran.stdout, "no-proxy\n[]\nno-socket\n", "{}", ran.stderr);
    assert!(f.provider().destroy(&id).await.unwrap().is_clean());
}

async fn a_bad_allowlist_is_refused_at_create<F: HasProvider>(
    make: impl AsyncFn(EgressSettings) -> F,
) {
    let f = make(EgressSettings::default()).await;
    let spec = SandboxSpec {
        egress: vec!["*.com".into()],
        ..spec()
    };
    let e = f.provider().create(spec).await.unwrap_err();
    assert!(e.to_string().contains("\"*.com\""), "{e}");
}

against_every_provider_with_egress!(
    env!("CARGO_BIN_EXE_smithers-sandbox-helper");
    an_allowed_host_is_reached_through_the_proxy_and_audited,
    hosts_off_the_allowlist_and_names_resolving_privately_are_refused,
    without_an_allowlist_there_is_no_proxy_and_no_inet_socket,
    a_bad_allowlist_is_refused_at_create
);
