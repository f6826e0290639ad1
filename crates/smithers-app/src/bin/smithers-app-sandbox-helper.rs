//! The sandbox helper (see `smithers_sandbox::helper`) as this crate's
//! tests start it: they carry runs out in real sandboxes, and a package's
//! tests can only name their own package's binaries. The `smithers` binary
//! is its own helper in production.

fn main() {
    smithers_sandbox::helper::main(std::env::args_os().skip(1).collect());
}
