//! Conditions: evaluated on first use (only the ones the stack uses), memoised, with
//! circular references reported instead of recursing forever.

use yaml_serde::Value;

use super::intrinsics::{Eval, Memo, args, err, intrinsic_of};
use super::props::{describe, scalar_text};
use crate::error::Result;

impl Eval<'_> {
    /// The named condition's value; `at` is where it is used.
    pub fn condition(&self, name: &str, at: &str) -> Result<bool> {
        match self.cond_memo.borrow().get(name) {
            Some(Memo::Done(value)) => return Ok(*value),
            Some(Memo::Busy) => {
                return Err(err(
                    &format!("Conditions.{name}"),
                    format!("condition {name} depends on itself"),
                ));
            }
            None => {}
        }
        let Some(body) = self.conditions.get(name).copied() else {
            return Err(err(
                at,
                format!("condition {name} is not defined in Conditions"),
            ));
        };
        self.cond_memo
            .borrow_mut()
            .insert(name.to_string(), Memo::Busy);
        self.in_conditions.set(self.in_conditions.get() + 1);
        let value = self.condition_body(body, &format!("Conditions.{name}"));
        self.in_conditions.set(self.in_conditions.get() - 1);
        let value = value?;
        self.cond_memo
            .borrow_mut()
            .insert(name.to_string(), Memo::Done(value));
        Ok(value)
    }

    fn condition_body(&self, body: &Value, at: &str) -> Result<bool> {
        let Some((name, arg)) = intrinsic_of(body, true) else {
            return Err(err(
                at,
                format!(
                    "a condition is Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition, found {}",
                    describe(body)
                ),
            ));
        };
        match name.as_str() {
            "Fn::Equals" => {
                let [a, b] = args::<2>("Fn::Equals", arg, at)?;
                Ok(same(self.eval(a, at)?.as_ref(), self.eval(b, at)?.as_ref()))
            }
            "Fn::Not" => {
                let [inner] = args::<1>("Fn::Not", arg, at)?;
                Ok(!self.condition_body(inner, at)?)
            }
            "Fn::And" | "Fn::Or" => {
                let items = match arg {
                    Value::Sequence(items) if (2..=10).contains(&items.len()) => items,
                    other => {
                        return Err(err(
                            at,
                            format!("{name} takes 2 to 10 conditions, found {}", describe(other)),
                        ));
                    }
                };
                // Every operand is evaluated (no short-circuit) so errors are never hidden.
                let values = items
                    .iter()
                    .map(|item| self.condition_body(item, at))
                    .collect::<Result<Vec<bool>>>()?;
                Ok(if name == "Fn::And" {
                    values.iter().all(|v| *v)
                } else {
                    values.iter().any(|v| *v)
                })
            }
            "Condition" => match arg {
                Value::String(other) => self.condition(other, at),
                other => Err(err(
                    at,
                    format!(
                        "Condition takes a condition name, found {}",
                        describe(other)
                    ),
                )),
            },
            other => Err(err(at, format!("{other} cannot be used in a condition"))),
        }
    }
}

/// Fn::Equals compares values as strings (a Number parameter's `5` equals `"5"`).
fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Sequence(x)), Some(Value::Sequence(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(Some(x), Some(y)))
        }
        (Some(x), Some(y)) => match (scalar_text(x), scalar_text(y)) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (None, None) => true,
        _ => false,
    }
}
