//! The native command line: `cargo run --release --features native -- --help`.

mod cli;

/// A training step allocates and frees tens of activation buffers of 1-30 MB. By default
/// glibc hands such blocks back to the kernel (mmap or heap trimming) and the kernel zeroes
/// every page again when they are reused: ~15% of a DCGAN step on 2 cores. Keeping them in
/// the heap costs no more resident memory than the step's peak.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    cli::run()
}
