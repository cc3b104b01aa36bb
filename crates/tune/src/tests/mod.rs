//! Unit tests of the crate, one file per module.

mod sched;
mod search;
mod space;
