//! The price table: model id to rates, dated, each entry with its source, as read from this
//! crate's JSON format (the built-in `prices.json`); [`crate::file`] reads either format.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::error::Error;

/// The table compiled into the binaries.
pub const BUILTIN_TABLE: &str = include_str!("../prices.json");

/// A table older than this many days is reported as stale at start-up.
pub const STALE_AFTER_DAYS: u64 = 90;

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

/// Rates that apply to a whole request once its prompt (input + cache reads + cache writes)
/// is above `above_prompt_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub above_prompt_tokens: u64,
    #[serde(flatten)]
    pub rates: Rates,
}

/// What one model costs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPrices {
    /// The rates of prompts up to the first band.
    pub rates: Rates,
    /// Higher prompt-length bands, lowest threshold first.
    pub bands: Vec<Band>,
    /// Fast mode (`usage.speed == "fast"`) multiplies every token rate by this; `None`: the
    /// model has no fast mode, and a fast answer gets no cost.
    pub fast_multiplier: Option<f64>,
    /// Token-rate multipliers by `usage.inference_geo`; a region not named gets no cost.
    pub inference_geo: BTreeMap<String, f64>,
    /// USD per web search (`usage.server_tool_use.web_search_requests`).
    pub web_search_per_request: f64,
    /// USD per web fetch (`usage.server_tool_use.web_fetch_requests`).
    pub web_fetch_per_request: f64,
    /// Where these prices were read.
    pub source: String,
}

/// A dated price table: model id (without its date suffix) to prices.
#[derive(Debug, Clone)]
pub struct PriceTable {
    /// The day the prices were read from their sources (YYYY-MM-DD).
    pub date: String,
    /// Where the table as a whole comes from.
    pub source: String,
    pub models: BTreeMap<String, ModelPrices>,
}

/// This crate's file format (`prices.json`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    date: String,
    source: String,
    /// Always "USD per million tokens"; kept so a reader of the file knows.
    #[allow(dead_code)]
    unit: String,
    /// Multipliers by `usage.inference_geo` for every model that does not list its own.
    #[serde(default)]
    inference_geo: BTreeMap<String, f64>,
    models: BTreeMap<String, FileModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileModel {
    #[serde(default)]
    source: Option<String>,
    #[serde(flatten)]
    rates: Rates,
    #[serde(default)]
    bands: Vec<Band>,
    /// The one band of tables written before bands (`long_context.above_input_tokens`).
    #[serde(default)]
    long_context: Option<LongContext>,
    #[serde(default)]
    fast_multiplier: Option<f64>,
    #[serde(default)]
    inference_geo: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    web_search_per_request: f64,
    #[serde(default)]
    web_fetch_per_request: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongContext {
    above_input_tokens: u64,
    #[serde(flatten)]
    rates: Rates,
}

impl PriceTable {
    pub fn builtin() -> PriceTable {
        PriceTable::from_json(BUILTIN_TABLE, "built-in prices.json")
            .expect("the built-in price table parses (tested)")
    }

    pub(crate) fn from_json(text: &str, path: &str) -> Result<PriceTable, Error> {
        let file: File = serde_json::from_str(text).map_err(|source| Error::Parse {
            path: path.to_string(),
            source,
        })?;
        let invalid = |reason: String| Error::Invalid {
            path: path.to_string(),
            reason,
        };
        if parse_day(&file.date).is_none() {
            return Err(invalid(format!("date {:?} is not YYYY-MM-DD", file.date)));
        }
        let mut models = BTreeMap::new();
        for (id, m) in file.models {
            let mut bands = m.bands;
            if let Some(lc) = m.long_context {
                bands.push(Band {
                    above_prompt_tokens: lc.above_input_tokens,
                    rates: lc.rates,
                });
            }
            bands.sort_by_key(|b| b.above_prompt_tokens);
            if bands
                .windows(2)
                .any(|w| w[0].above_prompt_tokens == w[1].above_prompt_tokens)
            {
                return Err(invalid(format!("{id} has two bands with one threshold")));
            }
            models.insert(
                id,
                ModelPrices {
                    rates: m.rates,
                    bands,
                    fast_multiplier: m.fast_multiplier,
                    inference_geo: m
                        .inference_geo
                        .unwrap_or_else(|| file.inference_geo.clone()),
                    web_search_per_request: m.web_search_per_request,
                    web_fetch_per_request: m.web_fetch_per_request,
                    source: m.source.unwrap_or_else(|| file.source.clone()),
                },
            );
        }
        Ok(PriceTable {
            date: file.date,
            source: file.source,
            models,
        })
    }

    /// The prices of `model`: its exact id, or the id without a `-YYYYMMDD` or `-latest`
    /// suffix. `None` for any other name.
    pub fn prices(&self, model: &str) -> Option<&ModelPrices> {
        self.models
            .get(model)
            .or_else(|| self.models.get(undated(model)?))
    }

    /// Whole days from the table's date to `now` (0 when the date is in the future).
    pub fn age_days(&self, now: SystemTime) -> Option<u64> {
        let day = parse_day(&self.date)?;
        let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() / 86_400;
        Some(now.saturating_sub(day))
    }

    /// One line for start-up: the table's date and source, and a warning when it is older
    /// than [`STALE_AFTER_DAYS`].
    pub fn describe(&self, now: SystemTime) -> (String, Option<String>) {
        let line = format!(
            "price table of {} ({} models, from {})",
            self.date,
            self.models.len(),
            self.source
        );
        let stale = self
            .age_days(now)
            .filter(|age| *age > STALE_AFTER_DAYS)
            .map(|age| {
                format!(
                    "the price table is {age} days old (dated {}): prices may have changed; \
                     point --prices at a current file (docs/seq-events.md, \"Cost\")",
                    self.date
                )
            });
        (line, stale)
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn parse_day(date: &str) -> Option<u64> {
    if date.len() != 10 {
        return None;
    }
    let t = humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).ok()?;
    Some(t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() / 86_400)
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

    #[test]
    fn the_builtin_table_parses_is_dated_and_every_entry_names_its_source() {
        let table = PriceTable::builtin();
        assert!(parse_day(&table.date).is_some(), "{}", table.date);
        for (id, m) in &table.models {
            assert!(
                m.source.starts_with("https://platform.claude.com/docs/"),
                "{id}: {}",
                m.source
            );
        }
    }

    #[test]
    fn the_builtin_table_names_every_model_claude_code_offers() {
        // Claude Code 2.1.332's model catalog and start screen (measured), all active on the API.
        let table = PriceTable::builtin();
        for id in [
            "claude-opus-5-5",
            "claude-opus-5",
            "claude-opus-4-8",
            "claude-opus-4-7",
            "claude-opus-4-6",
            "claude-opus-4-5",
            "claude-sonnet-5-5",
            "claude-sonnet-5",
            "claude-sonnet-4-6",
            "claude-sonnet-4-5",
            "claude-haiku-5-5",
            "claude-haiku-4-5",
            "claude-fable-5-2",
            "claude-fable-5-1",
            "claude-fable-5",
        ] {
            assert!(table.prices(id).is_some(), "{id} missing");
        }
    }

    #[test]
    fn per_model_cache_read_multipliers_are_kept() {
        // Opus 5.5 reads at 0.05x input, Fable 5.1 at 0.025x, Sonnet 5.5 at 0.05x since
        // 2026-10-07; most models at 0.1x.
        let t = PriceTable::builtin();
        let ratio = |id: &str| {
            let r = t.prices(id).unwrap().rates;
            r.cache_read / r.input
        };
        assert!((ratio("claude-opus-5-5") - 0.05).abs() < 1e-12);
        assert!((ratio("claude-fable-5-1") - 0.025).abs() < 1e-12);
        assert!((ratio("claude-sonnet-5-5") - 0.05).abs() < 1e-12);
        assert!((ratio("claude-opus-5") - 0.1).abs() < 1e-12);
    }

    #[test]
    fn a_table_older_than_90_days_is_reported_stale() {
        let table = PriceTable::builtin();
        let day = |d: &str| humantime::parse_rfc3339(&format!("{d}T12:00:00Z")).unwrap();
        let mut t = table.clone();
        t.date = "2026-01-01".into();
        assert_eq!(t.age_days(day("2026-04-01")), Some(90));
        assert!(t.describe(day("2026-04-01")).1.is_none());
        let (line, stale) = t.describe(day("2026-04-02"));
        assert!(line.contains("2026-01-01"), "{line}");
        let stale = stale.unwrap();
        assert!(
            stale.contains("91 days") && stale.contains("--prices"),
            "{stale}"
        );
    }

    #[test]
    fn old_tables_with_one_long_context_tier_still_read() {
        let t = PriceTable::from_json(
            r#"{"date":"2025-11-24","source":"https://x","unit":"USD per million tokens",
                "models":{"m":{"input":3,"output":15,"cache_write_5m":3.75,"cache_write_1h":6,"cache_read":0.3,
                "long_context":{"above_input_tokens":200000,"input":6,"output":22.5,"cache_write_5m":7.5,"cache_write_1h":12,"cache_read":0.6}}}}"#,
            "old.json",
        )
        .unwrap();
        let m = t.prices("m").unwrap();
        assert_eq!(m.bands.len(), 1);
        assert_eq!(m.bands[0].above_prompt_tokens, 200_000);
        assert_eq!(m.source, "https://x");
    }

    #[test]
    fn a_replacement_table_is_read_from_a_file_and_errors_name_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prices.json");
        std::fs::write(
            &file,
            r#"{"date":"2026-12-01","source":"https://example.invalid","unit":"USD per million tokens",
                "models":{"my-model":{"input":1,"output":2,"cache_write_5m":0,"cache_write_1h":0,"cache_read":0}}}"#,
        )
        .unwrap();
        let table = PriceTable::from_file(&file).unwrap();
        assert!(table.prices("my-model").is_some());
        assert!(
            table.prices("claude-sonnet-4-5").is_none(),
            "replaces, not overlays"
        );

        std::fs::write(&file, r#"{"date":"x"}"#).unwrap();
        let err = PriceTable::from_file(&file).unwrap_err().to_string();
        assert!(
            err.contains("prices.json") && err.contains("not valid"),
            "{err}"
        );
    }
}
