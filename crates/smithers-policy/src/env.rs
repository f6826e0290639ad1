//! Which environment variables cannot change what a command runs.
//!
//! A variable set in front of a command (`NAME=value cmd`, `env NAME=…`),
//! or for the rest of a line (`export NAME=…`, `read NAME`), can change
//! which program a name runs (`PATH`), what a program loads (`LD_PRELOAD`,
//! `PYTHONPATH`, `NODE_OPTIONS`), what a shell runs on start
//! (`BASH_ENV`, `PS4`), what a tool executes (`GIT_CONFIG_*`,
//! `RUSTC_WRAPPER`, `GOFLAGS=-toolexec=…`) or which configuration it reads
//! (`HOME`, `XDG_CONFIG_HOME`). Such variables cannot be listed
//! completely, so the kernel works the other way round: every variable is
//! taken to matter except the few below, which only set locale, colours,
//! terminal size, logging or test threads. A command that runs with a
//! variable not listed here matches only a rule that names the variable
//! (`"RUSTFLAGS=* cargo build *"`); otherwise a human decides.

/// Variables that do not change which program runs, what it loads or what
/// it executes. `LC_*` is matched as a prefix; the locale variables only
/// with a plain value (see [`is_inert`]).
pub const INERT: &[&str] = &[
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TERM",
    "NO_COLOR",
    "FORCE_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "COLUMNS",
    "LINES",
    "GCC_COLORS",
    "GREP_COLORS",
    "LS_COLORS",
    "PY_COLORS",
    "NODE_DISABLE_COLORS",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "RUST_LOG",
    "RUST_LOG_STYLE",
    "RUST_MIN_STACK",
    "RUST_TEST_THREADS",
    "RUST_TEST_NOCAPTURE",
    "RUST_TEST_SHUFFLE",
    "RUST_TEST_SHUFFLE_SEED",
    "RUST_TEST_TIME_UNIT",
    "RUST_TEST_TIME_INTEGRATION",
    "RUST_TEST_TIME_DOCTEST",
    "CARGO_TERM_COLOR",
    "CARGO_TERM_VERBOSE",
    "CARGO_TERM_QUIET",
    "CARGO_TERM_PROGRESS_WHEN",
    "CARGO_TERM_PROGRESS_WIDTH",
    "CARGO_BUILD_JOBS",
    "CARGO_LOG",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONHASHSEED",
    "PYTHONFAULTHANDLER",
    "SOURCE_DATE_EPOCH",
    "GIT_TERMINAL_PROMPT",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_DATE",
    "REPLY",
    "OPTIND",
    "OPTARG",
    "MAPFILE",
];

/// Whether setting `name` to `value` (`None`: a value from input, or
/// unset) cannot change what a command runs: the name is listed and the
/// value is plain text (letters, digits, spaces and `_.,:=/@+%-`). A locale is inert only when
/// it is `C`, `POSIX` or a UTF-8 locale named plainly: a multibyte locale
/// such as BIG5 or SJIS changes how the shell reads `\` and `` ` ``
/// bytes, and a value with `/` names a directory of locale files.
pub fn is_inert(name: &str, value: Option<&str>) -> bool {
    let listed = INERT.iter().any(|inert| match inert.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix) && name.len() > prefix.len(),
        None => *inert == name,
    });
    let locale = name == "LANG" || name == "LANGUAGE" || name.starts_with("LC_");
    // A value holding shell syntax could carry code into a place that
    // evaluates it (`[ -v $X ]`, an arithmetic subscript), so an inert
    // variable's value must be plain text, known on the line.
    let plain = value.is_some_and(|v| {
        v.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.,:=/@+%-".contains(c))
    });
    listed && plain && (!locale || value.is_some_and(plain_locale))
}

/// `C`, `POSIX`, `C.UTF-8`, `en_US.UTF-8`, `de_DE.utf8@euro`, or empty.
fn plain_locale(value: &str) -> bool {
    if value.is_empty() || value == "C" || value == "POSIX" {
        return true;
    }
    let (base, modifier) = value.split_once('@').unwrap_or((value, ""));
    // Without a codeset a locale takes its legacy one (`zh_TW` is BIG5).
    let Some((lang, codeset)) = base.split_once('.') else {
        return false;
    };
    let utf8 = matches!(codeset.to_ascii_lowercase().as_str(), "utf-8" | "utf8");
    let lang_ok = lang == "C"
        || match lang.split_once('_') {
            Some((l, c)) => {
                plain_letters(l) && c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())
            }
            None => plain_letters(lang),
        };
    utf8 && lang_ok && modifier.bytes().all(|b| b.is_ascii_lowercase())
}

fn plain_letters(text: &str) -> bool {
    (2..=3).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_matters_and_what_does_not() {
        for inert in ["RUST_BACKTRACE", "NO_COLOR", "TZ", "GIT_AUTHOR_NAME"] {
            assert!(is_inert(inert, Some("x")), "{inert}");
        }
        for locale in [
            "C",
            "POSIX",
            "C.UTF-8",
            "en_US.UTF-8",
            "de_DE.utf8",
            "fr_FR.UTF-8@euro",
            "",
        ] {
            assert!(is_inert("LC_ALL", Some(locale)), "{locale}");
            assert!(is_inert("LANG", Some(locale)), "{locale}");
        }
        for locale in [
            "zh_TW.BIG5",
            "ja_JP.SJIS",
            "/w/locale",
            "en_US",
            "../x",
            "C.UTF-8/x",
        ] {
            assert!(!is_inert("LC_ALL", Some(locale)), "{locale}");
        }
        assert!(
            !is_inert("LANG", None),
            "a locale read from input is not known"
        );
        for matters in [
            "PATH",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "BASH_ENV",
            "ENV",
            "PS4",
            "IFS",
            "HOME",
            "XDG_CONFIG_HOME",
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_KEY_0",
            "GIT_DIR",
            "GIT_SSH_COMMAND",
            "RUSTC_WRAPPER",
            "RUSTFLAGS",
            "PYTHONPATH",
            "NODE_OPTIONS",
            "PERL5OPT",
            "LOCPATH",
            "LC_",
            "lang",
            "CI",
            "NODE_ENV",
            "ANYTHING_ELSE",
        ] {
            assert!(!is_inert(matters, Some("x")), "{matters}");
        }
    }
}
