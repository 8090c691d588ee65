//! The `priority` setting (spec §4.2): Windows priority class names, mapped to nice values on
//! Linux.

/// openvpn's scheduling priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// `IDLE_PRIORITY_CLASS`.
    Idle,
    /// `BELOW_NORMAL_PRIORITY_CLASS`.
    BelowNormal,
    /// `NORMAL_PRIORITY_CLASS`.
    #[default]
    Normal,
    /// `ABOVE_NORMAL_PRIORITY_CLASS`.
    AboveNormal,
    /// `HIGH_PRIORITY_CLASS`.
    High,
}

/// An unknown priority name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown priority name: {0:?} (use IDLE_PRIORITY_CLASS, BELOW_NORMAL_PRIORITY_CLASS, NORMAL_PRIORITY_CLASS, ABOVE_NORMAL_PRIORITY_CLASS or HIGH_PRIORITY_CLASS)")]
pub struct UnknownPriority(pub String);

const NAMES: [(Priority, &str); 5] = [
    (Priority::Idle, "IDLE_PRIORITY_CLASS"),
    (Priority::BelowNormal, "BELOW_NORMAL_PRIORITY_CLASS"),
    (Priority::Normal, "NORMAL_PRIORITY_CLASS"),
    (Priority::AboveNormal, "ABOVE_NORMAL_PRIORITY_CLASS"),
    (Priority::High, "HIGH_PRIORITY_CLASS"),
];

impl Priority {
    /// Parses a class name, case-insensitively as upstream does.
    pub fn parse(name: &str) -> Result<Self, UnknownPriority> {
        NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(p, _)| *p)
            .ok_or_else(|| UnknownPriority(name.to_owned()))
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(p, _)| *p == self)
            .map(|(_, n)| *n)
            .unwrap_or_default()
    }

    /// The `CreateProcess` creation flag.
    pub fn windows_class(self) -> u32 {
        match self {
            Priority::Idle => 0x0000_0040,
            Priority::BelowNormal => 0x0000_4000,
            Priority::Normal => 0x0000_0020,
            Priority::AboveNormal => 0x0000_8000,
            Priority::High => 0x0000_0080,
        }
    }

    /// The Linux nice value. Raising priority above normal is done by the root service
    /// before it drops privileges, so an administrator's choice takes effect.
    pub fn nice(self) -> i32 {
        match self {
            Priority::Idle => 19,
            Priority::BelowNormal => 10,
            Priority::Normal => 0,
            Priority::AboveNormal => -5,
            Priority::High => -10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for (p, n) in NAMES {
            assert_eq!(Priority::parse(n), Ok(p));
            assert_eq!(Priority::parse(&n.to_lowercase()), Ok(p));
            assert_eq!(p.name(), n);
        }
        assert!(Priority::parse("REALTIME_PRIORITY_CLASS").is_err());
        assert!(Priority::parse("").is_err());
    }
}
