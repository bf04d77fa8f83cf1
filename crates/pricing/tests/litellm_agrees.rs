//! The built-in table against LiteLLM's price file (`model_prices_and_context_window_backup.json`
//! from the `litellm` wheel that scripts/test.sh fetches): every model we price must be there
//! with the same rates, so the next price change is caught by CI rather than by a user.

use pricing::{ModelPrices, PriceTable, Rates, litellm};
use serde_json::Value;

/// Models Anthropic prices that the pinned LiteLLM file does not name yet, and why that is
/// known. An entry here that LiteLLM gains fails the test, so the list cannot go stale.
const NOT_IN_LITELLM: &[(&str, &str)] = &[
    (
        "claude-fable-5-2",
        "released 2026-11-09; no LiteLLM release up to 1.110.2 names it",
    ),
    (
        "claude-mythos-5-2",
        "released with Fable 5.2; no LiteLLM release up to 1.110.2 names it",
    ),
];

fn litellm_file() -> Value {
    let path = std::env::var("LITELLM_PRICES").unwrap_or_else(|_| {
        panic!(
            "LITELLM_PRICES is not set: scripts/test.sh downloads the litellm wheel and sets it \
             to its model_prices_and_context_window_backup.json; run scripts/test.sh"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read LITELLM_PRICES={path}: {e}; run scripts/test.sh to fetch it")
    });
    serde_json::from_str(&text).expect("LiteLLM's price file is JSON")
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn compare_rates(what: &str, ours: &Rates, theirs: &Rates, out: &mut Vec<String>) {
    for (kind, a, b) in [
        ("input", ours.input, theirs.input),
        ("output", ours.output, theirs.output),
        ("cache_write_5m", ours.cache_write_5m, theirs.cache_write_5m),
        ("cache_write_1h", ours.cache_write_1h, theirs.cache_write_1h),
        ("cache_read", ours.cache_read, theirs.cache_read),
    ] {
        if !same(a, b) {
            let b = (b * 1e9).round() / 1e9;
            out.push(format!("{what} {kind}: ours ${a}/MTok, LiteLLM ${b}/MTok"));
        }
    }
}

fn compare(id: &str, ours: &ModelPrices, entry: &Value, out: &mut Vec<String>) {
    let Some(theirs) = litellm::model(entry) else {
        out.push(format!("{id}: LiteLLM's entry lacks a base rate"));
        return;
    };
    compare_rates(id, &ours.rates, &theirs.rates, out);
    let thresholds = |m: &ModelPrices| {
        m.bands
            .iter()
            .map(|b| b.above_prompt_tokens)
            .collect::<Vec<_>>()
    };
    if thresholds(ours) != thresholds(&theirs) {
        out.push(format!(
            "{id} prompt-length bands: ours above {:?} tokens, LiteLLM above {:?}",
            thresholds(ours),
            thresholds(&theirs)
        ));
    } else {
        for (a, b) in ours.bands.iter().zip(&theirs.bands) {
            let what = format!("{id} above {} prompt tokens", a.above_prompt_tokens);
            compare_rates(&what, &a.rates, &b.rates, out);
        }
    }
    if let Some(fast) = theirs.fast_multiplier
        && ours.fast_multiplier != Some(fast)
    {
        out.push(format!(
            "{id} fast mode: ours {:?}x, LiteLLM {fast}x",
            ours.fast_multiplier
        ));
    }
    if let Some(us) = theirs.inference_geo.get("us")
        && ours.inference_geo.get("us") != Some(us)
    {
        out.push(format!(
            "{id} inference_geo us: ours {:?}x, LiteLLM {us}x",
            ours.inference_geo.get("us")
        ));
    }
    if let Some(fee) = litellm::web_search_fee(entry)
        && !same(fee, ours.web_search_per_request)
    {
        out.push(format!(
            "{id} web search: ours ${} per search, LiteLLM ${fee}",
            ours.web_search_per_request
        ));
    }
}

#[test]
fn every_model_of_the_builtin_table_has_litellms_prices() {
    let file = litellm_file();
    let theirs: std::collections::BTreeMap<&str, &Value> = litellm::entries(&file).collect();
    let ours = PriceTable::builtin();
    let mut differences = Vec::new();
    for (id, prices) in &ours.models {
        let known_absent = NOT_IN_LITELLM.iter().find(|(m, _)| m == id);
        match (theirs.get(id.as_str()), known_absent) {
            (Some(entry), None) => compare(id, prices, entry, &mut differences),
            (None, Some((_, why))) => println!("not compared: {id} ({why})"),
            (None, None) => differences.push(format!("{id}: not in LiteLLM's price file")),
            (Some(_), Some(_)) => differences.push(format!(
                "{id}: LiteLLM names it now; remove it from NOT_IN_LITELLM so it is compared"
            )),
        }
    }
    for id in theirs.keys().filter(|id| ours.prices(id).is_none()) {
        println!("note: LiteLLM prices {id}, the built-in table does not");
    }
    assert!(
        differences.is_empty(),
        "the built-in table (dated {}) differs from LiteLLM's price file:\n  {}",
        ours.date,
        differences.join("\n  ")
    );
}
