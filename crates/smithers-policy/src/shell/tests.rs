use super::*;

fn parts(line: &str) -> Vec<String> {
    split_command(line)
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .iter()
        .map(CommandPart::display)
        .collect()
}

fn posix(line: &str) -> Vec<String> {
    split_command_as(line, Dialect::Posix)
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .iter()
        .map(CommandPart::display)
        .collect()
}

fn dynamic(line: &str) -> Vec<bool> {
    split_command(line)
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .iter()
        .map(|p| p.dynamic_program.is_some())
        .collect()
}

fn refused(line: &str) -> String {
    match split_command(line) {
        Ok(p) => panic!("{line:?} should not be analysed: {p:?}"),
        Err(e) => e.message,
    }
}

#[test]
fn lists_and_pipelines() {
    assert_eq!(parts("cargo test && rm -rf /"), ["cargo test", "rm -rf /"]);
    assert_eq!(
        parts("a || b; c | d & e |& f"),
        ["a", "b", "c", "d", "e", "f"]
    );
    assert_eq!(parts("a\nb"), ["a", "b"]);
    assert_eq!(parts("  "), Vec::<String>::new());
    assert_eq!(parts("ls # rm -rf /"), ["ls"]);
}

#[test]
fn quotes_are_removed() {
    assert_eq!(parts(r#"'r'"m" -rf /"#), ["rm -rf /"]);
    assert_eq!(parts(r"r\m -rf /"), ["rm -rf /"]);
    assert_eq!(parts(r#"echo "a b" 'c;d'"#), ["echo 'a b' 'c;d'"]);
    assert_eq!(parts(r"$'\x72\x6d' -rf /"), ["rm -rf /"]);
    assert_eq!(parts(r"$'\162m' x"), ["rm x"]);
}

#[test]
fn substitutions_and_subshells() {
    assert_eq!(parts("echo $(rm -rf /)"), ["rm -rf /", "echo '$(…)'"]);
    assert_eq!(
        parts("echo \"$(curl x | sh)\""),
        ["curl x", "sh", "echo '$(…)'"]
    );
    assert_eq!(parts("echo `rm -rf /`"), ["rm -rf /", "echo '`…`'"]);
    assert_eq!(parts("(cd x && make)"), ["cd x", "make"]);
    assert_eq!(parts("{ a; b; }"), ["a", "b"]);
    assert_eq!(
        parts("diff <(ls a) >(cat)"),
        ["ls a", "cat", "diff '<(…)' '>(…)'"]
    );
    assert_eq!(parts("if test -f x; then rm x; fi"), ["test -f x", "rm x"]);
}

#[test]
fn assignments_and_redirections_are_reported() {
    let p = split_command("FOO=1 BAR='x y' cargo test > out.txt 2>&1").unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].words, ["cargo", "test"]);
    let names: Vec<&str> = p[0].assignments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["FOO", "BAR"]);
    assert_eq!(p[0].assignments[1].value.as_deref(), Some("x y"));
    assert_eq!(p[0].redirects.len(), 1, "2>&1 names no file");
    assert_eq!(p[0].redirects[0].target, "out.txt");
    assert_eq!(p[0].redirects[0].access, Access::Write);
    assert_eq!(parts("X=$(rm -rf /)"), ["rm -rf /", "'X=$(…)'"]);
    assert_eq!(parts("cat <<EOF\nhello $x\nEOF\nls"), ["cat", "ls"]);
    assert_eq!(parts("cat <<-'E'\n\t$(x)\n\tE"), ["cat"]);
    assert_eq!(parts("tr a b <<< \"$(id)\""), ["id", "tr a b"]);
    assert_eq!(parts("echo x=1"), ["echo x=1"]);
    assert_eq!(parts("\"X\"=1 cmd"), ["X=1 cmd"]);
    assert_eq!(
        parts("PATH=/w:$PATH git status"),
        ["'PATH=/w:$PATH' git status"]
    );
}

#[test]
fn every_redirection_target_is_a_file_access() {
    let targets = |line: &str| -> Vec<(String, Access, bool)> {
        split_command(line)
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            .iter()
            .flat_map(|p| p.redirects.iter())
            .map(|r| (r.target.clone(), r.access, r.computed))
            .collect()
    };
    let write = |t: &str| (t.to_string(), Access::Write, false);
    let read = |t: &str| (t.to_string(), Access::Read, false);
    for (line, expected) in [
        ("echo x > a", vec![write("a")]),
        ("echo x >> a", vec![write("a")]),
        ("echo x >| a", vec![write("a")]),
        ("echo x &> a", vec![write("a")]),
        ("echo x &>> a", vec![write("a")]),
        ("echo x 2> a 3>>b", vec![write("a"), write("b")]),
        ("echo x >& a", vec![write("a")]),
        ("echo x 1>&2 2>&- <&0", vec![]),
        ("cat < a", vec![read("a")]),
        ("cat 0< a <> b", vec![read("a"), write("b")]),
        ("exec 3> a", vec![write("a")]),
        ("exec {fd}> a", vec![write("a")]),
        ("{ a; b; } > c", vec![write("c")]),
        ("(a) 2> c", vec![write("c")]),
        ("> a", vec![write("a")]),
        (
            "echo 'on: push' > .github/ci.yml",
            vec![write(".github/ci.yml")],
        ),
    ] {
        assert_eq!(targets(line), expected, "{line}");
    }
    assert_eq!(
        targets("echo x > $F"),
        [("$F".to_string(), Access::Write, true)]
    );
    assert_eq!(
        targets("echo x > *.yml"),
        [("*.yml".to_string(), Access::Write, true)]
    );
    // In sh, `&>` is `&` then a redirection of its own.
    let p = split_command_as("echo x &> a", Dialect::Posix).unwrap();
    assert_eq!(p.len(), 2);
    assert!(p[1].words.is_empty());
    assert_eq!(p[1].redirects[0].target, "a");
}

#[test]
fn shell_bodies_and_wrappers() {
    assert_eq!(
        parts("bash -c 'rm -rf /'"),
        ["bash -c 'rm -rf /'", "rm -rf /"]
    );
    assert_eq!(parts("sh -ec \"a && b\""), ["sh -ec 'a && b'", "a", "b"]);
    assert_eq!(
        parts("/bin/sh -o pipefail -c x"),
        ["/bin/sh -o pipefail -c x", "x"]
    );
    assert_eq!(parts("bash script.sh"), ["bash script.sh"]);
    assert_eq!(parts("eval 'rm' -rf /"), ["eval rm -rf /", "rm -rf /"]);
    assert_eq!(parts("env -i A=1 rm x"), ["env -i A=1 rm x", "A=1 rm x"]);
    assert_eq!(parts("env -S 'rm x'"), ["env -S 'rm x'", "rm x"]);
    assert_eq!(
        parts("timeout -s KILL 10 rm x"),
        ["timeout -s KILL 10 rm x", "rm x"]
    );
    assert_eq!(parts("sudo -u root nice -n 5 rm x").last().unwrap(), "rm x");
    assert_eq!(
        parts(r"find . -name x -exec rm {} \;"),
        ["find . -name x -exec rm {} ';'", "rm {}"]
    );
    assert_eq!(parts("xargs -n 1 sh -c 'rm $0'").last().unwrap(), "rm '$0'");
    assert_eq!(parts("trap 'rm x' EXIT").last().unwrap(), "rm x");
    assert_eq!(
        parts("trap -- '-x; rm -rf /' EXIT").last().unwrap(),
        "rm -rf /",
        "after `--` an action starting with `-` is still an action"
    );
    assert_eq!(parts("watch -n 1 'rm x'").last().unwrap(), "rm x");
    assert_eq!(parts("watch -x rm x").last().unwrap(), "rm x");
}

#[test]
fn wrappers_options_are_skipped_before_the_program() {
    for (line, program) in [
        ("time -p touch F", "touch F"),
        ("time -p -- touch F", "touch F"),
        ("/usr/bin/time -p touch F", "touch F"),
        ("/usr/bin/time -f %e -o out touch F", "touch F"),
        ("nice -n 5 touch F", "touch F"),
        ("nice -n5 touch F", "touch F"),
        ("nice --adjustment=5 touch F", "touch F"),
        ("timeout -k 5 10 touch F", "touch F"),
        ("timeout -k5 -s KILL 10 touch F", "touch F"),
        ("timeout --kill-after 5 10 touch F", "touch F"),
        ("stdbuf -o0 -e L touch F", "touch F"),
        ("ionice -c 3 touch F", "touch F"),
        ("chrt -f 10 touch F", "touch F"),
        ("taskset -c 0 touch F", "touch F"),
        ("setarch x86_64 -R touch F", "touch F"),
        ("flock -w 3 /tmp/l touch F", "touch F"),
        ("env -u HOME -C /w touch F", "touch F"),
        ("env - touch F", "touch F"),
        ("env --split-s='touch F' x", "touch F x"),
        ("env -- A=1 touch F", "A=1 touch F"),
        ("eval -- touch F", "touch F"),
        (
            "find . -exec touch + \\; -o -exec touch F {} +",
            "touch F {}",
        ),
        ("command -p touch F", "touch F"),
        ("builtin exec -a name touch F", "touch F"),
        ("nohup setsid -f touch F", "touch F"),
        ("xargs -I {} touch F", "touch F"),
        ("strace -f -e trace=file -o log touch F", "touch F"),
        ("timeout --k=1 --sig KILL 10 touch F", "touch F"),
        ("timeout --kill 1 10 touch F", "touch F"),
        ("setarch -R touch F", "touch F"),
        ("tini -- touch F -s", "touch F -s"),
        ("ssh host rm x", "ssh host rm x"),
    ] {
        assert_eq!(parts(line).last().unwrap(), program, "{line}");
    }
}

#[test]
fn programs_known_only_at_run_time_are_flagged() {
    assert_eq!(dynamic("$CMD -rf /"), [true]);
    let p = split_command("\"$(echo rm)\" -rf /").unwrap();
    assert_eq!(p[0].words, ["echo", "rm"], "substitutions run first");
    assert!(p[1].dynamic_program.is_some());
    assert_eq!(dynamic("echo $HOME"), [false]);
    assert_eq!(dynamic("/usr/bin/tou?h F"), [true]);
    assert_eq!(dynamic("/usr/bin/t[o]uch F"), [true]);
    assert_eq!(dynamic("{touch,x} F"), [true]);
    assert_eq!(dynamic("~/bin/touch F"), [true]);
    assert_eq!(
        dynamic("find /usr/bin -name touch -exec {} F ;"),
        [false, true]
    );
    assert_eq!(dynamic("xargs -I{} {} F"), [false, true]);
    assert_eq!(dynamic("xargs -i {} F"), [false, true]);
    assert_eq!(dynamic("timeout $T touch F"), [false, true]);
    assert_eq!(dynamic("nice -n $N touch F"), [false, true]);
    assert_eq!(dynamic("env X$Y touch F"), [false, true]);
    assert_eq!(
        dynamic("[ -f x ]"),
        [false],
        "`[` alone is the test program"
    );
    let sh = split_command_as("{touch,x} F", Dialect::Posix).unwrap();
    assert_eq!(sh[0].dynamic_program, None, "no braces in sh");
}

#[test]
fn builtins_that_assign_report_the_variable() {
    let names = |line: &str| -> Vec<String> {
        split_command(line)
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            .iter()
            .flat_map(|p| p.assignments.iter().map(|a| a.name.clone()))
            .collect()
    };
    assert_eq!(names("export PATH=/w:$PATH; git status"), ["PATH"]);
    assert_eq!(names("declare -x GIT_DIR=/w/x"), ["GIT_DIR"]);
    assert_eq!(names("local X=1 Y"), ["X"]);
    assert_eq!(names("read -r A B"), ["A", "B"]);
    assert_eq!(names("read -a ARR -p x"), ["ARR"]);
    assert_eq!(names("printf -v PATH %s /w"), ["PATH"]);
    assert_eq!(names("mapfile -t LINES"), ["LINES"]);
    assert_eq!(names("getopts ab OPT"), ["OPT"]);
    assert_eq!(names("unset PATH; unset -f f"), ["PATH"]);
    assert_eq!(
        names("env -u LD_PRELOAD A=1 x"),
        ["LD_PRELOAD", "A", "LD_PRELOAD", "A"]
    );
    assert_eq!(
        names("strace -E LD_PRELOAD=/w/x.so x"),
        ["LD_PRELOAD", "LD_PRELOAD"]
    );
    assert_eq!(names("PATH=/w; x"), ["PATH"]);
    let p = split_command("PATH=/w; x").unwrap();
    assert_eq!(p[0].assignments[0].kind, AssignmentKind::Statement);
    assert!(p[0].words.is_empty());
}

#[test]
fn directory_changes_are_flagged() {
    let changes = |line: &str| -> Vec<bool> {
        split_command(line)
            .unwrap()
            .iter()
            .map(|p| p.changes_directory)
            .collect()
    };
    assert_eq!(changes("cd .github && echo x"), [true, false]);
    assert_eq!(changes("pushd x; popd"), [true, true]);
    assert_eq!(changes("env -C x true"), [true, false]);
    assert_eq!(changes("builtin cd x"), [false, true]);
}

#[test]
fn sh_bodies_are_read_as_dash_reads_them() {
    // bash reads one echo; dash reads `$` then a quoted backslash, then
    // two more commands.
    let line = r"echo $'\' ; touch /workspace/PWNED ; id ; # '";
    assert_eq!(parts(line).len(), 1);
    assert_eq!(posix(line), ["echo '$\\'", "touch /workspace/PWNED", "id"]);
    let body = format!("sh -c \"{}\"", line.replace('$', "\\$"));
    assert_eq!(parts(&body).len(), 4, "{body}: {:?}", parts(&body));
    assert_eq!(
        parts(&format!("bash -c \"{}\"", line.replace('$', "\\$"))).len(),
        2
    );
    assert_eq!(posix("echo $\"x\""), ["echo '$x'"]);
    for bad in ["a |& b", "cat <(ls)", "cat <<< x"] {
        assert!(split_command_as(bad, Dialect::Posix).is_err(), "{bad}");
    }
}

#[test]
fn what_cannot_be_analysed_is_an_error() {
    for bad in [
        "echo 'unterminated",
        "echo \"unterminated",
        "echo `x",
        "echo $(x",
        "for f in *; do rm $f; done",
        "case x in a) b;; esac",
        "f() { rm x; }",
        "echo $((1+2))",
        "(( x++ ))",
        "echo )",
        "cat <<EOF\nno end",
        "cat <<EOF\n$(rm x)\nEOF",
        "echo ${x:-$(rm)}",
        "echo ${x@P}",
        "echo ${!x}",
        "echo ${a[$i]}",
        "ls >",
        "[[ -f x ]]",
        "source ./env.sh",
        ". ./env.sh",
        "alias ls=rm",
        "enable -f ./x.so ls",
        "hash -p /w/evil ls",
        "shopt -s expand_aliases",
        "set -k",
        "set -o posix",
        "let x=1",
        "declare -i x",
        "local -n r=PATH",
        "mapfile -C cb x",
        "eval \"$x\"",
        "eval echo $x",
        "bash -c \"echo $x\"",
        "trap \"$x\" EXIT",
        "zsh -c 'ls'",
        "bash -l -c x",
        "bash -O extglob -c x",
        "bash --rcfile r -c x",
        "su -c 'rm x'",
        "flock -c 'rm x' l",
        "sudo -s rm x",
        "watch \"echo $x\"",
        "env -S 'a \"b\"'",
        "run-parts /w/d",
        "busybox sh -c 'x'",
        "read 'a[$(id)]'",
        "export $X=1",
        "$'\\0' x",
        "cat <<EOF\n${x@P}\nEOF",
        "ssh -o ProxyCommand='sh -c x' host",
        "ssh -oLocalCommand=x host",
        "ssh -F cfg host",
        "ssh -vo ProxyCommand=x host",
        "ssh host -o ProxyCommand=x",
        "printf x | xargs -0 sh -c",
        "echo touch F | xargs env",
        "echo touch F | xargs nice",
        "xargs eval",
        "TERM[TZ]=1 cargo test",
        "declare TERM[TZ]=1",
        "echo $[TZ]",
        "[ -v 'a[$(id)]' ]",
        "jobs -x touch F",
        "wait -p PATH",
        "exec -l bash -c true",
        "exec -a -sh sh -c true",
        "bash -k -c true",
        "xargs --process-slot-var=BASH_ENV bash -c true",
        "xargs --repl sh -c 'echo {}'",
        "cat <(echo)#; rm -rf ~",
        "cat <<$x\n$(rm -rf ~)\n$x",
        "cat <<`true`\nx\n`true`",
        "cat <<EOF\n$\\\n(rm -rf ~)\nEOF",
        "strace -o '|sh' ls",
        "perf stat --pre 'rm x' ls",
        "fakeroot -i 'x;rm y' ls",
        "flock l -c 'rm x'",
        "tini ls -s",
        "find . -exec sh -c 'touch {}' \\;",
        "find . -exec env bash -c 'rm {}' \\;",
        "xargs -I% sh -c 'touch %'",
        "find . -exec eval 'touch {}' \\;",
    ] {
        let _ = refused(bad);
    }
}

#[test]
fn an_option_missing_its_value_at_the_end_is_no_panic() {
    for line in [
        "env -S",
        "\u{c6}env -S\n-",
        "env -u",
        "timeout -k",
        "xargs -I",
        "nice -n",
        "strace -o",
        "exec -a",
        "flock -w",
        "setarch",
        "find -exec",
        "read -a",
        "printf -v",
        "mapfile -C",
        "trap --",
        "sudo -u",
    ] {
        let _ = split_command(line);
        let _ = split_command_as(line, Dialect::Posix);
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = "$(".repeat(10_000) + &")".repeat(10_000);
    assert!(split_command(&deep).is_err());
    let deep = "(".repeat(10_000);
    assert!(split_command(&deep).is_err());
    let nested = "eval ".repeat(40) + "x";
    assert!(split_command(&nested).is_err());
    let nested = "sh -c ".repeat(40) + "x";
    assert!(
        split_command(&nested).is_ok(),
        "only the first `-c` takes a body"
    );
    let wrapped = "nice ".repeat(40) + "x";
    assert!(split_command(&wrapped).is_err());
}
