//! The sandbox helper (see `smithers_sandbox::helper`) as the engine's
//! tests start it: they run real sandboxes, and a package's tests can only
//! name their own package's binaries. The `smithers` binary is its own
//! helper in production.

fn main() {
    smithers_sandbox::helper::main(std::env::args_os().skip(1).collect());
}
