//! Starting and stopping the service under test.
