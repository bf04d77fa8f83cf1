//! The rules that say what Claude Code's traffic means, in one place, so the shipper (Seq's
//! `claude.agent`, `claude.cost.usd`) and the session viewer (`show`, `html`, `sessions`) can
//! never label or price the same exchange differently (docs/seq-events.md, "Who sent a
//! request"; docs/viewer.md, "What a session is"):
//!
//! - [`Route`]: what an exchange is for, from its path (`messages`, `count_tokens`, other);
//! - [`message`]: when two messages are the same message (Claude Code moves its cache marker
//!   and respells one-block content from request to request);
//! - [`Facts`] and [`Sessions`]: who sent a request (the main conversation, a sub-agent, an
//!   auxiliary request), decided exchange by exchange in log order;
//! - [`pricing_model`]: which model an exchange is priced as.
//!
//! Imports go one way: `message` <- `request` (what one exchange tells) <- `sender`.

pub mod message;
mod request;
mod sender;

pub use request::{AGENT_TOOLS, Facts, Launch, Route, pricing_model};
pub use sender::{Agent, MAX_SESSIONS, Sender, Session, Sessions, Subagent};
