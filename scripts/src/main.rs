//! `cargo xtask`: the build tool of the framework's checkout. A plugin project's own
//! `xtask` crate is the same three lines; everything is in [`trio_xtask::cli`].

fn main() -> std::process::ExitCode {
    trio_xtask::cli::main()
}
