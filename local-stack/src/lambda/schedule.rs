//! Schedules from the template (`Events` of type Schedule): `rate(...)` fires on its
//! period, as an EventBridge rule's async invoke; `cron(...)` and disabled schedules fire
//! only when triggered. `trigger` fires one now (the harness's warmer checks use it).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;

use super::LambdaService;
use crate::edge::AwsError;
use crate::model::{Schedule, ScheduleSpec};

pub fn start_all(service: &Arc<LambdaService>) {
    for name in service.function_names() {
        let Ok((_, f)) = service.function(&name) else {
            continue;
        };
        for schedule in f.spec().schedules {
            if let (true, Schedule::Rate(period)) = (schedule.enabled, &schedule.expression) {
                let period = *period;
                let service = service.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    let mut shutdown = service.shutdown.subscribe();
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep(period) => {}
                            _ = shutdown.changed() => return,
                        }
                        if let Err(e) = service.fire(&name, &schedule) {
                            tracing::warn!(function = %name, error = %e, "schedule could not fire");
                        }
                    }
                });
            }
        }
    }
}

impl LambdaService {
    /// Fires the schedule `schedule` of `function` now (even a disabled or cron one).
    pub fn trigger(&self, function: &str, schedule: &str) -> Result<String, AwsError> {
        let (name, f) = self.function(function)?;
        let spec = f
            .spec()
            .schedules
            .into_iter()
            .find(|s| s.name == schedule)
            .ok_or_else(|| {
                AwsError::new(
                    404,
                    "ResourceNotFoundException",
                    format!("function {name} has no schedule {schedule:?}"),
                )
            })?;
        self.fire(&name, &spec)
    }

    fn fire(&self, function: &str, schedule: &ScheduleSpec) -> Result<String, AwsError> {
        let payload = match &schedule.input {
            Some(input) => input.clone(),
            None => json!({
                "version": "0",
                "id": uuid::Uuid::new_v4().to_string(),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": self.naming.account_id,
                "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "region": self.naming.region,
                "resources": [format!(
                    "arn:aws:events:{}:{}:rule/{}-{}",
                    self.naming.region, self.naming.account_id, function, schedule.name
                )],
                "detail": {}
            })
            .to_string(),
        };
        tracing::info!(function, schedule = %schedule.name, "schedule fired");
        self.invoke_async(function, Bytes::from(payload))
    }
}
