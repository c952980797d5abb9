//! A notice's timers (delivery timeout, ladder steps) applied: what a
//! step does is core's decision (`tapis_core::ladder::decide`); this writes
//! the step's events and messages inside the dispatcher's transaction
//! (`crate::jobs`), which also marks the job fired.

use super::*;

/// Apply one notice timer: core decides what it does, this applies it.
/// Returns whether it acted.
pub(crate) async fn fire_step(
    tx: &mut Tx,
    keys: &crate::secrets::SecretKey,
    now: Timestamp,
    actor: &Actor,
    n: &mut crate::Notice,
    timer: NoticeTimer,
) -> Result<bool> {
    let pending: Vec<String> = n
        .items
        .iter()
        .filter(|i| i.state == ItemState::Pending)
        .map(|i| i.id.to_string())
        .collect();
    match ladder::decide(timer, n.state, pending.len()) {
        StepOutcome::Nothing => Ok(false),
        StepOutcome::Escalate(reason) => {
            escalate(tx, keys, now, actor, n, reason, &pending).await?;
            Ok(true)
        }
        StepOutcome::Notify { step, level } => {
            let id = n.id.to_string();
            let mut data = json!({
                "notice_id": id, "step": step.as_str(), "level": level,
                "due_at": n.due_at.map(|t| t.to_string()), "pending_items": pending,
            });
            // the ladder's last steps name who answers for the platform
            if tapis_core::representative::names_representative(step)
                && let Some(rep) =
                    crate::representatives::representative_named(tx, keys, n.platform_id).await?
            {
                data["representative"] = rep;
            }
            Event::notice(step.event_type(), &id, data.clone())
                .append(tx, now, actor)
                .await?;
            enqueue(tx, now, n.platform_id, Some(n.id), step.event_type(), data).await?;
            Ok(true)
        }
    }
}
