//! `GET /history/ws`: the store's events over a WebSocket, one JSON text message each.
//!
//! The connection subscribes to the store ([`crate::events`]) with a queue of
//! `ServerLimits::subscriber_queue` events: a client that reads slowly loses its oldest
//! events and receives a `lagged` event with their number, and writers never wait for it.
//! Data events are sent at most four times a second; the ones between are merged.
//!
//! The filter comes from the query string (`types`, `kinds`, `measurements`: comma
//! separated or repeated) or from a text message the client sends at any time,
//! `{"types": [...], "kinds": [...], "measurements": [...]}`, which replaces it. Each
//! filter is confirmed by a `{"type": "subscribed", ...}` message; a bad one is answered
//! `{"type": "error", "reason": ...}` and the old filter stays.

use super::AppState;
use super::error::ApiError;
use crate::events::{Event, EventFilter, EventType, Subscription};
use crate::model::SeriesKind;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Least time between two data events to one client; writes in between are merged.
const DATA_EVENT_INTERVAL: Duration = Duration::from_millis(250);
/// A client that takes longer to accept one message is disconnected.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a filter from name/value pairs (`types`, `kinds`, `measurements`).
fn filter_from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<EventFilter, ApiError> {
    let mut filter = EventFilter::default();
    for (name, value) in pairs {
        let items = value.split(',').map(str::trim).filter(|s| !s.is_empty());
        match name {
            "types" | "type" | "event_types" => {
                for item in items {
                    filter
                        .event_types
                        .push(EventType::parse(item).map_err(|e| ApiError::from(e).in_param(name))?);
                }
            }
            "kinds" | "kind" => {
                for item in items {
                    let kind =
                        SeriesKind::parse(item).ok_or_else(|| ApiError::bad_input(format!("{name}: {item:?} is not a kind of series")))?;
                    filter.kinds.push(kind);
                }
            }
            "measurements" | "measurement" => filter.measurements.extend(items.map(str::to_string)),
            // The handshake's token (checked before the route).
            "token" => {}
            other => {
                return Err(ApiError::bad_input(format!(
                    "unknown filter key {other:?} (known: types, kinds, measurements)"
                )));
            }
        }
    }
    Ok(filter)
}

/// Reads a filter sent as a JSON text message.
fn filter_from_message(text: &str) -> Result<EventFilter, ApiError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ApiError::bad_input(format!("the filter is not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::bad_input(
            "a filter is a JSON object: {\"types\": [...], \"kinds\": [...], \"measurements\": [...]}",
        ));
    };
    let mut pairs = Vec::new();
    for (name, v) in &object {
        let items: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for item in items {
            let text = item
                .as_str()
                .ok_or_else(|| ApiError::bad_input(format!("{name}: {item} is not a string")))?;
            pairs.push((name.as_str(), text));
        }
    }
    filter_from_pairs(pairs)
}

fn describe(filter: &EventFilter) -> Value {
    json!({
        "type": "subscribed",
        "types": filter.event_types.iter().map(|t| t.name()).collect::<Vec<_>>(),
        "kinds": filter.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "measurements": filter.measurements,
    })
}

/// `GET /history/ws`: upgrades to a WebSocket of events: 400 for a bad filter, 429 when
/// the server has its most subscribers already, 426 for a request that is no WebSocket
/// handshake.
#[utoipa::path(get, path = "/history/ws", tag = "events", params(
    ("types" = Option<String>, Query, description = "Event types, comma separated."),
    ("kinds" = Option<String>, Query, description = "Kinds of data: metric, performance, log, alert, commit."),
    ("measurements" = Option<String>, Query, description = "Measurements."),
    ("token" = Option<String>, Query, description = "The token, for browsers (this route only)."),
), responses(
    (status = 101, description = "Switching to a WebSocket of JSON events"),
    (status = 426, description = "Not a WebSocket handshake", body = super::schema::ErrorBody),
))]
pub(crate) async fn websocket(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let pairs = super::routes::query_pairs(&raw);
    let filter = filter_from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let slot = state.subscribers.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_subscribers",
            format!(
                "{} clients are subscribed, the most this server serves; retry later",
                state.limits.max_subscribers
            ),
        )
    })?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            format!("this route speaks WebSocket only: {e}"),
        )
    })?;
    Ok(upgrade.on_upgrade(move |socket| async move {
        state.metrics.websocket_subscribers(1);
        serve_events(state.clone(), socket, filter).await;
        state.metrics.websocket_subscribers(-1);
        drop(slot);
    }))
}

fn subscribe(state: &AppState, filter: EventFilter, wake: &Arc<tokio::sync::Notify>) -> Subscription {
    let wake = wake.clone();
    state
        .history
        .engine()
        .subscribe_with_wake(filter, state.limits.subscriber_queue, Box::new(move || wake.notify_one()))
}

async fn send(socket: &mut WebSocket, value: &Value) -> bool {
    let message = Message::Text(value.to_string().into());
    matches!(tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await, Ok(Ok(())))
}

async fn serve_events(state: AppState, mut socket: WebSocket, filter: EventFilter) {
    let wake = Arc::new(tokio::sync::Notify::new());
    // Subscribed before confirming: a client that writes once confirmed hears of it.
    let confirmation = describe(&filter);
    let mut subscription = subscribe(&state, filter, &wake);
    if !send(&mut socket, &confirmation).await {
        return;
    }
    loop {
        tokio::select! {
            () = wake.notified() => {
                let mut sent_data = false;
                while let Some(event) = subscription.try_recv() {
                    if let Event::Lagged { dropped } = event {
                        state.metrics.websocket_dropped(dropped);
                    }
                    sent_data |= event.event_type() == EventType::HistoryDataUpdated;
                    if !send(&mut socket, &event.to_json()).await {
                        return;
                    }
                }
                if sent_data {
                    // Data events arriving meanwhile merge in the queue.
                    tokio::time::sleep(DATA_EVENT_INTERVAL).await;
                    wake.notify_one();
                }
            }
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => match filter_from_message(text.as_str()) {
                    Ok(filter) => {
                        let confirmation = describe(&filter);
                        subscription = subscribe(&state, filter, &wake);
                        if !send(&mut socket, &confirmation).await {
                            return;
                        }
                    }
                    Err(e) => {
                        if !send(&mut socket, &json!({"type": "error", "reason": e.reason})).await {
                            return;
                        }
                    }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                // Pings are answered by the WebSocket layer; binary messages mean nothing here.
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_from_the_query_string_and_from_messages_agree() {
        let from_query = filter_from_pairs([("types", "history_data_updated,archive_completed"), ("measurements", "cpu")]).unwrap();
        let from_message =
            filter_from_message(r#"{"types": ["history_data_updated", "archive_completed"], "measurements": "cpu"}"#).unwrap();
        assert_eq!(from_query, from_message);
        assert_eq!(from_query.event_types, [EventType::HistoryDataUpdated, EventType::ArchiveCompleted]);
        for bad in [
            r#"{"types": ["nope"]}"#,
            r#"{"colour": "red"}"#,
            "[1]",
            "not json",
            r#"{"kinds": [1]}"#,
        ] {
            let e = filter_from_message(bad).unwrap_err();
            assert_eq!(e.kind, "bad_input", "{bad}: {e:?}");
        }
    }
}
