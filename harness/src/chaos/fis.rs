//! AWS FIS experiments for the `aws:lambda:invocation-*` chaos actions: a template with one
//! action on the functions (by ARN) for the step's window, started at `at`; reverting stops
//! the experiment if it still runs and deletes the template. The same calls reach AWS and
//! the local stack, which applies the faults at its Runtime API.

use aws_sdk_fis::types::{
    CreateExperimentTemplateActionInput, CreateExperimentTemplateStopConditionInput,
    CreateExperimentTemplateTargetInput, ExperimentStatus,
};

use crate::aws::describe;

/// What a started experiment left to clean up.
#[derive(Debug, Clone)]
pub struct Started {
    pub template: String,
    pub experiment: String,
}

pub struct Spec<'a> {
    pub step: &'a str,
    pub action_id: &'a str,
    pub parameters: &'a [(&'static str, String)],
    pub function_arns: Vec<String>,
    pub duration_s: f64,
    pub role_arn: &'a str,
}

/// FIS durations are ISO 8601: whole seconds here (the window, rounded up, at least 1 s).
pub fn iso_duration(seconds: f64) -> String {
    format!("PT{}S", seconds.ceil().max(1.0) as u64)
}

/// Creates the template. Nothing is in effect until [`start`].
pub async fn create(fis: &aws_sdk_fis::Client, spec: &Spec<'_>) -> Result<String, String> {
    let target = CreateExperimentTemplateTargetInput::builder()
        .resource_type("aws:lambda:function")
        .set_resource_arns(Some(spec.function_arns.clone()))
        .selection_mode("ALL")
        .build()
        .map_err(|e| e.to_string())?;
    let mut action = CreateExperimentTemplateActionInput::builder()
        .action_id(spec.action_id)
        .targets("Functions", "functions")
        .parameters("duration", iso_duration(spec.duration_s));
    for (k, v) in spec.parameters {
        action = action.parameters(*k, v);
    }
    let stop = CreateExperimentTemplateStopConditionInput::builder()
        .source("none")
        .build()
        .map_err(|e| e.to_string())?;
    let out = fis
        .create_experiment_template()
        .description(format!("dynamowave chaos {}", spec.step))
        .role_arn(spec.role_arn)
        .targets("functions", target)
        .actions("fault", action.build().map_err(|e| e.to_string())?)
        .stop_conditions(stop)
        .tags("dynamowave", spec.step)
        .send()
        .await
        .map_err(|e| format!("FIS CreateExperimentTemplate: {}", describe(&e)))?;
    out.experiment_template()
        .and_then(|t| t.id())
        .map(str::to_string)
        .ok_or_else(|| "FIS CreateExperimentTemplate answered without an id".into())
}

/// Starts an experiment from `template`; an experiment that fails at once is an error.
pub async fn start(fis: &aws_sdk_fis::Client, template: &str) -> Result<String, String> {
    let out = fis
        .start_experiment()
        .experiment_template_id(template)
        .send()
        .await
        .map_err(|e| format!("FIS StartExperiment: {}", describe(&e)))?;
    let experiment = out
        .experiment()
        .ok_or("FIS StartExperiment answered without an experiment")?;
    let id = experiment.id().unwrap_or_default().to_string();
    if let Some(state) = experiment.state()
        && matches!(state.status(), Some(ExperimentStatus::Failed))
    {
        return Err(format!(
            "FIS experiment {id} failed: {}",
            state.reason().unwrap_or("no reason given")
        ));
    }
    Ok(id)
}

/// Stops the experiment if it has not ended on its own, then deletes the template.
pub async fn stop(fis: &aws_sdk_fis::Client, started: &Started) -> Result<(), String> {
    let status = fis
        .get_experiment()
        .id(&started.experiment)
        .send()
        .await
        .map_err(|e| format!("FIS GetExperiment {}: {}", started.experiment, describe(&e)))?
        .experiment()
        .and_then(|e| e.state())
        .and_then(|s| s.status().cloned());
    let ended = matches!(
        status,
        Some(
            ExperimentStatus::Completed
                | ExperimentStatus::Stopped
                | ExperimentStatus::Failed
                | ExperimentStatus::Cancelled
        )
    );
    if !ended {
        fis.stop_experiment()
            .id(&started.experiment)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "FIS StopExperiment {}: {}",
                    started.experiment,
                    describe(&e)
                )
            })?;
    }
    delete_template(fis, &started.template).await
}

pub async fn delete_template(fis: &aws_sdk_fis::Client, template: &str) -> Result<(), String> {
    fis.delete_experiment_template()
        .id(template)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("FIS DeleteExperimentTemplate {template}: {}", describe(&e)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn windows_become_iso_durations() {
        assert_eq!(super::iso_duration(30.0), "PT30S");
        assert_eq!(super::iso_duration(0.2), "PT1S");
        assert_eq!(super::iso_duration(90.5), "PT91S");
    }
}
