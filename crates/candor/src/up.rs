//! `candor up`: the server with embedded storage plus an agent for this
//! machine, in one process; prints the console URL and the admin login.

use candor_server::config::ServerConfig;

pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let mut server = candor_server::start(config.clone()).await?;
    let port = server.addr.port();
    let local_url = format!("https://127.0.0.1:{port}");
    let agent_dir = config.data_dir.join("agent");
    let agent_config = candor_agent::config::AgentConfig { state_dir: agent_dir.clone(), ..Default::default() };
    if !agent_dir.join("credentials.json").exists() {
        let (token, _) = candor_server::enrollment::create_token(
            server.state.store.as_ref(),
            &local_url,
            &server.ca_fingerprint,
            None,
            600_000,
        )?;
        let creds = candor_agent::enroll::enroll(&token, &agent_dir).await?;
        println!("Enrolled this machine as agent {}", creds.agent_id);
    }
    let agents = server.state.store.agents()?.len();
    println!();
    println!("Candor is up.");
    println!("  Console:  {}/   (also {local_url}/)", server.public_url);
    println!("  CA fingerprint (SHA-256): {}", server.ca_fingerprint);
    match &server.first_admin_password {
        Some(pw) => println!("  Admin login: admin / {pw}   (shown once; reset with `candor admin reset-password`)"),
        None => println!(
            "  Admin login: admin (password shown at first start; `candor admin reset-password` sets a new one)"
        ),
    }
    println!("  Agents enrolled: {agents}. Enroll others with `candor token create` and `candor agent enroll TOKEN`.");
    println!("  Nothing personal is collected until a policy enables a category AND the employee consents.");
    println!("Press Ctrl-C to stop.");
    let agent = tokio::spawn(candor_agent::run(agent_config, Default::default()));
    tokio::select! {
        r = server.wait() => r?,
        r = agent => match r {
            Ok(Err(e)) => eprintln!("local agent stopped: {e:#}"),
            Ok(Ok(())) => {}
            Err(e) => eprintln!("local agent failed: {e}"),
        },
    }
    server.shutdown().await;
    Ok(())
}
