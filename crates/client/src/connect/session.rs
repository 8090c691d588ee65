//! The management side of `iservice connect` as a sans-IO state machine: bytes from the
//! management interface, answers from the user, Ctrl-C and late service errors go in;
//! bytes to send, prompts to show and events to report come out.

use std::collections::VecDeque;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::event::Event;
use super::outcome::Facts;
use crate::mgmt::command::password_line;
use crate::mgmt::{
    Command, NeedRequest, Notification, Output, Parser, PasswordRequest, Reply, ReplyStatus,
    Signal, StateInfo, StateName, StaticChallenge,
};
use crate::service::ServiceEvent;

/// A user name and password, zeroized on drop.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub username: Zeroizing<String>,
    /// The password.
    pub password: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<hidden>)")
    }
}

/// Why a prompt has no answer.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The terminal could not be read (closed, not a terminal, ...).
    #[error("reading from the terminal failed: {0}")]
    Terminal(#[from] std::io::Error),
    /// This prompter cannot answer this kind of question.
    #[error("this client cannot answer such questions")]
    Unsupported,
    /// Three answers in a row were not recognised.
    #[error("no answer was recognised (Enter or ok confirms, cancel refuses)")]
    Unrecognised,
}

/// An auth file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFileError {
    /// Fewer than two lines.
    #[error("the auth file must hold the user name on line 1 and the password on line 2")]
    NoPassword,
    /// The first line is empty.
    #[error("the auth file's first line (the user name) is empty")]
    EmptyUsername,
}

impl Credentials {
    /// Reads openvpn's auth-file format: the user name on line 1, the password on line 2.
    pub fn from_auth_file(text: &str) -> Result<Self, AuthFileError> {
        let mut lines = text.lines();
        let username = lines.next().unwrap_or_default();
        let Some(password) = lines.next() else {
            return Err(AuthFileError::NoPassword);
        };
        if username.is_empty() {
            return Err(AuthFileError::EmptyUsername);
        }
        Ok(Self {
            username: Zeroizing::new(username.to_owned()),
            password: Zeroizing::new(password.to_owned()),
        })
    }
}

/// How the session gets credentials.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Credentials for `Auth` requests (from `--auth-file`).
    pub auth_file: Option<Credentials>,
    /// Whether the user can be asked (a terminal is attached).
    pub interactive: bool,
    /// How many times credentials may be refused before giving up (interactive only).
    pub max_auth_attempts: u32,
    /// Seconds between traffic counters (0: none).
    pub bytecount_interval: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            auth_file: None,
            interactive: false,
            max_auth_attempts: 3,
            bytecount_interval: 5,
        }
    }
}

/// What to ask the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRequest {
    /// The credential kind (`Auth`, `Private Key`, `HTTP Proxy`).
    pub kind: String,
    /// Ask for a user name too.
    pub username: bool,
    /// Ask for the secret (false when only a dynamic challenge is answered).
    pub secret: bool,
    /// A challenge to show, and whether its answer may be echoed.
    pub challenge: Option<StaticChallenge>,
}

impl PromptRequest {
    /// A label for the secret: "Password" or "Passphrase for Private Key".
    pub fn secret_label(&self) -> String {
        if self.kind == "Auth" {
            "Password".to_owned()
        } else if self.kind == "Private Key" {
            "Private key passphrase".to_owned()
        } else {
            format!("Password ({})", self.kind)
        }
    }
}

/// The user's answer, zeroized on drop.
#[derive(Default)]
pub struct Answer {
    /// The user name, if asked.
    pub username: Option<Zeroizing<String>>,
    /// The secret, if asked.
    pub secret: Zeroizing<String>,
    /// The challenge response, if asked.
    pub response: Option<Zeroizing<String>>,
}

/// The user's answer to openvpn's `>NEED-OK:` or `>NEED-STR:` question.
#[derive(Debug)]
pub enum NeedAnswer {
    /// Confirmed (`needok … ok`).
    Ok,
    /// Refused (`needok … cancel`; a `NEED-STR` has no refusal, so openvpn is stopped).
    Cancel,
    /// The line typed for a `NEED-STR`, zeroized on drop.
    Text(Zeroizing<String>),
}

/// Something the driver must do.
#[derive(Debug)]
pub enum Action {
    /// Write these bytes to the management interface.
    Send(Zeroizing<Vec<u8>>),
    /// Ask the user (the answer comes back through [`Session::answer`]).
    Prompt(PromptRequest),
    /// Ask the user openvpn's question (the answer comes back through
    /// [`Session::answer_need`]).
    Need(NeedRequest),
    /// Report an event.
    Emit(Event),
    /// Close the management connection: the peer cannot be trusted or used, or (`start`)
    /// openvpn was told to go on alone.
    Disconnect,
}

/// A dynamic challenge from `Verification Failed: ['CRV1:…']`.
#[derive(Debug, Clone)]
struct DynamicChallenge {
    state_id: String,
    username: Zeroizing<String>,
    echo: bool,
    text: String,
}

impl DynamicChallenge {
    /// `CRV1:<flags>:<state_id>:<username_base64>:<challenge_text>`.
    fn parse(crv1: &str) -> Option<Self> {
        let mut parts = crv1.strip_prefix("CRV1:")?.splitn(4, ':');
        let flags = parts.next()?;
        let state_id = parts.next()?.to_owned();
        let username = BASE64.decode(parts.next()?).ok()?;
        let text = parts.next()?.to_owned();
        Some(Self {
            state_id,
            username: Zeroizing::new(String::from_utf8(username).ok()?),
            echo: flags.split(',').any(|f| f == "E"),
            text,
        })
    }
}

/// A question for the user: one is on screen at a time, the others wait their turn.
#[derive(Debug, Clone)]
enum Question {
    Credentials(PromptRequest),
    Need(NeedRequest),
}

/// The management session.
#[derive(Debug)]
pub struct Session {
    parser: Parser,
    password: Zeroizing<String>,
    config: SessionConfig,
    facts: Facts,
    authenticated: bool,
    prompted: bool,
    stop_sent: bool,
    detaching: bool,
    auth_failures: u32,
    auth_file_used: bool,
    asking: Option<Question>,
    waiting: VecDeque<Question>,
    dynamic: Option<DynamicChallenge>,
    sent: VecDeque<&'static str>,
    out: VecDeque<Action>,
}

impl Session {
    /// A session that will answer the management prompt with `password`.
    pub fn new(password: Zeroizing<String>, config: SessionConfig) -> Self {
        Self {
            parser: Parser::new(),
            password,
            config,
            facts: Facts::default(),
            authenticated: false,
            prompted: false,
            stop_sent: false,
            detaching: false,
            auth_failures: 0,
            auth_file_used: false,
            asking: None,
            waiting: VecDeque::new(),
            dynamic: None,
            sent: VecDeque::new(),
            out: VecDeque::new(),
        }
    }

    /// What was learned so far.
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// Whether the management password was accepted.
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether `signal SIGTERM` was sent.
    pub fn stopping(&self) -> bool {
        self.stop_sent
    }

    /// The next thing to do.
    pub fn next_action(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// Bytes read from the management interface.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.feed(bytes);
        while let Some(item) = self.parser.next_output() {
            match item {
                Ok(output) => self.output(output),
                Err(e) => self.emit(Event::Warning {
                    message: e.to_string(),
                }),
            }
        }
    }

    /// `iservice start`, once connected: tell openvpn never to hold again (a restart after
    /// the command left would otherwise wait for a management client for ever), then close
    /// the management connection when openvpn confirms. openvpn goes on alone.
    pub fn detach(&mut self) {
        if self.detaching || self.stop_sent || !self.authenticated || !self.facts.connected {
            return;
        }
        self.detaching = true;
        self.command("hold off", &Command::HoldOff);
    }

    /// Whether [`Session::detach`] was asked.
    pub fn detaching(&self) -> bool {
        self.detaching
    }

    /// The user pressed Ctrl-C (or the command got SIGTERM).
    pub fn interrupt(&mut self) {
        self.facts.interrupted = true;
        self.stop("interrupt");
    }

    /// The management connection ended.
    pub fn management_closed(&mut self) {
        if !self.authenticated && self.facts.management_error.is_none() && !self.prompted {
            self.facts.management_error =
                Some("the management interface closed before asking for its password".to_owned());
        }
    }

    /// A late message from the service.
    pub fn service_event(&mut self, event: &ServiceEvent) {
        match event {
            ServiceEvent::Error {
                code,
                function,
                text,
            } => {
                if let Some(exit) = event.openvpn_exit_code() {
                    self.facts.exit_code = Some(exit);
                } else {
                    self.facts.service_error =
                        Some(crate::service::describe(*code, function, text));
                }
                self.emit(Event::ServiceError {
                    code: *code,
                    code_name: openvpnserv_proto::codes::name(*code),
                    function: function.clone(),
                    text: text.clone(),
                });
            }
            ServiceEvent::Garbage(what) => self.emit(Event::Warning {
                message: format!("the service sent something unexpected: {what}"),
            }),
            ServiceEvent::Closed => {}
        }
    }

    /// The user's answer to the last [`Action::Prompt`], or why there is none.
    pub fn answer(&mut self, answer: Result<Answer, PromptError>) {
        let request = match self.asking.take() {
            Some(Question::Credentials(request)) => request,
            other => {
                self.asking = other;
                return;
            }
        };
        if self.stop_sent {
            return;
        }
        match answer {
            Ok(answer) => self.send_credentials(&request, &answer),
            Err(why) => self.give_up_auth(&format!(
                "cannot ask for the {}: {why}",
                request.secret_label().to_lowercase()
            )),
        }
        self.next_question();
    }

    /// The user's answer to the last [`Action::Need`], or why there is none.
    pub fn answer_need(&mut self, answer: Result<NeedAnswer, PromptError>) {
        let request = match self.asking.take() {
            Some(Question::Need(request)) => request,
            other => {
                self.asking = other;
                return;
            }
        };
        if self.stop_sent {
            return;
        }
        let name = request.name.as_str();
        match (answer, request.input) {
            (Ok(NeedAnswer::Ok), false) => {
                self.command("needok", &Command::NeedOk { name, ok: true });
            }
            (Ok(NeedAnswer::Cancel), false) => {
                self.command("needok", &Command::NeedOk { name, ok: false });
            }
            (Ok(NeedAnswer::Text(value)), true) => {
                self.command(
                    "needstr",
                    &Command::NeedStr {
                        name,
                        value: &value,
                    },
                );
            }
            (Ok(NeedAnswer::Cancel), true) => {
                self.unanswered(&request, "the question was cancelled");
            }
            (Ok(_), _) => self.unanswered(&request, "the answer does not fit the question"),
            (Err(why), _) => self.unanswered(&request, &why.to_string()),
        }
        self.next_question();
    }

    fn emit(&mut self, event: Event) {
        self.out.push_back(Action::Emit(event));
    }

    fn command(&mut self, label: &'static str, command: &Command<'_>) {
        match command.encode() {
            Ok((bytes, expect)) => {
                self.parser.expect(expect);
                self.sent.push_back(label);
                self.out.push_back(Action::Send(bytes));
            }
            Err(e) => self.give_up_auth(&e.to_string()),
        }
    }

    fn stop(&mut self, reason: &str) {
        if self.stop_sent || !self.authenticated {
            return;
        }
        self.stop_sent = true;
        self.emit(Event::Stopping {
            reason: reason.to_owned(),
        });
        self.command("signal SIGTERM", &Command::Signal(Signal::Term));
    }

    /// The management peer is not the openvpn that was started (see [`super::owner`]) or
    /// cannot be used: nothing more is sent to it.
    pub fn reject_peer(&mut self, why: &str) {
        if self.facts.management_error.is_none() {
            self.facts.management_error = Some(why.to_owned());
        }
        self.out.push_back(Action::Disconnect);
    }

    fn output(&mut self, output: Output) {
        if !self.authenticated {
            match output {
                Output::PasswordPrompt => {
                    self.prompted = true;
                    match password_line(&self.password) {
                        Ok(line) => {
                            self.parser.password_sent();
                            self.out.push_back(Action::Send(line));
                        }
                        Err(e) => self.reject_peer(&e.to_string()),
                    }
                }
                Output::PasswordAccepted => self.authenticated_now(),
                Output::PasswordRejected => {
                    self.reject_peer("openvpn's management interface refused the password this client gave it");
                }
                // Our openvpn always asks for the password first; anything else on the port
                // is another program, which must not see our credentials.
                _ => self.reject_peer("the program on the management port did not ask for the management password: it is not the openvpn this client started"),
            }
            return;
        }
        match output {
            Output::Notification(n) => self.notification(n),
            Output::Reply(reply) => self.reply(&reply),
            Output::Unexpected(line) => self.emit(Event::Warning {
                message: format!("unexpected line from the management interface: {line}"),
            }),
            Output::PasswordPrompt | Output::PasswordAccepted | Output::PasswordRejected => {}
        }
    }

    fn authenticated_now(&mut self) {
        self.authenticated = true;
        self.emit(Event::ManagementConnected);
        self.command("state on all", &Command::StateOnAll);
        self.command("log on all", &Command::LogOnAll);
        if self.config.bytecount_interval > 0 {
            let interval = self.config.bytecount_interval;
            self.command("bytecount", &Command::ByteCount(interval));
        }
        if self.facts.interrupted {
            self.stop("interrupt");
        }
    }

    fn reply(&mut self, reply: &Reply) {
        let label = self.sent.pop_front().unwrap_or("command");
        if label == "hold off" && !self.stop_sent {
            if let ReplyStatus::Error(text) = &reply.status {
                // The hold was released already, which openvpn remembers across restarts;
                // only an explicit `hold` command would bring it back.
                self.emit(Event::Warning {
                    message: format!("openvpn refused `hold off`: {text}"),
                });
            }
            self.facts.detached = true;
            self.out.push_back(Action::Disconnect);
            return;
        }
        if let ReplyStatus::Error(text) = &reply.status {
            self.emit(Event::Warning {
                message: format!("openvpn refused `{label}`: {text}"),
            });
            return;
        }
        match label {
            "state on all" => {
                for line in &reply.lines {
                    if let Some(info) = StateInfo::parse(line) {
                        self.state(&info);
                    }
                }
            }
            "log on all" => {
                for line in &reply.lines {
                    if let Some(log) = crate::mgmt::LogLine::parse(line) {
                        self.emit(Event::log(&log));
                    }
                }
            }
            _ => {}
        }
    }

    fn state(&mut self, info: &StateInfo) {
        if info.name == StateName::Connected {
            self.facts.connected = true;
        }
        self.emit(Event::state(info));
    }

    fn notification(&mut self, notification: Notification) {
        match notification {
            Notification::State(info) => self.state(&info),
            Notification::Log(line) => self.emit(Event::log(&line)),
            Notification::Hold { wait_hint, .. } => {
                self.emit(Event::Hold { wait_hint });
                if !self.stop_sent {
                    self.command("hold release", &Command::HoldRelease);
                }
            }
            Notification::Password(request) => self.password_request(request),
            Notification::ByteCount {
                bytes_in,
                bytes_out,
            } => self.emit(Event::Bytecount {
                bytes_in,
                bytes_out,
            }),
            Notification::Info(message) | Notification::InfoMsg(message) => {
                self.emit(Event::Info { message });
            }
            Notification::Need(request) => {
                self.emit(Event::Question {
                    name: request.name.clone(),
                    message: request.message.clone(),
                    input: request.input,
                });
                self.need(request);
            }
            Notification::Fatal(message) => {
                self.facts.fatal = Some(message.clone());
                self.emit(Event::Fatal { message });
            }
            Notification::Other { kind, body } => self.emit(Event::Notification { kind, body }),
        }
    }

    fn password_request(&mut self, request: PasswordRequest) {
        match request {
            PasswordRequest::NeedUsernamePassword { kind, challenge } => {
                self.emit(Event::PasswordRequest {
                    kind: kind.clone(),
                    username: true,
                    challenge: challenge.as_ref().map(|c| c.text.clone()),
                });
                let dynamic = if kind == "Auth" && challenge.is_none() {
                    self.dynamic.take()
                } else {
                    None
                };
                if let Some(dynamic) = dynamic {
                    self.ask(PromptRequest {
                        kind,
                        username: false,
                        secret: false,
                        challenge: Some(StaticChallenge {
                            echo: dynamic.echo,
                            text: dynamic.text.clone(),
                        }),
                    });
                    self.dynamic = Some(dynamic);
                    return;
                }
                if kind == "Auth" && challenge.is_none() && !self.auth_file_used {
                    if let Some(creds) = self.config.auth_file.clone() {
                        self.auth_file_used = true;
                        let answer = Answer {
                            username: Some(creds.username.clone()),
                            secret: creds.password.clone(),
                            response: None,
                        };
                        let request = PromptRequest {
                            kind,
                            username: true,
                            secret: true,
                            challenge: None,
                        };
                        self.send_credentials(&request, &answer);
                        return;
                    }
                }
                self.ask(PromptRequest {
                    kind,
                    username: true,
                    secret: true,
                    challenge,
                });
            }
            PasswordRequest::NeedPassword { kind } => {
                self.emit(Event::PasswordRequest {
                    kind: kind.clone(),
                    username: false,
                    challenge: None,
                });
                self.ask(PromptRequest {
                    kind,
                    username: false,
                    secret: true,
                    challenge: None,
                });
            }
            PasswordRequest::VerificationFailed {
                kind,
                dynamic_challenge,
            } => {
                if let Some(dynamic) = dynamic_challenge
                    .as_deref()
                    .and_then(DynamicChallenge::parse)
                {
                    self.emit(Event::Info {
                        message: format!("the server asks: {}", dynamic.text),
                    });
                    self.dynamic = Some(dynamic);
                    return;
                }
                self.auth_failures += 1;
                let retry = self.config.interactive
                    && self.config.auth_file.is_none()
                    && kind == "Auth"
                    && self.auth_failures < self.config.max_auth_attempts;
                self.emit(Event::AuthFailed {
                    kind: kind.clone(),
                    retry,
                });
                if !retry {
                    self.facts.auth_failed = true;
                    self.stop("auth_failed");
                }
            }
            PasswordRequest::AuthToken(_) => {}
            PasswordRequest::Other(body) => self.emit(Event::Notification {
                kind: "PASSWORD".to_owned(),
                body,
            }),
        }
    }

    fn ask(&mut self, request: PromptRequest) {
        if self.stop_sent {
            return;
        }
        if !self.config.interactive {
            self.give_up_auth(&format!(
                "openvpn asks for the {} but there is no terminal to ask on (use --auth-file for a user name and password)",
                request.secret_label().to_lowercase()
            ));
            return;
        }
        self.put(Question::Credentials(request));
    }

    fn need(&mut self, request: NeedRequest) {
        if self.stop_sent {
            return;
        }
        if !self.config.interactive {
            self.unanswered(&request, "there is no terminal to ask on");
            return;
        }
        self.put(Question::Need(request));
    }

    /// openvpn blocks until its question is answered; without an answer it would wait
    /// forever, so it is stopped instead.
    fn unanswered(&mut self, request: &NeedRequest, why: &str) {
        let message = format!(
            "openvpn waits for an answer to '{}' ({}), but {why}: stopping openvpn",
            request.name,
            if request.message.is_empty() {
                "no text given"
            } else {
                &request.message
            }
        );
        self.emit(Event::Warning {
            message: message.clone(),
        });
        if self.facts.management_error.is_none() {
            self.facts.management_error = Some(message);
        }
        self.stop("unanswered");
    }

    /// Shows a question now, or after the one on screen is answered.
    fn put(&mut self, question: Question) {
        if self.asking.is_some() {
            self.waiting.push_back(question);
        } else {
            self.show(question);
        }
    }

    fn show(&mut self, question: Question) {
        self.out.push_back(match &question {
            Question::Credentials(request) => Action::Prompt(request.clone()),
            Question::Need(request) => Action::Need(request.clone()),
        });
        self.asking = Some(question);
    }

    fn next_question(&mut self) {
        if self.stop_sent {
            self.waiting.clear();
            return;
        }
        if self.asking.is_none() {
            if let Some(question) = self.waiting.pop_front() {
                self.show(question);
            }
        }
    }

    fn give_up_auth(&mut self, why: &str) {
        self.emit(Event::Warning {
            message: why.to_owned(),
        });
        self.facts.auth_failed = true;
        self.stop("auth_failed");
    }

    fn send_credentials(&mut self, request: &PromptRequest, answer: &Answer) {
        let kind = request.kind.clone();
        let secret: Zeroizing<String> = if let Some(dynamic) = self.dynamic.take() {
            let response = answer.response.as_deref().map_or("", |r| r.as_str());
            self.command(
                "username",
                &Command::Username {
                    kind: &kind,
                    value: &dynamic.username,
                },
            );
            Zeroizing::new(format!("CRV1::{}::{response}", dynamic.state_id))
        } else {
            if request.username {
                let user = answer.username.as_deref().map_or("", |u| u.as_str());
                self.command(
                    "username",
                    &Command::Username {
                        kind: &kind,
                        value: user,
                    },
                );
            }
            match (&request.challenge, &answer.response) {
                // Static challenge: "SCRV1:<base64 password>:<base64 response>".
                (Some(_), Some(response)) => Zeroizing::new(format!(
                    "SCRV1:{}:{}",
                    Zeroizing::new(BASE64.encode(answer.secret.as_bytes())).as_str(),
                    Zeroizing::new(BASE64.encode(response.as_bytes())).as_str()
                )),
                _ => answer.secret.clone(),
            }
        };
        self.command(
            "password",
            &Command::Password {
                kind: &kind,
                value: &secret,
            },
        );
    }
}
