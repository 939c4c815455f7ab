//! The Syncs page's schedules and run history: every schedule with its timing, next run and
//! last fire; on/off, edit (with a preview of the next five runs and a field error for what
//! cannot be used) and Run now; a chart of each type's last 100 runs. Every change goes through
//! the same scheduler calls as the API, and every open page follows `schedule-updated` events.

use leptos::prelude::*;

use crate::{
    api::schedules::{
        list_schedules, preview_schedule, run_histories, sync_stats, Checked, RunSchedule,
        SaveSchedule,
    },
    components::{duration_text, time_of_day, RunChart},
    hooks::{can, use_live_events},
    model::{FireOutcome, OnMissed, Role, ScheduleSpec, ScheduleView},
};

/// What the open editor holds: kept by the panel, so a list read again (a fire, another
/// person's edit, a refused save) neither closes it nor loses what was typed.
#[derive(Clone, Copy)]
struct Draft {
    /// The schedule being edited.
    id: RwSignal<Option<String>>,
    kind: RwSignal<&'static str>,
    every: RwSignal<String>,
    cron: RwSignal<String>,
    tz: RwSignal<String>,
    skip: RwSignal<bool>,
    enabled: RwSignal<bool>,
}

impl Draft {
    fn new() -> Self {
        Self {
            id: RwSignal::new(None),
            kind: RwSignal::new("every"),
            every: RwSignal::new(String::new()),
            cron: RwSignal::new(String::new()),
            tz: RwSignal::new(String::new()),
            skip: RwSignal::new(false),
            enabled: RwSignal::new(true),
        }
    }

    /// Opens the editor on schedule `id` as `spec` says.
    fn open(self, id: &str, spec: &ScheduleSpec) {
        self.kind
            .set(if spec.cron.is_some() { "cron" } else { "every" });
        self.every
            .set(spec.every.clone().unwrap_or_else(|| "1h".into()));
        self.cron
            .set(spec.cron.clone().unwrap_or_else(|| "0 12 * * *".into()));
        self.tz.set(spec.tz.clone().unwrap_or_default());
        self.skip.set(spec.on_missed == OnMissed::Skip);
        self.enabled.set(spec.enabled);
        self.id.set(Some(id.to_string()));
    }

    /// The timing fields as typed: (every, cron, tz), the unused kind empty.
    fn fields(self) -> (String, String, String) {
        if self.kind.get() == "cron" {
            (String::new(), self.cron.get(), self.tz.get())
        } else {
            (self.every.get(), String::new(), String::new())
        }
    }
}

/// The schedules panel.
#[component]
pub fn SchedulesPanel() -> impl IntoView {
    let live = use_live_events();
    let changed = live.schedule_changes();
    let save = ServerAction::<SaveSchedule>::new();
    let run = ServerAction::<RunSchedule>::new();
    let draft = Draft::new();
    // Saves that worked (a refused one changes nothing to read again).
    let saved = RwSignal::new(0u32);
    let schedules = Resource::new(
        move || (changed.get(), live.resyncs.get(), saved.get()),
        |_| list_schedules(),
    );
    // A save that was refused keeps the editor open with its field error; one that worked
    // closes it.
    Effect::new(move |_| {
        if let Some(Ok(Checked::Ok(_))) = save.value().get() {
            draft.id.set(None);
            saved.update(|n| *n += 1);
        }
    });
    let error = move || match (save.value().get(), run.value().get()) {
        (Some(Err(err)), _) | (_, Some(Err(err))) => Some(err.to_string()),
        _ => None,
    };
    view! {
        <section class="panel" aria-labelledby="schedules-heading" data-testid="schedules">
            <h2 id="schedules-heading">"Schedules"</h2>
            <p class="muted">"Baton runs these by itself, in the server, whether or not a page is open."</p>
            <Show when=move || error().is_some()>
                <p class="notice notice-error" role="alert">{move || error().unwrap_or_default()}</p>
            </Show>
            <Transition fallback=|| view! { <p class="loading">"Loading schedules…"</p> }>
                {move || schedules.get().map(|result| match result {
                    Ok(list) => view! {
                        <table class="schedule-table">
                            <thead>
                                <tr>
                                    <th scope="col">"Schedule"</th>
                                    <th scope="col">"When"</th>
                                    <th scope="col">"Next run"</th>
                                    <th scope="col">"Last fire"</th>
                                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                </tr>
                            </thead>
                            <tbody>
                                {list.into_iter().map(|s| view! { <ScheduleRow s save run draft/> }).collect_view()}
                            </tbody>
                        </table>
                    }
                    .into_any(),
                    Err(err) => view! {
                        <p class="notice notice-error" role="alert">{format!("The schedules could not be read: {err}")}</p>
                    }
                    .into_any(),
                })}
            </Transition>
        </section>
    }
    .into_any()
}

#[component]
fn ScheduleRow(
    s: ScheduleView,
    save: ServerAction<SaveSchedule>,
    run: ServerAction<RunSchedule>,
    draft: Draft,
) -> impl IntoView {
    let admin = can(Role::Admin);
    let staff = can(Role::Staff);
    let id = s.id.clone();
    let spec = s.spec.clone();
    let timing = if spec.enabled {
        spec.timing()
    } else {
        format!("{} (off)", spec.timing())
    };
    let last = s.recent.first().cloned();
    let toggle = {
        let (id, spec) = (id.clone(), spec.clone());
        move |_| {
            let ScheduleSpec {
                every,
                cron,
                tz,
                enabled,
                on_missed,
            } = spec.clone();
            save.dispatch(SaveSchedule {
                id: id.clone(),
                every: every.unwrap_or_default(),
                cron: cron.unwrap_or_default(),
                tz: tz.unwrap_or_default(),
                enabled: !enabled,
                on_missed: on_missed.as_str().into(),
            });
        }
    };
    let open_id = id.clone();
    let is_open = Memo::new(move |_| draft.id.get().as_deref() == Some(open_id.as_str()));
    let edit_id = id.clone();
    let edit_spec = spec.clone();
    let run_id = id.clone();
    view! {
        <tr data-schedule=id.clone() data-enabled=spec.enabled.to_string()>
            <th scope="row">
                <span class="type-name">{id.clone()}</span>
                <span class="type-meta">{s.target.label()}</span>
            </th>
            <td>
                <span data-testid="timing">{timing}</span>
                {s.file.clone().map(|f| view! {
                    <span class="type-meta" data-testid="file-timing">
                        {format!("baton.toml says {}{}", f.timing(), if f.enabled { "" } else { " (off)" })}
                    </span>
                })}
                {s.edited_by.clone().map(|who| view! {
                    <span class="type-meta">{format!("changed by {who}{}", s.edited_at.map(|t| format!(" at {}", time_of_day(t))).unwrap_or_default())}</span>
                })}
            </td>
            <td data-testid="next-run">
                {match s.next_run {
                    Some(t) => view! { <time datetime=t.to_rfc3339()>{t.format("%a %d %b %H:%M:%S UTC").to_string()}</time> }.into_any(),
                    None => view! { <span class="muted">"off"</span> }.into_any(),
                }}
            </td>
            <td>
                {match last {
                    Some(f) => {
                        let class = match f.outcome {
                            FireOutcome::Fired => "state state-success",
                            FireOutcome::Skipped => "state state-idle",
                            FireOutcome::Missed => "state state-error",
                        };
                        view! {
                            <span class=class>{f.outcome.as_str()}</span>
                            <span class="muted">{format!(" {}", time_of_day(f.fire_time))}</span>
                            {f.reason.map(|r| view! { <span class="type-meta">{r}</span> })}
                        }
                        .into_any()
                    }
                    None => view! { <span class="muted">"not yet"</span> }.into_any(),
                }}
            </td>
            <td class="actions">
                {admin.then(|| view! {
                    <label class="switch">
                        <input type="checkbox" data-testid="toggle" prop:checked=spec.enabled
                            disabled=move || save.pending().get()
                            on:change=toggle/>
                        {if spec.enabled { "On" } else { "Off" }}
                    </label>
                    <button class="button button-secondary" data-testid="edit"
                        on:click=move |_| {
                            save.value().set(None);
                            draft.open(&edit_id, &edit_spec);
                        }>"Edit"</button>
                })}
                {staff.then(|| view! {
                    <button class="button" data-testid="run-now" disabled=move || run.pending().get()
                        on:click=move |_| { run.dispatch(RunSchedule { id: run_id.clone() }); }>"Run now"</button>
                })}
            </td>
        </tr>
        <Show when=move || is_open.get()>
            <tr class="editor-row">
                <td colspan="5">
                    <ScheduleEditor save draft/>
                </td>
            </tr>
        </Show>
    }
    .into_any()
}

/// The editor of one schedule: interval or cron, zone, what to do about missed runs; the next
/// five runs as typed; Save.
#[component]
fn ScheduleEditor(save: ServerAction<SaveSchedule>, draft: Draft) -> impl IntoView {
    let Draft {
        kind,
        every,
        cron,
        tz,
        skip,
        ..
    } = draft;
    let fields = move || draft.fields();
    // A refused save's error stands until the fields change; then the preview speaks.
    Effect::new(move |_| {
        let _ = fields();
        save.value().set(None);
    });
    let preview = Resource::new(fields, |(every, cron, tz)| {
        preview_schedule(every, cron, tz)
    });
    // The field error of the last save, or else of the preview.
    let refused = move |field: &'static str| {
        let from_save = match save.value().get() {
            Some(Ok(Checked::Refused { field: f, message })) if f == field => Some(message),
            _ => None,
        };
        from_save.or_else(|| match preview.get() {
            Some(Ok(Checked::Refused { field: f, message })) if f == field => Some(message),
            _ => None,
        })
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (every, cron, tz) = fields();
        save.dispatch(SaveSchedule {
            id: draft.id.get_untracked().unwrap_or_default(),
            every,
            cron,
            tz,
            enabled: draft.enabled.get_untracked(),
            on_missed: if skip.get() { "skip" } else { "run_once" }.into(),
        });
    };
    view! {
        <form class="schedule-editor" data-testid="schedule-editor" on:submit=submit>
            <fieldset>
                <legend>"Runs"</legend>
                <label><input type="radio" name="kind" value="every" prop:checked=move || kind.get() == "every"
                    on:change=move |_| kind.set("every")/>" every"</label>
                <label><input type="radio" name="kind" value="cron" prop:checked=move || kind.get() == "cron"
                    on:change=move |_| kind.set("cron")/>" on a cron schedule"</label>
            </fieldset>
            <Show when=move || kind.get() == "every">
                <label class="field">
                    "Interval"
                    <input type="text" name="every" data-testid="every" placeholder="30m, 6h, 1d"
                        prop:value=move || every.get() on:input=move |ev| every.set(event_target_value(&ev))/>
                    {move || refused("every").map(|m| view! { <span class="field-error" data-testid="every-error">{m}</span> })}
                </label>
            </Show>
            <Show when=move || kind.get() == "cron">
                <label class="field">
                    "Cron (minute hour day month weekday)"
                    <input type="text" name="cron" data-testid="cron" placeholder="0 12 * * *"
                        prop:value=move || cron.get() on:input=move |ev| cron.set(event_target_value(&ev))/>
                    {move || refused("cron").map(|m| view! { <span class="field-error" data-testid="cron-error">{m}</span> })}
                </label>
                <label class="field">
                    "Time zone"
                    <input type="text" name="tz" data-testid="tz" placeholder="the server's (e.g. Europe/Rome)"
                        prop:value=move || tz.get() on:input=move |ev| tz.set(event_target_value(&ev))/>
                    {move || refused("tz").map(|m| view! { <span class="field-error" data-testid="tz-error">{m}</span> })}
                </label>
            </Show>
            <label class="field-inline">
                <input type="checkbox" prop:checked=move || skip.get() on:change=move |ev| skip.set(event_target_checked(&ev))/>
                " after downtime, skip the missed runs (otherwise one of them runs)"
            </label>
            <div class="preview" data-testid="preview" aria-live="polite">
                <Transition fallback=|| ()>
                    {move || preview.get().map(|p| match p {
                        Ok(Checked::Ok(times)) => view! {
                            <span class="muted">"Next runs: "</span>
                            <ol class="next-runs">
                                {times.into_iter().map(|t| view! {
                                    <li><time datetime=t.to_rfc3339()>{t.format("%a %d %b %H:%M UTC").to_string()}</time></li>
                                }).collect_view()}
                            </ol>
                        }
                        .into_any(),
                        Ok(Checked::Refused { .. }) => view! { <span class="muted">"No runs: see the error above."</span> }.into_any(),
                        Err(err) => view! { <span class="row-error">{err.to_string()}</span> }.into_any(),
                    })}
                </Transition>
            </div>
            <div class="editor-actions">
                <button type="submit" class="button" data-testid="save-schedule" disabled=move || save.pending().get()>"Save"</button>
                <button type="button" class="button button-quiet" on:click=move |_| draft.id.set(None)>"Cancel"</button>
            </div>
        </form>
    }
    .into_any()
}

/// Each type's last 100 runs as a chart, read again when a job ends.
#[component]
pub fn HistoryPanel() -> impl IntoView {
    let live = use_live_events();
    let changed = live.job_changes();
    let histories = Resource::new(
        move || (changed.get(), live.resyncs.get()),
        |_| run_histories(),
    );
    view! {
        <section class="panel" aria-labelledby="history-heading" data-testid="history">
            <h2 id="history-heading">"Run history"</h2>
            <p class="muted">"The last 100 runs of each type, oldest on the left: height is how long a run took; × failed, – cancelled. A bar opens its job."</p>
            <Transition fallback=|| view! { <p class="loading">"Loading the history…"</p> }>
                {move || histories.get().map(|result| match result {
                    Ok(list) if list.is_empty() => view! { <p class="muted">"Nothing has run yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <div class="run-charts">
                            {list.into_iter().map(|h| view! { <RunChart sync_type=h.sync_type runs=h.runs/> }).collect_view()}
                        </div>
                    }
                    .into_any(),
                    Err(err) => view! {
                        <p class="notice notice-error" role="alert">{format!("The history could not be read: {err}")}</p>
                    }
                    .into_any(),
                })}
            </Transition>
        </section>
    }
    .into_any()
}

/// Seed 004's statistics: each type's runs per day, success rate, median duration and records
/// changed over the last 7 and 30 days.
#[component]
pub fn StatsPanel() -> impl IntoView {
    let live = use_live_events();
    let changed = live.job_changes();
    let stats = Resource::new(
        move || (changed.get(), live.resyncs.get()),
        |_| sync_stats(),
    );
    let cell = |p: &crate::model::PeriodStats| {
        let rate = p
            .success_rate
            .map(|r| format!("{:.0}%", r * 100.0))
            .unwrap_or_else(|| "–".into());
        let median = p.median_ms.map(duration_text).unwrap_or_else(|| "–".into());
        format!(
            "{:.1}/day · {rate} ok · median {median} · {} changed",
            p.per_day, p.changed
        )
    };
    view! {
        <section class="panel" aria-labelledby="stats-heading" data-testid="stats">
            <h2 id="stats-heading">"Statistics"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading statistics…"</p> }>
                {move || stats.get().map(|result| match result {
                    Ok(list) => {
                        let list: Vec<_> = list.into_iter().filter(|t| t.month.runs > 0).collect();
                        if list.is_empty() {
                            return view! { <p class="muted">"No runs in the last 30 days."</p> }.into_any();
                        }
                        view! {
                            <table class="schedule-table stats-table">
                                <thead>
                                    <tr>
                                        <th scope="col">"Type"</th>
                                        <th scope="col">"Last 7 days"</th>
                                        <th scope="col">"Last 30 days"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list.into_iter().map(|t| view! {
                                        <tr data-stats=t.sync_type.clone()>
                                            <th scope="row"><span class="type-name">{t.sync_type.clone()}</span></th>
                                            <td>{format!("{} runs · {}", t.week.runs, cell(&t.week))}</td>
                                            <td>
                                                {format!("{} runs · {}", t.month.runs, cell(&t.month))}
                                                {t.kept_since.map(|k| view! {
                                                    <span class="type-meta">{format!("only the runs kept, since {}", k.format("%d %b"))}</span>
                                                })}
                                            </td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }
                        .into_any()
                    }
                    Err(err) => view! {
                        <p class="notice notice-error" role="alert">{format!("The statistics could not be read: {err}")}</p>
                    }
                    .into_any(),
                })}
            </Transition>
        </section>
    }
}
