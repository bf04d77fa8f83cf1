//! `fake-anthropic --listen ADDR`: serves the fake Anthropic API until killed.
use clap::Parser;
use std::net::SocketAddr;

/// A fake Anthropic Messages API for tests (NOT the real API).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Address to listen on; port 0 picks a free port (printed as `listening on IP:PORT`).
    #[arg(long, env = "FAKE_ANTHROPIC_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    fake_anthropic::serve(listener).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
