//! `groundwork manifest validate FILE`: every bad line with its number and reason.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use groundwork::manifest::validate;

/// Manifest tools.
#[derive(Debug, Args)]
pub(crate) struct ManifestArgs {
    #[command(subcommand)]
    command: ManifestCommand,
}

#[derive(Debug, Subcommand)]
enum ManifestCommand {
    /// Check every line of an augmented manifest (JSON Lines): exactly one of `source`/`source-ref`,
    /// a JSON object, at most 100 KB. Lists every bad line; exits 1 if there is any.
    Validate {
        /// The manifest file (`-` for standard input).
        file: PathBuf,
    },
}

pub(crate) fn run(args: ManifestArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match args.command {
        ManifestCommand::Validate { file } => {
            let report = if file.as_os_str() == "-" {
                validate(std::io::stdin().lock())
            } else {
                let f =
                    File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
                validate(BufReader::new(f))
            };
            for error in &report.errors {
                writeln!(out, "{}:{error}", file.display())?;
            }
            writeln!(
                out,
                "{}: {} lines, {} valid, {} invalid",
                file.display(),
                report.lines,
                report.valid,
                report.errors.len()
            )?;
            Ok(if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
