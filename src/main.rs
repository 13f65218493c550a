//! The native command line: `cargo run --release --features native -- --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
