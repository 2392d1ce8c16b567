//! `candor bench …`: benchmarks that measure Candor and a peer in the same
//! run and print the ratio (absolute times are not stable on shared machines).

mod agent;
mod ingest;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Agents → HTTPS → ingest → SQLite, against bare SQLite inserting the same rows.
    Ingest(ingest::IngestBench),
    /// The agent's CPU and RSS with activity and process collection busy, then idle, against forkstat + xprop.
    Agent(agent::AgentBench),
}

pub async fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Ingest(b) => ingest::run(b).await,
        BenchCmd::Agent(b) => agent::run(b).await,
    }
}
