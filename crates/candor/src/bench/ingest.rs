//! Ingest benchmark: M simulated agents send pre-encoded batches over HTTPS
//! (one batch in flight per agent, as the real uplink does) into a real
//! server with the embedded store; then bare SQLite inserts the same rows
//! with the same schema, pragmas and transaction size. Prints both rates and
//! the ratio.

use anyhow::Context;
use candor_proto::batch::{self, Batch};
use candor_proto::policy::{Collect, PolicyDoc};
use candor_proto::{now_ms, Category, Event, Payload};
use candor_server::store::{NewConsent, Scope};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

#[derive(clap::Args)]
pub struct IngestBench {
    /// Simulated agents.
    #[arg(long, default_value_t = 8)]
    agents: u64,
    /// Events in all.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Events per batch (and per transaction for bare SQLite).
    #[arg(long, default_value_t = 2000)]
    batch: u64,
    /// Send activity spans (20 applications) instead of synthetic events, so
    /// the server also keeps its per-day rollups; bare SQLite stores the rows only.
    #[arg(long)]
    activity: bool,
}

fn event(seq: u64, t0: i64, activity: bool) -> Event {
    let payload = if activity {
        Payload::Activity {
            app: format!("app{}", seq % 20),
            exe: Some(format!("/usr/bin/app{}", seq % 20)),
            wm_class: Some(format!("App{}", seq % 20)),
            title: Some(format!("main.rs — candor — Visual Studio Code #{}", seq % 97)),
            title_hash: None,
            pid: Some(4242),
            pid_verified: true,
            state: if seq.is_multiple_of(10) { "idle" } else { "active" }.into(),
            user: Some("zhangsan".into()),
        }
    } else {
        Payload::Synthetic {
            n: seq, note: Some(format!("code — main.rs — candor — Visual Studio Code #{}", seq % 97))
        }
    };
    Event {
        seq,
        ts_ms: t0 + seq as i64 * 250,
        duration_ms: Some(5000),
        category: Category::Activity,
        payload: payload.to_json(),
    }
}

pub async fn run(b: IngestBench) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = super::loopback_server(dir.path()).await?;
    let store = server.state.store.clone();
    let url = format!("https://127.0.0.1:{}/api/v1/ingest", server.addr.port());

    // Agents with a policy and consent for `activity`, as in production.
    let policy = store.create_policy(
        "bench",
        &PolicyDoc { collect: Collect { activity: true, ..Default::default() }, ..Default::default() },
    )?;
    store.assign_policy(Scope::Global, 0, policy)?;
    let per_agent = b.events / b.agents;
    let t0 = now_ms();
    let mut agents = Vec::new();
    for i in 0..b.agents {
        let fp = server.ca_fingerprint.as_str();
        let (token, _) =
            candor_server::enrollment::create_token(store.as_ref(), "https://127.0.0.1", fp, None, 60_000)?;
        let secret = candor_proto::token::EnrollToken::decode(&token).map_err(anyhow::Error::msg)?.secret;
        let resp = candor_server::enrollment::enroll(
            store.as_ref(),
            &candor_proto::api::EnrollRequest {
                secret,
                hostname: format!("bench-{i}"),
                os: "bench".into(),
                agent_version: "bench".into(),
            },
        )?;
        let emp = store.create_employee(&format!("Bench {i}"), None, None)?;
        store.assign_agent(resp.agent_id, Some(emp), None)?;
        store.record_consent(&NewConsent {
            employee_id: emp,
            category: Category::Activity,
            granted: true,
            method: "api".into(),
            note: None,
            recorded_by: "bench".into(),
            notice_version: None,
            scan: None,
        })?;
        let batches: Vec<Vec<u8>> = (0..per_agent)
            .step_by(b.batch as usize)
            .map(|start| {
                let events: Vec<Event> =
                    (start + 1..=(start + b.batch).min(per_agent)).map(|s| event(s, t0, b.activity)).collect();
                batch::encode(&Batch { agent_id: resp.agent_id, floor: start + 1, events }, 3)
            })
            .collect();
        agents.push((format!("Bearer {}.{}", resp.agent_id, resp.secret), batches));
    }
    server.state.bump_epoch();
    let wire: usize = agents.iter().flat_map(|a| a.1.iter()).map(Vec::len).sum();
    let total = per_agent * b.agents;
    println!(
        "ingest bench: {} agents × {} events, batches of {}, {:.1} MiB compressed on the wire ({:.0} B/event)",
        b.agents,
        per_agent,
        b.batch,
        wire as f64 / 1048576.0,
        wire as f64 / total as f64
    );

    let client = candor_agent::net::pinned_client(&server.ca_fingerprint)?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (auth, batches) in agents {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            for body in batches {
                let r = client
                    .post(&url)
                    .header("authorization", &auth)
                    .header("content-type", batch::CONTENT_TYPE)
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "ingest answered {}", r.status());
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("agent task")??;
    }
    let e2e = started.elapsed().as_secs_f64();
    let stored: u64 = store.agents()?.iter().map(|a| a.acked_seq).sum();
    anyhow::ensure!(stored == total, "server acknowledged {stored} of {total} events");
    let ws = server.state.writer.stats();
    let commits = ws.commits.load(Relaxed).max(1);
    let busy = ws.busy_ns.load(Relaxed) as f64 / 1e9;
    server.shutdown().await;

    let e2e_rate = total as f64 / e2e;
    let per_batch =
        total as f64 / bare_sqlite(&dir.path().join("bare1.db"), b.agents, per_agent, b.batch, t0, b.activity)?;
    let grouped_tx = (total / commits).max(1);
    let grouped =
        total as f64 / bare_sqlite(&dir.path().join("bare2.db"), b.agents, per_agent, grouped_tx, t0, b.activity)?;
    println!("candor end-to-end (HTTPS + zstd + decode + validate + consent + dedupe + durable ack): {e2e_rate:>9.0} events/s");
    println!(
        "  ingest writer: {commits} commits ({:.0} events each); inside SQLite {:.0}% of wall time",
        total as f64 / commits as f64,
        busy / e2e * 100.0
    );
    println!(
        "bare SQLite, same rows, schema and pragmas, {:>6} rows per transaction: {per_batch:>9.0} events/s",
        b.batch
    );
    println!(
        "bare SQLite, same rows, schema and pragmas, {grouped_tx:>6} rows per transaction: {grouped:>9.0} events/s"
    );
    println!("ratio candor / bare SQLite at the agents' batch size:       {:.2}", e2e_rate / per_batch);
    println!("ratio candor / bare SQLite at candor's grouped commit size: {:.2}", e2e_rate / grouped);
    Ok(())
}

/// Seconds for bare SQLite to insert the same rows.
fn bare_sqlite(
    path: &std::path::Path,
    agents: u64,
    per_agent: u64,
    batch: u64,
    t0: i64,
    activity: bool,
) -> anyhow::Result<f64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
    conn.execute_batch(candor_server::store::sqlite::MIGRATIONS[0])?;
    // Rows built beforehand, as the server has them decoded before inserting.
    let rows: Vec<(u64, Event)> =
        (1..=agents).flat_map(|a| (1..=per_agent).map(move |s| (a, event(s, t0, activity)))).collect();
    let started = Instant::now();
    for chunk in rows.chunks(batch as usize) {
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO events (agent_id, seq, ts_ms, duration_ms, category, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (a, e) in chunk {
                st.execute(rusqlite::params![
                    *a as i64,
                    e.seq as i64,
                    e.ts_ms,
                    e.duration_ms.map(|d| d as i64),
                    e.category.code(),
                    e.payload
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(started.elapsed().as_secs_f64())
}
