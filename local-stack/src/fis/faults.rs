//! The faults FIS experiments have in effect, by function, as the Runtime API applies them
//! to each event (what AWS's FIS extension does by standing between a function and its
//! Runtime API). Deviation: they take effect at once, where the extension polls its
//! configuration (up to 60 s to ramp up, 20 s to ramp down).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One Lambda action's effect.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `aws:lambda:invocation-add-delay`: wait before the function gets the event.
    Delay(Duration),
    /// `aws:lambda:invocation-error`: the invocation fails.
    Error { prevent_execution: bool },
    /// `aws:lambda:invocation-http-integration-response`: the response becomes this status.
    HttpResponse {
        status: u16,
        content_type: String,
        prevent_execution: bool,
    },
}

#[derive(Debug, Clone)]
struct Active {
    experiment: String,
    effect: Effect,
    /// 1–100.
    percentage: f64,
    until: Instant,
}

/// What the Runtime API does with one event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draw {
    pub delay: Duration,
    /// Answer instead of (prevent) or after running the function.
    pub replace: Option<Replacement>,
    pub prevent_execution: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Replacement {
    Error { experiment: String },
    Http { status: u16, content_type: String },
}

#[derive(Default)]
pub struct Faults {
    by_function: Mutex<BTreeMap<String, Vec<Active>>>,
    /// Whether any fault is noted: every event checks this, and only then takes the lock.
    any: AtomicBool,
}

impl Faults {
    pub fn add(
        &self,
        function: &str,
        experiment: &str,
        effect: Effect,
        percentage: f64,
        until: Instant,
    ) {
        let mut map = self.by_function.lock().expect("faults lock");
        map.entry(function.to_string()).or_default().push(Active {
            experiment: experiment.to_string(),
            effect,
            percentage,
            until,
        });
        self.any.store(true, Ordering::Release);
    }

    /// Ends everything `experiment` put in effect.
    pub fn remove_experiment(&self, experiment: &str) {
        let mut map = self.by_function.lock().expect("faults lock");
        for list in map.values_mut() {
            list.retain(|a| a.experiment != experiment);
        }
        map.retain(|_, l| !l.is_empty());
        self.any.store(!map.is_empty(), Ordering::Release);
    }

    /// Draws each fault in effect on `function` once, by its percentage.
    pub fn draw(&self, function: &str) -> Draw {
        if !self.any.load(Ordering::Acquire) {
            return Draw::default();
        }
        let mut map = self.by_function.lock().expect("faults lock");
        let Some(list) = map.get_mut(function) else {
            return Draw::default();
        };
        let now = Instant::now();
        list.retain(|a| a.until > now);
        let mut draw = Draw::default();
        for a in list.iter() {
            if rand::random::<f64>() * 100.0 >= a.percentage {
                continue;
            }
            match &a.effect {
                Effect::Delay(d) => draw.delay += *d,
                Effect::Error { prevent_execution } => {
                    draw.replace = Some(Replacement::Error {
                        experiment: a.experiment.clone(),
                    });
                    draw.prevent_execution |= prevent_execution;
                }
                Effect::HttpResponse {
                    status,
                    content_type,
                    prevent_execution,
                } => {
                    if draw.replace.is_none() {
                        draw.replace = Some(Replacement::Http {
                            status: *status,
                            content_type: content_type.clone(),
                        });
                    }
                    draw.prevent_execution |= prevent_execution;
                }
            }
        }
        draw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_draw_by_percentage_and_end_with_their_experiment() {
        let faults = Faults::default();
        let later = Instant::now() + Duration::from_secs(60);
        faults.add(
            "f",
            "EXP1",
            Effect::Delay(Duration::from_millis(5)),
            100.0,
            later,
        );
        faults.add(
            "f",
            "EXP2",
            Effect::Error {
                prevent_execution: true,
            },
            100.0,
            later,
        );
        let d = faults.draw("f");
        assert_eq!(d.delay, Duration::from_millis(5));
        assert!(d.prevent_execution);
        assert_eq!(
            d.replace,
            Some(Replacement::Error {
                experiment: "EXP2".into()
            })
        );
        assert_eq!(faults.draw("other"), Draw::default());
        faults.remove_experiment("EXP2");
        assert_eq!(faults.draw("f").replace, None);
        // 0 % never fires; an expired fault is gone.
        faults.add("g", "E", Effect::Delay(Duration::from_secs(1)), 0.0, later);
        assert_eq!(faults.draw("g").delay, Duration::ZERO);
        faults.add(
            "h",
            "E",
            Effect::Delay(Duration::from_secs(1)),
            100.0,
            Instant::now(),
        );
        assert_eq!(faults.draw("h").delay, Duration::ZERO);
    }
}
