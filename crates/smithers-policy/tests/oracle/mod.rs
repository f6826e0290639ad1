//! The differential oracle of the shell splitter: a line goes through the
//! splitter and through the real shell (bash, or dash as `/bin/sh`),
//! inside a throwaway bubblewrap sandbox whose `/usr/bin` holds a recorder
//! in place of every program (the programs that run others — `env`,
//! `timeout`, `nice`, `xargs`, `find`, the shells, … — stay real). Every
//! program the shell really starts writes down its path and arguments;
//! each must be one the splitter reported.
//!
//! Shared by `tests/shell_oracle.rs` (bounded, in the test suite) and the
//! `shell_oracle` fuzz target.

#![allow(dead_code)] // each user takes what it needs

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smithers_policy::env;
use smithers_policy::shell::{CommandPart, Dialect, split_command_as};

/// Programs that stay real inside the oracle's sandbox: the shells and
/// the wrappers whose own option parsing is what is being checked.
const REAL: &[&str] = &[
    "bash", "dash", "sh", "env", "timeout", "nice", "nohup", "setsid", "stdbuf", "xargs", "find",
    "ionice", "chrt", "taskset", "flock", "setarch", "linux32", "linux64", "time", "chroot",
];

/// Directories the shell finds programs in (the sandbox's PATH).
const SYSTEM_DIRS: &[&str] = &["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/// How long one line may run before the sandbox is killed.
const LIMIT: Duration = Duration::from_secs(4);

/// A program the shell started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// The path it was started by (`/usr/bin/touch`, `./x`).
    pub path: String,
    pub args: Vec<String>,
}

/// What one line did, as the splitter and the shell each saw it.
#[derive(Debug)]
pub struct Run {
    pub line: String,
    pub dialect: Dialect,
    pub parts: Vec<CommandPart>,
    pub execs: Vec<Exec>,
}

/// Why a line is not compared: the kernel would ask a human for it anyway.
#[derive(Debug, PartialEq, Eq)]
pub enum Skipped {
    /// The splitter refused the line.
    Unanalysable(String),
    /// A program is only known at run time, or a variable that changes
    /// what runs is set: the kernel asks.
    Asks,
}

/// The oracle's fixed parts: the recorder's `/usr/bin`, built once.
pub struct Oracle {
    root: tempfile::TempDir,
}

impl Oracle {
    /// Builds the recorder directories from the host's programs. `None`
    /// when bubblewrap, bash or dash is missing (the caller says why).
    pub fn new() -> Result<Oracle, String> {
        for needed in ["/usr/bin/bwrap", "/usr/bin/bash", "/usr/bin/dash"] {
            if !Path::new(needed).exists() {
                return Err(format!("{needed} is missing"));
            }
        }
        let root = tempfile::tempdir().map_err(|e| e.to_string())?;
        let bin = root.path().join("bin");
        std::fs::create_dir(&bin).map_err(|e| e.to_string())?;
        std::fs::create_dir(root.path().join("empty")).map_err(|e| e.to_string())?;
        let recorder = bin.join(".recorder");
        std::fs::write(
            &recorder,
            // One printf: dash writes its output in one go, so a recorder
            // killed when the shell exits leaves a whole record or none.
            "#!/usr/bin/dash\nprintf '%s\\0' \"$0\" \"$@\" > /tmp/oracle-log/$$.rec\n",
        )
        .map_err(|e| e.to_string())?;
        set_mode(&recorder, 0o755)?;
        let mut names = std::collections::BTreeSet::new();
        for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    if let Some(name) = entry.file_name().to_str() {
                        names.insert(name.to_string());
                    }
                }
            }
        }
        for name in &names {
            let target = bin.join(name);
            if REAL.contains(&name.as_str()) {
                let real = ["/usr/bin", "/usr/sbin"]
                    .iter()
                    .map(|d| Path::new(d).join(name))
                    .find(|p| p.exists());
                if let Some(real) = real {
                    // A copy: inside the sandbox `/usr/bin` is this directory.
                    std::fs::copy(
                        std::fs::canonicalize(&real).map_err(|e| e.to_string())?,
                        &target,
                    )
                    .map_err(|e| e.to_string())?;
                    set_mode(&target, 0o755)?;
                    continue;
                }
            }
            std::os::unix::fs::symlink(".recorder", &target).map_err(|e| e.to_string())?;
        }
        Ok(Oracle { root })
    }

    fn bin(&self) -> PathBuf {
        self.root.path().join("bin")
    }

    /// Runs `line` in `dialect` through the splitter and the real shell.
    /// `Err` when the splitter would have the kernel ask anyway.
    pub fn run(&self, line: &str, dialect: Dialect) -> Result<Run, Skipped> {
        let parts =
            split_command_as(line, dialect).map_err(|e| Skipped::Unanalysable(e.message))?;
        if parts.iter().any(|p| {
            p.dynamic_program.is_some()
                || p.assignments
                    .iter()
                    .any(|a| !env::is_inert(&a.name, a.value.as_deref()))
        }) {
            return Err(Skipped::Asks);
        }
        let execs = self.execute(line, dialect);
        Ok(Run {
            line: line.to_string(),
            dialect,
            parts,
            execs,
        })
    }

    /// Runs `line` with the real shell in a fresh sandbox; every program
    /// it started, as recorded.
    fn execute(&self, line: &str, dialect: Dialect) -> Vec<Exec> {
        let Ok(work) = tempfile::tempdir() else {
            return Vec::new();
        };
        let ws = work.path().join("w");
        let log = work.path().join("log");
        for dir in [&ws, &log, &ws.join("dir")] {
            let _ = std::fs::create_dir_all(dir);
        }
        for file in ["a", "b.txt", "dir/c"] {
            let _ = std::fs::write(ws.join(file), "x\n");
        }
        let shell = match dialect {
            Dialect::Bash => "bash",
            Dialect::Posix => "dash",
        };
        let bin = self.bin();
        let empty = self.root.path().join("empty");
        let mut command = Command::new("/usr/bin/bwrap");
        command
            .args(["--unshare-all", "--die-with-parent", "--new-session"])
            .args(["--ro-bind", "/", "/"])
            .arg("--ro-bind")
            .args([&bin, Path::new("/usr/bin")])
            .arg("--ro-bind")
            .args([&bin, Path::new("/usr/sbin")])
            .arg("--ro-bind")
            .args([&empty, Path::new("/usr/local/bin")])
            .args(["--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev"])
            .arg("--bind")
            .args([&ws, Path::new("/tmp/w")])
            .arg("--bind")
            .args([&log, Path::new("/tmp/oracle-log")])
            .args(["--chdir", "/tmp/w", "--clearenv"])
            .args([
                "--setenv",
                "PATH",
                "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            ])
            .args(["--setenv", "HOME", "/tmp"])
            .args(["--", &format!("/usr/bin/{shell}"), "-c", line])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let Ok(mut child) = command.spawn() else {
            return Vec::new();
        };
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if start.elapsed() < LIMIT => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        read_records(&log)
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
}

fn read_records(log: &Path) -> Vec<Exec> {
    let mut execs = Vec::new();
    let Ok(entries) = std::fs::read_dir(log) else {
        return execs;
    };
    for entry in entries.flatten() {
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        let mut fields: Vec<String> = bytes
            .split(|&b| b == 0)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        // The record ends with a NUL: the last field is empty.
        fields.pop();
        if fields.is_empty() {
            continue;
        }
        let path = fields.remove(0);
        execs.push(Exec { path, args: fields });
    }
    execs.sort_by(|a, b| (&a.path, &a.args).cmp(&(&b.path, &b.args)));
    execs
}

impl Run {
    /// The programs the shell started that the splitter did not report.
    /// A shell given a script file (`bash FILE`) runs code the kernel
    /// decides as that shell, by design: such a line is not compared (here
    /// the file may even be a recorder, which the shell then reads).
    pub fn unexpected(&self) -> Vec<&Exec> {
        if self.parts.iter().any(runs_a_script) {
            return Vec::new();
        }
        let changes_directory = self.parts.iter().any(|p| p.changes_directory);
        self.execs
            .iter()
            .filter(|exec| {
                !self
                    .parts
                    .iter()
                    .any(|part| reported(part, exec, changes_directory))
            })
            .collect()
    }
}

/// A shell started with a file to read rather than a `-c` body.
fn runs_a_script(part: &CommandPart) -> bool {
    let shell = part
        .program()
        .is_some_and(|p| matches!(p, "bash" | "sh" | "dash" | "rbash"));
    let mut args = part.words.iter().skip(1);
    shell
        && !part
            .words
            .iter()
            .skip(1)
            .any(|w| w.starts_with('-') && w.contains('c'))
        && args.any(|w| !w.starts_with('-') && !w.starts_with('+'))
}

/// Whether `part` is the program `exec` was, with its arguments when the
/// splitter knows them.
fn reported(part: &CommandPart, exec: &Exec, changes_directory: bool) -> bool {
    let Some(program) = part.words.first() else {
        return false;
    };
    let (dir, name) = exec
        .path
        .rsplit_once('/')
        .unwrap_or(("", exec.path.as_str()));
    let same_program = if program.contains('/') {
        if changes_directory {
            // Which directory a relative path meant is not known here.
            Path::new(program).file_name() == Path::new(&exec.path).file_name()
        } else {
            normal(program) == normal(&exec.path)
        }
    } else {
        name == program && SYSTEM_DIRS.contains(&dir)
    };
    same_program && (part.computed_args || part.words[1..] == exec.args[..])
}

/// An absolute, `.`/`..`-free form of a path the shell ran in `/tmp/w`.
fn normal(path: &str) -> String {
    let full = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/tmp/w/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in full.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}
