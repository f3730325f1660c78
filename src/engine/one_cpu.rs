//! one_cpu: runs a piece of work with the calling thread held to one CPU,
//! and with it every thread that work starts (Linux gives a new thread its
//! creator's CPU mask); the thread's mask is put back afterwards.
//!
//! Why: rustic's backup hands every entry of the tree from thread to thread
//! over rendezvous channels. When the tree mostly matches its parent
//! snapshot, each entry is little work and the wake-ups across CPUs are most
//! of the time (`perf`: crossbeam's `send`/`recv` waking threads, 343,000
//! futex and 461,000 `sched_yield` calls for one push). Measured on the
//! kernel tree (78,580 files, 2 CPUs): a push after one file changed took
//! 3.4–3.7 s on two CPUs and 1.7 s on one; after 170 MB of new text, 5.7–5.9 s
//! and 4.4 s; after 300 MB of new random bytes, 5.1–5.9 s and 4.5 s. A first
//! push, everything new to hash and compress, is the other way round (19.7 s
//! on two, 37 s on one; 11.9–12.2 s and 16.4–16.8 s once rustic_cdc made its
//! tables once, see `vendor/rustic_cdc`), so only a push with a parent is
//! held (see `offsite::Offsite::push_with`).

/// `work()`, this thread on the CPU it is running on when more than one is
/// allowed. Where the mask cannot be read or set, `work()` as it is.
pub fn on_one_cpu<T>(work: impl FnOnce() -> T) -> T {
    #[cfg(target_os = "linux")]
    {
        let _held = Held::now();
        work()
    }
    #[cfg(not(target_os = "linux"))]
    work()
}

/// The thread's mask as it was, put back on drop.
#[cfg(target_os = "linux")]
struct Held(Option<libc::cpu_set_t>);

#[cfg(target_os = "linux")]
impl Held {
    fn now() -> Held {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: cpu_set_t is plain bits, so zeroed is a valid (empty)
        // set; sched_getaffinity, sched_getcpu and sched_setaffinity with
        // pid 0 read and change only this thread's mask, from and into
        // sets of `size` bytes that live on this stack.
        unsafe {
            let mut was: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, size, &mut was) != 0 || libc::CPU_COUNT(&was) < 2 {
                return Held(None);
            }
            let cpu = libc::sched_getcpu();
            let Ok(cpu) = usize::try_from(cpu) else {
                return Held(None);
            };
            if cpu >= libc::CPU_SETSIZE as usize || !libc::CPU_ISSET(cpu, &was) {
                return Held(None);
            }
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut one);
            if libc::sched_setaffinity(0, size, &one) != 0 {
                log::debug!(
                    "cannot hold this thread to CPU {cpu}: {}",
                    std::io::Error::last_os_error()
                );
                return Held(None);
            }
            Held(Some(was))
        }
    }
}

#[cfg(target_os = "linux")]
impl Drop for Held {
    fn drop(&mut self) {
        if let Some(was) = &self.0 {
            // SAFETY: as in `now`: this thread's mask, from a set on the
            // stack of the right size.
            let failed = unsafe {
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), was) != 0
            };
            if failed {
                log::debug!(
                    "cannot give this thread its CPUs back: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::on_one_cpu;

    /// How many CPUs this thread may run on.
    fn allowed() -> i32 {
        // SAFETY: reads this thread's mask into a set on the stack.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
                0
            );
            libc::CPU_COUNT(&set)
        }
    }

    #[test]
    fn the_work_and_the_threads_it_starts_run_on_one_cpu_and_the_mask_comes_back() {
        std::thread::spawn(|| {
            let before = allowed();
            let (inside, started) = on_one_cpu(|| (allowed(), std::thread::spawn(allowed).join()));
            let started = started.unwrap();
            if before < 2 {
                assert_eq!((inside, started), (before, before));
            } else {
                assert_eq!((inside, started), (1, 1));
            }
            assert_eq!(allowed(), before, "the thread's CPUs come back");
        })
        .join()
        .unwrap();
    }
}
