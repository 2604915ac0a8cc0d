//! `IngestAdmin`: the internal admin API. The one place where errors become `tonic::Status`.

use std::sync::Arc;

use scifer_proto::{
    events::v1::ChannelKind,
    ingest::v1::{
        ReplayRequest, ReplayResponse, StatsRequest, StatsResponse, ingest_admin_server::IngestAdmin,
    },
};
use tonic::{Request, Response, Status};

use crate::{
    error::Error,
    replay::{ReplayRange, Replayer},
    stats::Stats,
};

pub struct Admin {
    pub replayer: Arc<Replayer>,
    pub stats: Arc<Stats>,
}

#[tonic::async_trait]
impl IngestAdmin for Admin {
    async fn replay(&self, request: Request<ReplayRequest>) -> Result<Response<ReplayResponse>, Status> {
        let request = request.into_inner();
        let channel = match ChannelKind::try_from(request.channel_kind) {
            Ok(ChannelKind::Unspecified) => None,
            Ok(kind) => Some(kind),
            Err(_) => {
                return Err(
                    Error::InvalidArgument(format!("unknown channel_kind {}", request.channel_kind)).into(),
                );
            }
        };
        let range = ReplayRange {
            from: request.from,
            to: request.to,
            channel,
        };
        tracing::info!(?range, "replay requested");
        let counts = self.replayer.replay(range).await?;
        tracing::info!(
            deliveries = counts.deliveries,
            events = counts.events,
            "replay done"
        );
        Ok(Response::new(ReplayResponse {
            deliveries: counts.deliveries,
            events: counts.events,
        }))
    }

    async fn stats(&self, _: Request<StatsRequest>) -> Result<Response<StatsResponse>, Status> {
        Ok(Response::new(self.stats.snapshot()))
    }
}
