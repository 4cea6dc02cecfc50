//! Go-style durations (`720h`, `1h30m`, `1.5s`, `300ms`), the flag format of 00-conventions,
//! parsed the way Go's `time.ParseDuration` does so flags mean what they mean for Coder.

use std::fmt;

const NANOS_PER_UNIT: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
];

/// Why a duration did not parse; the text names the input like Go's error does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for DurationError {}

/// Parses a Go duration into nanoseconds (the unit of the API's `lifetime` fields).
pub fn parse_go_duration(input: &str) -> Result<i64, DurationError> {
    let fail = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    let (negative, mut rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(fail("empty duration"));
    }
    // One past i64::MAX is allowed for a negative value, as in Go.
    let limit = i64::MAX as u128 + u128::from(negative);
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, after_whole) = split_digits(rest);
        let (fraction, after_fraction) = match after_whole.strip_prefix('.') {
            Some(after_dot) => split_digits(after_dot),
            None => ("", after_whole),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(fail("expected a number"));
        }
        let unit_len = after_fraction
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_fraction.len());
        let (unit, after_unit) = after_fraction.split_at(unit_len);
        if unit.is_empty() {
            return Err(fail("missing unit"));
        }
        let scale = NANOS_PER_UNIT
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| fail("unknown unit (use ns, us, ms, s, m or h)"))?;

        let whole_value = parse_bounded(whole, limit).ok_or_else(|| fail("overflow"))?;
        let mut value = whole_value
            .checked_mul(scale)
            .filter(|v| *v <= limit)
            .ok_or_else(|| fail("overflow"))?;
        // Digits past the 19th cannot change the result by a nanosecond even for hours.
        let fraction = &fraction[..fraction.len().min(19)];
        if !fraction.is_empty() {
            let digits = parse_bounded(fraction, u128::MAX).ok_or_else(|| fail("overflow"))?;
            let denominator = 10u128.pow(u32::try_from(fraction.len()).unwrap_or(19));
            value += digits * scale / denominator;
        }
        total = total
            .checked_add(value)
            .filter(|v| *v <= limit)
            .ok_or_else(|| fail("overflow"))?;
        rest = after_unit;
    }
    let magnitude = i128::try_from(total).map_err(|_| fail("overflow"))?;
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| fail("overflow"))
}

/// Splits off the leading ASCII digits.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// Parses ASCII digits, failing once the value passes `limit`.
fn parse_bounded(digits: &str, limit: u128) -> Option<u128> {
    digits.bytes().try_fold(0u128, |acc, b| {
        acc.checked_mul(10)?
            .checked_add(u128::from(b - b'0'))
            .filter(|v| *v <= limit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn parses_go_examples() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600_000_000),
            ("5.s", 5 * S),
            (".5s", S / 2),
            ("1.004s", S + 4_000_000),
            ("100.00100s", 100 * S + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * S),
            ("15m", 15 * 60 * S),
            ("16h", 16 * 3600 * S),
            ("3h30m", (3 * 3600 + 30 * 60) * S),
            ("1h30m", 5400 * S),
            ("10.5s4m", 4 * 60 * S + 10 * S + S / 2),
            ("-2m3.4s", -(2 * 60 * S + 3 * S + 400_000_000)),
            ("1h2m3s4ms5us6ns", 3723 * S + 4_000_000 + 5_000 + 6),
            ("39h9m14.425s", (39 * 3600 + 9 * 60 + 14) * S + 425_000_000),
            ("720h", 720 * 3600 * S),
            ("876600h", 876_600 * 3600 * S),
            ("1.5h", 5400 * S),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go_duration(input), Ok(*want), "{input}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for input in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "1.5x",
            "h1",
            "1h 30m",
            "1e3s",
            "9223372036854775808ns",
            "-9223372036854775809ns",
            "3000000h",
        ] {
            assert!(parse_go_duration(input).is_err(), "{input:?} should fail");
        }
    }

    #[test]
    fn error_names_the_input() {
        let err = parse_go_duration("10 days").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid duration \"10 days\": unknown unit (use ns, us, ms, s, m or h)")
        );
    }
}
