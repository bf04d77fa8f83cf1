//! Delivery: the last stage of the pipeline. [`batch`] gathers encoded events into OTLP
//! requests, [`sender`] posts them ([`http`] the client's layers, [`retry`] the decision after
//! each attempt) and writes what Seq refuses for good to the [`deadletter`] file.

pub mod batch;
pub mod deadletter;
pub mod http;
pub mod retry;
pub mod sender;
