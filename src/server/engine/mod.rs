//! The job engine. So far: the lifecycle rules every other part obeys, and the retry policy.
//! The queue, executor, rescuer and scheduler build on these.

pub mod lifecycle;
pub mod retry;
