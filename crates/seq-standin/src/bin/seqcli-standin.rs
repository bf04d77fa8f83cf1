//! `seqcli-standin`: the part of `seqcli` the sandbox script uses, against the Seq stand-in:
//! `apikey create` with seqcli's arguments. It creates the key through the stand-in's own
//! `POST /api/apikeys` (Seq's real HTTP API is not emulated) and prints what seqcli prints: the
//! generated token alone when no `--token` was given, otherwise the key's id and title
//! (seqcli's `apikey/CreateCommand.cs` and `OutputFormatFeature.WriteEntity`).

use base64::Engine as _;
use clap::{Parser, Subcommand};
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::TcpStream;
use std::process::ExitCode;

/// A seqcli stand-in for tests (NOT seqcli): `apikey create` only.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// API keys.
    Apikey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create an API key; prints its token.
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// A title for the API key.
    #[arg(short = 't', long)]
    title: String,
    /// A pre-allocated API key token (default: one is generated and printed alone).
    #[arg(long)]
    token: Option<String>,
    /// Comma-separated permissions (default: Ingest).
    #[arg(long, default_value = "Ingest")]
    permissions: String,
    /// Username to connect with.
    #[arg(long)]
    connect_username: Option<String>,
    /// Password of --connect-username.
    #[arg(long)]
    connect_password: Option<String>,
    /// Read the password of --connect-username from STDIN.
    #[arg(long)]
    connect_password_stdin: bool,
    /// The URL of the Seq server.
    #[arg(short = 's', long, default_value = "http://localhost:5341")]
    server: String,
}

fn main() -> ExitCode {
    let Command::Apikey {
        command: ApiKeyCommand::Create(args),
    } = Cli::parse().command;
    match create(&args) {
        Ok(key) => {
            if args.token.is_none() {
                println!("{}", key["Token"].as_str().unwrap_or_default());
            } else {
                println!(
                    "{} {}",
                    key["Id"].as_str().unwrap_or_default(),
                    key["Title"].as_str().unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("seqcli-standin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The key as the server answered it (`Id`, `Title`, `Token`).
fn create(args: &CreateArgs) -> anyhow::Result<serde_json::Value> {
    if args.connect_password_stdin && args.connect_password.is_some() {
        anyhow::bail!(
            "the `connect-password` and `connect-password-stdin` options are mutually exclusive"
        );
    }
    let password = if args.connect_password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Some(line.trim_end_matches(['\r', '\n']).to_string())
    } else {
        args.connect_password.clone()
    };
    let authorization = match (&args.connect_username, password) {
        (Some(user), Some(pw)) => Some(
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}").as_bytes()),
        ),
        (Some(_), None) => anyhow::bail!("--connect-username needs a password"),
        _ => None,
    };
    let permissions: Vec<&str> = args.permissions.split(',').map(str::trim).collect();
    let body = serde_json::json!({
        "Title": args.title,
        "Token": args.token,
        "AssignedPermissions": permissions,
    })
    .to_string();
    let host_port = args
        .server
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--server must be an http:// URL"))?
        .trim_end_matches('/');
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:80")
    };
    let mut conn = TcpStream::connect(&host_port)?;
    let mut request = format!(
        "POST /api/apikeys HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(a) = authorization {
        request.push_str(&format!("Authorization: Basic {a}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    conn.write_all(request.as_bytes())?;
    let mut response = String::new();
    conn.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).unwrap_or("");
    if !status.starts_with('2') {
        anyhow::bail!("the server answered {status}: {body}");
    }
    let answer: serde_json::Value = serde_json::from_str(body)?;
    if answer["Token"].as_str().is_none() {
        anyhow::bail!("no token in {body}");
    }
    Ok(answer)
}
