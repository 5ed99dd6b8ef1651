//! `dynamowave local up`: the local stack in the foreground.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use dynamowave_local::stack::{StackOptions, start};

use crate::cli::UpArgs;
use crate::error::HarnessError;

pub fn options(args: &UpArgs) -> Result<StackOptions, HarnessError> {
    let mut overrides = BTreeMap::new();
    for pair in &args.parameter_overrides {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            HarnessError::Usage(format!("--parameter-overrides {pair:?} is not KEY=VALUE"))
        })?;
        overrides.insert(k.trim().to_string(), v.to_string());
    }
    let mut o = StackOptions {
        template: args.template.clone(),
        parameter_overrides: overrides,
        binaries_dir: args.binaries.clone().unwrap_or_else(default_binaries),
        stack_name: args.stack_name.clone(),
        region: args.region.clone(),
        edge_port: args.edge_port,
        websocket_port: args.websocket_port,
        ..StackOptions::default()
    };
    o.lambda.sandbox_startup_delay = Duration::from_millis(args.sandbox_delay_ms);
    o.lambda.idle_timeout = Duration::from_secs(args.idle_instance_secs);
    o.lambda.async_retry_base = Duration::from_millis(args.async_retry_base_ms);
    o.lambda.account_concurrency = args.account_concurrency;
    o.gateway.connections_latency = Duration::from_millis(args.connections_latency_ms);
    o.gateway.idle_timeout = Duration::from_secs(args.idle_timeout_secs);
    o.gateway.post_failure_share = args.post_failure_share;
    o.gateway.post_failure_status = args.post_failure_status;
    o.cloudwatch.publish_delay = args.publish_delay;
    if let (Some(id), Some(secret)) = (&args.access_key_id, &args.secret_access_key) {
        crate::aws::use_local_key(id, secret);
        o.credentials = Some(dynamowave_local::edge::Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
        });
    }
    Ok(o)
}

/// The folder of this executable when the function binaries sit beside it (a cargo
/// build puts them all in target/release), else ./target/release.
fn default_binaries() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .filter(|dir| dir.join("connect").is_file())
        .unwrap_or_else(|| PathBuf::from("target/release"))
}

pub async fn up(args: UpArgs) -> Result<i32, HarnessError> {
    let stack = start(options(&args)?).await?;
    let line = serde_json::to_string(&stack.endpoints).expect("endpoints serialise");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .map_err(|e| HarnessError::Io {
            context: "writing to stdout".into(),
            source: e,
        })?;
    drop(out);
    wait_for_signal().await;
    tracing::info!("stopping the local stack");
    stack.shutdown().await;
    Ok(0)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command, LocalCommand};

    fn up_args(args: &[&str]) -> UpArgs {
        let cli = Cli::try_parse_from(["dynamowave", "local", "up"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Local(LocalCommand::Up(a)) => a,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn flags_become_stack_options() {
        let a = up_args(&[
            "--parameter-overrides",
            "FanoutMode=inline",
            "WarmConcurrency=3",
            "--sandbox-delay-ms",
            "0",
            "--async-retry-base-ms",
            "250",
        ]);
        let o = options(&a).unwrap();
        assert_eq!(o.parameter_overrides["FanoutMode"], "inline");
        assert_eq!(o.parameter_overrides["WarmConcurrency"], "3");
        assert_eq!(o.lambda.sandbox_startup_delay, Duration::ZERO);
        assert_eq!(o.lambda.async_retry_base, Duration::from_millis(250));
        assert_eq!(o.gateway.connections_latency, Duration::from_millis(10));
    }

    #[test]
    fn bad_flags_are_refused_with_their_name() {
        let err = options(&up_args(&["--parameter-overrides", "nonsense"])).unwrap_err();
        assert!(err.to_string().contains("nonsense"), "{err}");
        let err =
            Cli::try_parse_from(["dynamowave", "local", "up", "--edge-port", "99999"]).unwrap_err();
        assert!(err.to_string().contains("--edge-port"), "{err}");
    }
}
