//! Start-up reconciliation: attachments a crash interrupted are undone, finished ones kept.

use super::fakes::{TestNetwork, set_up_request};
use crate::{pod_setup::set_up_pod, reconcile::reconcile, records::AttachmentState};

#[tokio::test]
async fn an_interrupted_add_is_undone_and_a_finished_one_kept() {
    let network = TestNetwork::new();
    set_up_pod(&network.state, set_up_request("done"))
        .await
        .unwrap();
    set_up_pod(&network.state, set_up_request("interrupted"))
        .await
        .unwrap();
    let mut record = network.state.pods.get("interrupted").unwrap().unwrap();
    record.state = AttachmentState::Adding;
    record.result = None;
    network.state.pods.put("interrupted", &record).unwrap();
    network.state.store.flush().await.unwrap();
    let network = network.restart();
    network.fake.clear_log();
    reconcile(&network.state).await.unwrap();
    let netns = network.netns("interrupted");
    assert_eq!(
        network.fake.log(),
        [
            format!("DEL portmap {netns}"),
            format!("DEL bridge {netns}"),
            format!("unpin {netns}"),
        ]
    );
    assert!(network.state.pods.get("interrupted").unwrap().is_none());
    let kept = network.state.pods.get("done").unwrap().unwrap();
    assert_eq!(kept.state, AttachmentState::Attached);
}
