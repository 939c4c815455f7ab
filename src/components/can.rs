//! `<Can role=…>`: what only a role may use, shown only to it (the server refuses it anyway).

use leptos::prelude::*;

use crate::{hooks::use_me, model::Role};

/// Shows its children to people with at least `role`.
#[component]
pub fn Can(
    /// The role needed.
    role: Role,
    /// What they may use.
    children: ChildrenFn,
) -> impl IntoView {
    let me = use_me();
    view! {
        <Suspense fallback=|| ()>
            {
                let children = children.clone();
                move || me.can(role).then(|| children())
            }
        </Suspense>
    }
}
