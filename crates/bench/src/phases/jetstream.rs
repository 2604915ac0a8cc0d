//! Raw JetStream: the same bodies published straight to the INGEST stream, `window` PubAcks in
//! flight, each with a unique `Nats-Msg-Id`. The ceiling the receivers are compared with.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use async_nats::{
    Subject,
    jetstream::{
        Context,
        context::{ContextBuilder, PublishAckFuture},
        message::PublishMessage,
    },
};
use hdrhistogram::Histogram;
use scifer_events::{Bus, StreamKind};
use scifer_proto::events::v1::ChannelKind;

use super::Ctx;
use crate::{
    driver::{histogram, micros},
    error::Result,
    report::{JetStreamFigures, Latency},
    settings::Phase,
};

struct Tally {
    published: u64,
    errors: u64,
    latency: Histogram<u64>,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Result<Self> {
        Ok(Self {
            published: 0,
            errors: 0,
            latency: histogram()?,
            first_error: None,
        })
    }
}

struct Publisher<'a> {
    ctx: &'a Ctx,
    js: Context,
    subject: Subject,
    seq: u64,
    fifo: VecDeque<(Instant, PublishAckFuture)>,
}

pub async fn run(ctx: &Ctx, bus: &Bus) -> Result<JetStreamFigures> {
    let window = ctx.settings.window;
    let client = scifer_events::connect(&ctx.nats_url).await?;
    let js = ContextBuilder::new()
        .max_ack_inflight(window * 2)
        .backpressure_on_inflight(true)
        .build(client);
    bus.ensure_default_stream(&js, StreamKind::Ingest).await?;
    let mut publisher = Publisher {
        ctx,
        js,
        subject: Subject::from(bus.ingest_raw(Some(ChannelKind::Messenger))),
        seq: Phase::JetStream.seq_base(),
        fifo: VecDeque::with_capacity(window),
    };
    // Warm-up, then the measured run; the window stays full across the boundary.
    let mut warmup = Tally::new()?;
    publisher.publish_for(ctx.settings.warmup, &mut warmup).await;
    let mut tally = Tally::new()?;
    let start = Instant::now();
    publisher.publish_for(ctx.settings.duration, &mut tally).await;
    while let Some((sent, ack)) = publisher.fifo.pop_front() {
        settle(&mut tally, sent, ack).await;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(JetStreamFigures {
        window,
        published: tally.published,
        secs,
        msgs_per_sec: tally.published as f64 / secs.max(1e-9),
        errors: tally.errors,
        ack_latency: Latency::from_micros(&tally.latency),
        first_error: tally.first_error,
    })
}

impl Publisher<'_> {
    /// Publishes for `length`, awaiting the oldest ack whenever `window` are in flight.
    async fn publish_for(&mut self, length: Duration, tally: &mut Tally) {
        let window = self.ctx.settings.window;
        let stop_at = Instant::now() + length;
        while Instant::now() < stop_at {
            while self.fifo.len() >= window {
                if let Some((sent, ack)) = self.fifo.pop_front() {
                    settle(tally, sent, ack).await;
                }
            }
            let (body, msg_id) = self.ctx.factory.make_unsigned(self.seq);
            self.seq += 1;
            let publish = PublishMessage::build().message_id(msg_id).payload(body);
            let sent = Instant::now();
            match self.js.send_publish(self.subject.clone(), publish).await {
                Ok(ack) => self.fifo.push_back((sent, ack)),
                Err(e) => {
                    tally.errors += 1;
                    tally.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

async fn settle(tally: &mut Tally, sent: Instant, ack: PublishAckFuture) {
    match ack.await {
        Ok(_) => {
            tally.published += 1;
            tally.latency.saturating_record(micros(sent.elapsed()));
        }
        Err(e) => {
            tally.errors += 1;
            tally.first_error.get_or_insert_with(|| e.to_string());
        }
    }
}
