//! A real openvpn server (and certificates) in a test namespace.
