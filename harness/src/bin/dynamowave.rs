//! `dynamowave`: parse, then run. Logs go to stderr (RUST_LOG; default info, and warn
//! during `run` so progress lines are not buried under the local stack's function logs).

use clap::Parser;
use dynamowave_harness::cli::{Cli, Command};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        Command::Run(_) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .init();
    match dynamowave_harness::cli::run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
