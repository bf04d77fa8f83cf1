//! How Anthropic bills one response, as its pricing page states and Claude Code's `cost_usd`
//! computes it (measured: docs/seq-events.md, "Cost"):
//! - each token kind has its own rate: input, output, cache reads, 5-minute and 1-hour cache
//!   writes; cache writes the API did not break down by lifetime are 5-minute writes;
//! - prompt-length bands: once a request's prompt (input + cache reads + cache writes) is above
//!   a band's threshold, every token of it is billed at that band's rates;
//! - `usage.speed == "fast"` multiplies every token rate by the model's fast-mode multiplier;
//! - `usage.inference_geo` multiplies the token cost by the region's multiplier (`us`: 1.1);
//! - server tools are billed per use (`usage.server_tool_use`), never multiplied;
//! - `usage.iterations`: when the message steps add up to the totals, each step is banded on
//!   its own prompt; compaction steps are billed on top (they are not in the totals);
//! - the response's model is the one billed (the caller passes it).

use traffic_record::{CacheCreation, Iteration, Usage};

use crate::table::{ModelPrices, PriceTable, Rates};

/// Token counts of one sampling step, by how they are billed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
}

impl Tokens {
    /// The counts of a record's usage totals. The 1-hour writes are the breakdown's (at most
    /// all writes); every other write is a 5-minute write, the API's default lifetime.
    pub fn from_usage(usage: &Usage) -> Tokens {
        tokens(
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_input_tokens,
            usage.cache_creation_input_tokens,
            usage.cache_creation.as_ref(),
        )
    }

    fn from_iteration(step: &Iteration) -> Tokens {
        tokens(
            step.input_tokens,
            step.output_tokens,
            step.cache_read_input_tokens,
            step.cache_creation_input_tokens,
            step.cache_creation.as_ref(),
        )
    }

    /// Every input token, whether read from the cache, written to it or neither.
    pub fn total_input(&self) -> u64 {
        self.input + self.cache_read + self.cache_write_5m + self.cache_write_1h
    }
}

fn tokens(
    input: Option<u64>,
    output: Option<u64>,
    read: Option<u64>,
    written: Option<u64>,
    split: Option<&CacheCreation>,
) -> Tokens {
    let by = |f: fn(&CacheCreation) -> Option<u64>| split.and_then(f).unwrap_or(0);
    let (w5m, w1h) = (
        by(|c| c.ephemeral_5m_input_tokens),
        by(|c| c.ephemeral_1h_input_tokens),
    );
    let written = written.unwrap_or(w5m + w1h);
    let w1h = w1h.min(written);
    Tokens {
        input: input.unwrap_or(0),
        output: output.unwrap_or(0),
        cache_read: read.unwrap_or(0),
        cache_write_5m: written - w1h,
        cache_write_1h: w1h,
    }
}

/// The price of one exchange.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    pub usd: f64,
    /// Some step was billed at a prompt-length band above the base rates.
    pub long_context: bool,
}

/// Why an exchange has no cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpriced {
    /// The table does not name the model.
    UnknownModel,
    /// The model has no fast-mode price, or the speed is not one the table knows.
    UnknownSpeed(String),
    /// The table has no multiplier for this inference region.
    UnknownRegion(String),
}

impl std::fmt::Display for Unpriced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unpriced::UnknownModel => write!(f, "the price table does not name this model"),
            Unpriced::UnknownSpeed(s) => write!(f, "the price table has no price for speed {s:?}"),
            Unpriced::UnknownRegion(g) => {
                write!(
                    f,
                    "the price table has no multiplier for inference_geo {g:?}"
                )
            }
        }
    }
}

impl PriceTable {
    /// What a response with `usage` cost on `model` (the response's model).
    pub fn price(&self, model: &str, usage: &Usage) -> Result<Cost, Unpriced> {
        let prices = self.prices(model).ok_or(Unpriced::UnknownModel)?;
        let speed = match usage.speed.as_deref() {
            None | Some("standard") => 1.0,
            Some("fast") => prices
                .fast_multiplier
                .ok_or_else(|| Unpriced::UnknownSpeed("fast".into()))?,
            Some(other) => return Err(Unpriced::UnknownSpeed(other.into())),
        };
        let geo = match usage.inference_geo.as_deref() {
            None | Some("") | Some("global") => 1.0,
            Some(g) => *prices
                .inference_geo
                .get(g)
                .ok_or_else(|| Unpriced::UnknownRegion(g.into()))?,
        };
        let (tokens_usd, long_context) = steps(usage)
            .iter()
            .map(|t| step_cost(prices, speed, t))
            .fold((0.0, false), |(usd, lc), (u, l)| (usd + u, lc || l));
        let tools = usage.server_tool_use.as_ref();
        let searches = tools.and_then(|t| t.web_search_requests).unwrap_or(0) as f64;
        let fetches = tools.and_then(|t| t.web_fetch_requests).unwrap_or(0) as f64;
        Ok(Cost {
            usd: tokens_usd * geo
                + searches * prices.web_search_per_request
                + fetches * prices.web_fetch_per_request,
            long_context,
        })
    }

    /// What plain `tokens` cost on `model` at standard speed; `None` for an unknown model.
    pub fn cost(&self, model: &str, tokens: &Tokens) -> Option<Cost> {
        let prices = self.prices(model)?;
        let (usd, long_context) = step_cost(prices, 1.0, tokens);
        Some(Cost { usd, long_context })
    }
}

/// The steps billed separately: the message steps when they add up to the totals (each has
/// its own prompt length), else the totals as one step; plus every compaction step.
fn steps(usage: &Usage) -> Vec<Tokens> {
    let all = usage.iterations.as_deref().unwrap_or_default();
    let is = |i: &&Iteration, kind: &str| i.kind.as_deref() == Some(kind);
    let messages: Vec<&Iteration> = all.iter().filter(|i| is(i, "message")).collect();
    let fields: [fn(&Usage) -> Option<u64>; 4] = [
        |u| u.input_tokens,
        |u| u.output_tokens,
        |u| u.cache_read_input_tokens,
        |u| u.cache_creation_input_tokens,
    ];
    let step_fields: [fn(&Iteration) -> Option<u64>; 4] = [
        |i| i.input_tokens,
        |i| i.output_tokens,
        |i| i.cache_read_input_tokens,
        |i| i.cache_creation_input_tokens,
    ];
    let add_up = !messages.is_empty()
        && fields.iter().zip(step_fields).all(|(total, step)| {
            messages.iter().all(|m| step(m).is_some())
                && messages.iter().map(|m| step(m).unwrap_or(0)).sum::<u64>()
                    == total(usage).unwrap_or(0)
        });
    let mut out = if add_up {
        split_one_hour_writes(usage, &messages)
    } else {
        vec![Tokens::from_usage(usage)]
    };
    out.extend(
        all.iter()
            .filter(|i| is(i, "compaction"))
            .map(Tokens::from_iteration),
    );
    out
}

/// The message steps' tokens, with 1-hour writes the totals name but no step does given to
/// the first steps that have unlabelled writes (as Claude Code does).
fn split_one_hour_writes(usage: &Usage, messages: &[&Iteration]) -> Vec<Tokens> {
    let steps: Vec<Tokens> = messages.iter().map(|m| Tokens::from_iteration(m)).collect();
    let labelled_5m = |m: &Iteration| {
        m.cache_creation
            .as_ref()
            .and_then(|c| c.ephemeral_5m_input_tokens)
            .unwrap_or(0)
    };
    let total_1h = Tokens::from_usage(usage).cache_write_1h;
    let mut left = total_1h.saturating_sub(steps.iter().map(|s| s.cache_write_1h).sum());
    steps
        .into_iter()
        .zip(messages)
        .map(|(mut s, m)| {
            let own_5m = labelled_5m(m).min(s.cache_write_5m);
            let given = left.min(s.cache_write_5m - own_5m);
            left -= given;
            s.cache_write_1h += given;
            s.cache_write_5m -= given;
            s
        })
        .collect()
}

/// One step's cost at its prompt's band, and whether a band above the base applied.
fn step_cost(prices: &ModelPrices, speed: f64, t: &Tokens) -> (f64, bool) {
    let prompt = t.total_input();
    let band = prices
        .bands
        .iter()
        .rev()
        .find(|b| prompt > b.above_prompt_tokens);
    let rates: &Rates = band.map_or(&prices.rates, |b| &b.rates);
    let m = |rate: f64| rate * speed;
    let usd = t.input as f64 / 1e6 * m(rates.input)
        + t.output as f64 / 1e6 * m(rates.output)
        + t.cache_read as f64 / 1e6 * m(rates.cache_read)
        + t.cache_write_1h as f64 / 1e6 * m(rates.cache_write_1h)
        + t.cache_write_5m as f64 / 1e6 * m(rates.cache_write_5m);
    (usd, band.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use traffic_record::ServerToolUse;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    fn builtin() -> PriceTable {
        PriceTable::builtin()
    }

    fn usage(input: u64, output: u64, read: u64, w5m: u64, w1h: u64) -> Usage {
        Usage {
            input_tokens: Some(input),
            output_tokens: Some(output),
            cache_read_input_tokens: Some(read),
            cache_creation_input_tokens: Some(w5m + w1h),
            cache_creation: Some(CacheCreation {
                ephemeral_5m_input_tokens: Some(w5m),
                ephemeral_1h_input_tokens: Some(w1h),
            }),
            ..Usage::default()
        }
    }

    #[test]
    fn each_token_kind_has_its_own_rate() {
        // Opus 5.5 (models/opus-5-5): $4 in, $20 out, $5 5m write, $8 1h write, $0.20 read.
        let got = builtin()
            .price("claude-opus-5-5", &usage(1_000, 2_000, 10_000, 4_000, 500))
            .unwrap();
        let by_hand =
            (1_000.0 * 4.0 + 2_000.0 * 20.0 + 10_000.0 * 0.2 + 4_000.0 * 5.0 + 500.0 * 8.0) / 1e6;
        assert!(close(got.usd, by_hand), "{} != {by_hand}", got.usd);
        assert!(close(by_hand, 0.07));
        assert!(!got.long_context);
    }

    #[test]
    fn haiku_5_5_bills_the_whole_request_at_the_band_above_100k_prompt_tokens() {
        // models/haiku-5-5: up to 100,000 prompt tokens $0.10/$0.50/$0.125/$0.20/$0.01;
        // above: $0.50/$2.50/$0.625/$1.00/$0.05, output included.
        let t = builtin();
        let at = t
            .price(
                "claude-haiku-5-5",
                &usage(40_000, 1_000, 50_000, 6_000, 4_000),
            )
            .unwrap();
        assert!(!at.long_context, "100,000 is not above 100,000");
        let low =
            (40_000.0 * 0.1 + 1_000.0 * 0.5 + 50_000.0 * 0.01 + 6_000.0 * 0.125 + 4_000.0 * 0.2)
                / 1e6;
        assert!(close(at.usd, low), "{} != {low}", at.usd);
        let above = t
            .price(
                "claude-haiku-5-5",
                &usage(40_001, 1_000, 50_000, 6_000, 4_000),
            )
            .unwrap();
        assert!(above.long_context);
        let high =
            (40_001.0 * 0.5 + 1_000.0 * 2.5 + 50_000.0 * 0.05 + 6_000.0 * 0.625 + 4_000.0 * 1.0)
                / 1e6;
        assert!(close(above.usd, high), "{} != {high}", above.usd);
    }

    #[test]
    fn any_number_of_bands_the_highest_one_passed_applies() {
        let t = PriceTable::from_json(
            r#"{"date":"2026-12-01","source":"https://x","unit":"USD per million tokens",
                "models":{"m":{"input":1,"output":0,"cache_write_5m":0,"cache_write_1h":0,"cache_read":0,
                "bands":[{"above_prompt_tokens":200,"input":3,"output":0,"cache_write_5m":0,"cache_write_1h":0,"cache_read":0},
                         {"above_prompt_tokens":100,"input":2,"output":0,"cache_write_5m":0,"cache_write_1h":0,"cache_read":0}]}}}"#,
            "t",
        )
        .unwrap();
        let per_token = |n: u64| {
            t.cost(
                "m",
                &Tokens {
                    input: n,
                    ..Tokens::default()
                },
            )
            .unwrap()
            .usd * 1e6
                / n as f64
        };
        assert!(close(per_token(100), 1.0));
        assert!(close(per_token(101), 2.0));
        assert!(close(per_token(201), 3.0));
    }

    #[test]
    fn fast_mode_multiplies_every_token_rate() {
        // fast-mode: Opus 5.5 at 2x standard rates ($8/$40); the web search fee is not multiplied.
        let t = builtin();
        let mut u = usage(1_000, 1_000, 1_000, 1_000, 1_000);
        let standard = t.price("claude-opus-5-5", &u).unwrap().usd;
        u.speed = Some("fast".into());
        u.server_tool_use = Some(ServerToolUse {
            web_search_requests: Some(3),
            web_fetch_requests: None,
        });
        let fast = t.price("claude-opus-5-5", &u).unwrap().usd;
        assert!(close(fast, 2.0 * standard + 0.03), "{fast} vs {standard}");
        // A model without fast mode gets no cost for a fast answer: never a guess.
        assert_eq!(
            t.price("claude-sonnet-5-5", &u),
            Err(Unpriced::UnknownSpeed("fast".into()))
        );
        u.speed = Some("turbo".into());
        assert!(t.price("claude-opus-5-5", &u).is_err());
    }

    #[test]
    fn inference_geo_us_costs_1_1_times_the_tokens() {
        // pricing, data residency: inference_geo "us" bills every token kind at 1.1x.
        let t = builtin();
        let mut u = usage(10_000, 2_000, 0, 0, 0);
        u.server_tool_use = Some(ServerToolUse {
            web_search_requests: Some(1),
            web_fetch_requests: Some(5),
        });
        let global = t.price("claude-sonnet-5-5", &u).unwrap().usd;
        u.inference_geo = Some("us".into());
        let us = t.price("claude-sonnet-5-5", &u).unwrap().usd;
        let tokens = (10_000.0 * 2.0 + 2_000.0 * 10.0) / 1e6;
        assert!(close(global, tokens + 0.01), "{global}");
        assert!(close(us, tokens * 1.1 + 0.01), "{us}");
        u.inference_geo = Some("mars".into());
        assert_eq!(
            t.price("claude-sonnet-5-5", &u),
            Err(Unpriced::UnknownRegion("mars".into()))
        );
    }

    #[test]
    fn web_searches_cost_ten_dollars_per_thousand_and_web_fetches_nothing_extra() {
        let t = builtin();
        let mut u = usage(0, 0, 0, 0, 0);
        u.server_tool_use = Some(ServerToolUse {
            web_search_requests: Some(1_000),
            web_fetch_requests: Some(1_000),
        });
        assert!(close(t.price("claude-haiku-4-5", &u).unwrap().usd, 10.0));
    }

    #[test]
    fn compaction_steps_are_billed_on_top_of_the_totals() {
        // compaction-threshold: the totals (23,000 in, 1,000 out) leave out the compaction step
        // (180,000 in, 3,500 out) that usage.iterations lists; both are billed.
        let mut u = usage(23_000, 1_000, 0, 0, 0);
        u.iterations = Some(vec![
            Iteration {
                kind: Some("compaction".into()),
                input_tokens: Some(180_000),
                output_tokens: Some(3_500),
                ..Iteration::default()
            },
            Iteration {
                kind: Some("message".into()),
                input_tokens: Some(23_000),
                output_tokens: Some(1_000),
                cache_read_input_tokens: Some(0),
                cache_creation_input_tokens: Some(0),
                ..Iteration::default()
            },
        ]);
        let got = builtin().price("claude-opus-5", &u).unwrap().usd;
        let want = ((23_000.0 + 180_000.0) * 5.0 + (1_000.0 + 3_500.0) * 25.0) / 1e6;
        assert!(close(got, want), "{got} != {want}");
    }

    #[test]
    fn message_steps_that_add_up_are_banded_one_by_one() {
        // Two 60,000-token steps of a Haiku 5.5 request: each is under the 100k band, although
        // the totals (120,000) are above it.
        let step = |w1h: Option<u64>| Iteration {
            kind: Some("message".into()),
            input_tokens: Some(50_000),
            output_tokens: Some(100),
            cache_read_input_tokens: Some(0),
            cache_creation_input_tokens: Some(10_000),
            cache_creation: w1h.map(|h| CacheCreation {
                ephemeral_5m_input_tokens: Some(0),
                ephemeral_1h_input_tokens: Some(h),
            }),
        };
        let mut u = usage(100_000, 200, 0, 5_000, 15_000);
        u.iterations = Some(vec![step(Some(10_000)), step(None)]);
        let got = builtin().price("claude-haiku-5-5", &u).unwrap();
        assert!(!got.long_context);
        // Step 1: 10,000 1h writes of its own; step 2: the remaining 5,000 1h, 5,000 5m.
        let want = (100_000.0 * 0.1 + 200.0 * 0.5 + 15_000.0 * 0.2 + 5_000.0 * 0.125) / 1e6;
        assert!(close(got.usd, want), "{} != {want}", got.usd);
        // Steps that do not add up to the totals: the totals are billed as one step.
        u.iterations = Some(vec![step(None)]);
        assert!(
            builtin()
                .price("claude-haiku-5-5", &u)
                .unwrap()
                .long_context
        );
    }

    #[test]
    fn unknown_models_get_no_cost_rather_than_a_guess() {
        let t = builtin();
        let u = usage(1, 0, 0, 0, 0);
        for unknown in [
            "claude-opus-9",
            "claude-sonnet-5-5-preview",
            "gpt-4o",
            "claude-opus-4",
        ] {
            assert_eq!(
                t.price(unknown, &u),
                Err(Unpriced::UnknownModel),
                "{unknown}"
            );
        }
        assert!(t.price("claude-opus-4-5-20251101", &u).is_ok());
    }

    #[test]
    fn cache_writes_without_a_lifetime_breakdown_are_five_minute_writes() {
        let plain = Usage {
            input_tokens: Some(10),
            output_tokens: Some(20),
            cache_creation_input_tokens: Some(1_000),
            cache_read_input_tokens: Some(5),
            ..Usage::default()
        };
        let t = Tokens::from_usage(&plain);
        assert_eq!((t.cache_write_5m, t.cache_write_1h), (1_000, 0));
        assert_eq!(t.total_input(), 1_015);
        // A breakdown naming more 1-hour writes than were written is capped at the total.
        let odd = Usage {
            cache_creation: Some(CacheCreation {
                ephemeral_5m_input_tokens: Some(0),
                ephemeral_1h_input_tokens: Some(5_000),
            }),
            ..plain
        };
        let t = Tokens::from_usage(&odd);
        assert_eq!((t.cache_write_5m, t.cache_write_1h), (0, 1_000));
    }
}
