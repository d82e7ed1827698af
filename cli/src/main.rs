//! `groundwork`: the Lambdas' logic on local files, for people and scripts.
//!
//! Every subcommand runs the same `groundwork` code the functions run, so what it prints is what the
//! Lambda would return for the same input.

mod commands;
mod local_store;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "groundwork",
    version,
    about = "SageMaker Ground Truth pipelines: validate, pre-annotate, consolidate, chain"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Augmented manifest tools.
    Manifest(commands::manifest::ManifestArgs),
    /// Run the pre-human-task logic on local events.
    Pre(commands::pre::PreArgs),
    /// Consolidate workers' answers: a Lambda request on local files, or a task,worker,label CSV.
    Consolidate(commands::consolidate::ConsolidateArgs),
    /// Re-run consolidation over a finished job's worker responses; write a complete output manifest.
    Reconsolidate(commands::reconsolidate::ReconsolidateArgs),
    /// Turn a reviewer's verdicts on a job's labels into the audit document later jobs recalibrate with.
    Audit(commands::audit::AuditArgs),
    /// Chain labeling jobs: plan offline, or start against your account.
    Chain(commands::chain::ChainArgs),
    /// Clone a labeling job (its setup and input manifest, or a new manifest).
    Clone(commands::chain::CloneArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Command::Manifest(args) => commands::manifest::run(args, &mut out),
        Command::Pre(args) => commands::pre::run(args, &mut out),
        Command::Consolidate(args) => commands::consolidate::run(args, &mut out).await,
        Command::Reconsolidate(args) => commands::reconsolidate::run(args, &mut out),
        Command::Audit(args) => commands::audit::run(args, &mut out),
        Command::Chain(args) => commands::chain::run_chain(args).await,
        Command::Clone(args) => commands::chain::run_clone(args).await,
    };
    let _ = out.flush();
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("groundwork: {error:#}");
            ExitCode::from(2)
        }
    }
}
