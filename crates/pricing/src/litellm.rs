//! LiteLLM's `model_prices_and_context_window.json` (the price file ccusage and other cost
//! tools read) as a price table: its Anthropic entries, USD per token turned into USD per
//! million tokens. The mapping is documented in docs/seq-events.md, "Cost".

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::error::Error;
use crate::table::{Band, ModelPrices, PriceTable, Rates};

/// LiteLLM's file is an object of model entries with `litellm_provider` and
/// `input_cost_per_token`; ours has `date` and `models`.
pub fn is_litellm(value: &Value) -> bool {
    let Some(map) = value.as_object() else {
        return false;
    };
    !map.contains_key("models")
        && map
            .values()
            .any(|v| v.get("litellm_provider").is_some() && v.get("input_cost_per_token").is_some())
}

/// The Anthropic (first-party API) entries of a LiteLLM file. Its date is the file's
/// modification day: the file carries none.
pub fn table(value: &Value, path: &str, modified: SystemTime) -> Result<PriceTable, Error> {
    let date = humantime::format_rfc3339_seconds(modified).to_string()[..10].to_string();
    let models = entries(value)
        .filter_map(|(id, entry)| Some((id.to_string(), model(entry)?)))
        .collect::<BTreeMap<_, _>>();
    if models.is_empty() {
        return Err(Error::Invalid {
            path: path.to_string(),
            reason: "a LiteLLM price file with no entry whose litellm_provider is \"anthropic\""
                .into(),
        });
    }
    Ok(PriceTable {
        date,
        source: format!("LiteLLM price file {path}"),
        models,
    })
}

/// The entries LiteLLM prices for the Anthropic API itself (not Bedrock, Vertex, ...).
pub fn entries(value: &Value) -> impl Iterator<Item = (&str, &Value)> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.get("litellm_provider").and_then(Value::as_str) == Some("anthropic"))
        .map(|(k, v)| (k.as_str(), v))
}

/// USD per million tokens of a per-token field.
fn per_mtok(entry: &Value, field: &str) -> Option<f64> {
    entry
        .get(field)
        .and_then(Value::as_f64)
        .map(|usd| usd * 1e6)
}

/// One entry as our prices; `None` when it lacks input, output, cache write or cache read
/// rates. A missing 1-hour write rate is the 5-minute one, as Claude Code prices it.
pub fn model(entry: &Value) -> Option<ModelPrices> {
    let rates = rates(entry, "")?;
    let mut bands: Vec<Band> = band_thresholds(entry)
        .into_iter()
        .map(|(suffix, above)| Band {
            above_prompt_tokens: above,
            rates: rates_or(entry, &suffix, &rates),
        })
        .collect();
    bands.sort_by_key(|b| b.above_prompt_tokens);
    let specific = entry.get("provider_specific_entry");
    let multiplier = |key: &str| specific.and_then(|s| s.get(key)).and_then(Value::as_f64);
    let mut inference_geo = BTreeMap::new();
    if let Some(us) = multiplier("us") {
        inference_geo.insert("us".to_string(), us);
    }
    Some(ModelPrices {
        rates,
        bands,
        fast_multiplier: multiplier("fast"),
        inference_geo,
        web_search_per_request: web_search_fee(entry).unwrap_or(0.0),
        web_fetch_per_request: 0.0,
        source: entry
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or("LiteLLM")
            .to_string(),
    })
}

/// LiteLLM's per-search fee: `search_context_cost_per_query` (Anthropic charges one price
/// whatever the context size; the medium size is read).
pub fn web_search_fee(entry: &Value) -> Option<f64> {
    let q = entry.get("search_context_cost_per_query")?;
    q.get("search_context_size_medium")
        .or_else(|| q.get("search_context_size_low"))
        .and_then(Value::as_f64)
}

fn rates(entry: &Value, suffix: &str) -> Option<Rates> {
    let f = |base: &str| per_mtok(entry, &format!("{base}{suffix}"));
    let cache_write_5m = f("cache_creation_input_token_cost")?;
    Some(Rates {
        input: f("input_cost_per_token")?,
        output: f("output_cost_per_token")?,
        cache_write_5m,
        cache_write_1h: f("cache_creation_input_token_cost_above_1hr").unwrap_or(cache_write_5m),
        cache_read: f("cache_read_input_token_cost")?,
    })
}

/// A band's rates; a field the band leaves out keeps the base rate.
fn rates_or(entry: &Value, suffix: &str, base: &Rates) -> Rates {
    let f = |name: &str, or: f64| per_mtok(entry, &format!("{name}{suffix}")).unwrap_or(or);
    let cache_write_5m = f("cache_creation_input_token_cost", base.cache_write_5m);
    Rates {
        input: f("input_cost_per_token", base.input),
        output: f("output_cost_per_token", base.output),
        cache_write_5m,
        cache_write_1h: f(
            "cache_creation_input_token_cost_above_1hr",
            base.cache_write_1h,
        ),
        cache_read: f("cache_read_input_token_cost", base.cache_read),
    }
}

/// The `_above_<N>k_tokens` suffixes of an entry's input rates and their thresholds.
fn band_thresholds(entry: &Value) -> Vec<(String, u64)> {
    let Some(map) = entry.as_object() else {
        return Vec::new();
    };
    map.keys()
        .filter_map(|k| {
            let suffix = k.strip_prefix("input_cost_per_token")?;
            let n = suffix.strip_prefix("_above_")?.strip_suffix("k_tokens")?;
            Some((suffix.to_string(), n.parse::<u64>().ok()? * 1_000))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAIKU_5_5: &str = r#"{
      "claude-haiku-5-5": {
        "litellm_provider": "anthropic", "mode": "chat",
        "input_cost_per_token": 1e-07, "output_cost_per_token": 5e-07,
        "cache_creation_input_token_cost": 1.25e-07, "cache_creation_input_token_cost_above_1hr": 2e-07,
        "cache_read_input_token_cost": 1e-08,
        "input_cost_per_token_batches": 5e-08,
        "input_cost_per_token_above_100k_tokens": 5e-07, "output_cost_per_token_above_100k_tokens": 2.5e-06,
        "cache_creation_input_token_cost_above_100k_tokens": 6.25e-07,
        "cache_creation_input_token_cost_above_1hr_above_100k_tokens": 1e-06,
        "cache_read_input_token_cost_above_100k_tokens": 5e-08,
        "search_context_cost_per_query": {"search_context_size_low": 0.01, "search_context_size_medium": 0.01, "search_context_size_high": 0.01},
        "provider_specific_entry": {"us": 1.1},
        "source": "https://platform.claude.com/docs/en/models/haiku-5-5/overview"
      },
      "claude-opus-5-5": {
        "litellm_provider": "anthropic", "input_cost_per_token": 4e-06, "output_cost_per_token": 2e-05,
        "cache_creation_input_token_cost": 5e-06, "cache_creation_input_token_cost_above_1hr": 8e-06,
        "cache_read_input_token_cost": 2e-07, "provider_specific_entry": {"us": 1.1, "fast": 2}
      },
      "bedrock/anthropic.claude-x": {"litellm_provider": "bedrock", "input_cost_per_token": 1, "output_cost_per_token": 1},
      "sample_spec": {"litellm_provider": "one of ...", "input_cost_per_token": 0.0}
    }"#;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn a_litellm_file_is_told_apart_from_ours_and_read_as_a_table() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model_prices_and_context_window.json");
        std::fs::write(&file, HAIKU_5_5).unwrap();
        let table = PriceTable::from_file(&file).unwrap();
        assert_eq!(
            table.models.keys().collect::<Vec<_>>(),
            ["claude-haiku-5-5", "claude-opus-5-5"],
            "only first-party Anthropic entries"
        );
        assert_eq!(table.date.len(), 10);
        let h = table.prices("claude-haiku-5-5").unwrap();
        assert!(close(h.rates.input, 0.1) && close(h.rates.cache_read, 0.01));
        assert!(close(h.rates.cache_write_1h, 0.2));
        assert_eq!(h.bands.len(), 1);
        assert_eq!(h.bands[0].above_prompt_tokens, 100_000);
        assert!(close(h.bands[0].rates.cache_write_1h, 1.0));
        assert!(close(h.bands[0].rates.output, 2.5));
        assert!(close(h.web_search_per_request, 0.01));
        assert_eq!(h.inference_geo.get("us"), Some(&1.1));
        let o = table.prices("claude-opus-5-5").unwrap();
        assert_eq!(o.fast_multiplier, Some(2.0));
        assert_eq!(o.web_search_per_request, 0.0, "no fee stated, none charged");

        // The same rules as the built-in table: 120,000 prompt tokens are above the band.
        let tokens = crate::Tokens {
            input: 120_000,
            ..crate::Tokens::default()
        };
        let cost = table.cost("claude-haiku-5-5", &tokens).unwrap();
        assert!(cost.long_context && close(cost.usd, 0.06));
    }

    #[test]
    fn a_litellm_file_without_anthropic_entries_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("litellm.json");
        std::fs::write(
            &file,
            r#"{"gpt-x": {"litellm_provider": "openai", "input_cost_per_token": 1e-06}}"#,
        )
        .unwrap();
        let err = PriceTable::from_file(&file).unwrap_err().to_string();
        assert!(
            err.contains("litellm.json") && err.contains("anthropic"),
            "{err}"
        );
    }
}
