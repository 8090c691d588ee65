//! How the management commands show things to people: sizes, ages, the table of `list`.

use std::fmt::Write as _;

use crate::control::{Connection, State};

/// `1536` → `1.5 KiB`; bytes below 1 KiB as `512 B`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    #[allow(clippy::cast_precision_loss)] // one decimal is shown
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Seconds as `45s`, `4m05s`, `2h03m`, `3d04h`.
pub fn age(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if seconds >= 3600 {
        format!("{h}h{m:02}m")
    } else if seconds >= 60 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// How long ago `at` (seconds since the epoch) was, at `now`.
pub fn ago(at: u64, now: u64) -> String {
    format!("{} ago", age(now.saturating_sub(at)))
}

/// The state as a word.
pub fn state(state: State) -> &'static str {
    match state {
        State::Starting => "starting",
        State::Connected => "connected",
        State::Reconnecting => "reconnecting",
        State::Exiting => "exiting",
        State::Exited => "exited",
    }
}

/// The state, with the exit code once exited.
fn state_text(c: &Connection) -> String {
    match (c.state, c.exit_code) {
        (State::Exited, Some(code)) => format!("exited ({code})"),
        (s, _) => state(s).to_owned(),
    }
}

/// The table of `iservice list`: name, user, state, since, tun, addresses, in, out.
pub fn table(connections: &[Connection], now: u64) -> String {
    if connections.is_empty() {
        return "no connections\n".to_owned();
    }
    let header = [
        "NAME",
        "USER",
        "STATE",
        "SINCE",
        "TUN",
        "ADDRESSES",
        "IN",
        "OUT",
    ];
    let rows: Vec<[String; 8]> = connections
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                c.user.clone(),
                state_text(c),
                ago(c.since, now),
                c.tun.clone().unwrap_or_else(|| "-".to_owned()),
                if c.addresses.is_empty() {
                    "-".to_owned()
                } else {
                    c.addresses.join(",")
                },
                size(c.bytes_in),
                size(c.bytes_out),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}

/// The text of `iservice status NAME`.
pub fn details(c: &Connection, now: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name:      {}", c.name);
    let _ = writeln!(out, "user:      {} (uid {})", c.user, c.uid);
    let _ = writeln!(out, "config:    {}", c.config);
    let _ = writeln!(
        out,
        "state:     {} (since {})",
        state_text(c),
        ago(c.state_since, now)
    );
    let _ = writeln!(out, "started:   {}", ago(c.since, now));
    let _ = writeln!(out, "openvpn:   process {}", c.pid);
    let _ = writeln!(out, "tun:       {}", c.tun.as_deref().unwrap_or("-"));
    let addresses = if c.addresses.is_empty() {
        "-".to_owned()
    } else {
        c.addresses.join(", ")
    };
    let _ = writeln!(out, "addresses: {addresses}");
    let _ = writeln!(
        out,
        "traffic:   in {}, out {}",
        size(c.bytes_in),
        size(c.bytes_out)
    );
    out
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        Connection {
            name: "work".into(),
            user: "alice".into(),
            uid: 1000,
            config: "/etc/openvpn/client/work.conf".into(),
            pid: 4711,
            state: State::Connected,
            since: 1000,
            state_since: 1010,
            tun: Some("ovs0".into()),
            addresses: vec!["10.8.0.2/24".into(), "fd00:8::1000/64".into()],
            bytes_in: 1536,
            bytes_out: 5 * 1024 * 1024 + 300 * 1024,
            exit_code: None,
        }
    }

    #[test]
    fn sizes_are_readable() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(245), "4m05s");
        assert_eq!(age(2 * 3600 + 180), "2h03m");
        assert_eq!(age(3 * 86_400 + 4 * 3600), "3d04h");
        assert_eq!(ago(2000, 1000), "0s ago");
    }

    #[test]
    fn the_table_has_a_column_each_aligned() {
        let mut other = connection();
        other.name = "home-2".into();
        other.user = "bob".into();
        other.state = State::Exited;
        other.exit_code = Some(1);
        other.tun = None;
        other.addresses.clear();
        other.bytes_in = 0;
        other.bytes_out = 0;
        let text = table(&[connection(), other], 1245);
        assert_eq!(
            text,
            "NAME    USER   STATE       SINCE      TUN   ADDRESSES                    IN       OUT\n\
             work    alice  connected   4m05s ago  ovs0  10.8.0.2/24,fd00:8::1000/64  1.5 KiB  5.3 MiB\n\
             home-2  bob    exited (1)  4m05s ago  -     -                            0 B      0 B\n"
        );
        assert_eq!(table(&[], 0), "no connections\n");
    }

    #[test]
    fn details_name_every_field() {
        let text = details(&connection(), 1245);
        for want in [
            "name:      work",
            "user:      alice (uid 1000)",
            "config:    /etc/openvpn/client/work.conf",
            "state:     connected (since 3m55s ago)",
            "openvpn:   process 4711",
            "tun:       ovs0",
            "addresses: 10.8.0.2/24, fd00:8::1000/64",
            "traffic:   in 1.5 KiB, out 5.3 MiB",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
    }
}
