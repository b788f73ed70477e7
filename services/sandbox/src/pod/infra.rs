//! The infra process of a pod that shares its PID namespace: PID 1 of the pod, from the
//! configured pause image, created and started like any container.

use crimson_api::sandbox::v1::{ContainerSpec, NamespaceMode, Security};

use crate::{Result, container, records::PodRecord, state::State};

/// Name of the infra container (as CRI-O and containerd call it).
pub const INFRA_NAME: &str = "POD";

/// Pulls the pause image if needed, then creates and starts the infra container.
pub async fn start(state: &State, pod: &PodRecord) -> Result<String> {
    let settings = state.settings();
    let image = &settings.pause_image;
    if state.neighbours.get_image(image).await?.is_none() {
        state.neighbours.pull_image(image).await?;
    }
    let spec = ContainerSpec {
        name: INFRA_NAME.to_string(),
        image: image.clone(),
        command: settings.pause_command.clone(),
        security: Some(Security {
            pid: NamespaceMode::Container as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let record = container::create::create_record(state, pod, spec, true).await?;
    container::start::start_container(state, &record.id).await?;
    Ok(record.id)
}
