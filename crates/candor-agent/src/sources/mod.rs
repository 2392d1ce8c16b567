//! Collectors. Each emits [`Record`](crate::spool::Record)s through the
//! [`Recorder`](crate::gate::Recorder) and knows nothing of the network.

pub mod activity;
pub mod process;
pub mod screen;
pub mod synthetic;
