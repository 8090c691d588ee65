//! The shipped `--json` schema accepts every event the client can write and rejects
//! malformed ones (so the command tests that check output against it can fail).

use iservice::connect::{Event, Outcome, Record, EVENTS_SCHEMA};
use serde_json::{json, Value};

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(EVENTS_SCHEMA).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn record(event: &Event) -> Value {
    serde_json::to_value(Record {
        elapsed_ms: 12,
        event,
    })
    .unwrap()
}

#[test]
fn every_event_kind_matches() {
    let some = || Some("x".to_owned());
    let events = vec![
        Event::ServiceConnected {
            endpoint: "/run/openvpn/service".into(),
        },
        Event::Started {
            pid: 42,
            management: "127.0.0.1:40000".into(),
        },
        Event::Refused {
            code: 0x2000_0001,
            code_name: Some("ERROR_STARTUP_DATA"),
            function: "f".into(),
            text: String::new(),
        },
        Event::ManagementConnected,
        Event::Hold { wait_hint: Some(0) },
        Event::Hold { wait_hint: None },
        Event::State {
            state: "CONNECTED".into(),
            description: "SUCCESS".into(),
            local_ipv4: some(),
            local_ipv6: some(),
            remote_address: some(),
            remote_port: Some(1194),
            openvpn_time: 1,
        },
        Event::State {
            state: "WAIT".into(),
            description: String::new(),
            local_ipv4: None,
            local_ipv6: None,
            remote_address: None,
            remote_port: None,
            openvpn_time: 1,
        },
        Event::Log {
            level: "warning",
            message: "m".into(),
        },
        Event::PasswordRequest {
            kind: "Auth".into(),
            username: true,
            challenge: None,
        },
        Event::Question {
            name: "token-insertion-request".into(),
            message: "Please insert your token".into(),
            input: false,
        },
        Event::AuthFailed {
            kind: "Auth".into(),
            retry: false,
        },
        Event::Bytecount {
            bytes_in: 1,
            bytes_out: 2,
        },
        Event::Info {
            message: "i".into(),
        },
        Event::Fatal {
            message: "f".into(),
        },
        Event::Notification {
            kind: "NEED-OK".into(),
            body: "b".into(),
        },
        Event::ServiceError {
            code: 0x2000_0000,
            code_name: None,
            function: "f".into(),
            text: String::new(),
        },
        Event::Stopping {
            reason: "interrupt".into(),
        },
        Event::Stopping {
            reason: "unanswered".into(),
        },
        Event::Warning {
            message: "w".into(),
        },
    ];
    assert_all_match(&events);
}

/// Each event's record satisfies the schema.
fn assert_all_match(events: &[Event]) {
    let validator = validator();
    for event in events {
        let value = record(event);
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{value}: {errors:?}");
    }
}

#[test]
fn the_events_of_start_and_restart_and_every_exit_match() {
    let mut events = vec![
        Event::Connection {
            name: "work-2".into(),
            pid: 4711,
        },
        Event::Restarting {
            name: "work".into(),
            config: "/etc/openvpn/client/work.conf".into(),
        },
    ];
    let every =
        Outcome::ALL
            .into_iter()
            .chain([Outcome::Connected, Outcome::NotFound, Outcome::Forbidden]);
    for outcome in every {
        events.push(Event::Exit {
            code: outcome.code(),
            outcome: outcome.name(),
            message: "m".into(),
            openvpn_log: None,
        });
    }
    events.push(Event::Exit {
        code: Outcome::OpenvpnFailed.code(),
        outcome: Outcome::OpenvpnFailed.name(),
        message: "openvpn exited with error code 1".into(),
        openvpn_log: Some(vec!["Options error: Unrecognized option".into()]),
    });
    assert_all_match(&events);
}

#[test]
fn malformed_records_are_rejected() {
    let validator = validator();
    for bad in [
        json!({"event": "exit", "elapsed_ms": 1, "code": 0, "outcome": "refused", "message": ""}),
        json!({"event": "exit", "elapsed_ms": 1, "code": 2, "outcome": "local_error", "message": ""}),
        json!({"event": "exit", "elapsed_ms": 1, "code": 0, "outcome": "forbidden", "message": ""}),
        json!({"event": "exit", "elapsed_ms": 1, "code": 6, "outcome": "openvpn_failed", "message": "", "openvpn_log": "one string"}),
        json!({"event": "connection", "elapsed_ms": 1, "name": "", "pid": 5}),
        json!({"event": "state", "elapsed_ms": 1, "state": "WAIT"}),
        json!({"event": "started", "elapsed_ms": 1, "pid": 0, "management": "127.0.0.1:1"}),
        json!({"event": "started", "elapsed_ms": 1, "pid": 5, "management": "0.0.0.0:1"}),
        json!({"event": "bogus", "elapsed_ms": 1}),
        json!({"event": "log", "elapsed_ms": -1, "level": "info", "message": ""}),
        json!({"event": "log", "level": "info", "message": ""}),
        json!({"event": "password_request", "elapsed_ms": 1, "kind": "Auth", "username": true, "challenge": null, "password": "x"}),
    ] {
        assert!(!validator.is_valid(&bad), "accepted {bad}");
    }
}
