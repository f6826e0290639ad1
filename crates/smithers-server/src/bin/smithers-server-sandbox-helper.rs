//! The sandbox helper (see `smithers_sandbox::helper`) as this crate's
//! benchmarks start it: they carry runs out in real sandboxes, and a
//! package can only name its own binaries. The `smithers` binary is its
//! own helper in production.

fn main() {
    smithers_app::sandbox_helper_main(std::env::args_os().skip(1).collect());
}
