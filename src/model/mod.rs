//! Wire types shared by the browser and the server: serde only, no database or runtime types.

mod auth;
mod data;
mod event;
mod job;
mod orders;
mod schedule;
mod session;
pub mod text;

pub use auth::{AuditEntry, AuditPage, Me, NewToken, Role, TokenView, UserView};
pub use data::{ChangeCounts, ChangeKind, EntityChange, JobLogLine, LogLevel};

pub use event::{DatabaseHealth, EventKind, EventPage, Heartbeat, LiveEvent};
pub use job::{
    BulkAction, BulkOutcome, Freshness, FreshnessChange, Job, JobProgress, JobSource, JobState,
    QueueCounts, SyncState, SyncStatus, TypeStatus,
};
pub use orders::{
    money, CustomerHit, Draft, DraftInput, DraftLine, DraftLineInput, DraftStatus, ProductHit,
    SmartLease, SmartSyncAnswer, SmartSyncEvent, SmartSyncStatus,
};
pub use schedule::{
    FireOutcome, OnMissed, PeriodStats, RunRecord, ScheduleFire, SchedulePreview, ScheduleSpec,
    ScheduleTarget, ScheduleView, TypeStats,
};
pub use session::{
    SessionCleared, SessionLine, SessionState, SessionStatus, SessionUpdate, SessionView,
    StatusRow, StepJob, StepStatus, StepView, WorkflowOverview,
};
