//! Consumer lag (`num_pending + num_ack_pending`) of every durable consumer on some streams,
//! sampled every 500 ms while a phase runs.

use std::{collections::BTreeMap, time::Duration};

use async_nats::jetstream;
use futures::TryStreamExt;
use tokio::{sync::oneshot, task::JoinHandle};

pub const INTERVAL: Duration = Duration::from_millis(500);

/// One consumer's lag over a phase.
#[derive(Debug, Clone, Default)]
pub struct ConsumerLag {
    pub stream: String,
    pub consumer: String,
    pub samples: u64,
    pub max: u64,
    /// When the load stopped.
    pub at_end_of_load: Option<u64>,
    /// After the phase waited for the pipeline to drain.
    pub after_drain: Option<u64>,
}

type Key = (String, String);

/// Current lag of each consumer on `streams` (missing streams are skipped: a service may not have
/// created them yet).
pub async fn snapshot(js: &jetstream::Context, streams: &[String]) -> BTreeMap<Key, u64> {
    let mut lags = BTreeMap::new();
    for name in streams {
        let Ok(stream) = js.get_stream(name).await else {
            continue;
        };
        let mut consumers = stream.consumers();
        while let Ok(Some(info)) = consumers.try_next().await {
            let lag = info.num_pending + info.num_ack_pending as u64;
            lags.insert((name.clone(), info.name.clone()), lag);
        }
    }
    lags
}

pub struct LagSampler {
    js: jetstream::Context,
    streams: Vec<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<BTreeMap<Key, ConsumerLag>>>,
}

impl LagSampler {
    pub fn start(js: jetstream::Context, streams: Vec<String>) -> Self {
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let (task_js, task_streams) = (js.clone(), streams.clone());
        let task = tokio::spawn(async move {
            let mut series: BTreeMap<Key, ConsumerLag> = BTreeMap::new();
            let mut tick = tokio::time::interval(INTERVAL);
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    _ = tick.tick() => {}
                }
                for ((stream, consumer), lag) in snapshot(&task_js, &task_streams).await {
                    let entry = series
                        .entry((stream.clone(), consumer.clone()))
                        .or_insert_with(|| ConsumerLag {
                            stream,
                            consumer,
                            ..ConsumerLag::default()
                        });
                    entry.samples += 1;
                    entry.max = entry.max.max(lag);
                }
            }
            series
        });
        Self {
            js,
            streams,
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    /// One extra sample, kept as the end-of-load value.
    pub async fn mark_end_of_load(&self) -> BTreeMap<Key, u64> {
        snapshot(&self.js, &self.streams).await
    }

    /// Waits until every consumer has caught up (lag 0), or `timeout`.
    pub async fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let lags = snapshot(&self.js, &self.streams).await;
            if lags.values().all(|lag| *lag == 0) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops sampling; `end` is [`LagSampler::mark_end_of_load`]'s result, and a last sample is
    /// taken as the after-drain value.
    pub async fn finish(mut self, end: BTreeMap<Key, u64>) -> Vec<ConsumerLag> {
        let last = snapshot(&self.js, &self.streams).await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let mut series = match self.task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => BTreeMap::new(),
        };
        for (samples, is_end) in [(end, true), (last, false)] {
            for ((stream, consumer), lag) in samples {
                let entry = series
                    .entry((stream.clone(), consumer.clone()))
                    .or_insert_with(|| ConsumerLag {
                        stream,
                        consumer,
                        ..ConsumerLag::default()
                    });
                entry.samples += 1;
                entry.max = entry.max.max(lag);
                if is_end {
                    entry.at_end_of_load = Some(lag);
                } else {
                    entry.after_drain = Some(lag);
                }
            }
        }
        series.into_values().collect()
    }
}

impl Drop for LagSampler {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
