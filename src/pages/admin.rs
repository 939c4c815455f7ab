//! The admin pages: people and their roles, API tokens (created, shown once, revoked), the
//! audit log, and one's own password. Every change goes through a server function that the
//! access layer lets only admins call (the password only its owner), and each is audited.

use leptos::prelude::*;

use crate::{
    api::{
        auth::{
            audit_log, list_tokens, list_users, AddUser, ChangePassword, CreateToken, RemoveUser,
            RevokeToken, SetUserPassword, SetUserRole,
        },
        UiError,
    },
    components::{time_of_day, PageHeader},
    hooks::use_me,
    model::{AuditEntry, Role},
};

/// The error of the last run of any of `actions`, if it failed.
fn failed<T: Clone + Send + Sync + 'static>(value: Option<Result<T, UiError>>) -> Option<String> {
    match value {
        Some(Err(err)) => Some(err.to_string()),
        _ => None,
    }
}

/// Route component for `/admin`: users and API tokens.
#[component]
pub fn AdminPage() -> impl IntoView {
    view! {
        <PageHeader title="Admin" purpose="Who may use Baton, with which role, and the API tokens programs use."/>
        <Users/>
        <Tokens/>
    }
}

#[component]
fn Users() -> impl IntoView {
    let me = use_me();
    let add = ServerAction::<AddUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let set_password = ServerAction::<SetUserPassword>::new();
    let remove = ServerAction::<RemoveUser>::new();
    let users = Resource::new(
        move || {
            (
                add.version().get(),
                set_role.version().get(),
                set_password.version().get(),
                remove.version().get(),
            )
        },
        |_| list_users(),
    );
    let (name, set_name) = signal(String::new());
    let (role, set_new_role) = signal("staff".to_string());
    let (password, set_new_password) = signal(String::new());
    let error = move || {
        failed(add.value().get())
            .or_else(|| failed(set_role.value().get()))
            .or_else(|| failed(set_password.value().get()))
            .or_else(|| failed(remove.value().get()))
    };
    Effect::new(move |_| {
        if let Some(Ok(())) = add.value().get() {
            set_name.set(String::new());
            set_new_password.set(String::new());
        }
    });
    view! {
        <section class="panel" aria-labelledby="users-title">
            <h2 id="users-title">"People"</h2>
            <p class="muted small">
                "Viewers read everything but secrets; staff also start syncs, press gates, run, cancel and retry jobs and use the order form; admins also manage people, tokens and schedules. A new role or password ends that person's sessions."
            </p>
            <Show when=move || error().is_some()>
                <p class="notice notice-error" role="alert" data-testid="admin-error">{move || error().unwrap_or_default()}</p>
            </Show>
            <Transition fallback=|| view! { <p class="loading">"Loading people…"</p> }>
                {move || users.get().map(|result| match result {
                    Err(err) => view! { <p class="notice notice-error">{err.to_string()}</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="table" data-testid="users">
                            <thead><tr><th>"Name"</th><th>"Role"</th><th>"Signed in"</th><th>"Changed"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|user| {
                                    let own = me.me().is_some_and(|m| m.name == user.name);
                                    let name_for_role = user.name.clone();
                                    let name_for_password = user.name.clone();
                                    let name_for_remove = user.name.clone();
                                    let (new_password, set_row_password) = signal(String::new());
                                    view! {
                                        <tr data-user=user.name.clone()>
                                            <td>{user.name.clone()}{own.then(|| view! { <span class="muted">" (you)"</span> })}</td>
                                            <td>
                                                <select
                                                    aria-label=format!("Role of {}", user.name)
                                                    on:change=move |ev| {
                                                        set_role.dispatch(SetUserRole { name: name_for_role.clone(), role: event_target_value(&ev) });
                                                    }
                                                >
                                                    {Role::ALL.into_iter().map(|r| view! {
                                                        <option value=r.as_str() selected=r == user.role>{r.as_str()}</option>
                                                    }).collect_view()}
                                                </select>
                                            </td>
                                            <td>{format!("{} session(s)", user.sessions)}</td>
                                            <td>{time_of_day(user.updated_at)}</td>
                                            <td class="row-actions">
                                                <input
                                                    type="password"
                                                    placeholder="new password"
                                                    autocomplete="new-password"
                                                    aria-label=format!("New password for {}", user.name)
                                                    on:input=move |ev| set_row_password.set(event_target_value(&ev))
                                                    prop:value=move || new_password.get()
                                                />
                                                <button class="button button-secondary" on:click=move |_| {
                                                    set_password.dispatch(SetUserPassword { name: name_for_password.clone(), password: new_password.get_untracked() });
                                                    set_row_password.set(String::new());
                                                }>"Set password"</button>
                                                <button class="button button-quiet" disabled=own on:click=move |_| {
                                                    remove.dispatch(RemoveUser { name: name_for_remove.clone() });
                                                }>"Remove"</button>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <form class="filters" on:submit=move |ev| {
                ev.prevent_default();
                add.dispatch(AddUser { name: name.get_untracked(), role: role.get_untracked(), password: password.get_untracked() });
            }>
                <label>"Name "<input name="name" required on:input=move |ev| set_name.set(event_target_value(&ev)) prop:value=move || name.get()/></label>
                <label>"Role "
                    <select name="role" on:change=move |ev| set_new_role.set(event_target_value(&ev)) prop:value=move || role.get()>
                        {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Password "<input type="password" name="password" autocomplete="new-password" minlength="8" required on:input=move |ev| set_new_password.set(event_target_value(&ev)) prop:value=move || password.get()/></label>
                <button class="button" type="submit" disabled=move || add.pending().get()>"Add person"</button>
            </form>
        </section>
    }
}

#[component]
fn Tokens() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_tokens(),
    );
    let (name, set_name) = signal(String::new());
    let (role, set_role) = signal("staff".to_string());
    let error = move || failed(create.value().get()).or_else(|| failed(revoke.value().get()));
    let secret = move || create.value().get().and_then(Result::ok);
    view! {
        <section class="panel" aria-labelledby="tokens-title">
            <h2 id="tokens-title">"API tokens"</h2>
            <p class="muted small">
                "Programs send a token as " <code>"Authorization: Bearer <token>"</code>
                "; what they start is marked token:<name>. A token is shown once, when it is created; a revoked one is refused from the next request on."
            </p>
            <Show when=move || error().is_some()>
                <p class="notice notice-error" role="alert">{move || error().unwrap_or_default()}</p>
            </Show>
            {move || secret().map(|new| view! {
                <div class="notice" role="status" data-testid="new-token">
                    <p>"The token " <strong>{new.token.name.clone()}</strong> " — copy it now, it is not shown again:"</p>
                    <p><code class="secret">{new.secret.clone()}</code></p>
                </div>
            })}
            <Transition fallback=|| view! { <p class="loading">"Loading tokens…"</p> }>
                {move || tokens.get().map(|result| match result {
                    Err(err) => view! { <p class="notice notice-error">{err.to_string()}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No tokens yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="table" data-testid="tokens">
                            <thead><tr><th>"Name"</th><th>"Role"</th><th>"Created"</th><th>"Last used"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|token| {
                                    let name = token.name.clone();
                                    let revoked = token.revoked_at.is_some();
                                    view! {
                                        <tr class:muted=revoked>
                                            <td>{token.name.clone()}</td>
                                            <td>{token.role.as_str()}</td>
                                            <td>{format!("{} by {}", time_of_day(token.created_at), token.created_by)}</td>
                                            <td>{token.last_used_at.map(time_of_day).unwrap_or_else(|| "never".into())}</td>
                                            <td>{if revoked {
                                                view! { <span>"revoked"</span> }.into_any()
                                            } else {
                                                view! { <button class="button button-quiet" on:click=move |_| { revoke.dispatch(RevokeToken { name: name.clone() }); }>"Revoke"</button> }.into_any()
                                            }}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <form class="filters" on:submit=move |ev| {
                ev.prevent_default();
                create.dispatch(CreateToken { name: name.get_untracked(), role: role.get_untracked() });
            }>
                <label>"Name "<input name="token-name" required on:input=move |ev| set_name.set(event_target_value(&ev)) prop:value=move || name.get()/></label>
                <label>"Role "
                    <select name="token-role" on:change=move |ev| set_role.set(event_target_value(&ev)) prop:value=move || role.get()>
                        {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> }).collect_view()}
                    </select>
                </label>
                <button class="button" type="submit" disabled=move || create.pending().get()>"Create token"</button>
            </form>
        </section>
    }
}

/// Route component for `/admin/audit`: every change and refusal, newest first.
#[component]
pub fn AuditPage() -> impl IntoView {
    let (actor, set_actor) = signal(String::new());
    let (action, set_action) = signal(String::new());
    let (target, set_target) = signal(String::new());
    let (before, set_before) = signal(0i64);
    let page = Resource::new(
        move || (actor.get(), action.get(), target.get(), before.get()),
        |(actor, action, target, before)| audit_log(actor, action, target, before, 100),
    );
    let reset = move || set_before.set(0);
    view! {
        <PageHeader title="Audit log" purpose="Every change, and every refusal: who, when, from where, what, and how it ended."/>
        <form class="filters" role="search" on:submit=|ev| ev.prevent_default()>
            <label>"Who "<input name="actor" placeholder="anna, token:nightly, hook:shop" on:input=move |ev| { set_actor.set(event_target_value(&ev)); reset(); }/></label>
            <label>"Action "<input name="action" placeholder="job., user.role, auth.login" on:input=move |ev| { set_action.set(event_target_value(&ev)); reset(); }/></label>
            <label class="grow">"Target "<input name="target" placeholder="a job's id, user:anna" on:input=move |ev| { set_target.set(event_target_value(&ev)); reset(); }/></label>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading the log…"</p> }>
            {move || page.get().map(|result| match result {
                Err(err) => view! { <p class="notice notice-error">{err.to_string()}</p> }.into_any(),
                Ok(page) => {
                    let older = page.next_before;
                    view! {
                        <section class="panel">
                            <table class="table" data-testid="audit">
                                <thead><tr><th>"When"</th><th>"Who"</th><th>"Action"</th><th>"Target"</th><th>"Outcome"</th><th>"From"</th></tr></thead>
                                <tbody>{page.entries.into_iter().map(|e| view! { <AuditRow entry=e/> }).collect_view()}</tbody>
                            </table>
                            {older.map(|id| view! {
                                <button class="button button-quiet" on:click=move |_| set_before.set(id)>"Older"</button>
                            })}
                            <Show when=move || before.get() != 0>
                                <button class="button button-quiet" on:click=move |_| set_before.set(0)>"Newest"</button>
                            </Show>
                        </section>
                    }.into_any()
                }
            })}
        </Transition>
    }
}

#[component]
fn AuditRow(entry: AuditEntry) -> impl IntoView {
    let outcome = match (&entry.outcome[..], &entry.reason) {
        ("done", _) => "done".to_string(),
        (other, Some(reason)) => format!("{other}: {reason}"),
        (other, None) => other.to_string(),
    };
    view! {
        <tr class=format!("audit-{}", entry.outcome)>
            <td>{time_of_day(entry.at)}</td>
            <td>{entry.actor.clone()}{entry.role.map(|r| format!(" ({r})"))}</td>
            <td><code>{entry.action.clone()}</code></td>
            <td>{entry.target.clone().unwrap_or_default()}</td>
            <td>{outcome}</td>
            <td class="muted small">{entry.address.clone().unwrap_or_default()}</td>
        </tr>
    }
}

/// Route component for `/account`: one's own password.
#[component]
pub fn AccountPage() -> impl IntoView {
    let me = use_me();
    let change = ServerAction::<ChangePassword>::new();
    let (current, set_current) = signal(String::new());
    let (new, set_new) = signal(String::new());
    let result = move || change.value().get();
    view! {
        <PageHeader title="Your account" purpose="Who you are signed in as, and your password."/>
        <section class="panel">
            <Suspense fallback=|| ()>
                {move || me.me().map(|m| view! { <p>"Signed in as " <strong>{m.name}</strong> " with the " {m.role.as_str()} " role."</p> })}
            </Suspense>
            <form class="stack" on:submit=move |ev| {
                ev.prevent_default();
                change.dispatch(ChangePassword { current: current.get_untracked(), new: new.get_untracked() });
            }>
                <label>"Current password "<input type="password" autocomplete="current-password" required on:input=move |ev| set_current.set(event_target_value(&ev))/></label>
                <label>"New password (at least 8 characters) "<input type="password" autocomplete="new-password" minlength="8" required on:input=move |ev| set_new.set(event_target_value(&ev))/></label>
                <button class="button" type="submit" disabled=move || change.pending().get()>"Change password"</button>
            </form>
            {move || result().map(|r| match r {
                Ok(()) => view! { <p class="notice" role="status">"Your password is changed; your other sessions have ended."</p> }.into_any(),
                Err(err) => view! { <p class="notice notice-error" role="alert">{err.to_string()}</p> }.into_any(),
            })}
        </section>
    }
}
