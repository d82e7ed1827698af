//! One module per subcommand; `main.rs` only parses arguments and dispatches.

pub(crate) mod audit;
pub(crate) mod chain;
pub(crate) mod consolidate;
pub(crate) mod manifest;
pub(crate) mod pre;
pub(crate) mod reconsolidate;
