#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! The hostile suite: code inside the sandbox tries to get out, and every
//! attempt must fail while the host stays unaffected. Each test states the
//! attempt in its name.

use std::io::Read as _;
use std::net::TcpListener;
use std::time::Duration;

use smithers_sandbox::{ExecRequest, Limits, Provider, SandboxSpec, SandboxStatus};
use smithers_test_support::against_every_provider;
use smithers_test_support::sandbox::{run, sh, spec};

/// A file only the host should be able to read, removed on drop.
struct Marker(std::path::PathBuf);

impl Marker {
    fn new(dir: &str) -> Marker {
        let path = std::path::Path::new(dir).join(format!("smithers-marker-{}", uuid_like()));
        std::fs::write(&path, "host-only-marker").unwrap();
        Marker(path)
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

against_every_provider!(
    env!("CARGO_BIN_EXE_smithers-sandbox-helper");
    reading_host_files_outside_the_workspace_fails,
    writing_outside_the_workspace_fails,
    reaching_a_server_on_the_host_loopback_fails,
    there_is_no_network_to_resolve_or_reach_anything,
    a_fork_bomb_hits_the_pid_limit_and_the_host_stays_responsive,
    allocating_past_the_memory_limit_is_killed_with_137,
    a_busy_loop_past_the_timeout_is_killed_with_124_and_leaves_nothing,
    ptrace_mount_unshare_keyctl_bpf_and_io_uring_are_refused,
    calls_through_the_x32_or_i386_abi_kill_the_process,
    setuid_binaries_grant_nothing,
    proc_root_and_open_descriptors_lead_nowhere,
    background_processes_do_not_survive_their_command,
    the_workspace_is_a_copy_and_host_side_paths_stay_inside
);

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

async fn reading_host_files_outside_the_workspace_fails<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    let markers = [
        Marker::new("/root"),
        Marker::new("/etc"),
        Marker::new("/tmp"),
    ];
    for marker in &markers {
        let path = marker.0.display();
        let ran = sh(
            p,
            &id,
            &format!("cat {path}; cat /proc/1/root{path}; cat /proc/self/root{path}"),
        )
        .await;
        assert!(
            !ran.stdout.contains("host-only-marker"),
            "{path} leaked: {}",
            ran.stdout
        );
        assert_ne!(ran.outcome.exit_code, 0);
    }
    // The host's accounts are not there either: /etc is generated.
    let ran = sh(
        p,
        &id,
        "cat /etc/shadow; grep -c . /etc/passwd; ls /root /home",
    )
    .await;
    assert!(ran.stdout.trim_start().starts_with('3'), "{}", ran.stdout);
    assert!(ran.stderr.contains("/etc/shadow"), "{}", ran.stderr);
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

async fn writing_outside_the_workspace_fails<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    let name = format!("smithers-pwned-{}", uuid_like());
    for dir in [
        "/usr",
        "/etc",
        "/",
        "/.smithers",
        "/proc/1/root/usr",
        "/dev/shm",
    ] {
        let ran = sh(p, &id, &format!("echo x > {dir}/{name}")).await;
        assert_ne!(ran.outcome.exit_code, 0, "wrote into {dir}");
    }
    for dir in ["/usr", "/etc", "/"] {
        assert!(!std::path::Path::new(dir).join(&name).exists());
    }
    // The workspace and /tmp are writable, and persist between commands.
    let ran = sh(p, &id, "echo kept > /workspace/a && echo kept > /tmp/b").await;
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.stderr);
    let ran = sh(p, &id, "cat /workspace/a /tmp/b").await;
    assert_eq!(ran.stdout, "kept\nkept\n");
    assert_eq!(p.read_file(&id, "a").await.unwrap(), b"kept\n");
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

async fn reaching_a_server_on_the_host_loopback_fails<P: Provider>(p: &P) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let id = p.create(spec()).await.unwrap();
    let ran = sh(
        p,
        &id,
        &format!("exec /bin/bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}'"),
    )
    .await;
    assert_ne!(ran.outcome.exit_code, 0);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        listener.accept().is_err(),
        "the host's listener got a connection"
    );
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

async fn there_is_no_network_to_resolve_or_reach_anything<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    // Only loopback, no route, no resolver: nothing can leave, so nothing
    // is sent anywhere to prove it.
    let ran = sh(
        p,
        &id,
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; echo routes; tail -n +2 /proc/net/route; \
         echo ipv6; cat /proc/net/ipv6_route | grep -v ' lo$' ; getent hosts example.com || echo unresolved",
    )
    .await;
    assert_eq!(
        ran.stdout, "lo\nroutes\nipv6\nunresolved\n",
        "{}",
        ran.stderr
    );
    // Without egress even creating an internet socket is refused.
    let ran = sh(p, &id, "perl -e 'socket(S, 2, 1, 0) or die \"$!\\n\"'").await;
    assert!(
        ran.stderr.contains("Operation not permitted"),
        "{}",
        ran.stderr
    );
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

async fn a_fork_bomb_hits_the_pid_limit_and_the_host_stays_responsive<P: Provider>(p: &P) {
    let limits = Limits {
        pids: 64,
        ..Limits::default()
    };
    let id = p.create(SandboxSpec { limits, ..spec() }).await.unwrap();
    let mut request = ExecRequest::new([
        "/bin/bash",
        "-c",
        "bomb() { bomb | bomb & }; bomb; sleep 3; echo done",
    ]);
    request.timeout = Some(Duration::from_secs(20));
    let ran = run(p, &id, request).await;
    assert!(
        ran.stderr.contains("Resource temporarily unavailable") || ran.stderr.contains("fork"),
        "{}",
        ran.stderr
    );
    // The host still starts processes at once.
    let host = std::process::Command::new("/bin/true").status().unwrap();
    assert!(host.success());
    assert_eq!(p.status(&id).await.unwrap(), SandboxStatus::Idle);
    let report = p.destroy(&id).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

async fn allocating_past_the_memory_limit_is_killed_with_137<P: Provider>(p: &P) {
    let limits = Limits {
        memory: 64 << 20,
        ..Limits::default()
    };
    let id = p.create(SandboxSpec { limits, ..spec() }).await.unwrap();
    let ran = sh(
        p,
        &id,
        "perl -e '$x = \"a\" x (512 * 1024 * 1024); print length($x)'",
    )
    .await;
    assert!(ran.outcome.oom_killed, "{:?} {}", ran.outcome, ran.stderr);
    assert_eq!(ran.outcome.exit_code, 137);
    assert_eq!(ran.outcome.limit_hit(), Some("the memory limit"));
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

async fn a_busy_loop_past_the_timeout_is_killed_with_124_and_leaves_nothing<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    let mut request = ExecRequest::new(["/bin/sh", "-c", "sleep 1000 & while :; do :; done"]);
    request.timeout = Some(Duration::from_millis(1500));
    let ran = run(p, &id, request).await;
    assert!(ran.outcome.timed_out);
    assert_eq!(ran.outcome.exit_code, 124);
    assert!(ran.outcome.duration < Duration::from_secs(10));
    assert_eq!(p.status(&id).await.unwrap(), SandboxStatus::Idle);
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

async fn ptrace_mount_unshare_keyctl_bpf_and_io_uring_are_refused<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    // x86_64 numbers: ptrace 101, mount 165, unshare 272, keyctl 250,
    // bpf 321, io_uring_setup 425, setns 308, perf_event_open 298.
    let script = r#"
        sleep 100 & pid=$!
        perl -e '
          my @calls = (["ptrace", 101, 16, 0 + $ARGV[0], 0, 0], ["mount", 165, 0, 0, 0, 0],
                       ["unshare", 272, 0x10000000], ["keyctl", 250, 0, 0, 0, 0],
                       ["bpf", 321, 0, 0, 0], ["io_uring_setup", 425, 1, 0],
                       ["setns", 308, 0, 0], ["perf_event_open", 298, 0, 0, -1, -1, 0],
                       ["netlink socket", 41, 16, 3, 0]);
          for my $c (@calls) { my ($name, $nr, @args) = @$c; my $r = syscall($nr, @args);
                               print "$name ", ($r == -1 ? "refused: $!" : "ALLOWED"), "\n"; }
        ' $pid
        mount -t tmpfs none /tmp 2>&1 | head -1
        unshare -r true 2>&1 | head -1
    "#;
    let ran = sh(p, &id, script).await;
    assert!(!ran.stdout.contains("ALLOWED"), "{}", ran.stdout);
    // EPERM from the filter, not some other failure of a bad argument.
    assert_eq!(
        ran.stdout
            .matches("refused: Operation not permitted")
            .count(),
        9,
        "{}",
        ran.stdout
    );
    let status = sh(p, &id, "grep -E '^Seccomp(_filters)?:' /proc/self/status").await;
    assert!(status.stdout.contains("Seccomp:\t2"), "{}", status.stdout);
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

/// A static x86_64 ELF executable that makes one i386 system call
/// (`int 0x80` with eax = 20, getpid in the i386 table) and then exits 7
/// through the x86_64 ABI: exit 7 means the i386 call went through.
fn int80_probe() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let code: &[u8] = &[
        0xb8, 20, 0, 0, 0, // mov eax, 20
        0xcd, 0x80, // int 0x80
        0xb8, 60, 0, 0, 0, // mov eax, 60 (exit)
        0xbf, 7, 0, 0, 0, // mov edi, 7
        0x0f, 0x05, // syscall
    ];
    let len = (64 + 56 + code.len()) as u64;
    let mut elf = Vec::new();
    // ELF header (System V ABI, ELF-64 Object File Format 1.5).
    elf.extend([0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf.extend([0; 8]);
    elf.extend(2u16.to_le_bytes()); // ET_EXEC
    elf.extend(62u16.to_le_bytes()); // EM_X86_64
    elf.extend(1u32.to_le_bytes());
    elf.extend((BASE + 64 + 56).to_le_bytes()); // entry
    elf.extend(64u64.to_le_bytes()); // program headers
    elf.extend(0u64.to_le_bytes()); // no section headers
    elf.extend(0u32.to_le_bytes());
    elf.extend(64u16.to_le_bytes());
    elf.extend(56u16.to_le_bytes());
    elf.extend(1u16.to_le_bytes());
    elf.extend([0; 6]);
    // One PT_LOAD, readable and executable, mapping the whole file.
    elf.extend(1u32.to_le_bytes());
    elf.extend(5u32.to_le_bytes());
    elf.extend(0u64.to_le_bytes());
    elf.extend(BASE.to_le_bytes());
    elf.extend(BASE.to_le_bytes());
    elf.extend(len.to_le_bytes());
    elf.extend(len.to_le_bytes());
    elf.extend(0x1000u64.to_le_bytes());
    elf.extend(code);
    elf
}

/// The deny list speaks x86_64 numbers; x32 (same `arch`, numbers with
/// 0x40000000 set) and i386 (`int 0x80`) would reach the kernel around
/// it. Either kills the process with SIGSYS (159) before the call runs.
async fn calls_through_the_x32_or_i386_abi_kill_the_process<P: Provider>(p: &P) {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let id = p.create(spec()).await.unwrap();
    // x32 getpid (39 | __X32_SYSCALL_BIT): without a filter it returns the
    // pid, or -1 (ENOSYS) on a kernel built without x32.
    let ran = sh(
        p,
        &id,
        "perl -e 'my $r = syscall(0x40000000 | 39); print \"x32 getpid answered $r\\n\"'; \
         echo \"status $?\"",
    )
    .await;
    assert!(!ran.stdout.contains("answered"), "{}", ran.stdout);
    assert_eq!(ran.stdout, "status 159\n", "{}", ran.stderr);

    // int 0x80, where the host can make it at all (IA-32 emulation on).
    let probe = int80_probe();
    let host = tempfile::tempdir().unwrap();
    let path = host.path().join("int80");
    std::fs::write(&path, &probe).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let on_host = std::process::Command::new(&path).status().unwrap();
    p.write_file(&id, "int80", &probe).await.unwrap();
    let ran = sh(p, &id, "chmod +x int80 && ./int80; echo \"status $?\"").await;
    assert_ne!(ran.stdout, "status 7\n", "the i386 call went through");
    if on_host.code() == Some(7) {
        assert_eq!(ran.stdout, "status 159\n", "{}", ran.stderr);
    } else {
        eprintln!("this kernel refuses int 0x80 itself ({on_host}); only x32 was shown");
    }
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

async fn setuid_binaries_grant_nothing<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    let ran = sh(
        p,
        &id,
        "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status; \
         /usr/bin/su -c 'id -u' root </dev/null; /usr/bin/mount -t proc proc /tmp 2>&1 | head -1; id -u",
    )
    .await;
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            ran.stdout.contains(&format!("{cap}:\t0000000000000000")),
            "{}",
            ran.stdout
        );
    }
    assert!(ran.stdout.contains("NoNewPrivs:\t1"));
    assert!(ran.stdout.trim_end().ends_with("1000"), "{}", ran.stdout);
    assert!(!ran.stdout.contains("\n0\n"), "{}", ran.stdout);
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

async fn proc_root_and_open_descriptors_lead_nowhere<P: Provider>(p: &P) {
    // A descriptor whoever started Smithers left open and inheritable (a
    // lock file, a redirection) must not reach the sandbox.
    let dir = tempfile::tempdir().unwrap();
    let leaked_path = dir.path().join("inherited-host-secret");
    std::fs::write(&leaked_path, "host-only-marker").unwrap();
    let leaked = std::fs::File::open(&leaked_path).unwrap();
    rustix::io::fcntl_setfd(&leaked, rustix::io::FdFlags::empty()).unwrap();
    let id = p.create(spec()).await.unwrap();
    let ran = sh(
        p,
        &id,
        "ls /proc/1/root/; echo fds; ls /proc/self/fd; for fd in /proc/self/fd/*; do readlink $fd; done",
    )
    .await;
    let (root, fds) = ran.stdout.split_once("fds\n").expect(&ran.stderr);
    // PID 1 is the sandbox's own init: its root is the sandbox's root.
    for host_only in ["root\n", "home\n", "boot\n", "work\n", "var\n"] {
        assert!(!root.contains(host_only), "{root}");
    }
    // Either it cannot be opened at all (the init is not dumpable) or it
    // shows the sandbox's own root.
    assert!(
        root.contains("workspace\n") || ran.stderr.contains("/proc/1/root/"),
        "{root} {}",
        ran.stderr
    );
    // Every open descriptor is the standard streams' /dev/null and pipes
    // (and the shell's own copies of them): nothing of the host's.
    for target in fds.lines().filter(|l| l.parse::<u32>().is_err()) {
        assert!(
            target == "/dev/null" || target.starts_with("pipe:") || target.starts_with("/proc/"),
            "descriptor to {target:?} in {fds}"
        );
    }
    assert!(
        !fds.contains("smithers-sandboxes") && !fds.contains("/sandboxes/"),
        "{fds}"
    );
    assert!(!fds.contains("inherited-host-secret"), "{fds}");
    drop(leaked);
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

async fn background_processes_do_not_survive_their_command<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    let ran = sh(
        p,
        &id,
        "(sleep 7391 &) ; nohup sleep 7392 >/dev/null 2>&1 & setsid sleep 7393 & echo started",
    )
    .await;
    assert_eq!(ran.stdout, "started\n");
    assert_eq!(p.status(&id).await.unwrap(), SandboxStatus::Idle);
    // Also once the next command's helper has parked in the group.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(p.status(&id).await.unwrap(), SandboxStatus::Idle);
    let mut ps = String::new();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::File::open(e.path().join("cmdline")).ok())
        .for_each(|mut f| {
            let mut s = String::new();
            let _ = f.read_to_string(&mut s);
            ps.push_str(&s.replace('\0', " "));
            ps.push('\n');
        });
    // Durations no other test uses, so a neighbour's process is not mistaken for ours.
    for leftover in ["sleep 7391", "sleep 7392", "sleep 7393"] {
        assert!(!ps.contains(leftover), "{leftover} survived");
    }
    let report = p.destroy(&id).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

async fn the_workspace_is_a_copy_and_host_side_paths_stay_inside<P: Provider>(p: &P) {
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("Cargo.toml"), "[package]\n").unwrap();
    std::fs::create_dir(source.path().join("src")).unwrap();
    std::fs::write(source.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    let spec = SandboxSpec {
        workspace_from: Some(source.path().to_path_buf()),
        ..spec()
    };
    let id = p.create(spec).await.unwrap();
    let ran = sh(
        p,
        &id,
        "cat src/main.rs && echo changed > Cargo.toml && ln -s /etc/hostname escape",
    )
    .await;
    assert_eq!(ran.stdout, "fn main() {}\n", "{}", ran.stderr);
    // The original is untouched.
    assert_eq!(
        std::fs::read_to_string(source.path().join("Cargo.toml")).unwrap(),
        "[package]\n"
    );
    // A symlink planted inside does not lead the host out.
    assert!(p.read_file(&id, "escape").await.is_err());
    assert!(p.write_file(&id, "../x", b"x").await.is_err());
    p.write_file(&id, "new/dir/file.txt", b"from host")
        .await
        .unwrap();
    let ran = sh(
        p,
        &id,
        "cat new/dir/file.txt && echo more >> new/dir/file.txt",
    )
    .await;
    assert_eq!(ran.stdout, "from host");
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.stderr);
    assert!(p.destroy(&id).await.unwrap().is_clean());
}
