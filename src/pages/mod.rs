//! One component per route.

mod daily_sync;
mod not_found;
mod order_form;
mod syncs;
mod tasks;

pub use daily_sync::DailySyncPage;
pub use not_found::NotFoundPage;
pub use order_form::OrderFormPage;
pub use syncs::SyncsPage;
pub use tasks::TasksPage;
