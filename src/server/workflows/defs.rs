//! What a workflow is: its steps in order, each running sync types at once, waiting at a gate, or
//! both; the built-in workflows; and a `[workflows.<id>]` table of `baton.toml` made into one.

use serde::{Deserialize, Serialize};

use crate::server::engine::Engine;

/// One step of a workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct StepDef {
    /// What the step is called ("Import web data").
    pub name: String,
    /// The sync types it runs, all at once.
    pub sync_types: Vec<String>,
    /// A gate: the step waits for a person to press this button first.
    pub gate: Option<String>,
    /// A failed job makes the session complete with warnings instead of failing it.
    pub continue_on_failure: bool,
}

impl StepDef {
    /// A step running `sync_types`, behind the button `gate` if given.
    pub fn new(
        name: &str,
        sync_types: &[&str],
        gate: Option<&str>,
        continue_on_failure: bool,
    ) -> Self {
        Self {
            name: name.into(),
            sync_types: sync_types.iter().map(|t| t.to_string()).collect(),
            gate: gate.map(str::to_string),
            continue_on_failure,
        }
    }
}

/// A workflow: an id, a name, its steps in order.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowDef {
    /// `daily-sync`, `employee-sync`, …
    pub id: String,
    /// Its name for people.
    pub name: String,
    /// The steps, in order.
    pub steps: Vec<StepDef>,
}

/// A workflow as `baton.toml` defines it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowConfig {
    /// Its name for people; the id when unset.
    pub name: Option<String>,
    /// The steps, in order.
    pub steps: Vec<WorkflowStepConfig>,
    /// When a session starts by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::model::ScheduleSpec>,
}

/// One step of a configured workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowStepConfig {
    /// What the step is called.
    pub name: String,
    /// The sync types it runs, all at once.
    #[serde(default)]
    pub sync_types: Vec<String>,
    /// A button label: the step waits for a person to press it before its jobs run.
    pub gate: Option<String>,
    /// A failed job makes the session complete with warnings instead of failing it.
    #[serde(default)]
    pub continue_on_failure: bool,
}

impl WorkflowDef {
    /// The workflow `baton.toml` defines as `[workflows.<id>]`.
    pub fn from_config(id: &str, config: &WorkflowConfig) -> Self {
        Self {
            id: id.to_string(),
            name: config.name.clone().unwrap_or_else(|| id.to_string()),
            steps: config
                .steps
                .iter()
                .map(|s| StepDef {
                    name: s.name.clone(),
                    sync_types: s.sync_types.clone(),
                    gate: s.gate.clone(),
                    continue_on_failure: s.continue_on_failure,
                })
                .collect(),
        }
    }
}

/// The built-in workflows whose sync types this engine has: `daily-sync` (seed 000: import web
/// data, export orders at a person's click, ERP import, validation, web export at a person's
/// confirmation) and `employee-sync` (seed 004: snapshot, history and change detection, each
/// allowed to fail without stopping the others).
pub fn built_in_workflows(engine: &Engine) -> Vec<WorkflowDef> {
    let step = StepDef::new;
    let all = [
        WorkflowDef {
            id: "daily-sync".into(),
            name: "Daily sync".into(),
            steps: vec![
                step("Import web data", &["orders", "products"], None, false),
                step(
                    "Export orders",
                    &["export-orders", "export-drafts"],
                    Some("Export Orders"),
                    false,
                ),
                step(
                    "ERP import",
                    &["customers", "prices", "ddt", "invoices"],
                    None,
                    false,
                ),
                step("Validation", &["validate"], None, true),
                step("Web export", &["web-export"], Some("Confirm"), false),
            ],
        },
        WorkflowDef {
            id: "employee-sync".into(),
            name: "Employee sync".into(),
            steps: vec![
                step("Snapshot collector", &["employee-snapshot"], None, true),
                step("History collector", &["employee-history"], None, true),
                step("Change detector", &["employee-changes"], None, true),
            ],
        },
    ];
    let known: std::collections::BTreeSet<String> =
        engine.types().into_iter().map(|t| t.name.clone()).collect();
    all.into_iter()
        .filter(|w| {
            w.steps
                .iter()
                .flat_map(|s| &s.sync_types)
                .all(|t| known.contains(t))
        })
        .collect()
}
