//! throttle: the offsite copy's bandwidth limit (`limit_upload`, KiB/s, as
//! restic's `--limit-upload`). rustic_backend has a throttle only for its
//! OpenDAL back ends, so every back end (local, REST, rclone) is wrapped
//! here instead: [`Throttled`] is a rustic `WriteBackend` that passes every
//! call through and, before each file it writes (a pack, an index, a
//! snapshot), waits until a [`Bucket`] of tokens holds its bytes.
//!
//! The bucket is pure (the clock passed in) and lets a write run into
//! debt: a pack larger than the burst goes out whole, and the writes after
//! it wait for the debt to be paid. Over a push, the bytes written after
//! the first `burst` take at least `bytes / rate`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustic_core::{BytesList, FileType, Id, ReadBackend, RusticResult, WriteBackend};

/// A token bucket: `rate` bytes a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    /// Tokens at `at` (negative: debt).
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Full at `now`.
    pub fn new(rate_bytes_per_s: u64, burst: u64, now: Instant) -> Bucket {
        let rate = (rate_bytes_per_s.max(1)) as f64;
        Bucket {
            rate,
            burst: burst as f64,
            tokens: burst as f64,
            at: now,
        }
    }

    /// Takes `n` bytes' tokens at `now`; returns how long to wait before
    /// writing them.
    pub fn take(&mut self, n: u64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now.max(self.at);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// A back end that writes no faster than its bucket allows.
pub struct Throttled {
    inner: Arc<dyn WriteBackend>,
    bucket: Mutex<Bucket>,
}

impl Throttled {
    /// `inner`, limited to `kib_per_s` KiB a second (a second's worth may
    /// go at once).
    pub fn new(inner: Arc<dyn WriteBackend>, kib_per_s: u32) -> Throttled {
        let rate = u64::from(kib_per_s.max(1)) * 1024;
        Throttled {
            inner,
            bucket: Mutex::new(Bucket::new(rate, rate, Instant::now())),
        }
    }

    fn wait_for(&self, n: u64) {
        // A poisoned lock only means another writer panicked; the limit
        // is then not kept rather than the push failed.
        let wait = match self.bucket.lock() {
            Ok(mut b) => b.take(n, Instant::now()),
            Err(_) => Duration::ZERO,
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

impl ReadBackend for Throttled {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        self.inner.list_with_size(tpe)
    }

    fn list(&self, tpe: FileType) -> RusticResult<Vec<Id>> {
        self.inner.list(tpe)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.inner.read_full(tpe, id)
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        self.inner.read_partial(tpe, id, cacheable, offset, length)
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.inner.warmup_path(tpe, id)
    }

    fn needs_warm_up(&self) -> bool {
        self.inner.needs_warm_up()
    }

    fn warm_up(&self, tpe: FileType, id: &Id) -> RusticResult<()> {
        self.inner.warm_up(tpe, id)
    }
}

impl WriteBackend for Throttled {
    fn create(&self) -> RusticResult<()> {
        self.inner.create()
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let n: usize = content.slice().iter().map(Bytes::len).sum();
        self.wait_for(n as u64);
        self.inner.write_bytes(tpe, id, cacheable, content)
    }

    fn remove(&self, tpe: FileType, id: &Id, cacheable: bool) -> RusticResult<()> {
        self.inner.remove(tpe, id, cacheable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_lets_a_burst_through_then_keeps_the_rate() {
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        // 1000 bytes a second, 1000 saved up at most.
        let mut b = Bucket::new(1000, 1000, t0);
        // (at ms, bytes, wait ms)
        let steps: &[(u64, u64, u64)] = &[
            // The burst goes at once.
            (0, 600, 0),
            (0, 400, 0),
            // Then each byte waits for its token.
            (0, 500, 500),
            // Written after that wait: the debt was paid, the next 250
            // wait 250 ms.
            (500, 250, 250),
            // A long pause saves up no more than the burst.
            (10_000, 1000, 0),
            (10_000, 125, 125),
            // A write larger than the burst goes whole, into debt, and the
            // next one pays it.
            (20_000, 3000, 2000),
            (22_000, 0, 0),
        ];
        for (i, &(at, n, want)) in steps.iter().enumerate() {
            let got = b.take(n, ms(at));
            assert_eq!(got.as_millis(), u128::from(want), "step {i}");
        }
    }
}
