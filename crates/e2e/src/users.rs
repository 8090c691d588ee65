//! Unprivileged test users, created and removed by the harness.
