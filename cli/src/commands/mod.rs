//! One module per subcommand; `main.rs` only parses arguments and dispatches.

pub mod chain;
