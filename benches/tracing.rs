//! What `annals::tracing::HistoryLayer` costs the program that logs: events emitted on the
//! caller's thread through a `tracing` subscriber with the layer, against the same
//! subscriber without it (the registry alone) in the same run, and how fast the writer
//! thread stores them (events from the first emit until `flush` returned, durable).
//!
//! ```sh
//! cargo bench --profile release --bench tracing -- [--events 200000] [--runs 5] [--quick]
//! ```
//! The target of issue 21: under 1 µs per event on the caller's thread.

mod common;

use annals::tracing::{HistoryLayer, LayerOptions};
use annals::{Engine, Options};
use common::arg;
use std::sync::Arc;
use std::time::Instant;
use tracing_subscriber::layer::SubscriberExt;

fn emit(events: usize) {
    for i in 0..events {
        tracing::info!(target: "bench::app", request = i as u64, route = "/items", latency_ms = 12.5, "served request");
    }
}

/// (ns per event on the caller's thread, events stored per second, dropped).
fn with_layer(events: usize) -> annals::Result<(f64, f64, u64)> {
    let dir = tempfile::tempdir().map_err(|e| annals::Error::Io {
        op: "create a temporary directory",
        path: "".into(),
        source: e,
    })?;
    let engine = Arc::new(Engine::open(dir.path(), Options::default())?);
    let options = LayerOptions {
        queue_capacity: events.max(1),
        ..LayerOptions::default()
    };
    let (layer, guard) = HistoryLayer::new(engine.clone(), options)?;
    let subscriber = tracing_subscriber::registry().with(layer);
    let started = Instant::now();
    let caller = tracing::subscriber::with_default(subscriber, || {
        let t = Instant::now();
        emit(events);
        t.elapsed()
    });
    guard.flush()?;
    let stored_in = started.elapsed();
    let stats = guard.stats();
    drop(guard);
    if let Ok(engine) = Arc::try_unwrap(engine) {
        engine.close()?;
    }
    Ok((
        caller.as_nanos() as f64 / events as f64,
        stats.stored as f64 / stored_in.as_secs_f64(),
        stats.dropped,
    ))
}

fn without_layer(events: usize) -> f64 {
    let subscriber = tracing_subscriber::registry();
    tracing::subscriber::with_default(subscriber, || {
        let t = Instant::now();
        emit(events);
        t.elapsed().as_nanos() as f64 / events as f64
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> annals::Result<()> {
    common::require_release_build();
    let quick = std::env::args().any(|a| a == "--quick");
    let events: usize = arg("--events")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 200_000 });
    let runs: usize = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(if quick { 3 } else { 5 });
    let (mut caller, mut stored, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    let mut dropped = 0;
    for _ in 0..runs {
        bare.push(without_layer(events));
        let (ns, per_second, lost) = with_layer(events)?;
        caller.push(ns);
        stored.push(per_second);
        dropped += lost;
    }
    let (caller, stored, bare) = (median(caller), median(stored), median(bare));
    println!("tracing layer, {events} events x {runs} runs (medians):");
    println!("  caller's thread, with HistoryLayer:  {caller:>8.0} ns/event (target < 1000)");
    println!("  caller's thread, registry alone:     {bare:>8.0} ns/event");
    println!("  layer's added cost:                  {:>8.0} ns/event", caller - bare);
    println!("  stored (durable at flush):           {:>8.0} events/s", stored);
    println!("  dropped (queue as large as the run): {dropped}");
    Ok(())
}
