//! The egress bridge inside a sandbox: the sandbox has no route out, only
//! loopback; programs reach `127.0.0.1:PORT` (what `HTTP_PROXY` names),
//! and the bridge carries each connection over the Unix socket that
//! bubblewrap bound in from the host, where Smithers' proxy decides.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

use super::{BridgePlan, fail};

/// Starts the bridge as a child process and waits until it listens.
pub(super) fn start(plan: &BridgePlan, helper_args: &[String]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let plan_json = serde_json::to_string(plan).map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(helper_args)
        .arg("bridge")
        .arg(plan_json)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Why it cannot listen reaches the command's stderr, where it is read.
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("the bridge has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if line.trim() != "listening" {
        return Err(format!("the bridge did not start ({})", line.trim()));
    }
    // The bridge lives on as a child of the command; the PID namespace
    // ends it with the command.
    Ok(())
}

fn pipe(mut from: impl std::io::Read, mut to: impl std::io::Write, done: impl FnOnce()) {
    let _ = std::io::copy(&mut from, &mut to);
    done();
}

fn carry(client: TcpStream, socket: &std::path::Path) {
    let Ok(upstream) = UnixStream::connect(socket) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(client_read), Ok(upstream_write)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let to_proxy = std::thread::spawn(move || {
        pipe(client_read, &upstream_write, || {
            let _ = upstream_write.shutdown(Shutdown::Write);
        });
    });
    pipe(&upstream, &client, || {
        let _ = client.shutdown(Shutdown::Write);
    });
    let _ = to_proxy.join();
}

/// The bridge process: listen, say so, carry connections until killed.
pub(super) fn run(plan: &BridgePlan) -> ! {
    let listener = match TcpListener::bind(("127.0.0.1", plan.port)) {
        Ok(listener) => listener,
        Err(e) => fail("the egress bridge cannot listen", e),
    };
    let mut stdout = std::io::stdout();
    let _ = stdout
        .write_all(b"listening\n")
        .and_then(|()| stdout.flush());
    for client in listener.incoming().flatten() {
        let socket = plan.socket.clone();
        std::thread::spawn(move || carry(client, &socket));
    }
    std::process::exit(0)
}
