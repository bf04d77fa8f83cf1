//! A Seq stand-in for tests: NOT Seq. It receives OTLP/HTTP logs the way Seq does and enforces
//! the rules of Seq that a shipper must cope with, so tests can run on loopback without Seq.
//!
//! Seq rules emulated (Seq defaults; see `docs/reliability.md`):
//! - only `POST /ingest/otlp/v1/logs` and `POST /ingest/otlp/v1/traces` ingest (any other
//!   path: 404, other method: 405); every rule below holds for both;
//! - only `Content-Type: application/x-protobuf` (anything else: 415; Seq refuses OTLP JSON
//!   over HTTP);
//! - `X-Seq-ApiKey` must match when a key is configured (401 otherwise);
//! - run as the Seq container (`--first-run-rules`), a new instance refuses to start without
//!   `ACCEPT_EULA=Y` and one of `SEQ_FIRSTRUN_ADMINPASSWORD`, `SEQ_FIRSTRUN_ADMINPASSWORDHASH` or
//!   `SEQ_FIRSTRUN_NOAUTHENTICATION=true`, as Seq 2025.2+ does; the choice is kept in the data
//!   directory and later starts ignore these settings ([`first_run`]). With an administrator,
//!   ingestion needs an API key with the `Ingest` permission created by that administrator
//!   (401 otherwise). Keys are created through the stand-in's own `POST /api/apikeys` by its
//!   `seqcli-standin` program, which takes the arguments of `seqcli apikey create`
//!   (`--connect-username`, `--connect-password-stdin`, `--token`, `--permissions`); Seq's HTTP
//!   API itself is not emulated. `GET /api` answers without authentication, like Seq's API
//!   root. In the container it serves the same routes on port 80 (Seq's UI port, which also
//!   ingests) and 5341;
//! - at most 10 MB per request (413);
//! - the body must decode as an `ExportLogsServiceRequest` (an `ExportTraceServiceRequest` on
//!   the traces path; 400 otherwise);
//! - a span needs a 16-byte trace id and an 8-byte span id (not all zero) and an end not
//!   before its start; a span is stored as an event, so the event limit applies to it too;
//! - at most 256 KiB per event; one event over it rejects the WHOLE batch with 400 and nothing
//!   of the batch is stored. How Seq measures an event is not documented; we measure the event
//!   as Seq stores it, a JSON document: the JSON-escaped body plus every attribute's
//!   JSON-escaped key and value (see [`limits::event_size`]). That is stricter than the raw
//!   protobuf size, so a shipper that passes here passes Seq.
//!
//! On top of that it counts what it saw ([`Counters`]), keeps or writes the accepted events
//! ([`StoredEvent`]), and injects faults on demand ([`Control`]): refusing connections for a
//! while (connections are reset at the TCP level, not answered), a queue of statuses to answer
//! next (503, 429 with `Retry-After`, ...), and rejecting for good every batch holding an event
//! that contains a marker.

pub mod control;
pub mod event;
pub mod first_run;
pub mod limits;
mod listener;
mod server;

pub use control::{Control, Failure};
pub use event::{StoredEvent, StoredSpan};
pub use server::{Answered, Counters, Handle, INGEST_PATH, Options, TRACES_PATH, spawn};
