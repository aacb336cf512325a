//! A worker's coarse deadlines: every timeout on the request path (the client's next bytes, the
//! response write, the backend's answer) and every idle connection's wait, in one table swept
//! every [`TICK`] by one task per worker.
//!
//! Not monoio timers: a monoio `Sleep` embeds its wheel entry (384 bytes at 128-byte alignment),
//! which aligns every future that nests one, and registering, polling and removing it cost
//! ~500 instructions per timeout; three of them per proxied call were ~1,600 of its
//! instructions (callgrind, perf/RESULTS.md). A deadline here is a slot in a vector taken from a
//! free list and a waker: an [`Until`] is 32 bytes.
//!
//! The price is precision: a deadline fires up to one tick late, so a configured timeout is
//! honoured to within [`TICK`]. A sweep scans every slot: at the default bound of 50,000
//! connections per worker that is 500,000 comparisons a second (about a millisecond of CPU), and
//! nothing when none is armed. Connect timeouts, cold and short, stay monoio timers.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often a worker's deadlines are checked while any is armed: how late a timeout may fire.
pub const TICK: Duration = Duration::from_millis(100);

/// A worker's deadlines: a slot per waiting operation, checked every [`TICK`] by a sweeper task
/// started on the first deadline armed (on the runtime of whoever armed it). Slots are reused
/// through a free list; when none is armed the table is emptied (and shrunk when it had grown),
/// so a burst of idle connections does not keep memory.
pub struct Deadlines {
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    /// Slots waiting (not free, not fired).
    armed: Cell<usize>,
    /// The sweeper, parked while nothing is armed.
    sweeper: RefCell<Option<Waker>>,
    /// Whether the sweeper task was started.
    started: Cell<bool>,
    /// This table, for the sweeper task to hold.
    me: Weak<Deadlines>,
}

struct Slot {
    at: Instant,
    state: State,
}

enum State {
    Free,
    Waiting(Waker),
    Fired,
}

/// Slots kept after every deadline is gone; beyond it the table is shrunk.
const KEEP_SLOTS: usize = 1024;

/// A deadline passed before the operation raced against it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

impl Deadlines {
    /// A worker's table (one per worker: each has its own sweeper).
    pub fn new() -> Rc<Deadlines> {
        Rc::new_cyclic(|me| Deadlines {
            slots: RefCell::default(),
            free: RefCell::default(),
            armed: Cell::new(0),
            sweeper: RefCell::new(None),
            started: Cell::new(false),
            me: me.clone(),
        })
    }

    /// Resolves at the first sweep at or after `at` (up to one [`TICK`] after it, also when `at`
    /// has passed: the clock is not read here); deregisters when dropped.
    pub fn until(&self, at: Instant) -> Until<'_> {
        Until { deadlines: self, at, slot: None }
    }

    /// `op`'s output, or [`Elapsed`] when `at` (give or take a [`TICK`]) came first; `op` is
    /// polled first, so one that is ready at once never arms a deadline. `op` is pinned by the
    /// caller: an I/O future is large, and moving it in would copy it.
    pub async fn timeout<F: Future + ?Sized>(
        &self,
        at: Instant,
        mut op: Pin<&mut F>,
    ) -> Result<F::Output, Elapsed> {
        let mut until = std::pin::pin!(self.until(at));
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = op.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            until.as_mut().poll(cx).map(|()| Err(Elapsed))
        })
        .await
    }

    /// Deadlines armed now (for tests and statistics).
    pub fn armed(&self) -> usize {
        self.armed.get()
    }

    /// The sweeper: parks while nothing is armed; otherwise wakes every [`TICK`] and fires the
    /// slots whose time has come. Wakers are woken after the table is released, so a woken task
    /// may register again at once.
    async fn sweep(&self) {
        let mut due: Vec<Waker> = Vec::new();
        loop {
            std::future::poll_fn(|cx| {
                if self.armed.get() > 0 {
                    return Poll::Ready(());
                }
                *self.sweeper.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            monoio::time::sleep(TICK).await;
            let now = Instant::now();
            {
                let mut slots = self.slots.borrow_mut();
                for s in slots.iter_mut().filter(|s| s.at <= now) {
                    if let State::Waiting(_) = s.state {
                        if let State::Waiting(w) = std::mem::replace(&mut s.state, State::Fired) {
                            due.push(w);
                        }
                    }
                }
            }
            self.armed.set(self.armed.get() - due.len());
            for w in due.drain(..) {
                w.wake();
            }
        }
    }

    fn arm(&self, at: Instant, waker: Waker) -> u32 {
        let mut slots = self.slots.borrow_mut();
        let slot = Slot { at, state: State::Waiting(waker) };
        let i = match self.free.borrow_mut().pop() {
            Some(i) => {
                slots[i as usize] = slot;
                i
            }
            None => {
                slots.push(slot);
                (slots.len() - 1) as u32
            }
        };
        drop(slots);
        self.armed.set(self.armed.get() + 1);
        if !self.started.get() {
            self.started.set(true);
            if let Some(me) = self.me.upgrade() {
                monoio::spawn(async move { me.sweep().await });
            }
        } else if self.armed.get() == 1 {
            if let Some(w) = self.sweeper.borrow_mut().take() {
                w.wake();
            }
        }
        i
    }

    fn release(&self, i: u32) {
        let mut slots = self.slots.borrow_mut();
        let Some(s) = slots.get_mut(i as usize) else { return };
        if let State::Waiting(_) = s.state {
            self.armed.set(self.armed.get() - 1);
        }
        s.state = State::Free;
        let mut free = self.free.borrow_mut();
        free.push(i);
        // Every slot free: start over, giving back what a burst grew.
        if free.len() == slots.len() {
            slots.clear();
            free.clear();
            if slots.capacity() > KEEP_SLOTS {
                slots.shrink_to(KEEP_SLOTS);
                free.shrink_to(KEEP_SLOTS);
            }
        }
    }
}

/// Future of [`Deadlines::until`].
pub struct Until<'d> {
    deadlines: &'d Deadlines,
    at: Instant,
    slot: Option<u32>,
}

impl Future for Until<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(i) = self.slot else {
            let i = self.deadlines.arm(self.at, cx.waker().clone());
            self.slot = Some(i);
            return Poll::Pending;
        };
        let mut slots = self.deadlines.slots.borrow_mut();
        let Some(s) = slots.get_mut(i as usize) else { return Poll::Ready(()) };
        match &mut s.state {
            State::Fired => Poll::Ready(()),
            State::Waiting(w) => {
                if !w.will_wake(cx.waker()) {
                    *w = cx.waker().clone();
                }
                Poll::Pending
            }
            // Not reachable: a slot is freed only by its own future's drop.
            State::Free => Poll::Ready(()),
        }
    }
}

impl Drop for Until<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot.take() {
            self.deadlines.release(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: Future<Output = ()>>(test: F) {
        let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build();
        rt.unwrap().block_on(test)
    }

    #[test]
    fn a_deadline_fires_within_a_tick_and_frees_its_slot() {
        run(async {
            let d = Deadlines::new();
            let start = Instant::now();
            d.until(start + Duration::from_millis(30)).await;
            assert!(start.elapsed() >= Duration::from_millis(30));
            assert_eq!(d.armed(), 0);
            assert!(d.slots.borrow().is_empty(), "the table is emptied once nothing waits");
        });
    }

    #[test]
    fn a_dropped_wait_disarms_and_the_others_still_fire() {
        run(async {
            let d = Deadlines::new();
            let far = Instant::now() + Duration::from_secs(3600);
            let near = Instant::now() + Duration::from_millis(10);
            {
                let mut long = std::pin::pin!(d.until(far));
                // Armed on its first poll.
                assert!(futures_util::poll!(long.as_mut()).is_pending());
                assert_eq!(d.armed(), 1);
            }
            assert_eq!(d.armed(), 0);
            let mut waits: Vec<_> = (0..5).map(|_| Box::pin(d.until(near))).collect();
            let mut long = Box::pin(d.until(far));
            assert!(futures_util::poll!(long.as_mut()).is_pending());
            for w in &mut waits {
                w.as_mut().await;
            }
            assert_eq!(d.armed(), 1, "only the far deadline is left");
            drop(waits);
            drop(long);
            assert_eq!(d.armed(), 0);
            assert!(d.slots.borrow().is_empty());
        });
    }

    #[test]
    fn timeout_returns_a_ready_operation_without_arming_and_elapses_on_a_stuck_one() {
        run(async {
            let d = Deadlines::new();
            let far = Instant::now() + Duration::from_secs(3600);
            assert_eq!(d.timeout(far, std::pin::pin!(async { 7 })).await, Ok(7));
            assert!(d.slots.borrow().is_empty(), "a ready operation never armed a slot");
            let near = Instant::now() + Duration::from_millis(20);
            assert_eq!(d.timeout(near, std::pin::pin!(std::future::pending::<()>())).await, Err(Elapsed));
            assert!(Instant::now() >= near);
            assert_eq!(d.armed(), 0);
        });
    }

    #[test]
    fn the_sweeper_wakes_again_after_the_table_emptied() {
        run(async {
            let d = Deadlines::new();
            for _ in 0..3 {
                d.until(Instant::now() + Duration::from_millis(5)).await;
                assert_eq!(d.armed(), 0);
                // Let the sweeper find nothing armed and park.
                monoio::time::sleep(TICK * 2).await;
            }
        });
    }
}
