//! Start-up reconciliation: attachments a crash interrupted during ADD are undone.

use crate::{Result, pod_teardown::detach, records::AttachmentState, state::State};

/// Detaches every pod whose ADD never finished.
pub async fn reconcile(state: &State) -> Result<()> {
    let mut rolled_back = 0;
    for attachment in state.pods.values()? {
        if attachment.state == AttachmentState::Adding {
            rolled_back += 1;
            tracing::info!(pod = %attachment.pod_id, "undoing an attachment interrupted by a restart");
            if let Err(error) = detach(state, &attachment).await {
                tracing::warn!(pod = %attachment.pod_id, %error, "could not undo the attachment");
            }
        }
    }
    crimson_metrics::reconciled("attachments", "rolled_back", rolled_back);
    Ok(())
}
