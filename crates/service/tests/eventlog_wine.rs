//! The event log layer against the system's event log: the source registers and takes
//! events of every level, and an event reaches the Application log as an entry of our source
//! with our two strings (Windows only: Wine keeps no log to read back).
#![cfg(windows)]

use std::ptr;

use openvpnserv::windows::eventlog::{EventLogLayer, EventLogSink, EVENT_ID};
use openvpnserv::windows::sys::wide::wide;
use tracing_subscriber::layer::SubscriberExt;
use windows_sys::Win32::System::EventLog::{
    CloseEventLog, OpenEventLogW, ReadEventLogW, EVENTLOGRECORD, EVENTLOG_ERROR_TYPE,
    EVENTLOG_SEQUENTIAL_READ,
};

/// `EVENTLOG_BACKWARDS_READ` (windows-sys names only the other read flags).
const EVENTLOG_BACKWARDS_READ: u32 = 8;

/// The fixed part of an `EVENTLOGRECORD`; the source name follows it. Fields are read at
/// their offsets: `Length` 0, `EventID` 20, `EventType` 24, `NumStrings` 26,
/// `StringOffset` 36.
const HEADER: usize = size_of::<EVENTLOGRECORD>();

/// One entry read back: source, event id, type, strings.
#[derive(Debug)]
struct Record {
    source: String,
    event_id: u32,
    kind: u16,
    strings: Vec<String>,
}

/// Text of the NUL-terminated UTF-16 string at `offset` of `bytes`, and the offset after it.
fn string_at(bytes: &[u8], offset: usize) -> (String, usize) {
    let mut units = Vec::new();
    let mut at = offset;
    while at + 1 < bytes.len() {
        let u = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        at += 2;
        if u == 0 {
            break;
        }
        units.push(u);
    }
    (String::from_utf16_lossy(&units), at)
}

/// The Application log, newest first; `Err` with the Win32 code when it cannot be read.
fn application_log() -> Result<Vec<Record>, u32> {
    let name = wide("Application");
    // SAFETY: a NUL-terminated log name; the handle is closed below.
    let log = unsafe { OpenEventLogW(ptr::null(), name.as_ptr()) };
    if log.is_null() {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as u32);
    }
    let mut records = Vec::new();
    let mut buf = vec![0u64; 64 * 1024 / 8];
    let result = loop {
        let (mut read, mut needed) = (0u32, 0u32);
        // SAFETY: `buf` holds the number of bytes passed; the out pointers are valid.
        let ok = unsafe {
            ReadEventLogW(
                log,
                EVENTLOG_SEQUENTIAL_READ | EVENTLOG_BACKWARDS_READ,
                0,
                buf.as_mut_ptr().cast(),
                (buf.len() * 8) as u32,
                &raw mut read,
                &raw mut needed,
            )
        };
        if ok == 0 {
            let code = std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as u32;
            // ERROR_HANDLE_EOF: everything was read.
            break if code == 38 { Ok(()) } else { Err(code) };
        }
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut at = 0usize;
        while at + HEADER <= read as usize {
            let rec = &bytes[at..];
            let u32_at = |o: usize| u32::from_le_bytes(rec[o..o + 4].try_into().unwrap());
            let u16_at = |o: usize| u16::from_le_bytes(rec[o..o + 2].try_into().unwrap());
            let length = u32_at(0) as usize;
            let record = &rec[..length];
            let (source, _) = string_at(record, HEADER);
            let mut strings = Vec::new();
            let mut s = u32_at(36) as usize;
            for _ in 0..u16_at(26) {
                let (text, next) = string_at(record, s);
                strings.push(text);
                s = next;
            }
            records.push(Record {
                source,
                event_id: u32_at(20),
                kind: u16_at(24),
                strings,
            });
            at += length;
        }
    };
    // SAFETY: opened above, closed once.
    unsafe { CloseEventLog(log) };
    result.map(|()| records)
}

#[test]
#[ignore = "Wine 8 keeps no event log: ReadEventLogW finds no records (ReportEventW only traces)"]
fn an_error_event_reaches_the_application_log() {
    let source = "openvpnserv$evtest";
    let marker = format!("event log test {}", std::process::id());
    let subscriber = tracing_subscriber::registry().with(EventLogLayer::new(source));
    tracing::subscriber::with_default(subscriber, || {
        tracing::error!(session = 1_u64, "{marker}");
    });
    let records = application_log().expect("read the Application log");
    let ours = records
        .iter()
        .find(|r| r.source == source && r.strings.iter().any(|s| s.contains(&marker)))
        .unwrap_or_else(|| panic!("no entry of {source} among {} records", records.len()));
    assert_eq!(ours.event_id, EVENT_ID);
    assert_eq!(ours.kind, EVENTLOG_ERROR_TYPE);
    assert_eq!(
        ours.strings,
        [format!("{source} error"), format!("{marker} session=1")]
    );
}

/// The real sink under a subscriber: the source registers, and reporting events of every
/// level (each with fields) goes through `ReportEventW` without failing.
#[test]
fn the_source_registers_and_takes_every_level() {
    let source = "openvpnserv$evlevels";
    assert!(EventLogSink::new(source).is_registered());
    let subscriber = tracing_subscriber::registry().with(EventLogLayer::new(source));
    tracing::subscriber::with_default(subscriber, || {
        tracing::error!(session = 1_u64, "an error");
        tracing::warn!(user = "alice", "a warning");
        tracing::info!(client_pid = 42_u32, "some information");
    });
}
