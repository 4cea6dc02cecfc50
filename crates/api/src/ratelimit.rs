//! The per-IP login limiter: a fixed one-minute window per address, bounded in memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    per_minute: u32,
    max_tracked: usize,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32, max_tracked: usize) -> Self {
        Self {
            per_minute,
            max_tracked,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit(&self) -> u32 {
        self.per_minute
    }

    /// Counts one request; `false` when the address is over its limit.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let window = Duration::from_secs(60);
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max_tracked && !map.contains_key(&ip) {
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
            if map.len() >= self.max_tracked {
                // Still full of live windows: refuse rather than grow without bound.
                return false;
            }
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= self.per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_first_request_is_refused_and_window_resets() {
        let l = RateLimiter::new(60, 10);
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let t = Instant::now();
        for _ in 0..60 {
            assert!(l.allow(ip, t));
        }
        assert!(!l.allow(ip, t));
        assert!(l.allow("5.6.7.8".parse().unwrap(), t));
        assert!(l.allow(ip, t + Duration::from_secs(61)));
    }

    #[test]
    fn zero_disables() {
        let l = RateLimiter::new(0, 1);
        for _ in 0..1000 {
            assert!(l.allow("1.1.1.1".parse().unwrap(), Instant::now()));
        }
    }
}
