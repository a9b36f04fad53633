//! Benchmarks the dashboard of `trackiq up` may start (`[[dashboard.launch]]`): each entry is a
//! `trackiq bench ...` (or `cluster run`) command template with the parameters a person may set
//! and their allowed values. Never an arbitrary command: the template is the operator's, a
//! value is checked against its parameter (a listed choice, or a number within bounds) and
//! replaces `{name}` inside one argument; no shell is involved. [`super::launch_runner`] runs
//! them.

use serde::{Deserialize, Serialize};

/// The `trackiq` subcommands a template may start: the bench paths.
pub const ALLOWED_COMMANDS: [&[&str]; 2] = [&["bench"], &["cluster", "run"]];

/// One launchable benchmark (`[[dashboard.launch]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchEntry {
    /// Its name, in the form's title and address (`/launch/NAME`): letters, digits, `-`, `_`.
    pub name: String,
    /// One line saying what it measures, shown above the form.
    #[serde(default)]
    pub description: String,
    /// The `trackiq` arguments, starting with `bench` or `cluster run`; `{param}` inside an
    /// argument is replaced by that parameter's checked value. The pipeline's own `--data`,
    /// `--brokers` and `--config` come first.
    pub args: Vec<String>,
    /// What a person may set, each used in `args`.
    #[serde(default)]
    pub params: Vec<LaunchParam>,
}

/// A parameter of a launch: one of `choices`, or a number within `min..=max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchParam {
    /// Its name, written `{name}` in the entry's `args`.
    pub name: String,
    /// The allowed values; empty for a number within `min..=max`.
    #[serde(default)]
    pub choices: Vec<String>,
    /// Smallest number allowed (numbers only).
    pub min: Option<f64>,
    /// Largest number allowed (numbers only).
    pub max: Option<f64>,
    /// Whole numbers only (numbers only).
    #[serde(default)]
    pub integer: bool,
    /// The value the form starts with; itself allowed.
    pub default: String,
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The `{name}` placeholders of `arg`.
fn placeholders(arg: &str) -> Vec<&str> {
    arg.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name)).collect()
}

impl LaunchParam {
    /// The value to substitute for `given`, or why it is not allowed.
    pub fn check(&self, given: &str) -> Result<String, String> {
        let given = given.trim();
        if !self.choices.is_empty() {
            return self.choices.iter().find(|c| c.as_str() == given).cloned().ok_or_else(|| format!("{} `{given}` is not one of {}", self.name, self.choices.join(", ")));
        }
        let n: f64 = given.parse().ok().filter(|n: &f64| n.is_finite()).ok_or_else(|| format!("{} `{given}` is not a number", self.name))?;
        if self.integer && n.fract() != 0.0 {
            return Err(format!("{} `{given}` is not a whole number", self.name));
        }
        let (min, max) = (self.min.unwrap_or(f64::NEG_INFINITY), self.max.unwrap_or(f64::INFINITY));
        if n < min {
            return Err(format!("{} {given} is below the minimum {min}", self.name));
        }
        if n > max {
            return Err(format!("{} {given} is above the maximum {max}", self.name));
        }
        // The number as Rust writes it: no sign tricks, exponents or spaces reach the command.
        Ok(if self.integer { format!("{}", n as i64) } else { format!("{n}") })
    }

    /// The form field's kind for the page.
    pub fn is_number(&self) -> bool {
        self.choices.is_empty()
    }
}

impl LaunchEntry {
    /// Checks the entry as configured; the error names the entry and what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let at = format!("[[dashboard.launch]] `{}`", self.name);
        if !is_name(&self.name) {
            return Err(format!("{at}: a name has letters, digits, `-` and `_` only (at most 64)"));
        }
        if !ALLOWED_COMMANDS.iter().any(|c| self.args.len() > c.len() && self.args[..c.len()].iter().zip(c.iter()).all(|(a, b)| a == b)) {
            return Err(format!("{at}: args must start with `bench` or `cluster run` (a subcommand of the bench path), not {:?}", self.args.iter().take(2).collect::<Vec<_>>()));
        }
        let used: Vec<&str> = self.args.iter().flat_map(|a| placeholders(a)).collect();
        for name in &used {
            if !self.params.iter().any(|p| p.name == *name) {
                return Err(format!("{at}: args use {{{name}}}, which is not among its params"));
            }
        }
        for (i, p) in self.params.iter().enumerate() {
            if !is_name(&p.name) || self.params[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("{at}: parameter `{}` needs a unique name of letters, digits, `-` and `_`", p.name));
            }
            if !used.contains(&p.name.as_str()) {
                return Err(format!("{at}: parameter `{}` is not used in args", p.name));
            }
            if p.choices.is_empty() && (p.min.is_none() || p.max.is_none()) {
                return Err(format!("{at}: parameter `{}` needs choices, or min and max", p.name));
            }
            p.check(&p.default).map_err(|e| format!("{at}: the default of {e}"))?;
        }
        Ok(())
    }

    /// The command's arguments for the values a person gave (`name`, value pairs; a missing
    /// one takes its default), or why they are refused.
    pub fn render(&self, given: &[(String, String)]) -> Result<Vec<String>, String> {
        let mut values: Vec<(String, String)> = Vec::new();
        for (name, value) in given {
            let Some(p) = self.params.iter().find(|p| p.name == *name) else {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                return Err(format!("`{name}` is not a parameter of {}; its parameters: {}", self.name, known.join(", ")));
            };
            if values.iter().any(|(n, _)| n == name) {
                return Err(format!("{name} is given twice"));
            }
            values.push((name.clone(), p.check(value)?));
        }
        for p in &self.params {
            if !values.iter().any(|(n, _)| *n == p.name) {
                values.push((p.name.clone(), p.check(&p.default)?));
            }
        }
        Ok(self
            .args
            .iter()
            .map(|a| values.iter().fold(a.clone(), |arg, (name, value)| arg.replace(&format!("{{{name}}}"), value)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> LaunchEntry {
        // As `[[dashboard.launch]]` is read (the example config's test parses the TOML).
        serde_json::from_value(serde_json::json!({
            "name": "sleep-bench",
            "args": ["bench", "cmd", "--iterations", "{iterations}", "--", "sleep", "{pause}"],
            "params": [
                { "name": "iterations", "min": 2, "max": 50, "integer": true, "default": "5" },
                { "name": "pause", "choices": ["0.01", "0.02"], "default": "0.01" },
            ],
        }))
        .expect("an entry parses")
    }

    #[test]
    fn values_are_checked_then_substituted() {
        let e = entry();
        e.validate().unwrap();
        let given = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        assert_eq!(e.render(&given(&[("iterations", "8"), ("pause", "0.02")])).unwrap(), ["bench", "cmd", "--iterations", "8", "--", "sleep", "0.02"]);
        assert_eq!(e.render(&[]).unwrap()[3], "5", "a missing value takes the default");
        assert_eq!(e.render(&given(&[("iterations", "1e1")])).unwrap()[3], "10", "the number as written by Rust");
        for (pairs, why) in [
            (given(&[("iterations", "100000")]), "iterations 100000 is above the maximum 50"),
            (given(&[("iterations", "1")]), "iterations 1 is below the minimum 2"),
            (given(&[("iterations", "2.5")]), "iterations `2.5` is not a whole number"),
            (given(&[("iterations", "NaN")]), "iterations `NaN` is not a number"),
            (given(&[("iterations", "5; rm -rf /")]), "iterations `5; rm -rf /` is not a number"),
            (given(&[("pause", "0.5")]), "pause `0.5` is not one of 0.01, 0.02"),
            (given(&[("command", "rm")]), "`command` is not a parameter of sleep-bench; its parameters: iterations, pause"),
            (given(&[("pause", "0.01"), ("pause", "0.02")]), "pause is given twice"),
        ] {
            assert_eq!(e.render(&pairs).unwrap_err(), why);
        }
    }

    #[test]
    fn a_template_is_checked_when_configured() {
        let mut e = entry();
        e.args[0] = "sql".into();
        assert!(e.validate().unwrap_err().contains("args must start with `bench` or `cluster run`"));
        let mut e = entry();
        e.args.push("{missing}".into());
        assert!(e.validate().unwrap_err().contains("args use {missing}, which is not among its params"));
        let mut e = entry();
        e.params[0].default = "500".into();
        assert!(e.validate().unwrap_err().contains("the default of iterations 500 is above the maximum 50"));
        let mut e = entry();
        e.params[1].choices.clear();
        assert!(e.validate().unwrap_err().contains("parameter `pause` needs choices, or min and max"));
        let mut e = entry();
        e.name = "a b".into();
        assert!(e.validate().unwrap_err().contains("a name has letters"));
    }
}
