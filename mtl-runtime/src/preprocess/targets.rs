//! Targets: label columns taken as they are or derived from a raw column, and which raw
//! columns they make unusable as features.
//!
//! A derived target reads a *source* column (`marital_stat == "Never married"`). Feeding that
//! column to the model as well would hand it the label, so the pipeline drops every source
//! column of a derived target from the inputs (and reports it) whatever role it was given:
//! the census `marital` task comes from an input column, exactly this case.

use std::fmt;

/// How a target's value is read from its source column.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum TargetRule {
    /// The column already holds 0/1 (`0`, `1`, `0.0`, `1.0`, `true`, `false`).
    Binary,
    /// The column holds a number to regress on.
    Regression,
    /// 1 where the (trimmed) value equals this text, 0 elsewhere.
    Equals(String),
    /// 1 where the value, read as a number, is strictly greater than this threshold.
    Above(f64),
}

/// One target column of the output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    /// The output column (and task) name.
    pub name: String,
    /// The raw column read.
    pub source: String,
    pub rule: TargetRule,
}

impl Target {
    /// A 0/1 column used as it is (its name is kept).
    pub fn binary(column: &str) -> Target {
        Target {
            name: column.to_string(),
            source: column.to_string(),
            rule: TargetRule::Binary,
        }
    }

    /// A numeric column regressed on as it is.
    pub fn regression(column: &str) -> Target {
        Target {
            name: column.to_string(),
            source: column.to_string(),
            rule: TargetRule::Regression,
        }
    }

    /// `name` = 1 where `source == value`.
    pub fn equals(name: &str, source: &str, value: &str) -> Target {
        Target {
            name: name.to_string(),
            source: source.to_string(),
            rule: TargetRule::Equals(value.to_string()),
        }
    }

    /// `name` = 1 where `source > threshold`.
    pub fn above(name: &str, source: &str, threshold: f64) -> Target {
        Target {
            name: name.to_string(),
            source: source.to_string(),
            rule: TargetRule::Above(threshold),
        }
    }

    /// Whether the output is a 0/1 label (`binary_classification`) rather than a regression.
    pub fn is_binary(&self) -> bool {
        self.rule != TargetRule::Regression
    }

    /// Whether the target reads a column other than its own, so that column would leak it.
    pub fn is_derived(&self) -> bool {
        self.name != self.source
    }

    /// The label of a raw value. Errors are messages for the caller to place (file, line).
    pub fn label(&self, value: Option<&str>) -> Result<f32, String> {
        let Some(v) = value else {
            return Err(format!(
                "the target `{}` cannot be read from a null; drop such rows before \
                 preprocessing or fix the null markers",
                self.name
            ));
        };
        let number = || {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    format!(
                        "`{v}` is not a number, but the target `{}` ({}) needs one",
                        self.name, self.rule
                    )
                })
        };
        match &self.rule {
            TargetRule::Equals(want) => Ok(f32::from(u8::from(v == want))),
            TargetRule::Above(t) => Ok(f32::from(u8::from(number()? > *t))),
            TargetRule::Regression => Ok(number()? as f32),
            TargetRule::Binary => match v {
                "true" | "True" | "TRUE" => Ok(1.0),
                "false" | "False" | "FALSE" => Ok(0.0),
                _ => match number()? {
                    x if x == 0.0 || x == 1.0 => Ok(x as f32),
                    _ => Err(format!(
                        "`{v}` is not 0 or 1, but the target `{}` is binary; derive it with \
                         Target::equals or Target::above instead",
                        self.name
                    )),
                },
            },
        }
    }
}

impl fmt::Display for TargetRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetRule::Binary => f.write_str("binary 0/1"),
            TargetRule::Regression => f.write_str("regression"),
            TargetRule::Equals(v) => write!(f, "== {v:?}"),
            TargetRule::Above(t) => write!(f, "> {t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_labels() {
        let income = Target::equals("income", "income_50k", "50000+.");
        assert_eq!(income.label(Some("50000+.")), Ok(1.0));
        assert_eq!(income.label(Some("- 50000.")), Ok(0.0));
        assert!(income.is_derived() && income.is_binary());
        let rich = Target::above("rich", "gains", 1000.0);
        assert_eq!(rich.label(Some("1000")), Ok(0.0));
        assert_eq!(rich.label(Some("1000.5")), Ok(1.0));
        assert!(rich
            .label(Some("lots"))
            .unwrap_err()
            .contains("not a number"));
        let click = Target::binary("click");
        assert!(!click.is_derived());
        assert_eq!(click.label(Some("1.0")), Ok(1.0));
        assert!(click.label(Some("2")).unwrap_err().contains("not 0 or 1"));
        assert!(click.label(None).unwrap_err().contains("null"));
        assert_eq!(Target::regression("w").label(Some("2.5")), Ok(2.5));
    }
}
