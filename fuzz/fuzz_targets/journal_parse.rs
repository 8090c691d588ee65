//! The undo journal's parser, which reads files a crash may have cut short or a disk may have
//! damaged: total; it reads each line on its own (no line's damage spreads to another), what
//! it reads renders back to the same records, and the replay's books and undo plan are total
//! over whatever it read.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openvpnserv_core::linux::journal::{parse, Journal};

fuzz_target!(|text: &str| {
    let (records, bad) = parse(text);
    let lines = text.split_inclusive('\n').filter(|l| !l.trim().is_empty()).count();
    assert_eq!(records.len() + bad, lines, "every non-blank line is a record or counted as bad");
    let rendered: String = records.iter().map(|r| r.to_line()).collect();
    let (again, bad_again) = parse(&rendered);
    assert_eq!(again, records);
    assert_eq!(bad_again, 0);
    let journal = Journal::from_records(&records);
    let plan = journal.undo_plan();
    assert!(plan.len() <= journal.len());
    assert!(journal.len() <= records.len());
});
