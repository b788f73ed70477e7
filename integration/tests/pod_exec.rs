//! ExecSync: output and exit code, timeouts that kill the command, capped output, and clear
//! statuses for containers that are not running.

use crimson_integration::{pods::PodEnv, require_root};
use k8s_cri::v1::{ContainerState, ExecSyncRequest};
use tonic::Code;

fn exec(container_id: &str, cmd: &[&str], timeout: i64) -> ExecSyncRequest {
    ExecSyncRequest {
        container_id: container_id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_sync_output_exit_codes_timeouts_and_limits() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("exec");
    let pod_id = env.run_pod(&pod).await;
    let id = env
        .run_container(
            &pod_id,
            &pod,
            env.container_config("target", &["sleep", "300"]),
        )
        .await;
    let mut runtime = env
        .stack
        .runtime()
        .max_decoding_message_size(64 * 1024 * 1024);

    let hello = runtime
        .exec_sync(exec(
            &id,
            &["sh", "-c", "echo -n hello; echo oops >&2; exit 4"],
            0,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            hello.stdout.as_slice(),
            hello.stderr.as_slice(),
            hello.exit_code
        ),
        (&b"hello"[..], &b"oops\n"[..], 4)
    );
    let env_and_user = runtime
        .exec_sync(exec(&id, &["sh", "-c", "echo $GREETING $(id -u)"], 5))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        env_and_user.stdout, b"hello 0\n",
        "the container's environment and user"
    );

    let slow = runtime
        .exec_sync(exec(&id, &["sh", "-c", "sleep 4321"], 1))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(slow.exit_code, 0);
    assert!(
        String::from_utf8_lossy(&slow.stderr).contains("timed out"),
        "{slow:?}"
    );
    let leftovers = runtime
        .exec_sync(exec(
            &id,
            &["sh", "-c", "ps | grep 'sleep 4321' | grep -v grep || true"],
            5,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        leftovers.stdout.is_empty(),
        "the timed-out command was killed: {:?}",
        String::from_utf8_lossy(&leftovers.stdout)
    );

    let big = runtime
        .exec_sync(exec(&id, &["head", "-c", "20000000", "/dev/zero"], 30))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(big.exit_code, 0);
    assert_eq!(
        big.stdout.len(),
        16 * 1024 * 1024,
        "output is capped at 16 MiB"
    );

    let missing = runtime
        .exec_sync(exec(&"f".repeat(64), &["true"], 0))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let empty = runtime.exec_sync(exec(&id, &[], 0)).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    let done = env
        .run_container(&pod_id, &pod, env.container_config("done", &["true"]))
        .await;
    env.wait_for(&done, ContainerState::ContainerExited).await;
    let stopped = runtime
        .exec_sync(exec(&done, &["true"], 0))
        .await
        .unwrap_err();
    assert_eq!(stopped.code(), Code::FailedPrecondition, "{stopped:?}");

    env.remove_pod_and_check(pod_id).await;
}
