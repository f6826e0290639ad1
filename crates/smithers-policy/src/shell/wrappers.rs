//! Programs that run another program given in their arguments, and how
//! each one reads its own options before that program.
//!
//! The table follows each program's documentation (man pages of
//! coreutils, util-linux, findutils, procps, sudo, moreutils, …): which
//! short and long options take a value, how many words come between the
//! options and the program, which options carry a whole command line for a
//! shell. Every wrapper here stops reading its options at the first word
//! that is not one (getopt's `+`), so what follows is the program. The
//! list can never hold every program that runs another one (an
//! interpreter, a build tool, a program the repository brings): a `deny`
//! on a program name under a broad `allow` is a tripwire, not a boundary.

use super::commands::Simple;
use super::word::Word;
use super::{Assignment, AssignmentKind, Dialect};

/// How one wrapper reads its arguments.
#[derive(Debug)]
pub(crate) struct Wrapper {
    /// The program's name; `"a b"` for a subcommand `b` of `a`.
    pub name: &'static str,
    /// Short options taking a value (`-n 5` or `-n5`), as letters.
    pub short_values: &'static str,
    /// Long options taking a value (`--signal KILL` or `--signal=KILL`),
    /// without their `--`.
    pub long_values: &'static [&'static str],
    /// Words between the options and the program (`timeout DURATION`).
    pub positionals: usize,
    /// Options whose value is a command line another shell reads
    /// (`su -c`): the line is not analysed.
    pub command_options: &'static [&'static str],
    /// Options that make the wrapper run something the kernel cannot see
    /// (a library to load, a directory of programs, a shell of the user's).
    pub refused_options: &'static [&'static str],
    /// Options whose value is `NAME=VALUE` for the program's environment.
    pub env_options: &'static [&'static str],
    /// Options that change the directory the program starts in.
    pub chdir_options: &'static [&'static str],
    /// The program's words are joined and run by `sh -c` (`watch`).
    pub joined: Joined,
    /// Options come again after the positional words (`setarch ARCH -R`).
    pub options_after_positionals: bool,
    /// It reads options anywhere, also after its program (getopt without
    /// `+`), unless `--` comes first.
    pub permutes: bool,
    /// Given no program it starts a shell (which reads start-up files).
    pub shell_when_empty: bool,
}

/// How the program after a wrapper's options is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joined {
    /// As words: the first is the program.
    No,
    /// Joined with spaces and run by `sh -c`, unless one of these options
    /// (`watch -x`) says to run the words as they are.
    Shell(&'static [&'static str]),
}

const fn w(name: &'static str) -> Wrapper {
    Wrapper {
        name,
        short_values: "",
        long_values: &[],
        positionals: 0,
        command_options: &[],
        refused_options: &[],
        env_options: &[],
        chdir_options: &[],
        joined: Joined::No,
        options_after_positionals: false,
        permutes: false,
        shell_when_empty: false,
    }
}

impl Wrapper {
    const fn short(mut self, letters: &'static str) -> Self {
        self.short_values = letters;
        self
    }
    const fn long(mut self, names: &'static [&'static str]) -> Self {
        self.long_values = names;
        self
    }
    const fn positionals(mut self, n: usize) -> Self {
        self.positionals = n;
        self
    }
    const fn commands(mut self, options: &'static [&'static str]) -> Self {
        self.command_options = options;
        self
    }
    const fn refused(mut self, options: &'static [&'static str]) -> Self {
        self.refused_options = options;
        self
    }
    const fn env(mut self, options: &'static [&'static str]) -> Self {
        self.env_options = options;
        self
    }
    const fn chdir(mut self, options: &'static [&'static str]) -> Self {
        self.chdir_options = options;
        self
    }
    const fn joined(mut self, exec_options: &'static [&'static str]) -> Self {
        self.joined = Joined::Shell(exec_options);
        self
    }
    const fn options_again(mut self) -> Self {
        self.options_after_positionals = true;
        self
    }
    const fn permutes(mut self) -> Self {
        self.permutes = true;
        self
    }
    const fn shell_when_empty(mut self) -> Self {
        self.shell_when_empty = true;
        self
    }
}

/// Every wrapper the splitter sees through.
const WRAPPERS: &[Wrapper] = &[
    // coreutils 9.1
    w("env")
        .short("uCS")
        .long(&["unset", "chdir", "split-string"])
        .chdir(&["-C", "--chdir"]),
    w("nohup"),
    w("nice").short("n").long(&["adjustment"]),
    w("timeout")
        .short("ks")
        .long(&["kill-after", "signal"])
        .positionals(1),
    w("stdbuf").short("ioe").long(&["input", "output", "error"]),
    w("chroot")
        .long(&["userspec", "groups"])
        .positionals(1)
        .shell_when_empty(),
    // bash builtins (and the keyword `time` read as GNU time's options)
    w("command"),
    w("builtin"),
    w("exec").short("a").refused(&["-l"]),
    w("time").short("fo").long(&["format", "output"]),
    // util-linux 2.38
    w("setsid"),
    w("ionice")
        .short("cnpPu")
        .long(&["class", "classdata", "pid", "pgid", "uid"]),
    w("chrt")
        .short("DPT")
        .long(&["sched-runtime", "sched-period", "sched-deadline"])
        .positionals(1),
    w("taskset").positionals(1),
    w("prlimit").short("po").long(&["pid", "output"]),
    w("setpriv").long(&[
        "inh-caps",
        "ambient-caps",
        "ruid",
        "euid",
        "rgid",
        "egid",
        "reuid",
        "regid",
        "groups",
        "bounding-set",
        "securebits",
        "pdeathsig",
        "selinux-label",
        "apparmor-profile",
    ]),
    w("flock")
        .short("wE")
        .long(&["timeout", "wait", "conflict-exit-code"])
        .positionals(1)
        .commands(&["-c", "--command"])
        .options_again(),
    w("script")
        .short("BEIOTcmo")
        .long(&[
            "command",
            "echo",
            "log-in",
            "log-out",
            "log-io",
            "log-timing",
            "logging-format",
            "output-limit",
        ])
        .commands(&["-c", "--command"])
        .permutes()
        .shell_when_empty(),
    w("setarch")
        .positionals(1)
        .options_again()
        .shell_when_empty(),
    w("linux32").shell_when_empty(),
    w("linux64").shell_when_empty(),
    w("i386").shell_when_empty(),
    w("x86_64").shell_when_empty(),
    w("unshare")
        .short("GRSw")
        .long(&[
            "map-user",
            "map-users",
            "map-group",
            "map-groups",
            "propagation",
            "setgroups",
            "setuid",
            "setgid",
            "root",
            "wd",
            "monotonic",
            "boottime",
        ])
        .chdir(&["-w", "--wd", "-R", "--root"])
        .shell_when_empty(),
    w("nsenter")
        .short("tSGW")
        .long(&["target", "setuid", "setgid", "wdns"])
        .chdir(&["-w", "--wd", "-r", "--root", "-W", "--wdns"])
        .shell_when_empty(),
    w("numactl").short("CILMNPScfimop").long(&[
        "interleave",
        "preferred",
        "preferred-many",
        "cpubind",
        "cpunodebind",
        "physcpubind",
        "membind",
        "shm",
        "file",
        "offset",
        "length",
        "shmmode",
        "shmid",
    ]),
    // procps 4.0
    w("watch")
        .short("nq")
        .long(&["interval", "equexit"])
        .joined(&["-x", "--exec"]),
    // findutils 4.9
    // `-l`/`--max-lines`, `-e`/`--eof`, `-i`/`--replace` take their value
    // attached only.
    w("xargs")
        .short("EILPdnas")
        .long(&[
            "arg-file",
            "delimiter",
            "max-args",
            "max-procs",
            "process-slot-var",
            "max-chars",
        ])
        .refused(&["--process-slot-var"]),
    // sudo 1.9, doas
    w("sudo")
        .short("CDRTUacghprtu")
        .long(&[
            "other-user",
            "auth-type",
            "close-from",
            "login-class",
            "chdir",
            "group",
            "host",
            "prompt",
            "chroot",
            "role",
            "command-timeout",
            "type",
            "user",
        ])
        .chdir(&["-D", "--chdir", "-R", "--chroot"])
        .refused(&["-s", "--shell", "-i", "--login", "-e", "--edit"]),
    w("doas").short("Cu").refused(&["-s"]),
    // debuggers and tracers
    w("strace")
        .short("EIOPSUXabeopsu")
        .long(&[
            "columns",
            "detach-on",
            "env",
            "interruptible",
            "output",
            "summary-syscall-overhead",
            "attach",
            "trace-path",
            "string-limit",
            "summary-sort-by",
            "user",
            "summary-columns",
            "const-print-style",
            "trace",
            "abbrev",
            "verbose",
            "raw",
            "signals",
            "status",
            "read",
            "write",
            "fault",
            "inject",
            "kvm",
            "decode-pids",
        ])
        .env(&["-E", "--env"]),
    w("ltrace")
        .short("ADFXaelnopsux")
        .long(&["align", "config", "debug", "indent", "library", "output"]),
    w("valgrind"),
    w("catchsegv"),
    w("perf record").short("CDFGcejkmoprtu").long(&[
        "count",
        "cpu",
        "delay",
        "event",
        "freq",
        "cgroup",
        "branch-filter",
        "clockid",
        "mmap-pages",
        "output",
        "pid",
        "realtime",
        "tid",
        "uid",
        "affinity",
        "call-graph",
        "clang-opt",
        "clang-path",
        "control",
        "filter",
        "max-size",
        "mmap-flush",
        "num-thread-synthesize",
        "proc-map-timeout",
        "switch-max-files",
        "switch-output-event",
        "synth",
        "vmlinux",
    ]),
    w("perf stat")
        .short("CDGIMeoprtx")
        .long(&[
            "cpu",
            "delay",
            "event",
            "cgroup",
            "interval-print",
            "metrics",
            "output",
            "pid",
            "repeat",
            "tid",
            "field-separator",
            "control",
            "cputype",
            "filter",
            "for-each-cgroup",
            "interval-count",
            "log-fd",
            "post",
            "pre",
            "td-level",
            "timeout",
        ])
        .commands(&["--pre", "--post"]),
    w("perf trace").short("CDFGeimoptu").long(&[
        "cpu",
        "delay",
        "event",
        "pf",
        "cgroup",
        "input",
        "mmap-pages",
        "output",
        "pid",
        "tid",
        "uid",
        "call-graph",
        "duration",
        "expr",
        "filter",
        "filter-pids",
        "map-dump",
        "max-events",
        "max-stack",
        "min-stack",
        "proc-map-timeout",
        "switch-off",
        "switch-on",
    ]),
    // moreutils, fakeroot, faketime and friends
    w("chronic"),
    w("ifne"),
    w("zrun"),
    w("lckdo").short("EW").positionals(1),
    w("eatmydata"),
    w("faketime")
        .short("p")
        .long(&["date-prog"])
        .positionals(1)
        .refused(&["--date-prog"]),
    // fakeroot's script evaluates these values with the shell.
    w("fakeroot")
        .short("bfils")
        .long(&["lib", "faked", "fd-base"])
        .commands(&["-l", "--lib", "-f", "--faked", "-s", "-i"])
        .shell_when_empty(),
    w("xvfb-run").short("efnpsw").long(&[
        "error-file",
        "auth-file",
        "server-num",
        "xauth-protocol",
        "server-args",
        "wait",
    ]),
    w("dbus-run-session")
        .long(&["dbus-daemon", "config-file"])
        .refused(&["--dbus-daemon"]),
    w("torsocks")
        .short("Papu")
        .long(&["user", "pass", "address", "port"])
        .refused(&["--shell"]),
    w("proxychains").short("f"),
    w("proxychains4").short("f"),
    w("cgexec").short("g"),
    w("tini").short("ep").permutes(),
    w("dumb-init").short("r").long(&["rewrite"]),
    w("daemonize").short("Eceloup").env(&["-E"]).chdir(&["-c"]),
    w("setuidgid").positionals(1),
    w("envuidgid").positionals(1),
    w("setlock").positionals(1),
    w("pgrphack"),
    w("softlimit").short("acdflmoprst"),
    w("nq"),
    w("tsp").short("DLNSUciknoprstuw"),
    w("busybox"),
];

/// Programs that run what the kernel cannot see, with why.
const REFUSED: &[(&str, &str)] = &[
    ("run-parts", "`run-parts` runs every program in a directory"),
    (
        "start-stop-daemon",
        "`start-stop-daemon` runs the program named by its options",
    ),
    (
        "envdir",
        "`envdir` sets the variables its directory's files name",
    ),
    (
        "chpst",
        "`chpst` can set variables from a directory and change the root",
    ),
    (
        "parallel",
        "`parallel` runs a command template through a shell",
    ),
    ("sem", "`sem` runs a command template through a shell"),
    ("pee", "`pee` runs each argument through a shell"),
    ("mispipe", "`mispipe` runs both arguments through a shell"),
    ("su", "`su` runs the user's shell with its arguments"),
    (
        "runuser",
        "`runuser` runs the user's shell or reads options after its program",
    ),
    ("sg", "`sg` runs a word through a shell"),
    ("newgrp", "`newgrp` runs a shell"),
    (
        "sudoedit",
        "`sudoedit` runs the editor the environment names",
    ),
    (
        "bwrap",
        "the command `bwrap` runs after its many options is not analysed",
    ),
    (
        "firejail",
        "the command `firejail` runs after its many options is not analysed",
    ),
    (
        "systemd-run",
        "the command `systemd-run` runs after its many options is not analysed",
    ),
    (
        "gdb",
        "`gdb` runs commands given with -ex and files it reads",
    ),
    ("rlwrap", "the command `rlwrap` runs is not analysed"),
    ("expect", "`expect` runs a script of its own"),
    ("unbuffer", "`unbuffer` hands its words to expect's `spawn`"),
    ("nix-shell", "`nix-shell` runs a shell of its own"),
];

/// Every program the splitter sees through or refuses, for documentation.
pub fn wrapper_names() -> impl Iterator<Item = &'static str> {
    WRAPPERS
        .iter()
        .map(|w| w.name)
        .chain(REFUSED.iter().map(|(n, _)| *n))
}

/// A wrapper by program name; `args` may select a subcommand.
pub(crate) enum Found {
    Wrapper(&'static Wrapper, usize),
    Refused(&'static str),
}

pub(crate) fn lookup(name: &str, args: &[Word]) -> Option<Found> {
    if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == name) {
        return Some(Found::Refused(why));
    }
    let sub = args.first().map(|w| w.text.as_str());
    WRAPPERS.iter().find_map(|w| match w.name.split_once(' ') {
        None => (w.name == name).then_some(Found::Wrapper(w, 0)),
        Some((program, subcommand)) => {
            (program == name && sub == Some(subcommand)).then_some(Found::Wrapper(w, 1))
        }
    })
}

/// What a wrapper runs.
pub(crate) enum Runs {
    Nothing,
    Command(Simple),
    /// A line for `sh -c`.
    ShellLine(String),
}

pub(crate) struct Unwrapped {
    pub run: Runs,
    /// Variables the wrapper sets for the program (also the wrapper's own).
    pub assignments: Vec<Assignment>,
    pub changes_directory: bool,
}

/// Whether option `flag` (`-c`, `--command`, or an unambiguous prefix of
/// a long option, which getopt_long accepts: `--comm`) is in `list`.
fn option_in(flag: &str, list: &[&str]) -> bool {
    list.contains(&flag)
        || (flag.starts_with("--")
            && flag.len() > 2
            && list
                .iter()
                .any(|o| o.starts_with("--") && o.starts_with(flag)))
}

const COMPUTED_OPTION: &str = "a word before the program holds an expansion or a glob, so which word is the program is only known when the shell runs";

const ABBREVIATED_OPTION: &str = "an abbreviated long option before the program may or may not take a value, so which word is the program is not known for certain";

/// Reads `wrapper`'s options from `args` and finds what it runs.
pub(crate) fn unwrap(
    wrapper: &'static Wrapper,
    args: &[Word],
    dialect: Dialect,
) -> Result<Unwrapped, String> {
    let program = wrapper.name.split(' ').next().unwrap_or(wrapper.name);
    let mut out = Unwrapped {
        run: Runs::Nothing,
        assignments: Vec::new(),
        changes_directory: false,
    };
    let mut computed = false;
    // An abbreviated long option the table cannot tell takes a value.
    let mut ambiguous: Option<String> = None;
    let mut run_words = false;
    // `xargs -I R`: words holding R are filled from input.
    let mut replace: Option<String> = None;
    let mut i = 0;
    let mut positionals = wrapper.positionals;
    // `setarch [ARCH] [options] …`: ARCH only when it is not an option.
    if program == "setarch" && args.first().is_some_and(|a| a.text.starts_with('-')) {
        positionals = 0;
    }
    let mut ended_by_dashes = false;
    loop {
        // Options.
        while i < args.len() {
            let arg = &args[i];
            if arg.computed() {
                computed = true;
            }
            let text = arg.text.as_str();
            if text == "--" {
                i += 1;
                ended_by_dashes = true;
                break;
            }
            if text == "-" && program == "env" {
                // `env -` is `env -i`.
                i += 1;
                continue;
            }
            let Some(option) = OptionWord::from_word(text) else {
                if let Some(a) = wrapper_assignment(program, arg) {
                    out.assignments.push(a);
                    i += 1;
                    continue;
                }
                break;
            };
            // getopt_long takes any unambiguous prefix (`--k` for
            // `--kill-after`), but an exact option of its own that the table
            // does not list would win: which word is the program is then
            // not known for certain (`Some(false)`).
            let takes_value = |name: &str| -> (bool, bool) {
                match name.strip_prefix("--") {
                    Some(long) if wrapper.long_values.contains(&long) => (true, true),
                    Some(long) if wrapper.long_values.iter().any(|v| v.starts_with(long)) => {
                        (true, false)
                    }
                    Some(_) => (false, true),
                    None => (
                        name.chars()
                            .nth(1)
                            .is_some_and(|c| wrapper.short_values.contains(c)),
                        true,
                    ),
                }
            };
            // Each short option of a bundle (`-ab`) and its value.
            let mut step = 1;
            for (flag, attached) in option.flags() {
                let (takes, certain) = takes_value(&flag);
                if !certain {
                    ambiguous.get_or_insert_with(|| flag.clone());
                }
                let (value, used_next) = if !takes {
                    (None, false)
                } else if let Some(v) = attached {
                    (Some(v.to_string()), false)
                } else {
                    (args.get(i + 1).map(|w| w.text.clone()), true)
                };
                if used_next {
                    step = 2;
                    if args.get(i + 1).is_some_and(Word::computed) {
                        computed = true;
                    }
                }
                let is = |list: &[&str]| option_in(&flag, list);
                if is(wrapper.command_options) {
                    return Err(format!(
                        "`{program} {flag}` gives a command line to a shell that is not analysed"
                    ));
                }
                if is(wrapper.refused_options) {
                    return Err(format!(
                        "`{program} {flag}` runs what the kernel cannot see (a shell, an editor or a library of its own choosing)"
                    ));
                }
                if is(wrapper.chdir_options) {
                    out.changes_directory = true;
                }
                if is(wrapper.env_options) {
                    let word = Word::plain(value.clone().unwrap_or_default());
                    match word.assignment(Dialect::Posix, AssignmentKind::Prefix) {
                        Some(a) => out.assignments.push(a),
                        None => {
                            return Err(format!(
                                "`{program} {flag}` sets a variable that is not `NAME=VALUE`"
                            ));
                        }
                    }
                }
                if let Joined::Shell(exec) = wrapper.joined
                    && is(exec)
                {
                    run_words = true;
                }
                let of = |name: &str, options: &[&str]| program == name && is(options);
                if of("env", &["-u", "--unset"]) {
                    out.assignments.push(Assignment {
                        name: value.clone().unwrap_or_default(),
                        text: value.clone().unwrap_or_default(),
                        value: None,
                        kind: AssignmentKind::Builtin,
                    });
                } else if of("env", &["-S", "--split-string"]) {
                    let after = args.get(i + step..).unwrap_or_default();
                    return env_split(wrapper, value.as_deref(), after, dialect);
                } else if of("xargs", &["-I"]) {
                    replace = value.clone();
                } else if of("xargs", &["-i", "--replace"]) {
                    replace = Some(attached_or(&option, "{}"));
                } else if of("strace", &["-o", "--output"])
                    && value
                        .as_deref()
                        .is_some_and(|v| v.starts_with('|') || v.starts_with('!'))
                {
                    return Err(
                        "`strace -o |…` pipes its output to a shell command; not analysed".into(),
                    );
                } else if of("exec", &["-a"])
                    && value.as_deref().is_some_and(|v| v.starts_with('-'))
                {
                    return Err(
                        "`exec -a -NAME` starts a login shell, which reads start-up files".into(),
                    );
                }
                if value.is_some() {
                    break;
                }
            }
            i += step;
        }
        if positionals == 0 || i >= args.len() {
            break;
        }
        let end = (i + positionals).min(args.len());
        if args[i..end].iter().any(Word::computed) {
            computed = true;
        }
        i = end;
        positionals = 0;
        if !wrapper.options_after_positionals {
            break;
        }
    }
    // env takes `NAME=VALUE` words after `--` too.
    while program == "env"
        && let Some(a) = args.get(i).and_then(|w| wrapper_assignment(program, w))
    {
        out.assignments.push(a);
        i += 1;
    }
    let mut rest = args[i.min(args.len())..].to_vec();
    if rest.is_empty() && program == "xargs" {
        // With no command, xargs runs `echo` with what it reads.
        rest.push(Word::plain("echo"));
    }
    let Some(first) = rest.first() else {
        if wrapper.shell_when_empty {
            return Err(format!(
                "`{program}` with no program starts a shell, which reads start-up files the kernel cannot see"
            ));
        }
        return Ok(out);
    };
    if wrapper.permutes
        && !ended_by_dashes
        && let Some(option) = rest[1..]
            .iter()
            .find(|w| w.computed() || (w.text.starts_with('-') && w.text.len() > 1))
    {
        return Err(format!(
            "`{program}` also reads options after its program (`{}`) unless `--` comes first; not analysed",
            option.text
        ));
    }
    if let Joined::Shell(_) = wrapper.joined
        && !run_words
    {
        if computed || rest.iter().any(Word::computed) {
            return Err(format!(
                "the line `{program}` runs holds an expansion, so it is only known when the shell runs"
            ));
        }
        let line: Vec<&str> = rest.iter().map(|w| w.text.as_str()).collect();
        out.run = Runs::ShellLine(line.join(" "));
        return Ok(out);
    }
    let mut why = computed.then_some(COMPUTED_OPTION);
    if why.is_none() && ambiguous.is_some() {
        why = Some(ABBREVIATED_OPTION);
    }
    if program == "chroot" {
        why = Some("`chroot` runs the program from another root directory");
    }
    if let Some(r) = &replace
        && !r.is_empty()
        && first.text.contains(r.as_str())
    {
        why = Some("the program word is filled in by `xargs -I` from its input");
    }
    if program == "busybox"
        && matches!(first.text.as_str(), "sh" | "ash" | "hush" | "bash")
        && rest
            .iter()
            .any(|w| w.text.starts_with('-') && w.text.contains('c'))
    {
        return Err("busybox's shell is not dash; its `-c` body is not analysed".into());
    }
    let mut inner = Simple::wrapped(rest.clone(), dialect, why);
    inner.assignments = out.assignments.clone();
    inner.args_from_input = program == "xargs";
    if program == "xargs" {
        inner.fill = replace.filter(|r| !r.is_empty());
    }
    out.run = Runs::Command(inner);
    Ok(out)
}

/// A `NAME=VALUE` word `env` or `sudo` takes for the program's
/// environment. env takes any word with `=` (even `1=x`) as one.
fn wrapper_assignment(program: &str, word: &Word) -> Option<Assignment> {
    if program != "env" && program != "sudo" {
        return None;
    }
    if let Some(a) = word.assignment(Dialect::Posix, AssignmentKind::Prefix) {
        return Some(a);
    }
    let (name, value) = word.text.split_once('=')?;
    (program == "env" && !word.text.starts_with('-')).then(|| Assignment {
        name: name.to_string(),
        text: word.text.clone(),
        value: Some(value.to_string()),
        kind: AssignmentKind::Prefix,
    })
}

/// `xargs -iR` / `--replace=R`: R, or `default` when none is attached.
fn attached_or(option: &OptionWord<'_>, default: &str) -> String {
    option
        .flags()
        .into_iter()
        .find_map(|(_, v)| v.map(str::to_string))
        .unwrap_or_else(|| default.to_string())
}

/// `env -S STRING ARGS…`: env splits STRING into words itself (quotes,
/// escapes and `${NAME}` by its own rules); only plain strings are read.
fn env_split(
    wrapper: &'static Wrapper,
    string: Option<&str>,
    rest: &[Word],
    dialect: Dialect,
) -> Result<Unwrapped, String> {
    let Some(string) = string else {
        return Ok(Unwrapped {
            run: Runs::Nothing,
            assignments: Vec::new(),
            changes_directory: false,
        });
    };
    if string.contains(['\'', '"', '\\', '$', '#']) || string.contains(" -S") {
        return Err(
            "`env -S` with quotes, escapes, `$` or comments is split by env's own rules; not analysed"
                .into(),
        );
    }
    let mut words: Vec<Word> = string.split_whitespace().map(Word::plain).collect();
    words.extend(rest.iter().cloned());
    unwrap(wrapper, &words, dialect)
}

/// One option word: `-abc`, `-n5`, `--long`, `--long=value`.
enum OptionWord<'a> {
    Short(&'a str),
    Long(&'a str, Option<&'a str>),
}

impl<'a> OptionWord<'a> {
    fn from_word(text: &'a str) -> Option<OptionWord<'a>> {
        if let Some(long) = text.strip_prefix("--") {
            if long.is_empty() {
                return None;
            }
            return Some(match long.split_once('=') {
                Some((name, value)) => OptionWord::Long(name, Some(value)),
                None => OptionWord::Long(long, None),
            });
        }
        let short = text.strip_prefix('-')?;
        (!short.is_empty()).then_some(OptionWord::Short(short))
    }

    /// Each option with the value attached to it, if any: `-n5` is
    /// (`-n`, `5`); a bundle `-ab` is `-a`, then `-b` — the caller stops
    /// at the first that takes a value (the rest of the word is its value).
    fn flags(&self) -> Vec<(String, Option<&'a str>)> {
        match self {
            OptionWord::Long(name, value) => vec![(format!("--{name}"), *value)],
            OptionWord::Short(letters) => letters
                .char_indices()
                .map(|(at, c)| {
                    let rest = &letters[at + c.len_utf8()..];
                    (format!("-{c}"), (!rest.is_empty()).then_some(rest))
                })
                .collect(),
        }
    }
}
