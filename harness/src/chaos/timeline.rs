//! Applies and reverts a plan's chaos steps on the run's clock. Every change is noted with
//! its exact previous state *before* it is made, so [`Chaos::revert_all`] can undo whatever
//! is in effect when the run ends for any reason (end, error, Ctrl-C).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_apigatewayv2::types::RouteSettings;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::Action;
use super::faults::{self, FaultState};
use crate::aws::{Clients, describe};
use crate::error::HarnessError;
use crate::scenario::ChaosStep;

/// One action's window, as the report shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub action: String,
    pub target: String,
    pub at_s: f64,
    pub for_s: f64,
    pub params: Value,
    pub applied_at_s: Option<f64>,
    pub reverted_at_s: Option<f64>,
    pub error: Option<String>,
}

/// What undoes an applied step.
#[derive(Debug, Clone)]
enum Undo {
    Stage {
        route: Option<String>,
        previous: Option<(Option<f64>, Option<i32>)>,
    },
    Concurrency {
        function: String,
        previous: Option<i32>,
    },
    Fault {
        functions: Vec<String>,
    },
    /// A FIS template (and, once started, its experiment) to stop and delete.
    Fis {
        template: String,
        experiment: Option<String>,
    },
    Load {
        stop: std::sync::Arc<watch::Sender<bool>>,
        /// The neighbour's reservation before it was lifted (function, value).
        reservation: Option<(String, Option<i32>)>,
    },
}

pub struct Chaos {
    clients: Clients,
    steps: Vec<(ChaosStep, Action)>,
    /// Logical name → physical name, from the stack's outputs.
    outputs: BTreeMap<String, String>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    faults: FaultState,
    undo: BTreeMap<usize, Undo>,
    windows: Vec<Window>,
}

/// A message to the engine: make this share of the live clients vanish.
pub type DropRequest = f64;

/// A function's physical name from the stack's outputs (`{name}FunctionName`,
/// `{name}Name`, or an output named `name`), else `name` itself.
pub fn physical_name(outputs: &BTreeMap<String, String>, name: &str) -> String {
    [
        format!("{name}FunctionName"),
        format!("{name}Name"),
        name.to_string(),
    ]
    .iter()
    .find_map(|k| outputs.get(k))
    .cloned()
    .unwrap_or_else(|| name.to_string())
}

impl Chaos {
    /// Resolves every function a step names before the run starts, so a typo fails fast.
    pub async fn prepare(
        steps: &[ChaosStep],
        clients: Clients,
        outputs: BTreeMap<String, String>,
    ) -> Result<Chaos, HarnessError> {
        let mut chaos = Chaos {
            clients,
            steps: Vec::new(),
            outputs,
            state: Mutex::default(),
        };
        let mut windows = Vec::new();
        for step in steps {
            let names = match &step.action {
                Action::ThrottleFunction { function, .. }
                | Action::Invoke { function, .. }
                | Action::NoisyNeighbor { function, .. } => vec![function.clone()],
                Action::Fault { functions, .. } | Action::Fis { functions, .. } => {
                    functions.clone()
                }
                Action::ThrottleApi { .. } => {
                    chaos.stage()?;
                    Vec::new()
                }
                Action::DropClients { .. } => Vec::new(),
                Action::DlqReplay => {
                    chaos.output("DeadLetterQueueUrl")?;
                    Vec::new()
                }
            };
            let mut physical = Vec::new();
            for n in &names {
                let p = chaos.function(n);
                chaos
                    .clients
                    .lambda
                    .get_function_configuration()
                    .function_name(&p)
                    .send()
                    .await
                    .map_err(|e| {
                        HarnessError::Chaos(format!(
                            "chaos {} at {:.0}s: function {n:?} ({p}) is not there: {}",
                            step.name,
                            step.at.as_secs_f64(),
                            describe(&e)
                        ))
                    })?;
                physical.push(p);
            }
            windows.push(Window {
                action: step.name.clone(),
                target: if physical.is_empty() {
                    match &step.action {
                        Action::ThrottleApi { route, .. } => {
                            format!(
                                "stage{}",
                                route
                                    .as_ref()
                                    .map(|r| format!(" route {r}"))
                                    .unwrap_or_default()
                            )
                        }
                        Action::DlqReplay => "dlq".into(),
                        _ => "clients".into(),
                    }
                } else {
                    names.join(",")
                },
                at_s: step.at.as_secs_f64(),
                for_s: step.duration.as_secs_f64(),
                params: step.params.clone(),
                applied_at_s: None,
                reverted_at_s: None,
                error: None,
            });
            chaos.steps.push((step.clone(), step.action.clone()));
        }
        chaos.state.lock().expect("chaos lock").windows = windows;
        Ok(chaos)
    }

    fn function(&self, name: &str) -> String {
        physical_name(&self.outputs, name)
    }

    fn output(&self, key: &str) -> Result<String, HarnessError> {
        self.outputs.get(key).cloned().ok_or_else(|| {
            HarnessError::Chaos(format!(
                "chaos needs the stack output {key}, which is missing"
            ))
        })
    }

    fn stage(&self) -> Result<(String, String), HarnessError> {
        match (
            self.outputs.get("WebSocketApiId"),
            self.outputs.get("StageName"),
        ) {
            (Some(a), Some(s)) => Ok((a.clone(), s.clone())),
            _ => Err(HarnessError::Chaos(
                "throttle-api needs the stack outputs WebSocketApiId and StageName".into(),
            )),
        }
    }

    pub fn windows(&self) -> Vec<Window> {
        self.state.lock().expect("chaos lock").windows.clone()
    }

    /// The actions in effect now, for the progress line.
    pub fn active(&self) -> String {
        let s = self.state.lock().expect("chaos lock");
        let names: Vec<&str> = s
            .undo
            .keys()
            .filter_map(|i| s.windows.get(*i).map(|w| w.action.as_str()))
            .collect();
        if names.is_empty() {
            "-".into()
        } else {
            names.join("+")
        }
    }

    /// Runs the timeline from `start` until it is done or `stop` changes.
    pub async fn run(
        &self,
        start: Instant,
        drops: mpsc::UnboundedSender<DropRequest>,
        mut stop: watch::Receiver<bool>,
    ) {
        // (time, step, apply?) in time order; reverts before applies at the same instant.
        let mut events: Vec<(Duration, bool, usize)> = Vec::new();
        for (i, (step, action)) in self.steps.iter().enumerate() {
            events.push((step.at, true, i));
            if action.lasts() {
                events.push((step.at + step.duration, false, i));
            }
        }
        events.sort_by_key(|(t, apply, i)| (*t, *apply, *i));
        for (at, apply, i) in events {
            tokio::select! {
                _ = tokio::time::sleep_until((start + at).into()) => {}
                _ = stop.changed() => return,
            }
            let now = start.elapsed().as_secs_f64();
            let result = if apply {
                self.apply(i, &drops).await
            } else {
                self.revert(i).await
            };
            let mut s = self.state.lock().expect("chaos lock");
            let w = &mut s.windows[i];
            match result {
                Ok(()) if apply => w.applied_at_s = Some(now),
                Ok(()) => w.reverted_at_s = Some(now),
                Err(e) => {
                    eprintln!(
                        "chaos: {} {}: {e}",
                        w.action,
                        if apply {
                            "failed"
                        } else {
                            "could not be reverted"
                        }
                    );
                    w.error.get_or_insert(e);
                }
            }
        }
    }

    async fn apply(
        &self,
        i: usize,
        drops: &mpsc::UnboundedSender<DropRequest>,
    ) -> Result<(), String> {
        let (_, action) = &self.steps[i];
        let lambda = &self.clients.lambda;
        match action {
            Action::DlqReplay => {
                let queue = self
                    .output("DeadLetterQueueUrl")
                    .map_err(|e| e.to_string())?;
                // Behind an endpoint (a local stack) @connections is there too; on AWS it is
                // the stack's ConnectionsURL.
                let url = match self.clients.config.endpoint_url() {
                    Some(_) => None,
                    None => self.outputs.get("ConnectionsURL").map(String::as_str),
                };
                let connections = self.clients.connections(url);
                let broadcast = self.function("Broadcast");
                let done = crate::replay::Replay {
                    sqs: &self.clients.sqs,
                    queue_url: &queue,
                    connections: &connections,
                    lambda,
                    broadcast: Some(&broadcast),
                }
                .run()
                .await?;
                eprintln!(
                    "dlq-replay: {} redelivered, {} re-invoked, {} gone, {} left",
                    done.redelivered, done.reinvoked, done.gone, done.failed
                );
                Ok(())
            }
            Action::DropClients { share } => drops
                .send(*share)
                .map_err(|_| "the run has ended".to_string()),
            Action::Invoke {
                function,
                payload,
                wait,
            } => {
                let kind = if *wait {
                    aws_sdk_lambda::types::InvocationType::RequestResponse
                } else {
                    aws_sdk_lambda::types::InvocationType::Event
                };
                let got = lambda
                    .invoke()
                    .function_name(self.function(function))
                    .invocation_type(kind)
                    .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
                    .send()
                    .await
                    .map_err(|e| format!("Invoke {function}: {}", describe(&e)))?;
                match got.function_error() {
                    Some(e) => Err(format!("Invoke {function}: the function failed ({e})")),
                    None => Ok(()),
                }
            }
            Action::NoisyNeighbor {
                function,
                concurrency,
                hold_ms,
                unreserve,
            } => {
                let name = self.function(function);
                let (stop, _) = watch::channel(false);
                let stop = std::sync::Arc::new(stop);
                let reservation = if *unreserve {
                    Some((name.clone(), self.reservation(&name).await?))
                } else {
                    None
                };
                self.note(
                    i,
                    Undo::Load {
                        stop: stop.clone(),
                        reservation,
                    },
                );
                if *unreserve {
                    self.set_reservation(&name, None).await?;
                }
                let n = match concurrency {
                    Some(n) => *n,
                    None => {
                        let got = lambda
                            .get_account_settings()
                            .send()
                            .await
                            .map_err(|e| format!("GetAccountSettings: {}", describe(&e)))?;
                        let pool = got
                            .account_limit()
                            .and_then(|l| l.unreserved_concurrent_executions())
                            .unwrap_or(0)
                            .max(0) as u32;
                        pool + (pool / 10).max(2)
                    }
                };
                let ping = serde_json::json!({
                    "warmer": true,
                    "__WARMER_CONCURRENCY__": 2,
                    "__WARMER_DELAY_MS__": hold_ms,
                    "__WARMER_CORRELATIONID__": "dynamowave-noisy-neighbor",
                })
                .to_string();
                for _ in 0..n {
                    let (lambda, name, ping) = (lambda.clone(), name.clone(), ping.clone());
                    let mut stopped = stop.subscribe();
                    tokio::spawn(async move {
                        while !*stopped.borrow() {
                            let call = lambda
                                .invoke()
                                .function_name(&name)
                                .payload(aws_sdk_lambda::primitives::Blob::new(ping.clone()))
                                .send();
                            tokio::select! {
                                r = call => {
                                    // Throttled: try again shortly, as a busy client would.
                                    if r.is_err() {
                                        tokio::time::sleep(Duration::from_millis(50)).await;
                                    }
                                }
                                _ = stopped.changed() => break,
                            }
                        }
                    });
                }
                Ok(())
            }
            Action::ThrottleFunction { function, reserved } => {
                let name = self.function(function);
                let previous = lambda
                    .get_function_concurrency()
                    .function_name(&name)
                    .send()
                    .await
                    .map_err(|e| format!("GetFunctionConcurrency {function}: {}", describe(&e)))?
                    .reserved_concurrent_executions();
                self.note(
                    i,
                    Undo::Concurrency {
                        function: name.clone(),
                        previous,
                    },
                );
                self.set_reservation(&name, Some(*reserved)).await
            }
            Action::ThrottleApi { route, rate, burst } => {
                let (api, stage) = self.stage().map_err(|e| e.to_string())?;
                let got = self
                    .clients
                    .apigw
                    .get_stage()
                    .api_id(&api)
                    .stage_name(&stage)
                    .send()
                    .await
                    .map_err(|e| format!("GetStage: {}", describe(&e)))?;
                let limits =
                    |r: &RouteSettings| (r.throttling_rate_limit(), r.throttling_burst_limit());
                let previous = match route {
                    None => got.default_route_settings().map(limits),
                    Some(r) => got.route_settings().and_then(|m| m.get(r)).map(limits),
                };
                self.note(
                    i,
                    Undo::Stage {
                        route: route.clone(),
                        previous,
                    },
                );
                self.update_stage(route.as_deref(), Some(*rate), Some(*burst))
                    .await
            }
            Action::Fis {
                functions,
                action_id,
                parameters,
                role_arn,
            } => {
                let mut arns = Vec::new();
                for f in functions {
                    let name = self.function(f);
                    let arn = lambda
                        .get_function_configuration()
                        .function_name(&name)
                        .send()
                        .await
                        .map_err(|e| format!("GetFunctionConfiguration {name}: {}", describe(&e)))?
                        .function_arn()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{name} has no FunctionArn"))?;
                    arns.push(arn);
                }
                let (step, _) = &self.steps[i];
                let default_role = "arn:aws:iam::000000000000:role/dynamowave-fis";
                let spec = super::fis::Spec {
                    step: &step.name,
                    action_id,
                    parameters,
                    function_arns: arns,
                    duration_s: step.duration.as_secs_f64(),
                    role_arn: role_arn.as_deref().unwrap_or(default_role),
                };
                let fis = &self.clients.fis;
                let template = super::fis::create(fis, &spec).await?;
                // Noted before starting, so a start that fails half-way is still cleaned up.
                self.note(
                    i,
                    Undo::Fis {
                        template: template.clone(),
                        experiment: None,
                    },
                );
                let experiment = super::fis::start(fis, &template).await?;
                self.note(
                    i,
                    Undo::Fis {
                        template,
                        experiment: Some(experiment),
                    },
                );
                Ok(())
            }
            Action::Fault { functions, fault } => {
                let mut physical = Vec::new();
                for f in functions {
                    let name = self.function(f);
                    let known = self.state.lock().expect("chaos lock").faults.knows(&name);
                    if !known {
                        let env = faults::environment(lambda, &name).await?;
                        let original = env.get(faults::VARIABLE).cloned();
                        self.state
                            .lock()
                            .expect("chaos lock")
                            .faults
                            .remember(&name, original);
                    }
                    physical.push(name);
                }
                self.note(
                    i,
                    Undo::Fault {
                        functions: physical.clone(),
                    },
                );
                for name in &physical {
                    let value =
                        self.state
                            .lock()
                            .expect("chaos lock")
                            .faults
                            .set(name, i, Some(fault));
                    faults::write(lambda, name, value.as_deref()).await?;
                }
                Ok(())
            }
        }
    }

    async fn reservation(&self, name: &str) -> Result<Option<i32>, String> {
        Ok(self
            .clients
            .lambda
            .get_function_concurrency()
            .function_name(name)
            .send()
            .await
            .map_err(|e| format!("GetFunctionConcurrency {name}: {}", describe(&e)))?
            .reserved_concurrent_executions())
    }

    async fn set_reservation(&self, name: &str, value: Option<i32>) -> Result<(), String> {
        let lambda = &self.clients.lambda;
        match value {
            Some(n) => lambda
                .put_function_concurrency()
                .function_name(name)
                .reserved_concurrent_executions(n)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("PutFunctionConcurrency {name}: {}", describe(&e))),
            None => lambda
                .delete_function_concurrency()
                .function_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("DeleteFunctionConcurrency {name}: {}", describe(&e))),
        }
    }

    fn note(&self, i: usize, undo: Undo) {
        self.state.lock().expect("chaos lock").undo.insert(i, undo);
    }

    async fn update_stage(
        &self,
        route: Option<&str>,
        rate: Option<f64>,
        burst: Option<i32>,
    ) -> Result<(), String> {
        let (api, stage) = self.stage().map_err(|e| e.to_string())?;
        let settings = RouteSettings::builder()
            .set_throttling_rate_limit(rate)
            .set_throttling_burst_limit(burst)
            .build();
        let mut call = self
            .clients
            .apigw
            .update_stage()
            .api_id(&api)
            .stage_name(&stage);
        call = match route {
            None => call.default_route_settings(settings),
            Some(r) => call.route_settings(r, settings),
        };
        call.send()
            .await
            .map_err(|e| format!("UpdateStage: {}", describe(&e)))?;
        Ok(())
    }

    /// Undoes step `i` if it is in effect.
    async fn revert(&self, i: usize) -> Result<(), String> {
        let Some(undo) = self.state.lock().expect("chaos lock").undo.get(&i).cloned() else {
            return Ok(());
        };
        let lambda = &self.clients.lambda;
        match &undo {
            Undo::Concurrency { function, previous } => {
                self.set_reservation(function, *previous).await?;
            }
            Undo::Load { stop, reservation } => {
                let _ = stop.send(true);
                if let Some((name, previous)) = reservation {
                    self.set_reservation(name, *previous).await?;
                }
            }
            Undo::Stage { route, previous } => match (route, previous) {
                (Some(r), None) => {
                    let (api, stage) = self.stage().map_err(|e| e.to_string())?;
                    self.clients
                        .apigw
                        .delete_route_settings()
                        .api_id(api)
                        .stage_name(stage)
                        .route_key(r)
                        .send()
                        .await
                        .map_err(|e| format!("DeleteRouteSettings {r}: {}", describe(&e)))?;
                }
                (route, previous) => {
                    let (rate, burst) = previous.unwrap_or_default();
                    self.update_stage(route.as_deref(), rate, burst).await?;
                }
            },
            Undo::Fis {
                template,
                experiment,
            } => match experiment {
                Some(experiment) => {
                    let started = super::fis::Started {
                        template: template.clone(),
                        experiment: experiment.clone(),
                    };
                    super::fis::stop(&self.clients.fis, &started).await?;
                }
                None => super::fis::delete_template(&self.clients.fis, template).await?,
            },
            Undo::Fault { functions } => {
                for name in functions {
                    let value = self
                        .state
                        .lock()
                        .expect("chaos lock")
                        .faults
                        .set(name, i, None);
                    faults::write(lambda, name, value.as_deref()).await?;
                }
            }
        }
        self.state.lock().expect("chaos lock").undo.remove(&i);
        Ok(())
    }

    /// Reverts everything still in effect; returns what could not be reverted.
    pub async fn revert_all(&self, start: Instant) -> Vec<String> {
        let open: Vec<usize> = self
            .state
            .lock()
            .expect("chaos lock")
            .undo
            .keys()
            .rev()
            .copied()
            .collect();
        let mut left = Vec::new();
        for i in open {
            let result = self.revert(i).await;
            let mut s = self.state.lock().expect("chaos lock");
            let w = &mut s.windows[i];
            match result {
                Ok(()) => {
                    w.reverted_at_s = Some(start.elapsed().as_secs_f64());
                }
                Err(e) => {
                    left.push(format!("{} on {}: {e}", w.action, w.target));
                    w.error.get_or_insert(e);
                }
            }
        }
        left
    }
}
