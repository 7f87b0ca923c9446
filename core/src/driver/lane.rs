//! Running the batch lane: the core hands out one step at a time (a batch
//! create, a read, a result) and the driver fetches and reports back,
//! one lane loop at a time, a bounded number of steps per wake.

use super::{Driver, Io, IoResult};
use crate::batch::lane::{LaneCommand, LaneStep};
use crate::wire::contract::{Command, Reply};

/// Lane steps per wake at most (the alarm re-arms for the rest).
pub const MAX_LANE_STEPS_PER_WAKE: usize = 8;

impl<I: Io> Driver<I> {
    /// Run the lane's steps while it has some (one loop at a time).
    pub(super) async fn lane(&self) -> IoResult<()> {
        if self.laning.replace(true) {
            return Ok(());
        }
        let result = self.lane_loop().await;
        self.laning.set(false);
        result
    }

    async fn lane_loop(&self) -> IoResult<()> {
        let Some(key) = self.upstream_key().await else { return Ok(()) };
        let timeout = self.config.timeouts.create_ms;
        for _ in 0..MAX_LANE_STEPS_PER_WAKE {
            let Reply::Lane(step) = self.reply(Command::Lane(LaneCommand::Next)).await? else { return Ok(()) };
            let report = match step {
                LaneStep::Submit { permit, lines, .. } => {
                    LaneCommand::Created { permit, answer: self.io.submit_batch(&key, &lines, timeout).await }
                }
                LaneStep::Poll { batch } => {
                    let seen = self.io.read_batch(&key, &batch, timeout).await;
                    LaneCommand::Seen { batch, seen }
                }
                LaneStep::Fetch { batch } => {
                    let body = self.io.batch_result(&key, &batch, timeout).await;
                    LaneCommand::Result { batch, body }
                }
                LaneStep::Idle => return Ok(()),
            };
            self.run(Command::Lane(report)).await?;
        }
        Ok(())
    }
}
