//! Network namespaces and veth links for tests.
