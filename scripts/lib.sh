# Shared by scripts/quickstart, scripts/test and .ci/run: make sure the
# build prerequisites are present on a Debian machine.

# Rust edition 2024 needs this toolchain or newer.
SMITHERS_MIN_RUST="1.85"

say() { printf '==> %s\n' "$*" >&2; }

# Installs the Debian packages given that are not installed yet.
apt_install_missing() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        say "missing packages ${missing[*]} and no apt-get to install them"
        return 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    say "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

version_at_least() {
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

# Makes sure gcc (the linker driver), the C library headers and a recent
# enough Rust toolchain are there.
ensure_build_tools() {
    apt_install_missing gcc libc6-dev ca-certificates git
    if [ -d "$HOME/.cargo/bin" ]; then
        PATH="$HOME/.cargo/bin:$PATH"
        export PATH
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        say "no Rust toolchain found: trying Debian's"
        apt_install_missing cargo rustc
    fi
    local have
    have="$(rustc --version | awk '{print $2}')"
    if ! version_at_least "$have" "$SMITHERS_MIN_RUST"; then
        say "rustc $have is too old: Smithers needs $SMITHERS_MIN_RUST or newer (rustup.rs installs one)"
        return 1
    fi
    if ! cargo fmt --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then rustup component add rustfmt; else apt_install_missing rustfmt; fi
    fi
    if ! cargo clippy --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then rustup component add clippy; else apt_install_missing rust-clippy; fi
    fi
}
