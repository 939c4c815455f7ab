//! One component per route.

mod admin;
mod daily_sync;
mod login;
mod not_found;
mod order_form;
mod schedules;
mod syncs;
mod tasks;

pub use admin::{AccountPage, AdminPage, AuditPage};
pub use daily_sync::DailySyncPage;
pub use login::{LoginPage, SetupPage};
pub use not_found::NotFoundPage;
pub use order_form::{DraftsPage, OrderFormPage};
pub use syncs::SyncsPage;
pub use tasks::TasksPage;
