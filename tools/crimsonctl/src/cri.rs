//! A few CRI calls against the front door, for people without crictl.

use std::process::ExitCode;

use crimson_config::{Config, Daemon};
use k8s_cri::v1::{
    AuthConfig, ImageSpec, ListImagesRequest, PullImageRequest, RemoveImageRequest, StatusRequest,
    VersionRequest, image_service_client::ImageServiceClient,
    runtime_service_client::RuntimeServiceClient,
};
use tonic::transport::Channel;

fn channel(config: &Config) -> Channel {
    crimson_rpc::connect_unix(config.socket(Daemon::Cri))
}

fn spec(image: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: image.to_string(),
        ..Default::default()
    })
}

/// `crimsonctl info`.
pub async fn info(config: &Config) -> anyhow::Result<ExitCode> {
    let mut runtime = RuntimeServiceClient::new(channel(config));
    let version = runtime
        .version(VersionRequest::default())
        .await?
        .into_inner();
    println!(
        "{} {} (CRI {})",
        version.runtime_name, version.runtime_version, version.runtime_api_version
    );
    let status = runtime
        .status(StatusRequest { verbose: false })
        .await?
        .into_inner();
    for condition in status.status.map(|s| s.conditions).unwrap_or_default() {
        println!(
            "{:<14} {:<6} {} {}",
            condition.r#type, condition.status, condition.reason, condition.message
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `crimsonctl pull`.
pub async fn pull(
    config: &Config,
    image: String,
    creds: Option<String>,
) -> anyhow::Result<ExitCode> {
    let auth = creds.map(|creds| {
        let (username, password) = creds.split_once(':').unwrap_or((creds.as_str(), ""));
        AuthConfig {
            username: username.to_string(),
            password: password.to_string(),
            ..Default::default()
        }
    });
    let response = ImageServiceClient::new(channel(config))
        .pull_image(PullImageRequest {
            image: spec(&image),
            auth,
            sandbox_config: None,
        })
        .await?
        .into_inner();
    println!("Image is up to date for {}", response.image_ref);
    Ok(ExitCode::SUCCESS)
}

/// `crimsonctl images`.
pub async fn images(config: &Config) -> anyhow::Result<ExitCode> {
    let images = ImageServiceClient::new(channel(config))
        .list_images(ListImagesRequest::default())
        .await?
        .into_inner()
        .images;
    println!("{:<60} {:<15} {:>12}", "IMAGE", "ID", "SIZE");
    for image in images {
        let short_id: String = image
            .id
            .trim_start_matches("sha256:")
            .chars()
            .take(13)
            .collect();
        let names = if image.repo_tags.is_empty() {
            image.repo_digests.clone()
        } else {
            image.repo_tags.clone()
        };
        for name in names {
            println!("{name:<60} {short_id:<15} {:>12}", image.size);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `crimsonctl rmi`.
pub async fn remove(config: &Config, images: Vec<String>) -> anyhow::Result<ExitCode> {
    let mut client = ImageServiceClient::new(channel(config));
    for image in images {
        client
            .remove_image(RemoveImageRequest {
                image: spec(&image),
            })
            .await?;
        println!("Deleted: {image}");
    }
    Ok(ExitCode::SUCCESS)
}
