//! The scheduler: once a minute, fire every due organization schedule —
//! each firing exactly once, even when two runs overlap (the store's firing
//! transaction is conditioned on the firing time it found).

use serde_json::{json, Value};
use shared::{AppState, Error};

/// One tick: finds due schedules through the due index and fires them.
/// Answers how many were due and how many this run fired.
pub async fn tick(state: &AppState) -> Result<Value, Error> {
    tick_at(state, time::OffsetDateTime::now_utc()).await
}

/// A tick as if it were `now`.
pub async fn tick_at(state: &AppState, now: time::OffsetDateTime) -> Result<Value, Error> {
    let due = state.store.due_schedules(now).await?;
    let mut fired = 0;
    let mut failed = 0;
    for schedule in &due {
        match state.store.fire_schedule(schedule, now).await {
            Ok(true) => fired += 1,
            Ok(false) => {}
            Err(err) => {
                // Left due: the next tick tries again.
                failed += 1;
                tracing::error!(schedule = %schedule.id, error = %err, "firing failed");
            }
        }
    }
    Ok(json!({"due": due.len(), "fired": fired, "failed": failed}))
}
