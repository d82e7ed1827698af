//! One module per subcommand; `main.rs` only parses arguments and dispatches.

pub(crate) mod manifest;
pub(crate) mod pre;
