//! Which calls a client waits on (the driver's dispatch-after rule reads it).

use crate::wire::contract::Command;

/// A client (or the operator) waits for the reply to `command`: another
/// job's submission never holds it up (what it freed goes on the alarm,
/// armed at once). Everything else the Worker sends (webhooks, callbacks,
/// settles) dispatches what it freed before it answers.
pub(super) fn client_waits(command: &Command) -> bool {
    matches!(
        command,
        Command::Admit(_)
            | Command::Status
            | Command::Ticket { .. }
            | Command::Ledger { .. }
            | Command::Cancel { .. }
            | Command::Unhold { .. }
            | Command::UpstreamLimited { .. }
            | Command::Admin(_)
    )
}
