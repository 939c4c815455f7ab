//! `use_me()`: who the page is signed in as, read once per page load (the server renders it
//! into the page, so buttons a role may not use are never shown, not even for a moment).

use leptos::prelude::*;

use crate::{
    api::{auth::whoami, UiError},
    model::{Me, Role},
};

/// Who is signed in: `None` inside while loading, `Some(None)` for nobody.
#[derive(Clone, Copy)]
pub struct SignedIn(pub Resource<Result<Option<Me>, UiError>>);

impl SignedIn {
    /// The person, once known.
    pub fn me(&self) -> Option<Me> {
        self.0.get().and_then(Result::ok).flatten()
    }

    /// Whether they have at least `role`.
    pub fn can(&self, role: Role) -> bool {
        self.me().is_some_and(|m| m.role.allows(role))
    }
}

/// Reads who is signed in and provides it to the pages below.
pub fn provide_me() -> SignedIn {
    let me = SignedIn(Resource::new_blocking(|| (), |_| whoami()));
    provide_context(me);
    me
}

/// Who is signed in. Panics outside the signed-in layout, which provides it.
pub fn use_me() -> SignedIn {
    expect_context::<SignedIn>()
}

/// Whether the signed-in person has at least `role` (false while unknown, and outside the
/// signed-in layout). Read it where the page reads its data, inside a `Suspense`.
pub fn can(role: Role) -> bool {
    use_context::<SignedIn>().is_some_and(|me| me.can(role))
}

/// Loads `to` in the browser as a new page (after signing in or out, so every part of the page
/// starts again as the new person).
pub fn load_page(to: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().set_href(to);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = to;
}

/// Where to go after signing in: `next` when it is a path on this site, else the start page.
pub fn safe_next(next: Option<String>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path
        }
        _ => "/".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_paths_on_this_site_are_followed() {
        assert_eq!(
            safe_next(Some("/tasks?state=failed".into())),
            "/tasks?state=failed"
        );
        assert_eq!(safe_next(Some("//evil.example/x".into())), "/");
        assert_eq!(safe_next(Some("https://evil.example".into())), "/");
        assert_eq!(safe_next(Some("/\\evil.example".into())), "/");
        assert_eq!(safe_next(None), "/");
    }
}
