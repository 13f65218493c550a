//! The native command line: `cargo run --release --features native -- --help`.

mod cli;

/// A training step allocates and frees tens of large activation buffers; glibc hands them
/// back to the kernel and takes page faults on every reuse, mimalloc keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::run()
}
