//! Email over SMTP (lettre): one message per group, STARTTLS by default (required, not
//! opportunistic), the platform's roots plus the receiver's `ca_file`.

use std::fmt::Write as _;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Delivery, DeliveryError, SetupError, read_ca_pem};
use crate::change::State;
use crate::config::{EmailConfig, SmtpTls};

pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl EmailSender {
    pub fn new(name: &str, config: &EmailConfig) -> Result<Self, SetupError> {
        crate::install_crypto_provider();
        let setup = |reason: String| SetupError::Client {
            receiver: name.to_owned(),
            reason,
        };
        let mut tls = TlsParameters::builder(config.smtp_host.clone());
        if let Some(path) = &config.ca_file {
            let pem = read_ca_pem(name, path)?;
            let cert = Certificate::from_pem(&pem).map_err(|e| SetupError::CaFile {
                receiver: name.to_owned(),
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls.build_rustls().map_err(|e| setup(e.to_string()))?;
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.smtp_host.clone())
                .port(config.smtp_port)
                .timeout(Some(config.timeout))
                .tls(match config.tls {
                    SmtpTls::Starttls => Tls::Required(tls),
                    SmtpTls::Implicit => Tls::Wrapper(tls),
                    SmtpTls::None => Tls::None,
                });
        if let Some((user, password)) = &config.credentials {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        let parse = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| setup(format!("{a:?}: {e}")))
        };
        Ok(EmailSender {
            transport: builder.build(),
            from: parse(&config.from)?,
            to: config
                .to
                .iter()
                .map(|a| parse(a))
                .collect::<Result<_, _>>()?,
        })
    }

    pub async fn send(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        let (subject, body) = render(delivery);
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!("<{}@sdash-notify>", delivery.id)))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        // 8bit (CRLF lines) keeps the text as written (quoted-printable would break ids across lines);
        // lettre falls back to an encoding that fits when the text needs one.
        let body = body.replace('\n', "\r\n");
        let body = match Body::new_with_encoding(body, ContentTransferEncoding::EightBit) {
            Ok(body) => body,
            Err(raw) => Body::new(raw),
        };
        let message = message
            .body(body)
            .map_err(|e| DeliveryError::Refused(format!("cannot build the email: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::Refused(e.to_string())),
            Err(e) => Err(DeliveryError::Retry(e.to_string())),
        }
    }
}

/// The subject and plain-text body of one group's email.
pub fn render(delivery: &Delivery) -> (String, String) {
    let group: Vec<String> = delivery
        .group
        .values()
        .filter(|v| !v.is_empty())
        .cloned()
        .collect();
    let reminder = if delivery.repeat {
        "still unresolved: "
    } else {
        ""
    };
    let subject = match delivery.changes.as_slice() {
        [one] => format!("[sdash] {reminder}{}", one.summary()),
        many => format!(
            "[sdash] {reminder}{} changes: {}",
            many.len(),
            group.join(", ")
        ),
    };
    let mut body = String::new();
    for change in &delivery.changes {
        let state = match change.condition().state {
            State::Firing => "FIRING",
            State::Resolved => "RESOLVED",
            State::Info => "INFO",
        };
        let _ = writeln!(
            body,
            // Short lines: a long one makes the whole body quoted-printable, and the id line
            // must stay searchable.
            "{state} [{}] {}\n  at {}\n  system {} ({})\n  change {}\n",
            change.severity().as_str(),
            change.summary(),
            sdash_proto::format_ms(change.observed_at),
            change.system_id,
            change.record.vendor.as_str(),
            change.id,
        );
    }
    let _ = writeln!(body, "-- \nsdash-notify, delivery {}", delivery.id);
    (subject, body)
}
