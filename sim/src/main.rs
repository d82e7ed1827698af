//! `groundwork-sim`: a local SageMaker Ground Truth. `groundwork-sim demo` runs the demo scenarios.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use groundwork_sim::demo::{DemoOptions, run_demo};

#[derive(Parser)]
#[command(
    name = "groundwork-sim",
    about = "A local SageMaker Ground Truth on 127.0.0.1"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A replayed crowd job stopped halfway, chained, completed and verified; then a bounding-box job.
    Demo {
        /// The crowd sets' folder.
        #[arg(long, default_value = "data/crowd")]
        crowd_dir: PathBuf,
        /// The set to replay.
        #[arg(long, default_value = "venanzi2015_wsamt")]
        set: String,
        /// Objects (tasks with gold) to label.
        #[arg(long, default_value_t = 300)]
        objects: usize,
        /// Where output manifests and function logs are copied.
        #[arg(long, default_value = "sim-demo")]
        out: PathBuf,
        /// Where the function binaries are (default: beside this one).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Deliveries of each state-change event to the auto-chainer.
        #[arg(long, default_value_t = 2)]
        deliveries: usize,
    },
    /// moto S3 and the SageMaker API on 127.0.0.1 until Ctrl-C; jobs get a default simulated workforce.
    Serve {
        /// Where the function binaries are (default: beside this one).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Where the functions' logs go.
        #[arg(long, default_value = "sim-logs")]
        logs: PathBuf,
        /// Deliveries of each state-change event to the auto-chainer.
        #[arg(long, default_value_t = 1)]
        deliveries: usize,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let bin_dir_of = |given: Option<PathBuf>| given.or_else(groundwork_sim::sim::sibling_bin_dir);
    match cli.command {
        Command::Serve {
            bin_dir: given,
            logs,
            deliveries,
        } => {
            let Some(dir) = bin_dir_of(given) else {
                eprintln!("groundwork-sim: cannot find the function binaries; pass --bin-dir");
                return ExitCode::FAILURE;
            };
            match groundwork_sim::demo::serve(dir, logs, deliveries).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("groundwork-sim: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo {
            crowd_dir,
            set,
            objects,
            out,
            bin_dir,
            deliveries,
        } => {
            let Some(bin_dir) = bin_dir_of(bin_dir) else {
                eprintln!("groundwork-sim: cannot find the function binaries; pass --bin-dir");
                return ExitCode::FAILURE;
            };
            let options = DemoOptions {
                crowd_dir,
                set,
                objects,
                out_dir: out,
                bin_dir,
                deliveries,
            };
            match run_demo(&options).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("groundwork-sim: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
