//! The order form (`/orders/new`, `/orders/{id}` to edit) and the drafts list (`/orders`).
//!
//! Opening the form refreshes the customers (smart customer sync, held while the tab shows the
//! form) and says how fresh they are, live. A customer is picked by typing (arrow keys and Enter,
//! no mouse needed), lines from the synced products with their synced prices. Save draft keeps
//! the draft and clears the form for the next order; Done goes to the drafts list, where a draft
//! is edited, deleted, or marked ready for the daily sync's export.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::{
    api::{
        orders::{
            get_draft, list_drafts, search_customers, search_products, DeleteDraft, MarkDraftReady,
            SaveDraft,
        },
        UiError,
    },
    components::{time_of_day, Can, PageHeader},
    hooks::{use_live_events, use_smart_sync, SmartSync},
    model::{
        money, CustomerHit, Draft, DraftInput, DraftLineInput, DraftStatus, EventKind, ProductHit,
        Role,
    },
};

/// A line being entered.
#[derive(Clone, Debug, PartialEq)]
struct Line {
    product: ProductHit,
    /// As typed: checked before saving.
    quantity: String,
}

impl Line {
    fn quantity(&self) -> Option<i64> {
        self.quantity.trim().parse::<i64>().ok().filter(|q| *q >= 1)
    }

    fn total(&self) -> Option<i64> {
        Some(self.quantity()? * self.product.price_cents?)
    }
}

/// The customers' freshness, in words, from the smart sync's answer and the live events.
fn freshness(smart: SmartSync) -> impl Fn() -> (String, &'static str) {
    let live = use_live_events();
    move || {
        let Some(answer) = smart.answer.get() else {
            return ("Checking the customers…".into(), "pending");
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) => {
                return (
                    format!(
                    "Working on the customers already synced (the refresh could not start: {err})"
                ),
                    "error",
                )
            }
        };
        let cached = answer
            .customers_fresh_as_of
            .map(|at| format!("from {}", time_of_day(at)))
            .unwrap_or_else(|| "(never synced)".into());
        let Some(job) = answer.customers_job_id.clone() else {
            return match answer.customers_fresh_as_of {
                Some(at) => (
                    format!("Customers fresh as of {}", time_of_day(at)),
                    "fresh",
                ),
                None => ("Customers have not been synced yet".into(), "error"),
            };
        };
        // The newest word on that job in the live events.
        let ended = live.recent.with(|recent| {
            recent.iter().find_map(|e| match &e.kind {
                EventKind::SyncCompleted(j) if j.id == job => Some(Ok(j.started_at)),
                EventKind::SyncError(j) | EventKind::SyncCancelled(j) if j.id == job => {
                    Some(Err(j.error.clone().unwrap_or_else(|| "cancelled".into())))
                }
                _ => None,
            })
        });
        match ended {
            Some(Ok(at)) => (
                format!(
                    "Customers fresh as of {}",
                    at.map(time_of_day).unwrap_or_default()
                ),
                "fresh",
            ),
            Some(Err(error)) => (
                format!("Working on cached customers {cached} (sync failed: {error})"),
                "error",
            ),
            None => match live.progress_of(&job) {
                Some(p) => (
                    match p.total {
                        Some(total) => format!(
                            "Customers syncing… {} / {}",
                            thousands(p.processed),
                            thousands(total)
                        ),
                        None => format!("Customers syncing… {}", thousands(p.processed)),
                    },
                    "syncing",
                ),
                None => ("Customers syncing…".into(), "syncing"),
            },
        }
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The field errors of a server refusal (`customer_id: …; lines[0].quantity: …`).
fn field_errors(message: &str) -> Vec<(String, String)> {
    message
        .split("; ")
        .filter_map(|part| part.split_once(": "))
        .map(|(f, m)| (f.to_string(), m.to_string()))
        .collect()
}

/// Route component for `/orders/new` and `/orders/{id}`.
#[component]
pub fn OrderFormPage() -> impl IntoView {
    let params = use_params_map();
    let editing = move || {
        params
            .read()
            .get("id")
            .and_then(|id| id.parse::<i64>().ok())
    };
    let smart = use_smart_sync();
    let fresh = {
        let words = freshness(smart);
        Memo::new(move |_| words())
    };
    let customer = RwSignal::new(None::<CustomerHit>);
    let lines = RwSignal::new(Vec::<Line>::new());
    let note = RwSignal::new(String::new());
    let errors = RwSignal::new(Vec::<(String, String)>::new());
    let saved = RwSignal::new(None::<i64>);
    let save = ServerAction::<SaveDraft>::new();
    let navigate = use_navigate();
    // Editing: the draft fills the form once.
    let loaded = Resource::new(editing, |id| async move {
        match id {
            Some(id) => get_draft(id).await.map(Some),
            None => Ok(None),
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(Some(draft))) = loaded.get() {
            customer.set(Some(CustomerHit {
                id: draft.customer_id.clone(),
                name: draft.customer_name.clone(),
                city: None,
            }));
            lines.set(
                draft
                    .lines
                    .iter()
                    .map(|l| Line {
                        product: ProductHit {
                            id: l.product_id.clone(),
                            name: l.name.clone(),
                            unit: None,
                            price_cents: Some(l.price_cents),
                        },
                        quantity: l.quantity.to_string(),
                    })
                    .collect(),
            );
            note.set(draft.note.clone().unwrap_or_default());
        }
    });
    Effect::new(move |_| match save.value().get() {
        Some(Ok(draft)) => {
            errors.set(Vec::new());
            if editing().is_some() {
                navigate("/orders", Default::default());
                return;
            }
            saved.set(Some(draft.id));
            customer.set(None);
            lines.set(Vec::new());
            note.set(String::new());
        }
        Some(Err(UiError::Invalid(message))) => errors.set(field_errors(&message)),
        Some(Err(other)) => errors.set(vec![("form".into(), other.to_string())]),
        None => {}
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(None);
        // What can be told here is told here; the server checks everything again.
        let mut wrong = Vec::new();
        if customer.with_untracked(Option::is_none) {
            wrong.push(("customer_id".to_string(), "choose a customer".to_string()));
        }
        lines.with_untracked(|lines| {
            if lines.is_empty() {
                wrong.push(("lines".into(), "add at least one line".into()));
            }
            for (i, line) in lines.iter().enumerate() {
                if line.quantity().is_none() {
                    wrong.push((
                        format!("lines[{i}].quantity"),
                        "a whole number of at least 1".into(),
                    ));
                }
            }
        });
        if !wrong.is_empty() {
            errors.set(wrong);
            return;
        }
        let input = DraftInput {
            customer_id: customer.get_untracked().map(|c| c.id).unwrap_or_default(),
            lines: lines.with_untracked(|lines| {
                lines
                    .iter()
                    .map(|l| DraftLineInput {
                        product_id: l.product.id.clone(),
                        quantity: l.quantity().unwrap_or(0),
                    })
                    .collect()
            }),
            note: Some(note.get_untracked()).filter(|n| !n.trim().is_empty()),
        };
        save.dispatch(SaveDraft {
            id: editing(),
            input,
        });
    };
    let error_of = move |field: &'static str| {
        move || errors.with(|e| e.iter().find(|(f, _)| f == field).map(|(_, m)| m.clone()))
    };
    let total = move || lines.with(|lines| lines.iter().filter_map(Line::total).sum::<i64>());
    let title = move || {
        if editing().is_some() {
            "Edit draft"
        } else {
            "Order form"
        }
    };
    view! {
        <PageHeader title="Order form" purpose="Enter orders for customers refreshed from the ERP as the form opens; save several drafts in a row."/>
        <p class=move || format!("freshness freshness-{}", fresh.get().1) data-testid="freshness" role="status">
            {move || fresh.get().0}
        </p>
        <form class="panel order-form" on:submit=submit novalidate>
            <h2>{title}</h2>
            <Show when=move || saved.get().is_some()>
                <p class="notice notice-ok" role="status" data-testid="saved">
                    {move || format!("Draft {} saved. The form is ready for the next order.", saved.get().unwrap_or_default())}
                </p>
            </Show>
            <Show when=move || error_of("form")().is_some()>
                <p class="notice notice-error" role="alert">{error_of("form")}</p>
            </Show>
            <CustomerPicker customer error=Signal::derive(error_of("customer_id"))/>
            <fieldset class="lines">
                <legend>"Lines"</legend>
                <table class="table" data-testid="lines">
                    <thead><tr><th>"Product"</th><th>"Quantity"</th><th>"Price"</th><th>"Line total"</th><th></th></tr></thead>
                    <tbody>
                        <For
                            each=move || lines.get().into_iter().enumerate()
                            key=|(i, line)| (*i, line.product.id.clone())
                            children=move |(i, line)| {
                                let field = format!("lines[{i}].quantity");
                                let product_field = format!("lines[{i}].product_id");
                                let qty_error = move || errors.with(|e| e.iter().find(|(f, _)| *f == field).map(|(_, m)| m.clone()));
                                let product_error = move || errors.with(|e| e.iter().find(|(f, _)| *f == product_field).map(|(_, m)| m.clone()));
                                let price = line.product.price_cents;
                                view! {
                                    <tr>
                                        <td>
                                            {line.product.name.clone()}
                                            <span class="muted small">{format!(" {}", line.product.id)}</span>
                                            {move || product_error().map(|m| view! { <span class="field-error">{m}</span> })}
                                        </td>
                                        <td>
                                            <input
                                                class="quantity"
                                                type="text"
                                                inputmode="numeric"
                                                aria-label=format!("Quantity of {}", line.product.name)
                                                prop:value=line.quantity.clone()
                                                on:input=move |ev| lines.update(|lines| {
                                                    if let Some(l) = lines.get_mut(i) {
                                                        l.quantity = event_target_value(&ev);
                                                    }
                                                })
                                            />
                                            {move || qty_error().map(|m| view! { <span class="field-error">{m}</span> })}
                                        </td>
                                        <td>{price.map(money).unwrap_or_else(|| "no price".into())}</td>
                                        <td>{move || lines.with(|lines| lines.get(i).and_then(Line::total).map(money).unwrap_or_default())}</td>
                                        <td>
                                            <button type="button" class="button button-quiet" on:click=move |_| lines.update(|lines| { if i < lines.len() { lines.remove(i); } })>
                                                "Remove"
                                            </button>
                                        </td>
                                    </tr>
                                }
                            }
                        />
                    </tbody>
                    <tfoot><tr><th colspan="3">"Order total"</th><th data-testid="order-total">{move || money(total())}</th><th></th></tr></tfoot>
                </table>
                {move || error_of("lines")().map(|m| view! { <p class="field-error">{m}</p> })}
                <ProductPicker lines/>
            </fieldset>
            <label class="note">
                "Note "
                <input type="text" name="note" maxlength="1000" prop:value=move || note.get() on:input=move |ev| note.set(event_target_value(&ev))/>
            </label>
            <div class="form-actions">
                <button class="button" type="submit" disabled=move || save.pending().get() data-testid="save-draft">
                    {move || if editing().is_some() { "Save changes" } else { "Save draft" }}
                </button>
                <a class="button button-quiet" href="/orders" data-testid="done">"Done"</a>
            </div>
        </form>
    }
}

/// What `search` finds for what is typed in `query`, searched as the person types, in the
/// browser only (nothing to render on the server). Only the answer to what is typed now: while a
/// newer search runs it is empty, so Enter picks nothing rather than a match of an earlier
/// keystroke.
fn typed_search<T, F, Fut>(query: ReadSignal<String>, search: F) -> impl Fn() -> Vec<T> + Copy
where
    T: Clone + 'static,
    F: Fn(String) -> Fut + Copy + 'static,
    Fut: std::future::Future<Output = Result<Vec<T>, UiError>> + 'static,
{
    let hits = LocalResource::new(move || {
        let q = query.get();
        async move {
            let found = if q.trim().is_empty() {
                Ok(Vec::new())
            } else {
                search(q.clone()).await
            };
            (q, found)
        }
    });
    move || {
        hits.get()
            .filter(|(q, _)| *q == query.get())
            .and_then(|(_, found)| found.ok())
            .unwrap_or_default()
    }
}

/// Type to find a customer; arrow keys move, Enter picks, Escape closes.
#[component]
fn CustomerPicker(
    customer: RwSignal<Option<CustomerHit>>,
    error: Signal<Option<String>>,
) -> impl IntoView {
    let (query, set_query) = signal(String::new());
    let (open, set_open) = signal(false);
    let active = RwSignal::new(0usize);
    let list = typed_search(query, search_customers);
    let pick = move |hit: CustomerHit| {
        customer.set(Some(hit));
        set_query.set(String::new());
        set_open.set(false);
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let n = list().len();
        match ev.key().as_str() {
            "ArrowDown" if n > 0 => {
                ev.prevent_default();
                set_open.set(true);
                active.update(|a| *a = (*a + 1).min(n - 1));
            }
            "ArrowUp" if n > 0 => {
                ev.prevent_default();
                active.update(|a| *a = a.saturating_sub(1));
            }
            "Enter" => {
                ev.prevent_default();
                if let Some(hit) = list().get(active.get_untracked()).cloned() {
                    pick(hit);
                }
            }
            "Escape" => set_open.set(false),
            _ => {}
        }
    };
    view! {
        <div class="picker">
            <label for="customer-search">"Customer"</label>
            {move || customer.get().map(|c| view! {
                <p class="picked" data-testid="customer">
                    <strong>{c.name.clone()}</strong>
                    <span class="muted">{format!(" {}{}", c.id, c.city.map(|city| format!(" · {city}")).unwrap_or_default())}</span>
                </p>
            })}
            <input
                id="customer-search"
                type="search"
                role="combobox"
                autocomplete="off"
                aria-expanded=move || (open.get() && !list().is_empty()).to_string()
                aria-controls="customer-options"
                placeholder=move || if customer.with(Option::is_some) { "Type to change the customer" } else { "Type a name or an id" }
                prop:value=move || query.get()
                on:input=move |ev| { set_query.set(event_target_value(&ev)); active.set(0); set_open.set(true); }
                on:keydown=on_key
            />
            {move || error.get().map(|m| view! { <span class="field-error" data-testid="customer-error">{m}</span> })}
            <Show when=move || open.get() && !list().is_empty()>
                <ul id="customer-options" class="options" role="listbox" aria-label="Customers">
                    {move || list().into_iter().enumerate().map(|(i, hit)| {
                        let chosen = hit.clone();
                        view! {
                            <li
                                role="option"
                                aria-selected=move || (active.get() == i).to_string()
                                class:active=move || active.get() == i
                                on:mousedown=move |ev| { ev.prevent_default(); pick(chosen.clone()); }
                            >
                                <strong>{hit.name.clone()}</strong>
                                <span class="muted">{format!(" {}{}", hit.id, hit.city.clone().map(|c| format!(" · {c}")).unwrap_or_default())}</span>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </Show>
        </div>
    }
}

/// Type to find a product; Enter adds the highlighted one as a line.
#[component]
fn ProductPicker(lines: RwSignal<Vec<Line>>) -> impl IntoView {
    let (query, set_query) = signal(String::new());
    let active = RwSignal::new(0usize);
    let list = typed_search(query, search_products);
    let add = move |product: ProductHit| {
        lines.update(
            |lines| match lines.iter_mut().find(|l| l.product.id == product.id) {
                Some(line) => {
                    let q = line.quantity().unwrap_or(0) + 1;
                    line.quantity = q.to_string();
                }
                None => lines.push(Line {
                    product,
                    quantity: "1".into(),
                }),
            },
        );
        set_query.set(String::new());
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let n = list().len();
        match ev.key().as_str() {
            "ArrowDown" if n > 0 => {
                ev.prevent_default();
                active.update(|a| *a = (*a + 1).min(n - 1));
            }
            "ArrowUp" if n > 0 => {
                ev.prevent_default();
                active.update(|a| *a = a.saturating_sub(1));
            }
            "Enter" => {
                ev.prevent_default();
                if let Some(hit) = list().get(active.get_untracked()).cloned() {
                    add(hit);
                }
            }
            _ => {}
        }
    };
    view! {
        <div class="picker">
            <label for="product-search">"Add a product"</label>
            <input
                id="product-search"
                type="search"
                role="combobox"
                autocomplete="off"
                aria-controls="product-options"
                aria-expanded=move || (!list().is_empty()).to_string()
                placeholder="Type a product name or id"
                prop:value=move || query.get()
                on:input=move |ev| { set_query.set(event_target_value(&ev)); active.set(0); }
                on:keydown=on_key
            />
            <Show when=move || !list().is_empty()>
                <ul id="product-options" class="options" role="listbox" aria-label="Products">
                    {move || list().into_iter().enumerate().map(|(i, hit)| {
                        let chosen = hit.clone();
                        view! {
                            <li
                                role="option"
                                aria-selected=move || (active.get() == i).to_string()
                                class:active=move || active.get() == i
                                on:mousedown=move |ev| { ev.prevent_default(); add(chosen.clone()); }
                            >
                                <strong>{hit.name.clone()}</strong>
                                <span class="muted">{format!(" {} · {}", hit.id, hit.price_cents.map(money).unwrap_or_else(|| "no price".into()))}</span>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </Show>
        </div>
    }
}

/// Route component for `/orders`: the drafts.
#[component]
pub fn DraftsPage() -> impl IntoView {
    let ready = ServerAction::<MarkDraftReady>::new();
    let delete = ServerAction::<DeleteDraft>::new();
    let live = use_live_events();
    let changed = live.job_changes();
    let drafts = Resource::new(
        move || (ready.version().get(), delete.version().get(), changed.get()),
        |_| list_drafts(),
    );
    let confirming = RwSignal::new(None::<i64>);
    let error = move || {
        let failed = |e: Option<String>| e;
        failed(
            ready
                .value()
                .get()
                .and_then(Result::err)
                .map(|e| e.to_string()),
        )
        .or_else(|| {
            delete
                .value()
                .get()
                .and_then(Result::err)
                .map(|e| e.to_string())
        })
    };
    view! {
        <PageHeader title="Drafts" purpose="Orders saved from the order form: edit them, delete them, or mark them ready for the daily sync's export."/>
        <Can role=Role::Staff>
            <p><a class="button" href="/orders/new">"New order"</a></p>
        </Can>
        <Show when=move || error().is_some()>
            <p class="notice notice-error" role="alert">{move || error().unwrap_or_default()}</p>
        </Show>
        <Transition fallback=|| view! { <p class="loading">"Loading drafts…"</p> }>
            {move || drafts.get().map(|result| match result {
                Err(err) => view! { <p class="notice notice-error">{err.to_string()}</p> }.into_any(),
                Ok(list) if list.is_empty() => view! { <p class="panel muted" data-testid="no-drafts">"No drafts yet."</p> }.into_any(),
                Ok(list) => view! {
                    <section class="panel">
                        <table class="table" data-testid="drafts">
                            <thead><tr><th>"Draft"</th><th>"Customer"</th><th>"Lines"</th><th>"Total"</th><th>"State"</th><th>"Saved"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|d| view! { <DraftRow d ready delete confirming/> }).collect_view()}
                            </tbody>
                        </table>
                    </section>
                }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn DraftRow(
    d: Draft,
    ready: ServerAction<MarkDraftReady>,
    delete: ServerAction<DeleteDraft>,
    confirming: RwSignal<Option<i64>>,
) -> impl IntoView {
    let id = d.id;
    let staff = crate::hooks::can(Role::Staff);
    let state = match d.status {
        DraftStatus::Exported => format!(
            "exported {}",
            d.exported_at.map(time_of_day).unwrap_or_default()
        ),
        other => other.as_str().to_string(),
    };
    let actions = (staff && d.status != DraftStatus::Exported).then(|| {
        view! {
            <a class="button button-quiet" href=format!("/orders/{id}")>"Edit"</a>
            {(d.status == DraftStatus::Draft).then(|| view! {
                <button class="button" on:click=move |_| { ready.dispatch(MarkDraftReady { id }); }>"Mark ready"</button>
            })}
            {move || if confirming.get() == Some(id) {
                view! {
                    <button class="button button-secondary" on:click=move |_| { confirming.set(None); delete.dispatch(DeleteDraft { id }); }>"Delete for good"</button>
                    <button class="button button-quiet" on:click=move |_| confirming.set(None)>"Keep"</button>
                }.into_any()
            } else {
                view! { <button class="button button-quiet" on:click=move |_| confirming.set(Some(id))>"Delete"</button> }.into_any()
            }}
        }
    });
    view! {
        <tr data-draft=id.to_string() data-status=d.status.as_str()>
            <td>{format!("Draft {id}")}</td>
            <td>{d.customer_name.clone()}<span class="muted small">{format!(" {}", d.customer_id)}</span></td>
            <td>{d.lines.iter().map(|l| format!("{} × {}", l.quantity, l.name)).collect::<Vec<_>>().join(", ")}</td>
            <td>{money(d.total_cents)}</td>
            <td><span class=format!("state state-{}", match d.status { DraftStatus::Draft => "idle", DraftStatus::Ready => "running", DraftStatus::Exported => "success" })>{state}</span></td>
            <td class="small">{format!("{} by {}", time_of_day(d.updated_at), d.updated_by)}</td>
            <td class="row-actions">{actions}</td>
        </tr>
    }
}
