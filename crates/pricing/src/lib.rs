//! What an exchange cost in USD: one dated price table and the rules that apply it, shared by
//! the shipper (a property on every Seq event) and the session viewer (totals per session), so
//! both always agree.
//!
//! The built-in table is `prices.json` beside this crate's `Cargo.toml`. A file given with
//! `--prices` replaces it whole (`PriceTable::from_file`): either this crate's format or LiteLLM's
//! `model_prices_and_context_window.json` ([`litellm`]). The rules ([`rules`]) are the ones
//! Claude Code's own `cost_usd` applies, which follow Anthropic's pricing page; a model the
//! table does not name gets no cost, never a guess from a similar name.

pub mod litellm;
pub mod rules;
pub mod table;

pub use rules::{Cost, Tokens, Unpriced};
pub use table::{Band, ModelPrices, PriceTable, Rates};

/// The table compiled into the binaries.
pub const BUILTIN_TABLE: &str = include_str!("../prices.json");

/// A table older than this many days is reported as stale at start-up.
pub const STALE_AFTER_DAYS: u64 = 90;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the price table {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the price table {path} is not valid: {source} (see docs/seq-events.md, \"Cost\")")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("the price table {path} is not valid: {reason} (see docs/seq-events.md, \"Cost\")")]
    Invalid { path: String, reason: String },
}

/// The `--prices` help of the shipper and the viewer, naming the built-in table's date.
pub fn prices_help() -> String {
    let table = PriceTable::builtin();
    format!(
        "A price table replacing the built-in one (dated {}, {} models): crates/pricing/prices.json's \
         shape or LiteLLM's model_prices_and_context_window.json; see docs/seq-events.md, \"Cost\"",
        table.date,
        table.models.len()
    )
}
