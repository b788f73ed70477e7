//! Property tests of the internal API: any sequence of calls with any fields is answered with
//! a result or a clear status (never INTERNAL or UNKNOWN, never a panic), and leaves no pod
//! cgroup outside its hierarchy.

use crimson_api::sandbox::v1::{
    ContainerRef, ContainerSpec, CreateContainerRequest, PodRef, PodSpec, RunPodRequest,
    StopContainerRequest, sandbox_server::Sandbox,
};
use proptest::prelude::*;
use tonic::{Code, Request};

use super::fakes::{IMAGE, TestSandbox};
use crate::service::SandboxService;

/// One call of the internal API; ids are picked from those made so far (or made up).
#[derive(Debug, Clone)]
enum Call {
    RunPod(Box<PodSpec>),
    CreateContainer(usize, Box<ContainerSpec>),
    StartContainer(usize),
    StopContainer(usize, i64),
    RemoveContainer(usize),
    StopPod(usize),
    RemovePod(usize),
    GetContainer(usize),
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z]{1,8}",
        "[ -~]{0,16}",
        Just("../..".to_string()),
        ".{0,12}",
    ]
}

fn pod_spec() -> impl Strategy<Value = PodSpec> {
    (
        ("[a-c]", text(), text(), 0u32..3),
        (text(), text(), 0i32..5, 0i32..5, 0i32..5),
    )
        .prop_map(
            |((name, namespace, uid, attempt), (hostname, cgroup, network, pid, ipc))| PodSpec {
                name,
                namespace: if namespace.is_empty() {
                    "ns".into()
                } else {
                    namespace
                },
                uid: if uid.is_empty() { "uid".into() } else { uid },
                attempt,
                hostname,
                cgroup_parent: cgroup,
                network,
                pid,
                ipc,
                ..Default::default()
            },
        )
}

fn container_spec() -> impl Strategy<Value = ContainerSpec> {
    (
        "[a-c]",
        prop_oneof![Just(IMAGE.to_string()), text()],
        proptest::collection::vec(text(), 0..3),
        text(),
        any::<bool>(),
    )
        .prop_map(|(name, image, command, working_dir, tty)| ContainerSpec {
            name,
            image,
            command,
            working_dir,
            tty,
            ..Default::default()
        })
}

fn call() -> impl Strategy<Value = Call> {
    let pick = 0usize..4;
    prop_oneof![
        pod_spec().prop_map(|spec| Call::RunPod(Box::new(spec))),
        (pick.clone(), container_spec()).prop_map(|(p, s)| Call::CreateContainer(p, Box::new(s))),
        pick.clone().prop_map(Call::StartContainer),
        (
            pick.clone(),
            prop_oneof![Just(i64::MIN), -1i64..3, Just(i64::MAX)]
        )
            .prop_map(|(c, t)| Call::StopContainer(c, t)),
        pick.clone().prop_map(Call::RemoveContainer),
        pick.clone().prop_map(Call::StopPod),
        pick.clone().prop_map(Call::RemovePod),
        pick.prop_map(Call::GetContainer),
    ]
}

/// The id at `index` among those made so far, or one nobody made.
fn pick(ids: &[String], index: usize) -> String {
    ids.get(index).cloned().unwrap_or_else(|| "unknown".into())
}

async fn run(calls: Vec<Call>) -> Result<(), TestCaseError> {
    let sandbox = TestSandbox::new();
    let service = SandboxService::over(sandbox.state.clone());
    let (mut pods, mut containers) = (Vec::new(), Vec::new());
    for call in calls {
        let answer = match call.clone() {
            Call::RunPod(spec) => service
                .run_pod(Request::new(RunPodRequest { spec: Some(*spec) }))
                .await
                .map(|r| pods.push(r.into_inner().pod_id)),
            Call::CreateContainer(pod, spec) => service
                .create_container(Request::new(CreateContainerRequest {
                    pod_id: pick(&pods, pod),
                    spec: Some(*spec),
                }))
                .await
                .map(|r| containers.push(r.into_inner().container_id)),
            Call::StartContainer(c) => service
                .start_container(Request::new(ContainerRef {
                    container_id: pick(&containers, c),
                }))
                .await
                .map(drop),
            Call::StopContainer(c, timeout_seconds) => service
                .stop_container(Request::new(StopContainerRequest {
                    container_id: pick(&containers, c),
                    timeout_seconds,
                }))
                .await
                .map(drop),
            Call::RemoveContainer(c) => service
                .remove_container(Request::new(ContainerRef {
                    container_id: pick(&containers, c),
                }))
                .await
                .map(drop),
            Call::StopPod(p) => service
                .stop_pod(Request::new(PodRef {
                    pod_id: pick(&pods, p),
                }))
                .await
                .map(drop),
            Call::RemovePod(p) => service
                .remove_pod(Request::new(PodRef {
                    pod_id: pick(&pods, p),
                }))
                .await
                .map(drop),
            Call::GetContainer(c) => service
                .get_container(Request::new(ContainerRef {
                    container_id: pick(&containers, c),
                }))
                .await
                .map(drop),
        };
        if let Err(status) = answer {
            prop_assert!(
                matches!(
                    status.code(),
                    Code::InvalidArgument
                        | Code::NotFound
                        | Code::FailedPrecondition
                        | Code::AlreadyExists
                ),
                "{call:?} answered {status:?}"
            );
        }
    }
    for call in sandbox.node.calls("create_cgroups") {
        prop_assert!(!call.contains("/../") && !call.contains("/./"), "{call}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_call_sequence_gets_results_or_clear_statuses(calls in proptest::collection::vec(call(), 1..12)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(run(calls))?;
    }
}
