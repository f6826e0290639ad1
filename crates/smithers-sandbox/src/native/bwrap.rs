//! The bubblewrap command line of one exec.

use std::path::Path;

use crate::Root;
use crate::helper::InitPlan;

/// Where the helper is inside the sandbox.
pub const INIT_PATH: &str = "/.smithers/init";
/// The proxy's socket in a sandbox's host directory.
pub const PROXY_SOCKET_FILE: &str = "proxy.sock";
/// The uid and gid the command has inside the sandbox.
pub const SANDBOX_UID: u32 = 1000;

/// Top-level names of a merged-/usr host that are links or directories.
const SYSTEM_DIRS: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];
/// What of the host's `/etc` a toolchain needs: no secrets, no accounts.
const ETC_SHARED: &[&str] = &[
    "ssl",
    "ca-certificates",
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
];

fn push(args: &mut Vec<String>, words: &[&str]) {
    args.extend(words.iter().map(|w| (*w).to_string()));
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The root: the host's system directories, or a whole directory.
fn root_args(args: &mut Vec<String>, root: &Root, etc: &Path) {
    match root {
        Root::Directory(dir) => push(args, &["--ro-bind", &path(dir), "/"]),
        Root::Host => {
            push(args, &["--ro-bind", "/usr", "/usr"]);
            for name in SYSTEM_DIRS {
                let host = Path::new("/").join(name);
                match std::fs::read_link(&host) {
                    Ok(target) => push(args, &["--symlink", &path(&target), &format!("/{name}")]),
                    Err(_) if host.is_dir() => {
                        push(args, &["--ro-bind", &path(&host), &format!("/{name}")]);
                    }
                    Err(_) => {}
                }
            }
            push(args, &["--dir", "/etc"]);
            for name in ["passwd", "group", "hosts", "nsswitch.conf", "hostname"] {
                push(
                    args,
                    &["--ro-bind", &path(&etc.join(name)), &format!("/etc/{name}")],
                );
            }
            for name in ETC_SHARED {
                let host = format!("/etc/{name}");
                push(args, &["--ro-bind-try", &host, &host]);
            }
        }
    }
}

/// Everything after `bwrap`: namespaces, mounts, then the helper's `init`.
pub fn args(
    root: &Root,
    sandbox_dir: &Path,
    etc: &Path,
    helper: &Path,
    helper_args: &[String],
    init: &InitPlan,
) -> Result<Vec<String>, serde_json::Error> {
    let mut args = Vec::with_capacity(96);
    push(
        &mut args,
        &[
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--uid",
            &SANDBOX_UID.to_string(),
            "--gid",
            &SANDBOX_UID.to_string(),
            "--hostname",
            "sandbox",
        ],
    );
    root_args(&mut args, root, etc);
    push(
        &mut args,
        &[
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--bind",
            &path(&sandbox_dir.join("workspace")),
            "/workspace",
            "--bind",
            &path(&sandbox_dir.join("tmp")),
            "/tmp",
            "--ro-bind",
            &path(helper),
            INIT_PATH,
        ],
    );
    // With egress, the proxy's socket (made by the provider) is bound in
    // where the bridge expects it.
    if let Some(bridge) = &init.bridge {
        push(
            &mut args,
            &[
                "--bind",
                &path(&sandbox_dir.join(PROXY_SOCKET_FILE)),
                &bridge.socket.display().to_string(),
            ],
        );
    }
    push(
        &mut args,
        &[
            "--chdir",
            "/workspace",
            "--remount-ro",
            "/",
            "--",
            INIT_PATH,
        ],
    );
    args.extend(helper_args.iter().cloned());
    push(&mut args, &["init", &serde_json::to_string(init)?]);
    Ok(args)
}

/// The generated `/etc` files of a host-rooted sandbox.
pub fn etc_files() -> [(&'static str, String); 5] {
    let uid = SANDBOX_UID;
    [
        (
            "passwd",
            format!(
                "root:x:0:0:root:/root:/bin/sh\nsandbox:x:{uid}:{uid}:sandbox:/workspace:/bin/sh\n\
                 nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
        ),
        (
            "group",
            format!("root:x:0:\nsandbox:x:{uid}:\nnogroup:x:65534:\n"),
        ),
        ("hosts", "127.0.0.1 localhost\n::1 localhost\n".into()),
        (
            "nsswitch.conf",
            "passwd: files\ngroup: files\nhosts: files\n".into(),
        ),
        ("hostname", "sandbox\n".into()),
    ]
}
