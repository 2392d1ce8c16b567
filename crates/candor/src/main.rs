//! `candor`: one binary, both halves. This file is CLI wiring only; the work
//! lives in the candor-server and candor-agent crates.

mod bench;
mod cli;
mod up;

use clap::Parser;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // The agent lives on every desktop: one thread runs its async work (the
    // collectors that block have their own threads), and few malloc arenas
    // keep its memory small. The server and tools use every core.
    let agent = cli.is_agent_run();
    let builder = if agent {
        // SAFETY: mallopt only tunes the allocator; called before other threads exist.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let mut builder = builder;
    let rt = match builder.enable_all().max_blocking_threads(if agent { 4 } else { 512 }).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(cli::dispatch(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
