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
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
