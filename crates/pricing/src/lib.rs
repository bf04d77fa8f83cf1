//! What an exchange cost in USD: one dated price table and the rules that apply it, shared by
//! the shipper (a property on every Seq event) and the session viewer (totals per session), so
//! both always agree.
//!
//! The built-in table is `prices.json` beside this crate's `Cargo.toml`. A file given with
//! `--prices` replaces it whole (`PriceTable::from_file`): either this crate's format or LiteLLM's
//! `model_prices_and_context_window.json` ([`litellm`]). The rules ([`rules`]) are the ones
//! Claude Code's own `cost_usd` applies, which follow Anthropic's pricing page; a model the
//! table does not name gets no cost, never a guess from a similar name.

pub mod error;
pub mod file;
pub mod litellm;
pub mod rules;
pub mod table;

pub use error::Error;
pub use rules::{Cost, Tokens, Unpriced};
pub use table::{BUILTIN_TABLE, Band, ModelPrices, PriceTable, Rates, STALE_AFTER_DAYS};

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
