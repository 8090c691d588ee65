//! openvpn's output, kept per session: the last lines it wrote on stdout and stderr, numbered
//! so that a reader can ask for "everything after line n" (`proto::control`'s `from`/`next`).
//!
//! Bounded in lines, in bytes and per line: a session that floods its output costs at most
//! [`MAX_BYTES`] (plus one line being assembled); the oldest lines go first.

#![forbid(unsafe_code)]

use std::collections::VecDeque;

/// Most lines kept per session.
pub const MAX_LINES: usize = 1000;
/// Most bytes (of line text) kept per session.
pub const MAX_BYTES: usize = 256 * 1024;
/// Longest line kept; the rest of a longer line is dropped and the line ends with
/// [`CUT_MARK`].
pub const MAX_LINE: usize = 4096;
/// What a cut line ends with.
pub const CUT_MARK: &str = " [...]";

/// The last lines of one session's output.
#[derive(Debug, Clone)]
pub struct LogRing {
    lines: VecDeque<String>,
    /// Number of the oldest line kept (lines are numbered from 0 in the order written).
    first: u64,
    bytes: usize,
    /// The line being written (no newline yet), at most [`MAX_LINE`] bytes.
    partial: Vec<u8>,
    /// The current line was longer than [`MAX_LINE`]: drop its bytes until its newline.
    cutting: bool,
    max_lines: usize,
    max_bytes: usize,
}

impl Default for LogRing {
    fn default() -> Self {
        Self::new(MAX_LINES, MAX_BYTES)
    }
}

/// Lines read from a [`LogRing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lines {
    /// The lines, oldest first.
    pub lines: Vec<String>,
    /// Number of the first line returned.
    pub first: u64,
    /// Number of the line after the last one returned.
    pub next: u64,
}

impl LogRing {
    /// A ring with other bounds (tests).
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            first: 0,
            bytes: 0,
            partial: Vec::new(),
            cutting: false,
            max_lines: max_lines.max(1),
            max_bytes,
        }
    }

    /// Adds bytes as written by openvpn: complete lines are kept, a trailing partial line
    /// waits for its end (or [`LogRing::finish`]).
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let (chunk, rest, ended) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &[][..], false),
            };
            data = rest;
            if !self.cutting {
                let room = MAX_LINE - self.partial.len();
                if chunk.len() > room {
                    self.partial.extend_from_slice(&chunk[..room]);
                    self.cutting = true;
                } else {
                    self.partial.extend_from_slice(chunk);
                }
            }
            if ended {
                self.end_line();
            }
        }
    }

    /// The output ended: a partial last line is kept as it is.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() || self.cutting {
            self.end_line();
        }
    }

    fn end_line(&mut self) {
        let mut bytes = std::mem::take(&mut self.partial);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let mut line = String::from_utf8_lossy(&bytes).into_owned();
        if std::mem::take(&mut self.cutting) {
            line.push_str(CUT_MARK);
        }
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > self.max_lines
            || (self.bytes > self.max_bytes && self.lines.len() > 1)
        {
            self.drop_oldest();
        }
        if self.bytes > self.max_bytes {
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(old) = self.lines.pop_front() {
            self.bytes -= old.len();
            self.first += 1;
        }
    }

    /// Number of the oldest line kept.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// Number the next line will get.
    pub fn next(&self) -> u64 {
        self.first + self.lines.len() as u64
    }

    /// The newest complete line, if any.
    pub fn last(&self) -> Option<&str> {
        self.lines.back().map(String::as_str)
    }

    /// Up to `max` lines from number `from` on (from the oldest kept when `from` is older;
    /// none when `from` is past the newest).
    pub fn read(&self, from: u64, max: usize) -> Lines {
        let start = from.clamp(self.first, self.next());
        let skip = (start - self.first) as usize;
        let lines: Vec<String> = self.lines.iter().skip(skip).take(max).cloned().collect();
        Lines {
            first: start,
            next: start + lines.len() as u64,
            lines,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_and_read_from_where_the_reader_left() {
        let mut r = LogRing::default();
        r.push(b"one\ntwo\r\nthr");
        assert_eq!(r.next(), 2, "the partial third line is not a line yet");
        r.push(b"ee\n");
        let all = r.read(0, 10);
        assert_eq!(all.lines, ["one", "two", "three"]);
        assert_eq!((all.first, all.next), (0, 3));
        let two = r.read(1, 1);
        assert_eq!(
            (two.lines.as_slice(), two.first, two.next),
            (&["two".to_owned()][..], 1, 2)
        );
        let none = r.read(99, 10);
        assert!(none.lines.is_empty());
        assert_eq!((none.first, none.next), (3, 3));
        r.push(b"no newline");
        r.finish();
        assert_eq!(r.last(), Some("no newline"));
    }

    #[test]
    fn a_flood_keeps_only_the_newest_lines_within_the_bounds() {
        let mut r = LogRing::new(10, 100);
        for i in 0..1000 {
            r.push(format!("line {i}\n").as_bytes());
        }
        assert_eq!(r.next(), 1000);
        let kept = r.read(0, 100);
        assert_eq!(kept.first, 990, "older lines were dropped");
        assert_eq!(kept.lines.len(), 10);
        assert_eq!(kept.lines[9], "line 999");

        let mut r = LogRing::new(1000, 100);
        for _ in 0..50 {
            r.push(&[b'x'; 30]);
            r.push(b"\n");
        }
        let kept = r.read(0, 1000);
        assert!(kept.lines.iter().map(String::len).sum::<usize>() <= 100);
        assert_eq!(kept.lines.len(), 3);
        assert_eq!(kept.next, 50);
    }

    #[test]
    fn long_lines_are_cut_and_the_next_line_is_whole() {
        let mut r = LogRing::default();
        let long = vec![b'a'; MAX_LINE * 3];
        r.push(&long[..MAX_LINE + 10]);
        r.push(&long[MAX_LINE + 10..]);
        r.push(b"\nshort\n");
        let got = r.read(0, 10);
        assert_eq!(got.lines.len(), 2);
        assert_eq!(got.lines[0].len(), MAX_LINE + CUT_MARK.len());
        assert!(got.lines[0].ends_with(CUT_MARK));
        assert_eq!(got.lines[1], "short");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let mut r = LogRing::default();
        r.push(b"bad \xff byte\n");
        assert_eq!(r.last(), Some("bad \u{fffd} byte"));
    }
}
