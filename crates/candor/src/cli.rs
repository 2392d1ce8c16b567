//! Command-line surface: parse, then call into the server or agent crates.

use anyhow::{bail, Context};
use candor_agent::config::AgentConfig;
use candor_agent::sources::synthetic::SyntheticOptions;
use candor_proto::Category;
use candor_server::config::ServerConfig;
use candor_server::store::{AdminStore, Store};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "candor", version, about = "Consent-first endpoint audit and DLP: server and agent in one binary")]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

impl Cli {
    /// `candor agent run`: the long-running desktop process, kept small.
    pub fn is_agent_run(&self) -> bool {
        matches!(self.cmd, Cmd::Agent { cmd: AgentCmd::Run { .. } })
    }
}

#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// Server configuration file (TOML); missing means defaults.
    #[arg(long, default_value = "candor.toml")]
    pub config: PathBuf,
    /// Overrides `data_dir`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Overrides `listen`, e.g. 0.0.0.0:8443.
    #[arg(long)]
    pub listen: Option<String>,
    /// Overrides `public_url`, e.g. https://audit.example.com:8443.
    #[arg(long)]
    pub public_url: Option<String>,
}

impl ServerArgs {
    pub fn load(&self) -> anyhow::Result<ServerConfig> {
        let mut c = ServerConfig::load(&self.config)?;
        if let Some(d) = &self.data_dir {
            c.data_dir = d.clone();
        }
        if let Some(l) = &self.listen {
            c.listen = l.clone();
        }
        if let Some(u) = &self.public_url {
            c.public_url = Some(u.clone());
        }
        Ok(c)
    }
}

#[derive(clap::Args, Clone)]
pub struct AgentArgs {
    /// Agent configuration file (TOML); missing means defaults.
    #[arg(long, default_value = "/etc/candor/agent.toml")]
    pub config: PathBuf,
    /// Overrides `state_dir`.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

impl AgentArgs {
    fn load(&self) -> anyhow::Result<AgentConfig> {
        let mut c = AgentConfig::load(&self.config)?;
        if let Some(d) = &self.state_dir {
            c.state_dir = d.clone();
        }
        Ok(c)
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Server, local agent and console in one go, with embedded storage.
    Up(ServerArgs),
    /// Run the server.
    Server(ServerArgs),
    /// Run or enroll the desktop agent.
    Agent {
        #[command(subcommand)]
        cmd: AgentCmd,
    },
    /// Enrollment tokens.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Administrator accounts.
    Admin {
        #[command(subcommand)]
        cmd: AdminCmd,
    },
    /// The access log.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Secrets kept sealed under the server's master key.
    Secret {
        #[command(subcommand)]
        cmd: SecretCmd,
    },
    /// The WeCom chat archive connector.
    ChatArchive {
        #[command(subcommand)]
        cmd: ChatArchiveCmd,
    },
    /// Benchmarks that print ratios against a peer measured in the same run.
    Bench {
        #[command(subcommand)]
        cmd: crate::bench::BenchCmd,
    },
    /// The agent's notification helper: started by the agent under the
    /// employee's uid to show one desktop notification, then exits.
    #[command(hide = true)]
    NotifyDesktop {
        #[arg(long)]
        title: String,
        #[arg(long)]
        body: String,
        /// Keep the notification until standard input closes, then withdraw it.
        #[arg(long)]
        hold: bool,
    },
    /// The agent's status icon helper: started by the agent under the
    /// employee's uid, shows the icon until standard input closes.
    #[command(hide = true)]
    StatusIcon,
}

#[derive(Subcommand)]
enum ChatArchiveCmd {
    /// Smoke test of a Finance SDK library: load it, bind all 17 symbols,
    /// create and destroy an instance; with --corpid and --secret also
    /// initialise it and fetch one message envelope (needs qyapi.weixin.qq.com).
    Check {
        /// Path of libWeWorkFinanceSdk_C.so.
        #[arg(long)]
        sdk: PathBuf,
        #[arg(long)]
        corpid: Option<String>,
        #[arg(long, env = "CANDOR_WECOM_SECRET")]
        secret: Option<String>,
    },
}

#[derive(Subcommand)]
enum AgentCmd {
    /// Exchange a one-time enrollment token for this agent's credentials.
    Enroll {
        token: String,
        #[command(flatten)]
        args: AgentArgs,
    },
    /// Run the agent.
    Run {
        #[command(flatten)]
        args: AgentArgs,
        /// TEST/BENCH ONLY: emit synthetic events at this rate per second.
        #[arg(long)]
        synthetic_rate: Option<u64>,
        /// TEST/BENCH ONLY: how many synthetic events in all.
        #[arg(long, default_value_t = u64::MAX)]
        synthetic_total: u64,
        /// TEST/BENCH ONLY: category of the synthetic events (several, comma-separated: taken in turn).
        #[arg(long, default_value = "activity")]
        synthetic_category: String,
    },
    /// The browser extension's native messaging host (started by the browser, as the user).
    WebHost {
        /// The agent's socket for browser reports.
        #[arg(long, default_value = "/run/candor-agent/browser.sock")]
        socket: std::path::PathBuf,
        /// The extension origin Chromium passes; ignored.
        #[arg(trailing_var_arg = true, hide = true)]
        origin: Vec<String>,
    },
    /// What this computer's agent collects, under which policy, for whom (any local user may run it).
    Status {
        #[command(flatten)]
        args: AgentArgs,
        /// Print the status file as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Print a single-use enrollment token.
    Create {
        #[command(flatten)]
        server: ServerArgs,
        /// Department the enrolled agent joins (created if missing).
        #[arg(long)]
        department: Option<String>,
        /// Lifetime, e.g. 7d, 12h, 30m.
        #[arg(long, default_value = "7d")]
        expires: String,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Set a new one-time password for an admin and print it.
    ResetPassword {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, default_value = "admin")]
        username: String,
    },
}

#[derive(Subcommand)]
enum SecretCmd {
    /// Read a secret (the archive secret, a private key PEM) from standard
    /// input and print it sealed, for the config or a key file.
    Seal {
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the access log's hash chain; exits non-zero at the first broken link.
    Verify {
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Up(args) => crate::up::run(args.load()?).await,
        Cmd::Server(args) => {
            let mut running = candor_server::start(args.load()?).await?;
            println!("Candor server listening on {} (public URL {})", running.addr, running.public_url);
            println!("CA fingerprint (SHA-256): {}", running.ca_fingerprint);
            if let Some(pw) = &running.first_admin_password {
                println!("First admin login: admin / {pw}   (shown once; reset with `candor admin reset-password`)");
            }
            tokio::select! {
                r = running.wait() => r,
                _ = shutdown_signal() => Ok(()),
            }
        }
        Cmd::Agent { cmd: AgentCmd::Enroll { token, args } } => {
            let config = args.load()?;
            let creds = candor_agent::enroll::enroll(&token, &config.state_dir).await?;
            println!(
                "Enrolled as agent {} with {}; credentials in {}",
                creds.agent_id,
                creds.server_url,
                config.state_dir.join("credentials.json").display()
            );
            Ok(())
        }
        Cmd::Agent { cmd: AgentCmd::Run { args, synthetic_rate, synthetic_total, synthetic_category } } => {
            let synthetic = match synthetic_rate {
                Some(rate) => Some(SyntheticOptions {
                    rate,
                    total: synthetic_total,
                    categories: synthetic_category
                        .split(',')
                        .map(|c| c.trim().parse::<Category>())
                        .collect::<Result<_, _>>()
                        .map_err(anyhow::Error::msg)?,
                }),
                None => None,
            };
            candor_agent::run(args.load()?, candor_agent::RunOptions { synthetic }).await
        }
        Cmd::Agent { cmd: AgentCmd::WebHost { socket, .. } } => candor_agent::web::browser::native_host(&socket),
        Cmd::Agent { cmd: AgentCmd::Status { args, json } } => {
            let status = candor_agent::status::Status::read(&args.load()?.state_dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.render(candor_proto::now_ms()));
            }
            Ok(())
        }
        Cmd::Token { cmd: TokenCmd::Create { server, department, expires } } => {
            let config = server.load()?;
            let data = candor_server::DataDir::open(&config)?;
            let ttl = candor_server::enrollment::parse_duration_ms(&expires).map_err(anyhow::Error::msg)?;
            let dept = match department {
                Some(name) => Some(match data.store.department_by_name(&name)? {
                    Some(d) => d.id,
                    None => {
                        eprintln!("Department {name:?} did not exist; created it.");
                        data.store.create_department(&name, None)?
                    }
                }),
                None => None,
            };
            let (token, _) = candor_server::enrollment::create_token(
                data.store.as_ref(),
                &config.public_url(),
                &data.pki.ca_fingerprint,
                dept,
                ttl,
            )?;
            println!("{token}");
            Ok(())
        }
        Cmd::Admin { cmd: AdminCmd::ResetPassword { server, username } } => {
            let data = candor_server::DataDir::open(&server.load()?)?;
            let pw = candor_server::api::auth::generate_password();
            let hash = candor_server::api::auth::hash_password(&pw).map_err(anyhow::Error::msg)?;
            data.store.set_admin_password(&username, &hash)?;
            println!("New password for {username}: {pw}");
            Ok(())
        }
        Cmd::Audit { cmd: AuditCmd::Verify { server } } => {
            let data = candor_server::DataDir::open(&server.load()?)?;
            let mut entries = Vec::new();
            let mut before = None;
            loop {
                let page = data.store.access_log(1000, before).context("reading the access log")?;
                let Some(last) = page.last() else { break };
                before = Some(last.id);
                entries.extend(page);
            }
            entries.reverse();
            match candor_server::audit::first_broken(&entries) {
                None => {
                    println!("access log intact: {} entries", entries.len());
                    Ok(())
                }
                Some(id) => {
                    bail!("access log broken at entry {id}: it or an earlier entry was altered")
                }
            }
        }
        Cmd::Secret { cmd: SecretCmd::Seal { server } } => {
            use std::io::Read;
            let config = server.load()?;
            let key =
                candor_server::sealed::MasterKey::load_or_create(config.master_key_file.as_deref(), &config.data_dir)?;
            let mut plain = Vec::new();
            std::io::stdin().take(32 << 10 | 1).read_to_end(&mut plain).context("reading standard input")?;
            if plain.len() > 32 << 10 {
                bail!("a secret is at most 32 KiB");
            }
            // `echo secret |` adds a newline that is not part of the secret; a PEM keeps its own.
            if !plain.starts_with(b"-----") && plain.ends_with(b"\n") {
                plain.pop();
            }
            if plain.is_empty() {
                bail!("nothing on standard input to seal");
            }
            eprintln!("sealed under {}", key.source.display());
            println!("{}", key.seal(&plain)?);
            Ok(())
        }
        Cmd::ChatArchive { cmd: ChatArchiveCmd::Check { sdk, corpid, secret } } => {
            use candor_chat::wecom::sdk::{Library, Net, Sdk};
            let lib = Library::load(&sdk)?;
            println!("{}: loaded, all 17 symbols bound", sdk.display());
            let net = Net { timeout_secs: 10, ..Default::default() };
            match (corpid, secret) {
                (Some(c), Some(s)) => {
                    let instance = Sdk::new(lib, &c, &s, &net).context("NewSdk + Init")?;
                    let body = instance.chat_data(0, 1).context("GetChatData(seq 0, limit 1)")?;
                    let v: serde_json::Value = serde_json::from_slice(&body).context("GetChatData answer")?;
                    println!(
                        "Init and GetChatData succeeded: errcode {}, {} message(s)",
                        v["errcode"],
                        v["chatdata"].as_array().map_or(0, Vec::len)
                    );
                }
                _ => {
                    // NewSdk and DestroySdk only: Init with no credentials would fail by design.
                    match Sdk::new(lib, "", "", &net) {
                        Ok(_) | Err(candor_chat::wecom::sdk::SdkError::Code { call: "Init", .. }) => {
                            println!("NewSdk and DestroySdk work (no credentials given: Init not tried for real)")
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Ok(())
        }
        Cmd::Bench { cmd } => crate::bench::run(cmd).await,
        Cmd::NotifyDesktop { title, body, hold } => candor_agent::desktop_notify::send(&title, &body, hold).await,
        Cmd::StatusIcon => candor_agent::tray::serve().await,
    }
}

pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
