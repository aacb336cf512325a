//! What a keep-alive connection costs while it waits for its next request.
//!
//! A plain connection that has been quiet for `conn::IDLE_HOLD` gives its buffers to the
//! worker's spares and its request pipeline (a boxed future, over 10 KiB) is freed: what is left
//! is the connection's task holding its `conn::Link` and `Link::wait` - a readiness poll on the
//! socket, a slot in the worker's [`Deadlines`] and a slot in the drain event; a few hundred
//! bytes, as nginx frees a keep-alive connection's buffers. The pipeline is allocated again when
//! bytes arrive (once per quiet period, not per request: a busy connection keeps it).
//!
//! The idle deadline is not a monoio timer (640 bytes at 128-byte alignment each, which would
//! align the whole task): every idle connection of a worker shares the coarse [`Deadlines`],
//! swept by one task every [`TICK`] while any is armed. A deadline fires up to one tick late.
//! A sweep scans every slot: at the default bound of 50,000 connections per worker that is
//! 500,000 comparisons a second (about a millisecond of CPU), and nothing when none idles.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often the worker's idle deadlines are checked while any is armed: the precision of the
/// idle timeout of a connection that idles holding nothing.
pub const TICK: Duration = Duration::from_millis(100);

/// A worker's coarse deadlines: a slot per waiting connection, checked every [`TICK`] by
/// [`Deadlines::sweep`]. Slots are reused through a free list; when none is armed the table is
/// emptied (and shrunk when it had grown), so a burst of idle connections does not keep memory.
#[derive(Default)]
pub struct Deadlines {
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    /// Slots waiting (not free, not fired).
    armed: Cell<usize>,
    /// The sweeper, parked while nothing is armed.
    sweeper: RefCell<Option<Waker>>,
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

impl Deadlines {
    /// Resolves at (or up to one [`TICK`] after) `at`; deregisters when dropped.
    pub fn until(&self, at: Instant) -> Until<'_> {
        Until { deadlines: self, at, slot: None }
    }

    /// Deadlines armed now (for tests and statistics).
    pub fn armed(&self) -> usize {
        self.armed.get()
    }

    /// The sweeper: run once per worker, forever. Parks while nothing is armed; otherwise wakes
    /// every [`TICK`] and fires the slots whose time has come. Wakers are woken after the table
    /// is released, so a woken task may register again at once.
    pub async fn sweep(&self) {
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
        if self.armed.get() == 1 {
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
            if self.at <= Instant::now() {
                return Poll::Ready(());
            }
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

    /// Runs `test` on a monoio runtime with a `Deadlines` whose sweeper is running.
    fn with_sweeper<F: Future<Output = ()>>(test: impl FnOnce(std::rc::Rc<Deadlines>) -> F) {
        let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build();
        rt.unwrap().block_on(async {
            let d = std::rc::Rc::new(Deadlines::default());
            let s = d.clone();
            monoio::spawn(async move { s.sweep().await });
            test(d).await
        })
    }

    #[test]
    fn a_deadline_fires_within_a_tick_and_frees_its_slot() {
        with_sweeper(|d| async move {
            let start = Instant::now();
            d.until(start + Duration::from_millis(30)).await;
            assert!(start.elapsed() >= Duration::from_millis(30));
            assert_eq!(d.armed(), 0);
            assert!(d.slots.borrow().is_empty(), "the table is emptied once nothing waits");
        });
    }

    #[test]
    fn a_dropped_wait_disarms_and_the_others_still_fire() {
        with_sweeper(|d| async move {
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
}
