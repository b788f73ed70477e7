//! Registries that require credentials: per-request AuthConfig, the global auth file, refusals,
//! and secrets kept out of the logs and the exported spans.

use base64::Engine;
use crimson_config::Daemon;
use crimson_integration::{
    eventually,
    image_builder::{Pusher, TestImage},
    otlp::OtlpReceiver,
    registry::TestRegistry,
    require_root,
    stack::{Stack, StackOptions, spec},
};
use k8s_cri::v1::{AuthConfig, PullImageRequest};
use tonic::Code;

const USER: &str = "puller";
const PASSWORD: &str = "s3cret-Passw0rd";

/// Fails if the password, or `encoded` (the base64 `user:password`), is in any daemon's log
/// or in any span the daemons exported to `spans` (once the image daemon's pull spans came).
async fn assert_no_secret_in_logs_or_spans(stack: &Stack, spans: &OtlpReceiver, encoded: &str) {
    eventually(30, "crimson-image's pull spans", || async {
        spans
            .spans()
            .iter()
            .any(|s| s.service == "crimson-image" && s.name.contains("PullImage"))
            .then_some(())
    })
    .await;
    for daemon in Daemon::ALL {
        let log = stack.log(daemon);
        assert!(
            !log.contains(PASSWORD) && !log.contains(encoded),
            "{daemon} logged a secret:\n{log}"
        );
    }
    for span in spans.spans() {
        assert!(
            !span.text.contains(PASSWORD) && !span.text.contains(encoded),
            "{} exported a secret in {}: {}",
            span.service,
            span.name,
            span.text
        );
    }
}

/// A stack that pulls from `registry` and exports its spans to `spans`.
async fn traced_stack(
    registry: &TestRegistry,
    spans: &OtlpReceiver,
    auth_file: Option<String>,
) -> Stack {
    Stack::start(StackOptions {
        otlp_endpoint: Some(spans.endpoint.clone()),
        auth_file,
        ..StackOptions::default().insecure_registry(&registry.address)
    })
    .await
}

async fn pull_with(
    stack: &Stack,
    image: &str,
    auth: Option<AuthConfig>,
) -> Result<String, tonic::Status> {
    stack
        .images()
        .pull_image(PullImageRequest {
            image: Some(spec(image)),
            auth,
            sandbox_config: None,
        })
        .await
        .map(|r| r.into_inner().image_ref)
}

async fn remove(stack: &Stack, image: &str) {
    stack
        .images()
        .remove_image(k8s_cri::v1::RemoveImageRequest {
            image: Some(spec(image)),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn request_credentials_open_a_protected_registry_and_never_reach_the_logs() {
    require_root!();
    let registry = TestRegistry::start_with_auth(USER, PASSWORD);
    let pushed = Pusher::new(&registry.address, registry.credentials.as_ref())
        .push("private", "1", &TestImage::busybox())
        .await;
    let spans = OtlpReceiver::start().await;
    let stack = traced_stack(&registry, &spans, None).await;
    let name = format!("{}/private:1", registry.address);

    let anonymous = pull_with(&stack, &name, None).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::PermissionDenied, "{anonymous:?}");

    let wrong = AuthConfig {
        username: USER.into(),
        password: "wrong".into(),
        ..Default::default()
    };
    assert_eq!(
        pull_with(&stack, &name, Some(wrong))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );

    let right = AuthConfig {
        username: USER.into(),
        password: PASSWORD.into(),
        ..Default::default()
    };
    assert_eq!(
        pull_with(&stack, &name, Some(right)).await.unwrap(),
        pushed.config_digest
    );

    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    remove(&stack, &name).await;
    let auth_field = AuthConfig {
        auth: encoded.clone(),
        ..Default::default()
    };
    assert_eq!(
        pull_with(&stack, &name, Some(auth_field)).await.unwrap(),
        pushed.config_digest
    );

    assert_no_secret_in_logs_or_spans(&stack, &spans, &encoded).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_global_auth_file_serves_requests_without_credentials() {
    require_root!();
    let registry = TestRegistry::start_with_auth(USER, PASSWORD);
    let pushed = Pusher::new(&registry.address, registry.credentials.as_ref())
        .push("team/app", "1", &TestImage::busybox())
        .await;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let auth_file = format!(
        r#"{{"auths": {{"{}": {{"auth": "{encoded}"}}}}}}"#,
        registry.address
    );
    let spans = OtlpReceiver::start().await;
    let stack = traced_stack(&registry, &spans, Some(auth_file)).await;

    assert_eq!(
        stack
            .pull(&format!("{}/team/app:1", registry.address))
            .await
            .unwrap(),
        pushed.config_digest
    );
    assert_no_secret_in_logs_or_spans(&stack, &spans, &encoded).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_challenges_are_answered_with_the_credentials() {
    require_root!();
    let registry = TestRegistry::start_with_token_auth(USER, PASSWORD);
    let pushed = Pusher::new(&registry.address, registry.credentials.as_ref())
        .push("tokened/app", "1", &TestImage::busybox())
        .await;
    let stack = Stack::start(StackOptions::default().insecure_registry(&registry.address)).await;
    let name = format!("{}/tokened/app:1", registry.address);

    let anonymous = pull_with(&stack, &name, None).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::PermissionDenied, "{anonymous:?}");

    let right = AuthConfig {
        username: USER.into(),
        password: PASSWORD.into(),
        ..Default::default()
    };
    assert_eq!(
        pull_with(&stack, &name, Some(right)).await.unwrap(),
        pushed.config_digest
    );
    let authorized_get = registry.log().lines().any(|line| {
        line.contains("msg=\"authorized request\"")
            && line.contains("http.request.method=GET")
            && line.contains("/v2/tokened/app/manifests/1")
    });
    assert!(
        authorized_get,
        "the registry accepted crimson's bearer token for the manifest"
    );

    // Pulls without credentials share what they pull through; the token the credentials
    // obtained is not part of it.
    remove(&stack, &name).await;
    let again = pull_with(&stack, &name, None).await.unwrap_err();
    assert_eq!(again.code(), Code::PermissionDenied, "{again:?}");
}
