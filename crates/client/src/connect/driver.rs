//! The I/O loop of `iservice connect`: the service connection, the management socket, the
//! user's prompts and Ctrl-C, joined with `tokio::select!` around the sans-IO [`Session`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use zeroize::Zeroize;

use super::backoff::Backoff;
use super::event::Event;
use super::options::LaunchPlan;
use super::outcome::Outcome;
use super::owner::Owner;
use super::registry::{with_log_tail, Registry, LOG_TAIL_LINES};
use super::session::{
    Action, Answer, NeedAnswer, PromptError, PromptRequest, Session, SessionConfig,
};
use crate::mgmt::NeedRequest;
use crate::service::{self, ServiceEvent, StartError, Timeouts, Transport};

/// Where events go: a terminal display or JSON lines.
pub trait Sink: Send {
    /// Reports one event, `elapsed` after the command started.
    fn event(&mut self, elapsed: Duration, event: &Event);
    /// A prompt starts (`true`) or ends (`false`): a display must get out of its way.
    fn prompting(&mut self, _active: bool) {}
}

/// Asks the user for credentials (blocking; the driver runs it on a blocking thread).
pub trait Prompter: Send + Sync + 'static {
    /// Asks; an error says why no answer can be had.
    fn ask(&self, request: &PromptRequest) -> Result<Answer, PromptError>;

    /// Asks openvpn's `>NEED-OK:` / `>NEED-STR:` question. A prompter that cannot answer
    /// such questions keeps this default, and openvpn is stopped rather than left waiting.
    fn need(&self, request: &NeedRequest) -> Result<NeedAnswer, PromptError> {
        let _ = request;
        Err(PromptError::Unsupported)
    }
}

/// An answer coming back from a blocking prompt.
enum UserAnswer {
    Credentials(Result<Answer, PromptError>),
    Need(Result<NeedAnswer, PromptError>),
}

/// Timing and session settings of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Service timeouts.
    pub timeouts: Timeouts,
    /// How long openvpn may take to open its management interface.
    pub management_connect: Duration,
    /// How long to wait for openvpn to exit after `signal SIGTERM`.
    pub stop_wait: Duration,
    /// How long to wait for the service's last word after openvpn closed the interface.
    pub exit_wait: Duration,
    /// Credentials and prompting.
    pub session: SessionConfig,
    /// `iservice start`: once CONNECTED, leave openvpn running and end (see
    /// [`Session::detach`]).
    pub detach: bool,
    /// Where the connection's name and openvpn's last lines come from, if anywhere.
    pub registry: Option<Arc<dyn Registry>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            management_connect: Duration::from_secs(30),
            stop_wait: Duration::from_secs(30),
            exit_wait: Duration::from_secs(5),
            session: SessionConfig::default(),
            detach: false,
            registry: None,
        }
    }
}

struct Reporter<'a> {
    started: Instant,
    sink: &'a mut dyn Sink,
}

impl Reporter<'_> {
    fn emit(&mut self, event: &Event) {
        self.sink.event(self.started.elapsed(), event);
    }

    fn finish(&mut self, outcome: Outcome, message: String) -> Outcome {
        self.finish_with_log(outcome, message, None)
    }

    fn finish_with_log(
        &mut self,
        outcome: Outcome,
        message: String,
        openvpn_log: Option<Vec<String>>,
    ) -> Outcome {
        self.emit(&Event::Exit {
            code: outcome.code(),
            outcome: outcome.name(),
            message,
            openvpn_log,
        });
        outcome
    }

    /// The end of a run once openvpn was started: `start` names the connection; a failure
    /// carries openvpn's last lines.
    async fn conclude(
        &mut self,
        options: &RunOptions,
        pid: u32,
        outcome: Outcome,
        message: String,
    ) -> Outcome {
        let Some(registry) = &options.registry else {
            return self.finish(outcome, message);
        };
        match outcome {
            Outcome::Connected => {
                let Some(name) = registry.name_of(pid).await else {
                    return self.finish(outcome, message);
                };
                self.emit(&Event::Connection {
                    name: name.clone(),
                    pid,
                });
                self.finish(
                    outcome,
                    format!(
                        "{name} is connected; openvpn goes on without iservice (`iservice stop {name}` disconnects it)"
                    ),
                )
            }
            Outcome::OpenvpnFailed => match registry.log_tail(pid, LOG_TAIL_LINES).await {
                Some(lines) => {
                    let message = with_log_tail(&message, &lines);
                    self.finish_with_log(outcome, message, Some(lines))
                }
                None => self.finish(outcome, message),
            },
            _ => self.finish(outcome, message),
        }
    }
}

/// Runs the whole command over a connected service transport: start openvpn, connect to
/// its management interface, drive it until it exits. `interrupts` delivers Ctrl-C.
pub async fn run<T: Transport>(
    transport: T,
    plan: &LaunchPlan,
    options: &RunOptions,
    sink: &mut dyn Sink,
    prompter: Arc<dyn Prompter>,
    interrupts: &mut mpsc::UnboundedReceiver<()>,
) -> Outcome {
    let mut report = Reporter {
        started: Instant::now(),
        sink,
    };
    let mut message = plan.startup_message();
    let started = service::start(transport, &message, options.timeouts).await;
    message.stdin.zeroize();
    let mut service = match started {
        Ok(service) => service,
        Err(e) => return start_failed(&mut report, &e),
    };
    report.emit(&Event::Started {
        pid: service.pid(),
        management: plan.management.to_string(),
    });
    let mut session = Session::new(plan.password.clone(), options.session.clone());
    let mut service_open = true;

    // openvpn opens its management port soon after start; meanwhile it may die (a late
    // error from the service) or the user may give up.
    let deadline = Instant::now() + options.management_connect;
    let mut backoff = Backoff::new();
    let stream = loop {
        tokio::select! {
            event = service.next_event(), if service_open => {
                service_open = event != ServiceEvent::Closed;
                session.service_event(&event);
                drain(&mut session, &mut report);
                if !service_open {
                    break None;
                }
            }
            Some(()) = interrupts.recv() => {
                session.interrupt();
                if super::signal::terminate(service.pid()) {
                    wait_for_close(&mut service, &mut session, &mut report, options.exit_wait).await;
                }
                break None;
            }
            connected = connect_once(plan, &mut backoff) => {
                if let Some(stream) = connected {
                    break Some(stream);
                }
                if Instant::now() >= deadline {
                    let message = format!(
                        "openvpn (process {}) did not open its management interface on {} within {} s",
                        service.pid(),
                        plan.management,
                        options.management_connect.as_secs()
                    );
                    return report
                        .conclude(options, service.pid(), Outcome::OpenvpnFailed, message)
                        .await;
                }
            }
        }
    };
    if let Some(stream) = stream {
        match super::owner::management_owner(service.pid(), plan.management) {
            Owner::Verified => {}
            Owner::Other => session.reject_peer(&format!(
                "the program listening on {} is not openvpn (process {}): another program took the management port, so nothing was sent to it",
                plan.management,
                service.pid()
            )),
            Owner::Unknown(why) => report.emit(&Event::Warning {
                message: format!("could not check who listens on the management port: {why}"),
            }),
        }
        converse(
            stream,
            &mut session,
            &mut service,
            &mut service_open,
            &mut report,
            &prompter,
            interrupts,
            options,
        )
        .await;
        // A detached openvpn goes on: its service connection is simply dropped (the
        // service keeps the session when its client leaves).
        if service_open && !session.facts().detached {
            wait_for_close(&mut service, &mut session, &mut report, options.exit_wait).await;
        }
    }
    drain(&mut session, &mut report);
    let (outcome, message) = session.facts().outcome();
    report
        .conclude(options, service.pid(), outcome, message)
        .await
}

fn start_failed(report: &mut Reporter<'_>, e: &StartError) -> Outcome {
    let outcome = match e {
        StartError::Refused {
            code,
            function,
            text,
        } => {
            report.emit(&Event::Refused {
                code: *code,
                code_name: openvpnserv_proto::codes::name(*code),
                function: function.clone(),
                text: text.clone(),
            });
            Outcome::Refused
        }
        StartError::InvalidRequest(_) => Outcome::LocalError,
        _ => Outcome::ServiceUnavailable,
    };
    report.finish(outcome, e.to_string())
}

/// Asks the kernel to acknowledge what arrives at once rather than after the delayed-ACK
/// timer (see `converse`); nothing to do where that cannot be asked.
fn quick_ack(stream: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
    }
}

/// One attempt to reach the management port; after a failure it waits as `backoff` says
/// (no fixed sleep: the port is found within a few milliseconds of openvpn opening it).
/// Whatever answers is checked before anything is sent (the listener's owner, then the
/// password prompt), however soon it is reached.
async fn connect_once(plan: &LaunchPlan, backoff: &mut Backoff) -> Option<TcpStream> {
    if let Ok(stream) = TcpStream::connect(plan.management).await {
        return Some(stream);
    }
    tokio::time::sleep(backoff.next_delay()).await;
    None
}

async fn wait_for_close<T: Transport>(
    service: &mut service::Session<T>,
    session: &mut Session,
    report: &mut Reporter<'_>,
    wait: Duration,
) {
    let _ = tokio::time::timeout(wait, async {
        loop {
            let event = service.next_event().await;
            session.service_event(&event);
            drain(session, report);
            if event == ServiceEvent::Closed {
                break;
            }
        }
    })
    .await;
}

/// Emits queued events; other actions cannot happen outside the conversation.
fn drain(session: &mut Session, report: &mut Reporter<'_>) {
    while let Some(action) = session.next_action() {
        if let Action::Emit(event) = action {
            report.emit(&event);
        }
    }
}

/// Runs a prompt on a blocking thread; its answer comes back through `answers`.
fn ask_blocking(
    prompter: &Arc<dyn Prompter>,
    answers: &mpsc::UnboundedSender<UserAnswer>,
    ask: impl FnOnce(&dyn Prompter) -> UserAnswer + Send + 'static,
) {
    let prompter = Arc::clone(prompter);
    let answers = answers.clone();
    tokio::task::spawn_blocking(move || {
        let _ = answers.send(ask(prompter.as_ref()));
    });
}

#[allow(clippy::too_many_arguments)]
async fn converse<T: Transport>(
    stream: TcpStream,
    session: &mut Session,
    service: &mut service::Session<T>,
    service_open: &mut bool,
    report: &mut Reporter<'_>,
    prompter: &Arc<dyn Prompter>,
    interrupts: &mut mpsc::UnboundedReceiver<()>,
    options: &RunOptions,
) {
    // openvpn writes its notifications as many small writes and does not turn Nagle off on
    // the management socket: each small write waits for our ACK of the previous one, and a
    // delayed ACK holds it for 40 ms (measured: CONNECTED reached us 40 ms after openvpn
    // logged it). So we ACK at once (Linux: TCP_QUICKACK, which the kernel clears again, so
    // after every read) and send our own commands without delay.
    let _ = stream.set_nodelay(true);
    quick_ack(&stream);
    let (mut reader, mut writer) = stream.into_split();
    let (answer_tx, mut answers) = mpsc::unbounded_channel();
    let mut buf = vec![0u8; 16 * 1024];
    let mut stop_deadline: Option<tokio::time::Instant> = None;
    loop {
        if options.detach {
            session.detach();
        }
        while let Some(action) = session.next_action() {
            match action {
                Action::Send(bytes) => {
                    if writer.write_all(&bytes).await.is_err() {
                        session.management_closed();
                        return;
                    }
                }
                Action::Emit(event) => report.emit(&event),
                Action::Prompt(request) => {
                    report.sink.prompting(true);
                    ask_blocking(prompter, &answer_tx, move |p| {
                        UserAnswer::Credentials(p.ask(&request))
                    });
                }
                Action::Need(request) => {
                    report.sink.prompting(true);
                    ask_blocking(prompter, &answer_tx, move |p| {
                        UserAnswer::Need(p.need(&request))
                    });
                }
                Action::Disconnect => return,
            }
        }
        if session.stopping() && stop_deadline.is_none() {
            stop_deadline = Some(tokio::time::Instant::now() + options.stop_wait);
        }
        let stop_timer = async {
            match stop_deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    session.management_closed();
                    return;
                }
                Ok(n) => {
                    quick_ack(reader.as_ref());
                    session.feed(&buf[..n]);
                }
            },
            Some(answer) = answers.recv() => {
                report.sink.prompting(false);
                match answer {
                    UserAnswer::Credentials(answer) => session.answer(answer),
                    UserAnswer::Need(answer) => session.answer_need(answer),
                }
            }
            event = service.next_event(), if *service_open => {
                *service_open = event != ServiceEvent::Closed;
                session.service_event(&event);
            }
            Some(()) = interrupts.recv() => {
                if session.stopping() {
                    report.emit(&Event::Warning {
                        message: "interrupted again: no longer waiting for openvpn to exit".to_owned(),
                    });
                    return;
                }
                session.interrupt();
            }
            () = stop_timer => {
                report.emit(&Event::Warning {
                    message: format!("openvpn did not exit within {} s of being asked to", options.stop_wait.as_secs()),
                });
                return;
            }
        }
    }
}
