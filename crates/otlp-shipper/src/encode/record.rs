//! One line of the traffic log as the encoder reads it: borrowed views of the record (no
//! body is parsed into a tree; a body's JSON text stays a slice of the line), and the few
//! peeks into a body the encoder needs.

use crate::encode::borrowed::Str;
use crate::encode::request_body::RequestBody;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;
use traffic_record::Usage;

#[derive(Deserialize)]
pub(crate) struct RecordView<'a> {
    #[serde(borrow)]
    pub(crate) kind: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) started_at: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) ended_at: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) duration_ms: Option<f64>,
    #[serde(default)]
    pub(crate) ttfb_ms: Option<f64>,
    #[serde(borrow)]
    pub(crate) outcome: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) error: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) model: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) stream: bool,
    #[serde(borrow, default)]
    pub(crate) stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) usage: Option<Usage>,
    #[serde(borrow)]
    pub(crate) request: RequestView<'a>,
    #[serde(borrow, default)]
    pub(crate) response: Option<ResponseView<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct RequestView<'a> {
    #[serde(borrow)]
    pub(crate) method: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) path: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) query: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) headers: BTreeMap<Str<'a>, Str<'a>>,
    #[serde(borrow)]
    pub(crate) body: RequestBody<'a>,
}

#[derive(Deserialize)]
pub(crate) struct ResponseView<'a> {
    pub(crate) status: u16,
    #[serde(borrow, default)]
    pub(crate) headers: BTreeMap<Str<'a>, Str<'a>>,
    #[serde(borrow)]
    pub(crate) body: &'a RawValue,
    #[serde(borrow, default)]
    pub(crate) sse: Option<&'a RawValue>,
}

/// What the encoder needs from a captured body, read without scanning all of it: its `size`
/// and, for a JSON request, its `model`. Reading stops as soon as both are known (the proxy
/// writes `size` first; requests usually start with `model`), so a multi-megabyte body is not
/// parsed a second time.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct BodyPeek {
    pub(crate) size: Option<u64>,
    pub(crate) model: Option<String>,
}

pub(crate) fn peek_body(raw: &str, want_model: bool) -> BodyPeek {
    use serde::de::{DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, Visitor};
    use std::cell::RefCell;
    use std::fmt;
    // Returned as an error to stop reading early; the result is in `out` by then.
    const STOP: &str = "stop";

    struct BodyV<'p> {
        out: &'p RefCell<BodyPeek>,
        want_model: bool,
    }
    impl<'de> Visitor<'de> for BodyV<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a body object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Str<'de>>()? {
                match key.0.as_ref() {
                    "size" => {
                        self.out.borrow_mut().size = Some(map.next_value()?);
                        if !self.want_model {
                            return Err(A::Error::custom(STOP));
                        }
                    }
                    "json" if self.want_model => {
                        map.next_value_seed(ModelSeed(self.out))?;
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }
    struct ModelSeed<'p>(&'p RefCell<BodyPeek>);
    impl<'de> DeserializeSeed<'de> for ModelSeed<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(ModelV(self.0))
        }
    }
    struct ModelV<'p>(&'p RefCell<BodyPeek>);
    impl<'de> Visitor<'de> for ModelV<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Str<'de>>()? {
                if key.0 == "model" {
                    let model: Str<'de> = map.next_value()?;
                    self.0.borrow_mut().model = Some(model.0.into_owned());
                    return Err(A::Error::custom(STOP));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }

    let out = RefCell::new(BodyPeek::default());
    let mut de = serde_json::Deserializer::from_str(raw);
    let _ = de.deserialize_map(BodyV {
        out: &out,
        want_model,
    });
    out.into_inner()
}

#[derive(Deserialize)]
pub(crate) struct SseView<'a> {
    #[serde(borrow, default)]
    pub(crate) message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(crate) events: Vec<SseEventView<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct SseEventView<'a> {
    #[serde(borrow)]
    pub(crate) event: Str<'a>,
    #[serde(default)]
    pub(crate) t_ms: Option<f64>,
}

/// A top-level member of a JSON object, as its raw text.
pub(crate) fn top_raw<'a>(raw: &'a str, key: &str) -> Option<&'a str> {
    let map: BTreeMap<Str<'a>, &'a RawValue> = serde_json::from_str(raw).ok()?;
    map.into_iter()
        .find(|(k, _)| k.0 == key)
        .map(|(_, v)| v.get())
}

/// A top-level string member of a JSON object.
pub(crate) fn top_str(raw: &str, key: &str) -> Option<String> {
    serde_json::from_str::<String>(top_raw(raw, key)?).ok()
}
