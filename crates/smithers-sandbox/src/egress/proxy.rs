//! The egress proxy: HTTP CONNECT and plain-HTTP forwarding, one
//! connection at a time per client. A request is allowed only when its
//! host is on the allowlist AND every address the host resolves to is
//! public; the proxy then dials the address it checked (never the name
//! again, so a DNS answer cannot change between check and use). Refusals
//! are `403` with an `X-Smithers-Reason` header. Every decision goes to
//! the event sink (the audit log, or a structured log line).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::Allowlist;
use super::address::refusal;

/// The largest request head the proxy reads.
const MAX_HEAD: usize = 16 * 1024;
/// How long a client has to send its request head, and the proxy to dial.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// One allowed or refused connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressEvent {
    /// The sandbox the connection came from, when the proxy knows it.
    pub sandbox: Option<String>,
    pub host: String,
    pub port: u16,
    pub allowed: bool,
    /// The allowlist entry that allowed it, or why it was refused.
    pub reason: String,
    /// The address dialed, when allowed.
    pub address: Option<SocketAddr>,
}

/// What the proxy's pluggable parts return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Turns a host and port into addresses.
pub trait Resolve: Send + Sync {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'_, std::io::Result<Vec<SocketAddr>>>;
}

/// The system resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'_, std::io::Result<Vec<SocketAddr>>> {
        let target = format!("{host}:{port}");
        Box::pin(async move { Ok(tokio::net::lookup_host(target).await?.collect()) })
    }
}

/// Decides whether an address may be dialed; `Some(reason)` refuses.
pub type AddressCheck = fn(std::net::IpAddr) -> Option<&'static str>;

/// Where decisions go. An allowed connection is recorded before it is
/// dialed, and is refused (`503`) if it cannot be: egress that cannot be
/// audited does not happen. Refusals are recorded as well as can be.
pub trait EgressRecorder: Send + Sync {
    fn record(&self, event: EgressEvent) -> BoxFuture<'_, Result<(), String>>;
}

/// A plain function as a recorder that never fails (tests, callers' own logs).
impl<F: Fn(EgressEvent) + Send + Sync> EgressRecorder for F {
    fn record(&self, event: EgressEvent) -> BoxFuture<'_, Result<(), String>> {
        self(event);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Decisions as structured log lines (where no audit log is given).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogRecorder;

impl EgressRecorder for LogRecorder {
    fn record(&self, event: EgressEvent) -> BoxFuture<'_, Result<(), String>> {
        tracing::info!(
            sandbox = ?event.sandbox, host = %event.host, port = event.port,
            allowed = event.allowed, reason = %event.reason, address = ?event.address, "egress"
        );
        Box::pin(std::future::ready(Ok(())))
    }
}

/// How a proxy resolves, checks and records.
#[derive(Clone)]
pub struct EgressSettings {
    pub resolver: Arc<dyn Resolve>,
    pub check: AddressCheck,
    pub events: Arc<dyn EgressRecorder>,
}

impl Default for EgressSettings {
    /// The system resolver, every non-public address refused, decisions
    /// logged (callers with an audit log record them there instead).
    fn default() -> Self {
        EgressSettings {
            resolver: Arc::new(SystemResolver),
            check: refusal,
            events: Arc::new(LogRecorder),
        }
    }
}

impl std::fmt::Debug for EgressSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressSettings").finish_non_exhaustive()
    }
}

/// Everything one sandbox's proxy needs.
#[derive(Clone)]
pub struct EgressProxy {
    allowlist: Arc<Allowlist>,
    settings: EgressSettings,
    sandbox: Option<String>,
}

impl std::fmt::Debug for EgressProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressProxy")
            .field("allowlist", &self.allowlist)
            .finish_non_exhaustive()
    }
}

/// What the client asked for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// `CONNECT host:port`: a tunnel.
    Connect { host: String, port: u16 },
    /// `METHOD http://host[:port]/path`: forwarded with the target rewritten.
    Forward {
        host: String,
        port: u16,
        head: Vec<u8>,
    },
}

/// A request the proxy cannot serve, with its status line.
#[derive(Debug, PartialEq, Eq)]
struct Reject {
    status: &'static str,
    reason: String,
}

fn reject(status: &'static str, reason: impl Into<String>) -> Reject {
    Reject {
        status,
        reason: reason.into(),
    }
}

/// `host:port`, `[v6]:port`; `default_port` when none is given.
fn split_authority(authority: &str, default_port: Option<u16>) -> Result<(String, u16), Reject> {
    let bad = || reject("400 Bad Request", format!("bad target {authority:?}"));
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad()),
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        None => default_port.ok_or_else(bad)?,
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

/// Where a proxy request goes: `host`, `port`, and whether it is a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub tunnel: bool,
}

/// Parses a request head as the proxy does (for tools and fuzzing): the
/// target, or the status and reason the proxy would answer with.
pub fn parse_target(head: &[u8]) -> Result<Target, String> {
    match parse_head(head) {
        Ok(Request::Connect { host, port }) => Ok(Target {
            host,
            port,
            tunnel: true,
        }),
        Ok(Request::Forward { host, port, .. }) => Ok(Target {
            host,
            port,
            tunnel: false,
        }),
        Err(r) => Err(format!("{}: {}", r.status, r.reason)),
    }
}

/// Parses a request head (everything up to and including the blank line).
fn parse_head(head: &[u8]) -> Result<Request, Reject> {
    let text = std::str::from_utf8(head)
        .map_err(|_| reject("400 Bad Request", "the request is not text"))?;
    let (first, rest) = text
        .split_once("\r\n")
        .ok_or_else(|| reject("400 Bad Request", "no request line"))?;
    let mut words = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(reject(
            "400 Bad Request",
            "a request line is METHOD TARGET VERSION",
        ));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(reject("505 HTTP Version Not Supported", "only HTTP/1.x"));
    }
    if method == "CONNECT" {
        let (host, port) = split_authority(target, None)?;
        return Ok(Request::Connect { host, port });
    }
    let Some(after) = target.strip_prefix("http://") else {
        return Err(reject(
            "400 Bad Request",
            "a proxy request needs an absolute http:// target (use CONNECT for https)",
        ));
    };
    let (authority, path) = match after.find('/') {
        Some(at) => (&after[..at], &after[at..]),
        None => (after, "/"),
    };
    if authority.contains('@') {
        return Err(reject(
            "400 Bad Request",
            "credentials in the target are not accepted",
        ));
    }
    let (host, port) = split_authority(authority, Some(80))?;
    let mut rewritten = format!("{method} {path} {version}\r\n").into_bytes();
    rewritten.extend_from_slice(rest.as_bytes());
    Ok(Request::Forward {
        host,
        port,
        head: rewritten,
    })
}

async fn respond(client: &mut (impl AsyncWrite + Unpin), status: &str, reason: &str) {
    let body = format!("{reason}\n");
    let reason_header: String = reason.chars().filter(|c| !c.is_control()).collect();
    let response = format!(
        "HTTP/1.1 {status}\r\nX-Smithers-Reason: {reason_header}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}

/// Reads until the blank line ending the head; returns (head, bytes after it).
async fn read_head(client: &mut (impl AsyncRead + Unpin)) -> Result<(Vec<u8>, Vec<u8>), Reject> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Ok((buffer, rest));
        }
        if buffer.len() > MAX_HEAD {
            return Err(reject(
                "431 Request Header Fields Too Large",
                "the request head is too large",
            ));
        }
        let n = client
            .read(&mut chunk)
            .await
            .map_err(|_| reject("400 Bad Request", "the connection failed"))?;
        if n == 0 {
            return Err(reject("400 Bad Request", "the request ended early"));
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

impl EgressProxy {
    /// A proxy for `allowlist`, resolving with the system resolver,
    /// refusing every non-public address, logging each decision.
    pub fn new(allowlist: Allowlist) -> EgressProxy {
        EgressProxy::with_settings(allowlist, EgressSettings::default())
    }

    pub fn with_settings(allowlist: Allowlist, settings: EgressSettings) -> EgressProxy {
        EgressProxy {
            allowlist: Arc::new(allowlist),
            settings,
            sandbox: None,
        }
    }

    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> EgressProxy {
        self.settings.resolver = resolver;
        self
    }

    /// Replaces the address check (tests use it to let one loopback
    /// address stand for the internet).
    pub fn with_address_check(mut self, check: AddressCheck) -> EgressProxy {
        self.settings.check = check;
        self
    }

    /// Names the sandbox this proxy serves, in every event.
    pub fn for_sandbox(mut self, sandbox: &str) -> EgressProxy {
        self.sandbox = Some(sandbox.to_string());
        self
    }

    /// Sends every decision to `sink` (e.g. the audit log).
    pub fn with_events(mut self, sink: Arc<dyn EgressRecorder>) -> EgressProxy {
        self.settings.events = sink;
        self
    }

    /// The addresses `host:port` may be reached at, or why not. Every
    /// address must pass: one private answer refuses the name.
    async fn decide(&self, host: &str, port: u16) -> Result<(SocketAddr, String), String> {
        let Some(entry) = self.allowlist.allowing(host, port) else {
            return Err(format!("{host}:{port} is not in the egress allowlist"));
        };
        let addresses =
            match tokio::time::timeout(DIAL_TIMEOUT, self.settings.resolver.resolve(host, port))
                .await
            {
                Ok(Ok(addresses)) if !addresses.is_empty() => addresses,
                Ok(Ok(_)) | Ok(Err(_)) | Err(_) => return Err(format!("{host} does not resolve")),
            };
        for address in &addresses {
            if let Some(why) = (self.settings.check)(address.ip()) {
                return Err(format!("{host} resolves to {}, {why}", address.ip()));
            }
        }
        Ok((addresses[0], format!("allowed by {entry}")))
    }

    /// Listens on the Unix socket `socket`, given to `owner` (or, where
    /// that is not allowed, connectable by anyone: it sits in a sandbox's
    /// own directory), and serves every client until the task is aborted.
    pub(crate) fn listen(
        self,
        socket: &std::path::Path,
        owner: Option<(u32, u32)>,
    ) -> Result<tokio::task::JoinHandle<()>, crate::Error> {
        let listener = tokio::net::UnixListener::bind(socket).map_err(crate::Error::io(
            format!("cannot listen on {}", socket.display()),
        ))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(socket, Some(uid), Some(gid))
                .or_else(|_| {
                    std::fs::set_permissions(
                        socket,
                        std::os::unix::fs::PermissionsExt::from_mode(0o666),
                    )
                })
                .map_err(crate::Error::io(
                    "cannot give the proxy socket to the sandbox user",
                ))?;
        }
        Ok(tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let proxy = self.clone();
                tokio::spawn(async move { proxy.serve(client).await });
            }
        }))
    }

    /// Serves one client connection to its end.
    pub async fn serve<C>(&self, mut client: C)
    where
        C: AsyncRead + AsyncWrite + Unpin,
    {
        let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
            Ok(Ok(head)) => head,
            Ok(Err(r)) => return respond(&mut client, r.status, &r.reason).await,
            Err(_) => {
                return respond(&mut client, "408 Request Timeout", "no request in time").await;
            }
        };
        let (head, early) = head;
        let request = match parse_head(&head) {
            Ok(request) => request,
            Err(r) => return respond(&mut client, r.status, &r.reason).await,
        };
        let (host, port) = match &request {
            Request::Connect { host, port } | Request::Forward { host, port, .. } => {
                (host.clone(), *port)
            }
        };
        let refused = |reason: String, address: Option<SocketAddr>| EgressEvent {
            sandbox: self.sandbox.clone(),
            host: host.clone(),
            port,
            allowed: false,
            reason,
            address,
        };
        let (address, reason) = match self.decide(&host, port).await {
            Ok(ok) => ok,
            Err(reason) => {
                let _ = self
                    .settings
                    .events
                    .record(refused(reason.clone(), None))
                    .await;
                return respond(&mut client, "403 Forbidden", &reason).await;
            }
        };
        let allowed = EgressEvent {
            sandbox: self.sandbox.clone(),
            host: host.clone(),
            port,
            allowed: true,
            reason,
            address: Some(address),
        };
        if let Err(e) = self.settings.events.record(allowed).await {
            let reason = format!("the connection could not be recorded in the audit log: {e}");
            return respond(&mut client, "503 Service Unavailable", &reason).await;
        }
        let upstream = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                let reason = format!("cannot reach {host} at {address}: {e}");
                let _ = self
                    .settings
                    .events
                    .record(refused(reason.clone(), Some(address)))
                    .await;
                return respond(&mut client, "502 Bad Gateway", &reason).await;
            }
            Err(_) => {
                let reason = format!("{host} at {address} did not answer");
                let _ = self
                    .settings
                    .events
                    .record(refused(reason.clone(), Some(address)))
                    .await;
                return respond(&mut client, "504 Gateway Timeout", &reason).await;
            }
        };
        let mut upstream = upstream;
        let sent = match request {
            Request::Connect { .. } => client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .and(Ok(())),
            Request::Forward { head, .. } => upstream.write_all(&head).await,
        };
        if sent.is_err() || upstream.write_all(&early).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads() {
        assert_eq!(
            parse_head(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ok(Request::Connect {
                host: "api.openai.com".into(),
                port: 443
            })
        );
        assert_eq!(
            parse_head(b"CONNECT [2606:4700::1]:443 HTTP/1.1\r\n\r\n"),
            Ok(Request::Connect {
                host: "2606:4700::1".into(),
                port: 443
            })
        );
        let Ok(Request::Forward { host, port, head }) =
            parse_head(b"GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n")
        else {
            panic!("not a forward")
        };
        assert_eq!((host.as_str(), port), ("example.com", 80));
        assert_eq!(head, b"GET /a?b HTTP/1.1\r\nHost: example.com\r\n\r\n");
        for bad in [
            &b"CONNECT example.com HTTP/1.1\r\n\r\n"[..],
            b"CONNECT example.com:0 HTTP/1.1\r\n\r\n",
            b"GET /relative HTTP/1.1\r\n\r\n",
            b"GET https://example.com/ HTTP/1.1\r\n\r\n",
            b"GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n",
            b"GET http://example.com/ HTTP/2\r\n\r\n",
            b"NONSENSE\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert!(
                parse_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
