//! Following the file: the first stage of the pipeline. [`tail`] reads complete lines across
//! rotations and truncations, [`checkpoint`] keeps the delivered position across restarts, and
//! [`retention`] deletes delivered rotated segments beyond the budget.

pub mod checkpoint;
pub mod retention;
pub mod tail;
