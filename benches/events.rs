//! What event subscribers cost writers: W1 written through the embedded API (group
//! commit, 1000-row batches, two writer threads) with no subscriber and with 100
//! subscribers (the WebSocket clients of `annals serve` are such subscriptions), drained
//! by a reader thread every `--poll-ms` milliseconds: 250 by default, the cadence at which
//! the server's WebSocket task takes data events from a subscription (writes in between
//! merge in its queue); `--poll-ms 1` reads as eagerly as a thread can. Rounds alternate
//! between the two, and the median of each is reported.
//!
//! ```sh
//! cargo bench --profile release --bench events -- [--hosts 200] [--hours 6] [--rounds 5] [--poll-ms 250] [--quick]
//! ```
//! The target of issue 19: with 100 subscribers, within 5% of the speed with none.

mod common;

use annals::events::{Event, EventFilter};
use annals::workload::w1::{W1, W1Config};
use annals::{Batch, Engine, Options};
use common::arg;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Writes the whole of `config` with `subscribers` draining subscriptions; returns
/// (points per second, events received, of which `lagged`).
fn round(config: &W1Config, subscribers: usize, poll: Duration) -> annals::Result<(f64, u64, u64)> {
    let dir = tempfile::tempdir().map_err(|e| annals::Error::Io {
        op: "create a temporary directory",
        path: "".into(),
        source: e,
    })?;
    let engine = Engine::open(dir.path(), Options::default())?;
    let subscriptions: Vec<_> = (0..subscribers).map(|_| engine.subscribe(EventFilter::default(), 1024)).collect();
    let generator = parking_lot::Mutex::new(W1::new(config.clone())?);
    let (stop, events, lagged) = (AtomicBool::new(false), AtomicU64::new(0), AtomicU64::new(0));
    let started = Instant::now();
    let (written, seconds) = std::thread::scope(|scope| {
        if !subscriptions.is_empty() {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    for s in &subscriptions {
                        while let Some(event) = s.try_recv() {
                            events.fetch_add(1, Ordering::Relaxed);
                            if matches!(event, Event::Lagged { .. }) {
                                lagged.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    std::thread::sleep(poll);
                }
            });
        }
        let writers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| -> annals::Result<()> {
                    let mut batch = Batch::new();
                    loop {
                        batch.clear();
                        if generator.lock().fill_batch(&mut batch, 1000)? == 0 {
                            return Ok(());
                        }
                        engine.write(&batch)?;
                    }
                })
            })
            .collect();
        // A writer that panicked is reported as a closed store; the scope joins the rest.
        let result = writers.into_iter().try_for_each(|w| w.join().unwrap_or(Err(annals::Error::Closed)));
        // Timed when the writers are done, not when the reader next wakes to stop.
        let seconds = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        (result, seconds)
    });
    written?;
    drop(subscriptions);
    engine.close()?;
    Ok((config.points() as f64 / seconds, events.into_inner(), lagged.into_inner()))
}

fn main() -> annals::Result<()> {
    common::require_release_build();
    let quick = std::env::args().any(|a| a == "--quick");
    let number = |name: &str, default: u64| arg(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let mut config = W1Config::quick(1);
    config.hosts = number("--hosts", if quick { 20 } else { 200 }) as usize;
    config.epochs = number("--hours", if quick { 1 } else { 6 }) * 360;
    let rounds = number("--rounds", if quick { 1 } else { 5 }) as usize;
    let poll = Duration::from_millis(number("--poll-ms", 250));
    println!(
        "W1: {} hosts x {} h = {} points, 2 writers; {rounds} rounds each; subscriptions read every {poll:?}",
        config.hosts,
        config.epochs / 360,
        config.points()
    );
    let (mut none, mut hundred) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (speed, _, _) = round(&config, 0, poll)?;
        none.push(speed);
        let (speed, events, lagged) = round(&config, 100, poll)?;
        hundred.push(speed);
        println!(
            "  round: {:.2} M points/s without, {:.2} M with 100 subscribers ({events} events, {lagged} lagged)",
            none.last().copied().unwrap_or(0.0) / 1e6,
            speed / 1e6
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (without, with) = (median(&mut none), median(&mut hundred));
    println!(
        "ingest with 0 subscribers {:.2} M points/s, with 100 subscribers {:.2} M points/s: {:.1}% of the speed",
        without / 1e6,
        with / 1e6,
        with / without * 100.0
    );
    Ok(())
}
