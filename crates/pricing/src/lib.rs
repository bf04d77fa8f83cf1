//! What an exchange cost in USD: one dated price table and the rules that apply it, shared by
//! the shipper (a property on every Seq event) and the session viewer (totals per session), so
//! both always agree.
//!
//! The built-in table is `prices.json` beside this crate's `Cargo.toml`; a file of the same
//! shape replaces it (`PriceTable::from_file`). Rules, as Anthropic bills them:
//! - each token kind has its own rate: input, output, cache reads, 5-minute and 1-hour cache
//!   writes; cache writes the API did not break down by lifetime are priced as 5-minute writes
//!   (the API's default lifetime);
//! - a model with a long-context tier bills the whole request at that tier's rates once its
//!   input (input + cache reads + cache writes) exceeds the tier's threshold;
//! - a model the table does not name gets no cost: never a guess from a similar name.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use traffic_record::Usage;

/// The table compiled into the binaries.
pub const BUILTIN_TABLE: &str = include_str!("../prices.json");

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
}

/// USD per million tokens, by token kind.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    pub input: f64,
    pub output: f64,
    pub cache_write_5m: f64,
    pub cache_write_1h: f64,
    pub cache_read: f64,
}

/// Rates that apply to a whole request once its input exceeds `above_input_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongContext {
    pub above_input_tokens: u64,
    #[serde(flatten)]
    pub rates: Rates,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelPrices {
    #[serde(flatten)]
    pub rates: Rates,
    #[serde(default)]
    pub long_context: Option<LongContext>,
}

/// A dated price table: model id (without its date suffix) to prices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// The day the prices were read from `source` (YYYY-MM-DD).
    pub date: String,
    pub source: String,
    /// Always "USD per million tokens"; kept so a reader of the file knows.
    pub unit: String,
    pub models: BTreeMap<String, ModelPrices>,
}

/// Token counts of one exchange, by how they are billed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
}

impl Tokens {
    /// The counts of a record's usage. Cache writes without a lifetime breakdown count as
    /// 5-minute writes; a breakdown that does not add up leaves the rest as 5-minute writes too.
    pub fn from_usage(usage: &Usage) -> Tokens {
        let written = usage.cache_creation_input_tokens.unwrap_or(0);
        let (mut w5m, w1h) = match &usage.cache_creation {
            Some(c) => (
                c.ephemeral_5m_input_tokens.unwrap_or(0),
                c.ephemeral_1h_input_tokens.unwrap_or(0),
            ),
            None => (written, 0),
        };
        w5m += written.saturating_sub(w5m + w1h);
        Tokens {
            input: usage.input_tokens.unwrap_or(0),
            output: usage.output_tokens.unwrap_or(0),
            cache_read: usage.cache_read_input_tokens.unwrap_or(0),
            cache_write_5m: w5m,
            cache_write_1h: w1h,
        }
    }

    /// Every input token, whether read from the cache, written to it or neither.
    pub fn total_input(&self) -> u64 {
        self.input + self.cache_read + self.cache_write_5m + self.cache_write_1h
    }
}

/// The price of one exchange.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    pub usd: f64,
    /// Billed at the model's long-context rates.
    pub long_context: bool,
}

impl PriceTable {
    pub fn builtin() -> PriceTable {
        PriceTable::from_json(BUILTIN_TABLE, "built-in prices.json")
            .expect("the built-in price table parses (tested)")
    }

    pub fn from_file(path: &Path) -> Result<PriceTable, Error> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: shown.clone(),
            source,
        })?;
        PriceTable::from_json(&text, &shown)
    }

    fn from_json(text: &str, path: &str) -> Result<PriceTable, Error> {
        serde_json::from_str(text).map_err(|source| Error::Parse {
            path: path.to_string(),
            source,
        })
    }

    /// The prices of `model`: its exact id, or the id without a `-YYYYMMDD` or `-latest`
    /// suffix. `None` for any other name.
    pub fn prices(&self, model: &str) -> Option<&ModelPrices> {
        self.models
            .get(model)
            .or_else(|| self.models.get(undated(model)?))
    }

    /// What `tokens` cost on `model`; `None` when the table does not know the model.
    pub fn cost(&self, model: &str, tokens: &Tokens) -> Option<Cost> {
        let prices = self.prices(model)?;
        let (rates, long_context) = match &prices.long_context {
            Some(tier) if tokens.total_input() > tier.above_input_tokens => (&tier.rates, true),
            _ => (&prices.rates, false),
        };
        let micro_usd = tokens.input as f64 * rates.input
            + tokens.output as f64 * rates.output
            + tokens.cache_read as f64 * rates.cache_read
            + tokens.cache_write_5m as f64 * rates.cache_write_5m
            + tokens.cache_write_1h as f64 * rates.cache_write_1h;
        Some(Cost {
            usd: micro_usd / 1e6,
            long_context,
        })
    }
}

/// `claude-sonnet-4-5-20250929` -> `claude-sonnet-4-5`; `claude-3-5-haiku-latest` ->
/// `claude-3-5-haiku`.
fn undated(model: &str) -> Option<&str> {
    if let Some(base) = model.strip_suffix("-latest") {
        return Some(base);
    }
    let (base, date) = model.rsplit_once('-')?;
    (date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit())).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use traffic_record::CacheCreation;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn cost(model: &str, tokens: Tokens) -> Option<Cost> {
        PriceTable::builtin().cost(model, &tokens)
    }

    #[test]
    fn the_builtin_table_parses_and_is_dated() {
        let table = PriceTable::builtin();
        assert_eq!(table.date.len(), 10);
        assert!(table.source.starts_with("https://"));
        assert!(table.models.len() >= 10);
    }

    #[test]
    fn each_token_kind_has_its_own_rate() {
        // Sonnet 4.5: $3 in, $15 out, $0.30 cache read, $3.75 5-minute write, $6 1-hour write.
        let tokens = Tokens {
            input: 1_000,
            output: 2_000,
            cache_read: 10_000,
            cache_write_5m: 4_000,
            cache_write_1h: 500,
        };
        let by_hand =
            (1_000.0 * 3.0 + 2_000.0 * 15.0 + 10_000.0 * 0.3 + 4_000.0 * 3.75 + 500.0 * 6.0) / 1e6;
        let got = cost("claude-sonnet-4-5-20250929", tokens).unwrap();
        assert!(close(got.usd, by_hand), "{} != {by_hand}", got.usd);
        assert!(!got.long_context);
        assert!(close(by_hand, 0.054));
    }

    #[test]
    fn over_the_long_context_threshold_the_whole_request_is_billed_at_that_tier() {
        // 150,000 input + 60,000 cache read = 210,000 > 200,000: $6 in, $22.50 out, $0.60 read.
        let tokens = Tokens {
            input: 150_000,
            output: 1_000,
            cache_read: 60_000,
            ..Tokens::default()
        };
        let got = cost("claude-sonnet-4-5", tokens).unwrap();
        assert!(got.long_context);
        assert!(close(
            got.usd,
            (150_000.0 * 6.0 + 1_000.0 * 22.5 + 60_000.0 * 0.6) / 1e6
        ));
        // Exactly at the threshold is not above it.
        let at = Tokens {
            input: 200_000,
            ..Tokens::default()
        };
        assert!(!cost("claude-sonnet-4-5", at).unwrap().long_context);
        // Opus 4.5 has no long-context tier.
        let big = Tokens {
            input: 500_000,
            ..Tokens::default()
        };
        let opus = cost("claude-opus-4-5-20251101", big).unwrap();
        assert!(!opus.long_context);
        assert!(close(opus.usd, 2.5));
    }

    #[test]
    fn unknown_models_get_no_cost_rather_than_a_guess() {
        let tokens = Tokens {
            input: 1,
            ..Tokens::default()
        };
        assert!(
            cost("claude-opus-4-7", tokens).is_none(),
            "not priced as Opus 4"
        );
        assert!(cost("claude-sonnet-4-5-preview", tokens).is_none());
        assert!(cost("gpt-4o", tokens).is_none());
        assert!(cost("claude-3-5-haiku-latest", tokens).is_some());
        assert!(cost("claude-opus-4-20250514", tokens).is_some());
    }

    #[test]
    fn cache_writes_without_a_lifetime_breakdown_are_five_minute_writes() {
        let usage = Usage {
            input_tokens: Some(10),
            output_tokens: Some(20),
            cache_creation_input_tokens: Some(1_000),
            cache_read_input_tokens: Some(5),
            cache_creation: None,
        };
        let t = Tokens::from_usage(&usage);
        assert_eq!((t.cache_write_5m, t.cache_write_1h), (1_000, 0));
        assert_eq!(t.total_input(), 1_015);

        let split = Usage {
            cache_creation: Some(CacheCreation {
                ephemeral_5m_input_tokens: Some(300),
                ephemeral_1h_input_tokens: Some(700),
            }),
            ..usage
        };
        let t = Tokens::from_usage(&split);
        assert_eq!((t.cache_write_5m, t.cache_write_1h), (300, 700));
        // Haiku 4.5: 10 x $1 + 20 x $5 + 5 x $0.10 + 300 x $1.25 + 700 x $2.
        let got = PriceTable::builtin().cost("claude-haiku-4-5", &t).unwrap();
        assert!(close(got.usd, (10.0 + 100.0 + 0.5 + 375.0 + 1_400.0) / 1e6));
    }

    #[test]
    fn a_replacement_table_is_read_from_a_file_and_errors_name_it() {
        let dir = std::env::temp_dir().join(format!("pricing-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("prices.json");
        std::fs::write(
            &file,
            r#"{"date":"2026-12-01","source":"https://example.invalid","unit":"USD per million tokens",
                "models":{"my-model":{"input":1,"output":2,"cache_write_5m":0,"cache_write_1h":0,"cache_read":0}}}"#,
        )
        .unwrap();
        let table = PriceTable::from_file(&file).unwrap();
        let tokens = Tokens {
            input: 1_000_000,
            output: 1_000_000,
            ..Tokens::default()
        };
        assert!(close(table.cost("my-model", &tokens).unwrap().usd, 3.0));
        assert!(table.cost("claude-sonnet-4-5", &tokens).is_none());

        std::fs::write(&file, r#"{"date":"x"}"#).unwrap();
        let err = PriceTable::from_file(&file).unwrap_err().to_string();
        assert!(
            err.contains("prices.json") && err.contains("not valid"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
