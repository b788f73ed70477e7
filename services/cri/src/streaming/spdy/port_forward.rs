//! Port forward over SPDY (`portforward.k8s.io`): each client connection opens an error
//! stream and a data stream with the same `requestid` and the `port`; bytes go both ways on
//! the data stream, failures are written as text on the error stream. The session serves
//! any number of connections until the client closes it.

use std::{collections::HashMap, sync::Arc};

use crimson_api::network::v1::{PortForwardInput, port_forward_input, port_forward_output};

use super::{
    frame::CANCEL,
    session::{self, IncomingStream, Writer},
};
use crate::{
    Backends,
    streaming::{relay, tokens::PortForwardTarget},
};

/// The protocol name.
pub const PROTOCOL: &str = "portforward.k8s.io";

/// Serves a port-forward session on an upgraded connection.
pub async fn serve<IO>(io: IO, backends: Arc<Backends>, target: PortForwardTarget)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (writer, mut incoming) = session::start(io);
    let mut pending: HashMap<String, (Option<IncomingStream>, Option<IncomingStream>)> =
        HashMap::new();
    while let Some(stream) = incoming.recv().await {
        let kind = stream
            .headers
            .get("streamtype")
            .cloned()
            .unwrap_or_default();
        let port = stream
            .headers
            .get("port")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p > 0);
        let (Some(port), "error" | "data") = (port, kind.as_str()) else {
            writer.reset(stream.id, CANCEL).await;
            continue;
        };
        writer.reply(stream.id).await;
        // Old clients send no request id: the pair is (error id, error id + 2).
        let request = stream.headers.get("requestid").cloned().unwrap_or_else(|| {
            if kind == "error" {
                stream.id.to_string()
            } else {
                (stream.id - 2).to_string()
            }
        });
        let slot = pending.entry(request.clone()).or_default();
        if kind == "error" {
            slot.0 = Some(stream);
        } else {
            slot.1 = Some(stream);
        }
        if matches!(pending.get(&request), Some((Some(_), Some(_))))
            && let Some((Some(error), Some(data))) = pending.remove(&request)
        {
            tokio::spawn(forward(
                writer.clone(),
                backends.clone(),
                target.clone(),
                port,
                error,
                data,
            ));
        }
    }
}

async fn forward(
    writer: Writer,
    backends: Arc<Backends>,
    target: PortForwardTarget,
    port: u16,
    error: IncomingStream,
    mut data: IncomingStream,
) {
    let (data_id, error_id) = (data.id, error.id);
    match relay::open_port(&backends, &target.pod_id, port, target.host_network).await {
        Ok((input, mut output)) => {
            tokio::spawn(async move {
                while let Some(bytes) = data.data.recv().await {
                    let message = PortForwardInput {
                        part: Some(port_forward_input::Part::Data(bytes)),
                    };
                    if input.send(message).await.is_err() {
                        return;
                    }
                }
            });
            while let Ok(Some(message)) = output.message().await {
                match message.part {
                    Some(port_forward_output::Part::Data(bytes)) => {
                        writer.data(data_id, bytes).await
                    }
                    Some(port_forward_output::Part::Error(text)) => {
                        writer.data(error_id, text.into()).await
                    }
                    None => {}
                }
            }
        }
        Err(status) => {
            let text = format!(
                "error forwarding port {port} to pod {}, uid : {}",
                target.pod_id,
                status.message()
            );
            writer.data(error_id, text.into()).await;
        }
    }
    writer.fin(error_id).await;
    writer.fin(data_id).await;
}
