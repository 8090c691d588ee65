//! What the openvpn of `exe_path` is, from its `--version` text: the version (2.7 changed
//! how scripts learn DNS and full-tunnel routes), and the build's `--iproute` and DCO
//! support. The service reads it again whenever the file changes.

/// An openvpn build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Build {
    /// `(major, minor, patch)`.
    pub version: (u32, u32, u32),
    /// Built with `--enable-iproute2`: takes `--iproute <cmd>`.
    pub iproute: bool,
    /// Built with data channel offload (the `ovpn` kernel module).
    pub dco: bool,
}

impl Default for Build {
    /// What is assumed of an openvpn that cannot be asked: 2.6 without `--iproute`.
    fn default() -> Self {
        Self {
            version: (2, 6, 0),
            iproute: false,
            dco: false,
        }
    }
}

impl Build {
    /// Parses `openvpn --version` output (`OpenVPN 2.7.8 x86_64-pc-linux-gnu [SSL ...]
    /// [DCO]`, then `enable_iproute2=yes` among the build options).
    pub fn parse(text: &str) -> Option<Self> {
        let first = text.lines().next()?;
        let mut words = first.split_whitespace();
        if words.next()? != "OpenVPN" {
            return None;
        }
        let mut numbers = words
            .next()?
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>().ok());
        let major = numbers.next()??;
        let minor = numbers.next()??;
        let patch = numbers.next().flatten().unwrap_or(0);
        Some(Self {
            version: (major, minor, patch),
            iproute: text.contains("enable_iproute2=yes"),
            dco: first.contains("[DCO]"),
        })
    }

    /// 2.7 or later: `--dns-updown`, `route_redirect_gateway_*`, and DNS for scripts other
    /// than `--dns-updown` no longer in their environment.
    pub fn is_2_7(&self) -> bool {
        self.version >= (2, 7, 0)
    }

    /// `major.minor.patch`.
    pub fn version_text(&self) -> String {
        let (a, b, c) = self.version;
        format!("{a}.{b}.{c}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_builds() {
        let b27 = Build::parse(
            "OpenVPN 2.7.8 x86_64-pc-linux-gnu [SSL (OpenSSL)] [LZO] [LZ4] [EPOLL] [PKCS11] [MH/PKTINFO] [AEAD] [DCO]\n\
             library versions: OpenSSL 3.5.9 29 Sep 2026, LZO 2.10\nenable_iproute2=no\n",
        )
        .unwrap();
        assert_eq!(b27.version, (2, 7, 8));
        assert!(b27.is_2_7() && b27.dco && !b27.iproute);
        let b26 = Build::parse(
            "OpenVPN 2.6.14 x86_64-pc-linux-gnu [SSL (OpenSSL)]\nenable_iproute2=yes\n",
        )
        .unwrap();
        assert_eq!(b26.version_text(), "2.6.14");
        assert!(!b26.is_2_7() && b26.iproute && !b26.dco);
        assert_eq!(
            Build::parse("OpenVPN 2.7_rc2 x").unwrap().version,
            (2, 7, 0)
        );
        assert_eq!(Build::parse("not openvpn"), None);
        assert_eq!(Build::parse(""), None);
    }
}
