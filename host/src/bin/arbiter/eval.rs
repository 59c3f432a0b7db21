//! `arbiter eval`: decide actions from a file with the plugins of a config.

use super::{EXIT_ALLOW, EXIT_DENY, EXIT_STEP_UP};
use anyhow::{Context, Result, bail};
use arbiter_host::{Action, Arbiter, Decision, DecisionEffect};
use serde_json::Value;
use std::path::PathBuf;

/// Arguments of `arbiter eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The Arbiter config file (TOML).
    #[arg(long, short)]
    config: PathBuf,
    /// A JSON file holding one action, or an array of actions of one task in order.
    /// `-` reads standard input.
    action: PathBuf,
    /// Print a readable summary instead of JSON.
    #[arg(long)]
    explain: bool,
}

/// Runs `eval`, returning the exit status.
pub fn run(args: &EvalArgs) -> Result<u8> {
    let text = if args.action.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the action from stdin")?
    } else {
        std::fs::read_to_string(&args.action)
            .with_context(|| format!("cannot read action file `{}`", args.action.display()))?
    };
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not valid JSON", args.action.display()))?;
    let (actions, is_list) = match value {
        Value::Array(items) => {
            if items.is_empty() {
                bail!("`{}` holds an empty list of actions", args.action.display());
            }
            let mut actions = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                actions.push(Action::from_value(item).with_context(|| format!("action [{i}]"))?);
            }
            (actions, true)
        }
        other => (vec![Action::from_value(other)?], false),
    };
    let arbiter = Arbiter::from_config_file(&args.config)
        .with_context(|| format!("cannot start with config `{}`", args.config.display()))?;
    let decisions: Vec<Decision> = actions.iter().map(|a| arbiter.decide(a)).collect();
    if args.explain {
        for d in &decisions {
            println!("{}\n", d.explain());
        }
    } else if is_list {
        println!("{}", serde_json::to_string_pretty(&decisions)?);
    } else if let Some(d) = decisions.first() {
        println!("{}", serde_json::to_string_pretty(d)?);
    }
    let worst = decisions
        .iter()
        .map(|d| d.effect)
        .fold(DecisionEffect::Allow, |acc, e| match (acc, e) {
            (DecisionEffect::Deny, _) | (_, DecisionEffect::Deny) => DecisionEffect::Deny,
            (DecisionEffect::StepUp, _) | (_, DecisionEffect::StepUp) => DecisionEffect::StepUp,
            _ => DecisionEffect::Allow,
        });
    Ok(match worst {
        DecisionEffect::Allow => EXIT_ALLOW,
        DecisionEffect::Deny => EXIT_DENY,
        DecisionEffect::StepUp => EXIT_STEP_UP,
    })
}
