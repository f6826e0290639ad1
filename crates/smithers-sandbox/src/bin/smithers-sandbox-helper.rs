//! The sandbox helper: `launch` on the host side, `init` inside the
//! sandbox (see `smithers_sandbox::helper`).

fn main() {
    smithers_sandbox::helper::main(std::env::args_os().skip(1).collect())
}
