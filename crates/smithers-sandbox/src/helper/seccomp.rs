//! The seccomp filter of every sandboxed process: a deny list of the
//! system calls that cross the sandbox's boundaries or widen the kernel's
//! attack surface, each answered with EPERM (ENOSYS for `clone3`, whose
//! flags a filter cannot read, so that libc falls back to `clone`).
//!
//! The deny list names system calls by their numbers in this build's ABI,
//! and a process can enter the kernel through another ABI whose numbers
//! differ: the i386 `int 0x80` ABI on x86_64, AArch32 on aarch64, and on
//! x86_64 the x32 ABI, whose calls carry the same `AUDIT_ARCH_X86_64` but
//! have `__X32_SYSCALL_BIT` (0x40000000) set in their number (x32's
//! `ptrace` is 0x40000000 + 521, no rule here would match it). So, like
//! libseccomp's generated filters and Docker's default profile, every
//! program starts with an ABI guard that kills the process for any other
//! `arch` and, on x86_64, for any number with the x32 bit set
//! (Documentation/userspace-api/seccomp_filter.rst: "the arch field is
//! not unique for all calling conventions"; a filter must check it).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

fn arch() -> Result<TargetArch, String> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else {
        Err("seccomp filters are built for x86_64 and aarch64 only".into())
    }
}

/// `__AUDIT_ARCH_64BIT` and `__AUDIT_ARCH_LE` (include/uapi/linux/audit.h).
const AUDIT_ARCH_64BIT_LE: u32 = 0x8000_0000 | 0x4000_0000;
/// `AUDIT_ARCH_X86_64`: `EM_X86_64` (62) | 64-bit | little-endian.
const AUDIT_ARCH_X86_64: u32 = libc::EM_X86_64 as u32 | AUDIT_ARCH_64BIT_LE;
/// `AUDIT_ARCH_AARCH64`: `EM_AARCH64` (183) | 64-bit | little-endian.
const AUDIT_ARCH_AARCH64: u32 = libc::EM_AARCH64 as u32 | AUDIT_ARCH_64BIT_LE;
/// `__X32_SYSCALL_BIT` (arch/x86/include/uapi/asm/unistd.h): set in the
/// number of every x32 system call.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets in `struct seccomp_data` (include/uapi/linux/seccomp.h): `int
/// nr` at 0, `__u32 arch` at 4, both in the machine's byte order.
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;

/// The `AUDIT_ARCH_*` of this build, and whether it is x86_64 (the one
/// architecture whose `arch` value x32 shares).
fn native_audit_arch() -> Result<(u32, bool), String> {
    match arch()? {
        TargetArch::x86_64 => Ok((AUDIT_ARCH_X86_64, true)),
        TargetArch::aarch64 => Ok((AUDIT_ARCH_AARCH64, false)),
        other => Err(format!("no seccomp ABI guard for {other:?}")),
    }
}

/// A classic-BPF instruction (`BPF_STMT`/`BPF_JUMP` of linux/filter.h).
fn bpf(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    // Every opcode here fits the 16-bit field; libc declares them u32.
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The ABI guard every program starts with: kill the process
/// (`SECCOMP_RET_KILL_PROCESS`, not just the thread, so nothing carries on
/// half-killed) when the call is not this build's ABI; otherwise fall
/// through to the instruction after it. It leaves nothing in the
/// accumulator the rest relies on: the programs it precedes load what they
/// test.
fn abi_guard() -> Result<BpfProgram, String> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let kill = libc::SECCOMP_RET_KILL_PROCESS;
    let (native, x86_64) = native_audit_arch()?;
    let mut guard = vec![
        bpf(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARCH, 0, 0),
        bpf(BPF_JMP | BPF_JEQ | BPF_K, native, 1, 0),
        bpf(BPF_RET | BPF_K, kill, 0, 0),
    ];
    if x86_64 {
        guard.extend([
            bpf(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR, 0, 0),
            // Below the x32 bit: an x86_64 call, on to the rules.
            bpf(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 2),
            // -1 is not a call: it is what a tracer writes to skip one, and
            // the kernel answers it with ENOSYS. libseccomp lets it through
            // its x32 check the same way.
            bpf(BPF_JMP | BPF_JEQ | BPF_K, u32::MAX, 1, 0),
            bpf(BPF_RET | BPF_K, kill, 0, 0),
        ]);
    }
    Ok(guard)
}

/// `program` behind the ABI guard. seccompiler's own programs begin with
/// an arch check too, but it cannot express the x32 one; its jumps are
/// relative, so putting instructions in front leaves them intact.
fn guarded(program: BpfProgram) -> Result<BpfProgram, String> {
    let mut guarded = abi_guard()?;
    guarded.extend(program);
    // BPF_MAXINSNS (linux/bpf_common.h): the kernel refuses longer programs.
    if guarded.len() > 4096 {
        return Err(format!(
            "the seccomp filter has {} instructions, over 4096",
            guarded.len()
        ));
    }
    Ok(guarded)
}

/// Denied whatever their arguments: (name, number).
const DENIED: &[(&str, i64)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("fsopen", libc::SYS_fsopen),
    ("fsmount", libc::SYS_fsmount),
    ("fsconfig", libc::SYS_fsconfig),
    ("fspick", libc::SYS_fspick),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("bpf", libc::SYS_bpf),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("acct", libc::SYS_acct),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("reboot", libc::SYS_reboot),
    ("chroot", libc::SYS_chroot),
];

/// Address families a socket may have: Unix always, IPv4/IPv6 with egress.
fn families(inet: bool) -> Vec<u64> {
    let mut families = vec![libc::AF_UNIX as u64];
    if inet {
        families.extend([libc::AF_INET as u64, libc::AF_INET6 as u64]);
    }
    families
}

/// The same filter as a Docker (libseccomp JSON) profile, for containers:
/// one deny list for every provider.
pub fn docker_profile(inet: bool) -> serde_json::Value {
    let eperm = libc::EPERM;
    let mut syscalls = vec![serde_json::json!({
        "names": DENIED.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": eperm,
    })];
    for flag in CLONE_NEW {
        syscalls.push(serde_json::json!({
            "names": ["clone"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": eperm,
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        }));
    }
    // One condition per rule: libseccomp (and so the engine) cannot AND
    // several comparisons of the same argument, so the refused families
    // are listed one by one below the highest allowed, then everything
    // above it.
    let allowed = families(inet);
    let highest = allowed.iter().copied().max().unwrap_or(0);
    let mut refused: Vec<serde_json::Value> = (0..highest)
        .filter(|f| !allowed.contains(f))
        .map(|f| serde_json::json!([{"index": 0, "value": f, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]))
        .collect();
    refused.push(
        serde_json::json!([{"index": 0, "value": highest, "valueTwo": 0, "op": "SCMP_CMP_GT"}]),
    );
    for args in refused {
        syscalls.push(serde_json::json!({
            "names": ["socket", "socketpair"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": eperm,
            "args": args,
        }));
    }
    syscalls.push(serde_json::json!({
        "names": ["clone3"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": libc::ENOSYS,
    }));
    // Only this build's ABI: the engine's runtime (libseccomp) then applies
    // its bad-architecture action (kill) to any other, and libseccomp's
    // x86_64 filter sends x32 numbers there too.
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": [docker_arch()],
        "syscalls": syscalls,
    })
}

/// This build's architecture as libseccomp names it.
fn docker_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else {
        "SCMP_ARCH_X86_64"
    }
}

/// Namespace flags `clone` may not be given.
const CLONE_NEW: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn condition(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(|e| e.to_string())
}

/// The EPERM filter, behind the ABI guard. `inet`: IPv4/IPv6 sockets
/// allowed (for the proxy).
pub(super) fn deny_list(inet: bool) -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&(_, n)| (n, Vec::new())).collect();
    let clone_rules = CLONE_NEW
        .iter()
        .map(|&flag| {
            SeccompRule::new(vec![condition(0, SeccompCmpOp::MaskedEq(flag), flag)?])
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    // socket(domain, …) and socketpair(domain, …): any other family is refused.
    let allowed = families(inet);
    let other_family = || -> Result<Vec<SeccompRule>, String> {
        let conditions = allowed
            .iter()
            .map(|&f| condition(0, SeccompCmpOp::Ne, f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(vec![
            SeccompRule::new(conditions).map_err(|e| e.to_string())?,
        ])
    };
    rules.insert(libc::SYS_socket, other_family()?);
    rules.insert(libc::SYS_socketpair, other_family()?);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch()?,
    )
    .map_err(|e| e.to_string())?;
    guarded(BpfProgram::try_from(filter).map_err(|e| e.to_string())?)
}

fn clone3_filter() -> Result<BpfProgram, String> {
    let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch()?,
    )
    .map_err(|e| e.to_string())?;
    guarded(BpfProgram::try_from(filter).map_err(|e| e.to_string())?)
}

/// The programs [`install`] installs, in order. The kernel runs every
/// installed program on each call and takes the most severe answer, so
/// each answers for itself, the ABI guard included.
fn programs(inet: bool) -> Result<[BpfProgram; 2], String> {
    Ok([deny_list(inet)?, clone3_filter()?])
}

/// Installs the filters on the calling process (single-threaded here).
pub(super) fn install(inet: bool) -> Result<(), String> {
    for program in programs(inet)? {
        seccompiler::apply_filter(&program).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docker_profile_denies_the_same_calls() {
        let profile = docker_profile(false);
        let rules = profile["syscalls"].as_array().unwrap();
        let names: Vec<&str> = rules[0]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(names, DENIED.iter().map(|(n, _)| *n).collect::<Vec<_>>());
        assert!(names.contains(&"ptrace") && names.contains(&"io_uring_setup"));
        let clones = rules.iter().filter(|r| r["names"][0] == "clone").count();
        assert_eq!(clones, CLONE_NEW.len());
        // Without egress: family 0 and everything above AF_UNIX.
        let sockets = |profile: &serde_json::Value| -> Vec<(String, u64)> {
            profile["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["names"][0] == "socket")
                .map(|r| {
                    let arg = &r["args"].as_array().unwrap()[0];
                    (
                        arg["op"].as_str().unwrap().to_string(),
                        arg["value"].as_u64().unwrap(),
                    )
                })
                .collect()
        };
        let eq = |v: u64| ("SCMP_CMP_EQ".to_string(), v);
        let gt = |v: u64| ("SCMP_CMP_GT".to_string(), v);
        assert_eq!(sockets(&profile), [eq(0), gt(1)]);
        // With egress: 0, 3..=9 and everything above AF_INET6 (10).
        let mut expected: Vec<_> = [0, 3, 4, 5, 6, 7, 8, 9].into_iter().map(eq).collect();
        expected.push(gt(10));
        assert_eq!(sockets(&docker_profile(true)), expected);
        assert_eq!(profile["defaultAction"], "SCMP_ACT_ALLOW");
        // Only this build's ABI: the engine refuses every other one.
        let native = if cfg!(target_arch = "aarch64") {
            "SCMP_ARCH_AARCH64"
        } else {
            "SCMP_ARCH_X86_64"
        };
        for inet in [false, true] {
            assert_eq!(
                docker_profile(inet)["architectures"],
                serde_json::json!([native])
            );
            assert!(docker_profile(inet).get("archMap").is_none());
        }
    }

    /// The Docker profile's socket rules, evaluated as libseccomp would
    /// (a rule matches when its one condition holds; any match refuses),
    /// refuse exactly the families the native filter refuses.
    #[test]
    fn the_docker_profile_refuses_exactly_the_other_families() {
        for inet in [false, true] {
            let profile = docker_profile(inet);
            let rules: Vec<(String, u64)> = profile["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["names"][0] == "socket")
                .map(|r| {
                    let args = r["args"].as_array().unwrap();
                    assert_eq!(args.len(), 1, "one condition per rule: {r}");
                    (
                        args[0]["op"].as_str().unwrap().to_string(),
                        args[0]["value"].as_u64().unwrap(),
                    )
                })
                .collect();
            let refused = |family: u64| {
                rules.iter().any(|(op, value)| match op.as_str() {
                    "SCMP_CMP_EQ" => family == *value,
                    "SCMP_CMP_GT" => family > *value,
                    other => panic!("unexpected comparison {other}"),
                })
            };
            let allowed = families(inet);
            for family in (0..=64).chain([255, 65_535, u64::from(u32::MAX), u64::MAX]) {
                assert_eq!(
                    refused(family),
                    !allowed.contains(&family),
                    "family {family} with inet={inet}"
                );
            }
        }
    }

    #[test]
    fn the_filters_compile() {
        assert!(!deny_list(false).unwrap().is_empty());
        assert!(!deny_list(true).unwrap().is_empty());
        assert!(!clone3_filter().unwrap().is_empty());
    }

    /// `struct seccomp_data` (include/uapi/linux/seccomp.h) as the kernel
    /// lays it out: nr, arch, instruction pointer, six arguments, in the
    /// machine's byte order.
    fn seccomp_data(arch: u32, nr: u32, args: [u64; 6]) -> [u8; 64] {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, arg) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
        }
        data
    }

    /// A classic-BPF interpreter for the instructions seccomp filters use
    /// here (Documentation/networking/filter.rst): absolute word loads,
    /// `and` with a constant, jumps, returns. Anything else fails the test.
    fn interpret(program: &[sock_filter], data: &[u8; 64]) -> u32 {
        use libc::{
            BPF_ABS, BPF_ALU, BPF_AND, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_K,
            BPF_LD, BPF_RET, BPF_W,
        };
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let insn = &program[pc];
            let code = u32::from(insn.code);
            pc += 1;
            let jump = |taken: bool| usize::from(if taken { insn.jt } else { insn.jf });
            match code {
                c if c == BPF_LD | BPF_W | BPF_ABS => {
                    let at = insn.k as usize;
                    a = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
                }
                c if c == BPF_ALU | BPF_AND | BPF_K => a &= insn.k,
                c if c == BPF_JMP | BPF_JA => pc += insn.k as usize,
                c if c == BPF_JMP | BPF_JEQ | BPF_K => pc += jump(a == insn.k),
                c if c == BPF_JMP | BPF_JGT | BPF_K => pc += jump(a > insn.k),
                c if c == BPF_JMP | BPF_JGE | BPF_K => pc += jump(a >= insn.k),
                c if c == BPF_JMP | BPF_JSET | BPF_K => pc += jump(a & insn.k != 0),
                c if c == BPF_RET | BPF_K => return insn.k,
                other => panic!("instruction {other:#x} at {} not interpreted", pc - 1),
            }
        }
    }

    /// What the kernel does with a call under every installed program: the
    /// most severe answer, the action read as a signed number, lowest
    /// first (kernel/seccomp.c, `seccomp_run_filters`).
    fn verdict(inet: bool, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let data = seccomp_data(arch, nr, args);
        programs(inet)
            .unwrap()
            .iter()
            .map(|program| interpret(program, &data))
            .min_by_key(|ret| (ret & libc::SECCOMP_RET_ACTION_FULL) as i32)
            .unwrap()
    }

    const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    fn native() -> u32 {
        native_audit_arch().unwrap().0
    }

    fn nr(number: i64) -> u32 {
        u32::try_from(number).unwrap()
    }

    #[test]
    fn ordinary_calls_pass_and_denied_ones_get_their_errno() {
        for inet in [false, true] {
            let call = |number: i64, args: [u64; 6]| verdict(inet, native(), nr(number), args);
            assert_eq!(call(libc::SYS_getpid, [0; 6]), ALLOW);
            assert_eq!(call(libc::SYS_read, [0; 6]), ALLOW);
            assert_eq!(call(libc::SYS_ptrace, [0; 6]), EPERM);
            assert_eq!(call(libc::SYS_io_uring_setup, [1, 0, 0, 0, 0, 0]), EPERM);
            assert_eq!(call(libc::SYS_clone3, [0; 6]), ENOSYS);
            let newuser = libc::CLONE_NEWUSER as u64;
            assert_eq!(call(libc::SYS_clone, [newuser, 0, 0, 0, 0, 0]), EPERM);
            let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
            assert_eq!(call(libc::SYS_clone, [thread, 0, 0, 0, 0, 0]), ALLOW);
            let unix = libc::AF_UNIX as u64;
            assert_eq!(call(libc::SYS_socket, [unix, 1, 0, 0, 0, 0]), ALLOW);
            let netlink = libc::AF_NETLINK as u64;
            assert_eq!(call(libc::SYS_socket, [netlink, 3, 0, 0, 0, 0]), EPERM);
            let inet4 = libc::AF_INET as u64;
            let expected = if inet { ALLOW } else { EPERM };
            assert_eq!(call(libc::SYS_socket, [inet4, 1, 0, 0, 0, 0]), expected);
        }
    }

    #[test]
    fn another_abi_kills_the_process() {
        // AUDIT_ARCH_I386 (EM_386 | little-endian): `int 0x80` on x86_64,
        // where 20 is getpid. AUDIT_ARCH_ARM (EM_ARM | little-endian):
        // AArch32 on aarch64. Both as foreign as they get.
        let i386 = libc::EM_386 as u32 | 0x4000_0000;
        let arm = libc::EM_ARM as u32 | 0x4000_0000;
        for inet in [false, true] {
            for arch in [i386, arm, 0, u32::MAX] {
                assert_eq!(verdict(inet, arch, 20, [0; 6]), KILL, "arch {arch:#x}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn an_x32_call_kills_the_process() {
        for inet in [false, true] {
            let x32 =
                |number: u32| verdict(inet, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | number, [0; 6]);
            // getpid and read are allowed in x86_64 numbering...
            assert_eq!(x32(nr(libc::SYS_getpid)), KILL);
            assert_eq!(x32(0), KILL);
            // ...and x32's own ptrace (512 + 9) would match no rule.
            assert_eq!(x32(521), KILL);
            assert_eq!(x32(0x3fff_ffff), KILL);
            // -1, what a tracer writes to skip a call, is left to the
            // kernel (ENOSYS), as libseccomp does.
            assert_eq!(verdict(inet, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]), ALLOW);
            assert_eq!(verdict(inet, AUDIT_ARCH_X86_64, u32::MAX - 1, [0; 6]), KILL);
        }
    }

    #[test]
    fn the_guard_comes_first_in_every_program() {
        let guard = abi_guard().unwrap();
        for program in programs(false)
            .unwrap()
            .iter()
            .chain(&programs(true).unwrap())
        {
            assert_eq!(&program[..guard.len()], &guard[..]);
        }
    }
}
