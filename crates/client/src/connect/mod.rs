//! `iservice connect`: start openvpn through the service and drive it over its management
//! interface.
//!
//! * [`options`]: what the service is asked to run;
//! * [`session`]: the management conversation, sans-IO;
//! * [`outcome`]: how the command ends (exit codes);
//! * [`event`]: what is reported (terminal or JSON);
//! * [`registry`]: the connection's name and openvpn's last lines (control socket, log file);
//! * [`backoff`]: how often to try the management port while openvpn starts;
//! * [`driver`]: the loop that joins the service, the management socket, the user and Ctrl-C.

pub mod backoff;
pub mod driver;
pub mod event;
pub mod logfile;
pub mod options;
pub mod outcome;
pub mod owner;
pub mod registry;
pub mod session;
mod signal;

pub use driver::{run, Prompter, RunOptions, Sink};
pub use event::{Event, Record, EVENTS_SCHEMA};
pub use options::{LaunchPlan, PasswordSource, PlanError};
pub use outcome::{Facts, Outcome};
pub use registry::{Registry, LOG_TAIL_LINES};
pub use session::{
    Action, Answer, AuthFileError, Credentials, NeedAnswer, PromptError, PromptRequest, Session,
    SessionConfig,
};
