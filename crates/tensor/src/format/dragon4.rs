//! A port of numpy's Dragon4 (`numpy/_core/src/multiarray/dragon4.c`).
//!
//! Shortest-digit libraries (ryu, `{}` in std) are not enough: numpy's printing also asks
//! Dragon4 for "unique digits, but at least `min_digits`" (which keeps generating exact
//! digits past the shortest form, e.g. `9.9999997e-06` for f32 `1e-5` next to
//! `1.2345678e+10`) and for "unique digits, cut off at `precision`" (which rounds the exact
//! value). Porting the one algorithm that does all three keeps every case bit-identical.

use super::bigint::BigUint;

/// A finite float decomposed as numpy's Dragon4 wants it: `mantissa * 2^exponent`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decoded {
    pub neg: bool,
    pub mantissa: u64,
    pub exponent: i32,
    /// Index of the highest set mantissa bit.
    pub mantissa_bit: u32,
    /// Whether the gap to the next float above is twice the gap below (powers of two).
    pub unequal_margins: bool,
}

/// What a float bit pattern holds.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Class {
    Nan,
    Inf { neg: bool },
    Finite(Decoded),
}

/// Splits an IEEE-style bit pattern with `mant_bits` stored significand bits and
/// `exp_bits` exponent bits (bf16 is 7/8, like a truncated f32).
pub(crate) fn decode(bits: u64, mant_bits: u32, exp_bits: u32) -> Class {
    let neg = (bits >> (mant_bits + exp_bits)) & 1 == 1;
    let fm = bits & ((1u64 << mant_bits) - 1);
    let fe = ((bits >> mant_bits) & ((1u64 << exp_bits) - 1)) as i32;
    let exp_max = (1i32 << exp_bits) - 1;
    let bias = (1i32 << (exp_bits - 1)) - 1;
    if fe == exp_max {
        return if fm == 0 {
            Class::Inf { neg }
        } else {
            Class::Nan
        };
    }
    let d = if fe != 0 {
        Decoded {
            neg,
            mantissa: (1u64 << mant_bits) | fm,
            exponent: fe - bias - mant_bits as i32,
            mantissa_bit: mant_bits,
            unequal_margins: fe != 1 && fm == 0,
        }
    } else {
        Decoded {
            neg,
            mantissa: fm,
            exponent: 1 - bias - mant_bits as i32,
            mantissa_bit: if fm == 0 { 0 } else { 63 - fm.leading_zeros() },
            unequal_margins: false,
        }
    };
    Class::Finite(d)
}

/// Whether a cutoff counts digits after the decimal point or significant digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cutoff {
    Total,
    Fraction,
}

/// numpy's `TrimMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trim {
    /// `'k'`: keep trailing zeros.
    None,
    /// `'.'`: trim trailing zeros, keep the decimal point.
    Zeros,
    /// `'-'`: trim trailing zeros and the decimal point.
    DptZeros,
    /// `'0'`: trim trailing zeros but leave one after the decimal point.
    LeaveOneZero,
}

/// numpy's scratch buffer is 16384 bytes; it bounds digits when no cutoff is given.
const BUFFER_SIZE: i32 = 16383;

/// Decimal digits (ASCII) of `d` and the base-10 exponent of the first digit.
fn dragon4(
    d: &Decoded,
    unique: bool,
    cutoff: Cutoff,
    cutoff_max: i32,
    cutoff_min: i32,
) -> (Vec<u8>, i32) {
    if d.mantissa == 0 {
        return (vec![b'0'], 0);
    }
    let is_even = d.mantissa.is_multiple_of(2);
    let exponent = d.exponent;
    let mut value = BigUint::from_u64(d.mantissa);
    let (mut scale, mut margin_low);
    // `value/scale` is the number; the margins are half the gaps to the neighbours.
    if d.unequal_margins {
        if exponent > 0 {
            value.shl(exponent as u32 + 2);
            scale = BigUint::from_u64(4);
            margin_low = BigUint::pow2(exponent as u32);
        } else {
            value.shl(2);
            scale = BigUint::pow2((-exponent + 2) as u32);
            margin_low = BigUint::from_u64(1);
        }
    } else if exponent > 0 {
        value.shl(exponent as u32 + 1);
        scale = BigUint::from_u64(2);
        margin_low = BigUint::pow2(exponent as u32);
    } else {
        value.shl(1);
        scale = BigUint::pow2((-exponent + 1) as u32);
        margin_low = BigUint::from_u64(1);
    }
    let high_of = |low: &BigUint| {
        let mut h = low.clone();
        if d.unequal_margins {
            h.shl(1);
        }
        h
    };
    let mut margin_high = high_of(&margin_low);

    // numpy's estimate of floor(log10(v)) + 1, biased low so it is exact or one short;
    // kept verbatim because the fractional-cutoff clamp below acts on the estimate.
    let mut digit_exponent = ((d.mantissa_bit as i32 + exponent) as f64 * std::f64::consts::LOG10_2
        - 0.69)
        .ceil() as i32;
    if cutoff_max >= 0 && cutoff == Cutoff::Fraction && digit_exponent <= -cutoff_max {
        digit_exponent = -cutoff_max + 1;
    }
    if digit_exponent > 0 {
        scale.mul_pow10(digit_exponent as u32);
    } else if digit_exponent < 0 {
        value.mul_pow10((-digit_exponent) as u32);
        margin_low.mul_pow10((-digit_exponent) as u32);
        margin_high = high_of(&margin_low);
    }
    if value >= scale {
        digit_exponent += 1;
    } else {
        value.mul_small(10);
        margin_low.mul_small(10);
        margin_high = high_of(&margin_low);
    }

    let mut cutoff_max_exponent = digit_exponent - BUFFER_SIZE;
    if cutoff_max >= 0 {
        let desired = match cutoff {
            Cutoff::Total => digit_exponent - cutoff_max,
            Cutoff::Fraction => -cutoff_max,
        };
        cutoff_max_exponent = cutoff_max_exponent.max(desired);
    }
    let mut cutoff_min_exponent = digit_exponent;
    if cutoff_min >= 0 {
        let desired = match cutoff {
            Cutoff::Total => digit_exponent - cutoff_min,
            Cutoff::Fraction => -cutoff_min,
        };
        cutoff_min_exponent = cutoff_min_exponent.min(desired);
    }
    let mut out_exponent = digit_exponent - 1;

    let mut digits = Vec::new();
    let (mut low, mut high) = (false, false);
    let mut output_digit;
    if unique {
        loop {
            digit_exponent -= 1;
            output_digit = value.divrem_digit(&scale);
            let value_high = value.add(&margin_high);
            low = if is_even {
                value <= margin_low
            } else {
                value < margin_low
            };
            high = if is_even {
                value_high >= scale
            } else {
                value_high > scale
            };
            if ((low || high) && digit_exponent <= cutoff_min_exponent)
                || digit_exponent == cutoff_max_exponent
            {
                break;
            }
            digits.push(b'0' + output_digit as u8);
            value.mul_small(10);
            margin_low.mul_small(10);
            margin_high = high_of(&margin_low);
        }
    } else {
        loop {
            digit_exponent -= 1;
            output_digit = value.divrem_digit(&scale);
            if value.is_zero() || digit_exponent == cutoff_max_exponent {
                break;
            }
            digits.push(b'0' + output_digit as u8);
            value.mul_small(10);
        }
    }

    let mut round_down = low;
    if low == high {
        value.shl(1);
        round_down = match value.cmp(&scale) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => output_digit & 1 == 0,
        };
    }
    if round_down {
        digits.push(b'0' + output_digit as u8);
    } else if output_digit == 9 {
        // Carry into the earlier digits; an all-nines prefix becomes a single `1`.
        loop {
            match digits.pop() {
                None => {
                    digits.push(b'1');
                    out_exponent += 1;
                    break;
                }
                Some(b'9') => {}
                Some(c) => {
                    digits.push(c + 1);
                    break;
                }
            }
        }
    } else {
        digits.push(b'0' + output_digit as u8 + 1);
    }
    (digits, out_exponent)
}

/// Options shared by the positional and scientific formatters (numpy's `Dragon4_Options`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Opts {
    pub unique: bool,
    pub precision: i32,
    pub min_digits: i32,
    pub trim: Trim,
    pub pad_left: i32,
    pub pad_right: i32,
    pub exp_digits: i32,
}

impl Opts {
    /// No cutoff, no padding: the shortest unique digits.
    pub(crate) fn unique(trim: Trim) -> Opts {
        Opts {
            unique: true,
            precision: -1,
            min_digits: -1,
            trim,
            pad_left: -1,
            pad_right: -1,
            exp_digits: -1,
        }
    }
}

/// numpy's `FormatPositional` with a fractional cutoff (`dragon4_positional(fractional=True)`).
pub(crate) fn positional(d: &Decoded, o: &Opts) -> String {
    let mut buf = String::new();
    let has_sign = i32::from(d.neg);
    if d.neg {
        buf.push('-');
    }
    let (digits, print_exponent) =
        dragon4(d, o.unique, Cutoff::Fraction, o.precision, o.min_digits);
    let digits = std::str::from_utf8(&digits).expect("digits are ASCII");
    let num_digits = digits.len() as i32;
    let (num_whole, mut num_frac);
    if print_exponent >= 0 {
        num_whole = print_exponent + 1;
        if num_digits <= num_whole {
            buf.push_str(digits);
            buf.extend(std::iter::repeat_n('0', (num_whole - num_digits) as usize));
            num_frac = 0;
        } else {
            buf.push_str(&digits[..num_whole as usize]);
            buf.push('.');
            buf.push_str(&digits[num_whole as usize..]);
            num_frac = num_digits - num_whole;
        }
    } else {
        let zeros = -(print_exponent + 1);
        buf.push_str("0.");
        buf.extend(std::iter::repeat_n('0', zeros as usize));
        buf.push_str(digits);
        num_frac = num_digits + zeros;
        num_whole = 1;
    }
    if o.trim != Trim::DptZeros && num_frac == 0 {
        buf.push('.');
    }
    let add_digits = if o.unique { o.min_digits } else { o.precision };
    let desired_frac = add_digits.max(0);
    if o.trim == Trim::LeaveOneZero {
        if num_frac == 0 {
            buf.push('0');
            num_frac += 1;
        }
    } else if o.trim == Trim::None && desired_frac > num_frac {
        buf.extend(std::iter::repeat_n('0', (desired_frac - num_frac) as usize));
        num_frac = desired_frac;
    }
    if o.trim != Trim::None && num_frac > 0 {
        while buf.ends_with('0') {
            buf.pop();
            num_frac -= 1;
        }
        if buf.ends_with('.') {
            match o.trim {
                Trim::LeaveOneZero => {
                    buf.push('0');
                    num_frac += 1;
                }
                Trim::DptZeros => {
                    buf.pop();
                }
                _ => {}
            }
        }
    }
    if o.pad_right >= num_frac {
        if o.trim == Trim::DptZeros && num_frac == 0 {
            buf.push(' ');
        }
        buf.extend(std::iter::repeat_n(' ', (o.pad_right - num_frac) as usize));
    }
    if o.pad_left > num_whole + has_sign {
        let shift = (o.pad_left - (num_whole + has_sign)) as usize;
        buf.insert_str(0, &" ".repeat(shift));
    }
    buf
}

/// numpy's `FormatScientific` (`dragon4_scientific`).
pub(crate) fn scientific(d: &Decoded, o: &Opts) -> String {
    let mut buf = String::new();
    let left_chars = 1 + i32::from(d.neg);
    if o.pad_left > left_chars {
        buf.push_str(&" ".repeat((o.pad_left - left_chars) as usize));
    }
    if d.neg {
        buf.push('-');
    }
    let (digits, mut print_exponent) = dragon4(
        d,
        o.unique,
        Cutoff::Total,
        if o.precision < 0 { -1 } else { o.precision + 1 },
        if o.min_digits < 0 {
            -1
        } else {
            o.min_digits + 1
        },
    );
    let digits = std::str::from_utf8(&digits).expect("digits are ASCII");
    buf.push_str(&digits[..1]);
    let mut num_frac = digits.len() as i32 - 1;
    if num_frac > 0 {
        buf.push('.');
        buf.push_str(&digits[1..]);
    }
    if o.trim != Trim::DptZeros && num_frac == 0 {
        buf.push('.');
    }
    let add_digits = (if o.unique { o.min_digits } else { o.precision }).max(0);
    if o.trim == Trim::LeaveOneZero {
        if num_frac == 0 {
            buf.push('0');
            num_frac += 1;
        }
    } else if o.trim == Trim::None && add_digits > num_frac {
        buf.extend(std::iter::repeat_n('0', (add_digits - num_frac) as usize));
    }
    if o.trim != Trim::None && num_frac > 0 {
        while buf.ends_with('0') {
            buf.pop();
        }
        if o.trim == Trim::LeaveOneZero && buf.ends_with('.') {
            buf.push('0');
        }
    }
    let exp_digits = if o.exp_digits < 0 {
        2
    } else {
        o.exp_digits.min(5)
    } as usize;
    buf.push('e');
    if print_exponent >= 0 {
        buf.push('+');
    } else {
        buf.push('-');
        print_exponent = -print_exponent;
    }
    buf.push_str(&format!("{print_exponent:0exp_digits$}"));
    buf
}
