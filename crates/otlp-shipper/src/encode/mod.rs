//! Encoding: the middle stage of the pipeline, one line of the traffic log into the OTLP
//! LogRecords and span Seq receives ([`encoder`]). The line is read with borrowed views
//! ([`record`], [`request_body`], their strings [`borrowed`]); `--bodies delta` ships each
//! conversation as deltas ([`delta`], named by [`ids`]); [`quota`] reads the rate-limit
//! headers, [`time`] the timestamps; [`parts`] sizes and splits bodies under the per-event
//! budget; [`event`] refills one reused LogRecord.

pub mod borrowed;
pub mod delta;
pub mod encoder;
pub mod event;
pub mod ids;
pub mod parts;
pub mod quota;
pub mod record;
pub mod request_body;
pub mod time;

pub use encoder::{Bodies, DEFAULT_SERVER_ADDRESS, Encoder, Options};
pub use parts::{escaped_len, split_parts};
