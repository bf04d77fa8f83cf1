//! The `sessions`, `show` and `html` subcommands: their flags (the log path is the proxy's,
//! with the same `--log-file` / `LOG_FILE`), and where their output goes (a pager for long
//! output on a terminal, like `git log`).

use clap::{Args, ValueEnum};
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use crate::Error;
use crate::log::Index;
use crate::session::{self, Selection, Session};
use crate::term::{self, Style};

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The traffic log the proxy writes; its rotated segments (`<file>.<UTC time>.<n>`) are read
    /// first, oldest first.
    #[arg(long, env = "LOG_FILE", default_value = traffic_record::DEFAULT_LOG_PATH)]
    pub log_file: PathBuf,
    /// A price table replacing the built-in one, the same file and variable the shipper takes
    /// (crates/pricing/prices.json's shape or LiteLLM's model_prices_and_context_window.json).
    #[arg(long, env = "PRICES_FILE", value_name = "FILE", help = pricing::prices_help())]
    pub prices: Option<PathBuf>,
}

impl LogArgs {
    /// The price table, said on stderr with its date (and a warning when it is stale), so the
    /// output itself stays as it was.
    pub(crate) fn prices(&self) -> Result<pricing::PriceTable, Error> {
        let table = match &self.prices {
            Some(path) => pricing::PriceTable::from_file(path)?,
            None => pricing::PriceTable::builtin(),
        };
        let (line, stale) = table.describe(std::time::SystemTime::now());
        eprintln!("costs from the {line}");
        if let Some(stale) = stale {
            eprintln!("warning: {stale}");
        }
        Ok(table)
    }
}

#[derive(Debug, Args)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Print JSON (shape: docs/viewer.md) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only sessions with an exchange that ended at or after this time (RFC 3339, e.g.
    /// 2026-12-03T10:15:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<SystemTime>,
    #[arg(long, value_enum, default_value_t = When::Auto)]
    pub color: When,
}

fn parse_time(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{e}: give a UTC time such as 2026-12-03T10:15:00Z"))
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A session id (or a unique prefix), an exchange id, or `latest`.
    pub session: String,
    #[command(flatten)]
    pub log: LogArgs,
    #[arg(long, value_enum, default_value_t = When::Auto)]
    pub color: When,
    /// Do not start a pager (`$PAGER`, else `less -FRX`) even on a terminal.
    #[arg(long)]
    pub no_pager: bool,
    /// Show long tool results and inputs whole instead of folded.
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct HtmlArgs {
    /// A session id (or a unique prefix), an exchange id, or `latest`.
    pub session: String,
    /// The HTML file to write.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum When {
    Auto,
    Always,
    Never,
}

impl When {
    fn color(self) -> bool {
        match self {
            When::Always => true,
            When::Never => false,
            When::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

pub fn sessions(args: &SessionsArgs) -> Result<(), Error> {
    let index = Index::build(&args.log.log_file)?;
    let prices = args.log.prices()?;
    let mut list = session::summaries(&index, &prices);
    if let Some(since) = args.since {
        list.retain(|s| humantime::parse_rfc3339_weak(&s.ended_at).is_ok_and(|end| end >= since));
    }
    let text = if args.json {
        let doc = serde_json::json!({
            "log_file": args.log.log_file.display().to_string(),
            "segments": index.segments.len(),
            "bytes": index.bytes,
            "skipped": index.skipped,
            "exchanges_without_session": index.heads.iter().filter(|h| h.session_id.is_none()).count(),
            "price_table_date": prices.date,
            "sessions": list,
        });
        serde_json::to_string_pretty(&doc).expect("serializable") + "\n"
    } else {
        term::sessions_table(
            &list,
            &index.skipped,
            Style {
                color: args.color.color(),
                full: false,
            },
        )
    };
    print(&text, false)
}

pub fn show(args: &ShowArgs) -> Result<(), Error> {
    let index = Index::build(&args.log.log_file)?;
    let prices = args.log.prices()?;
    let (id, heads, only) = match session::select(&index, &args.session)? {
        Selection::Session(id, heads) => (id, heads, None),
        Selection::Exchange(id, heads, exchange) => (id, heads, Some(exchange)),
    };
    let session = Session::load(&index, id, &heads, &prices)?;
    let style = Style {
        color: args.color.color(),
        full: args.full,
    };
    let text = term::show(&session, only.as_deref(), &index.skipped, style);
    print(&text, !args.no_pager)
}

pub fn html(args: &HtmlArgs) -> Result<(), Error> {
    let index = Index::build(&args.log.log_file)?;
    let prices = args.log.prices()?;
    let (id, heads) = match session::select(&index, &args.session)? {
        Selection::Session(id, heads) | Selection::Exchange(id, heads, _) => (id, heads),
    };
    let session = Session::load(&index, id, &heads, &prices)?;
    let page = crate::html::render(&session, &index.skipped, &prices.date);
    std::fs::write(&args.output, page.as_bytes()).map_err(|source| Error::Write {
        path: args.output.display().to_string(),
        source,
    })?;
    eprintln!(
        "wrote {} ({} exchanges, {} bytes)",
        args.output.display(),
        session.exchanges.len(),
        page.len()
    );
    if index.skipped.total() > 0 {
        eprintln!("{}", term::skipped_line(&index.skipped));
    }
    Ok(())
}

/// Writes `text` to stdout, through a pager when asked and stdout is a terminal.
fn print(text: &str, pager: bool) -> Result<(), Error> {
    if pager && std::io::stdout().is_terminal() {
        let pager_cmd = std::env::var("PAGER").unwrap_or_else(|_| "less".to_string());
        let mut words = pager_cmd.split_whitespace();
        if let Some(program) = words.next() {
            let spawned = Command::new(program)
                .args(words)
                // As git does: quit if one screen, keep colours, do not clear the screen.
                .env(
                    "LESS",
                    std::env::var("LESS").unwrap_or_else(|_| "FRX".to_string()),
                )
                .stdin(Stdio::piped())
                .spawn();
            if let Ok(mut child) = spawned {
                if let Some(mut stdin) = child.stdin.take() {
                    // The user quitting the pager early closes the pipe: not an error.
                    let _ = stdin.write_all(text.as_bytes());
                }
                let _ = child.wait();
                return Ok(());
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::Output),
    }
}
