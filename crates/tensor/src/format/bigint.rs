//! Just enough unsigned big-integer arithmetic for Dragon4.
//!
//! Dragon4 needs exact rationals as large as 2^1100 * 10^330 (f64 subnormals), but only a
//! handful of operations on them, so a small little-endian `u32` limb vector is enough and
//! keeps the crate free of a bignum dependency.

use std::cmp::Ordering;

/// A non-negative integer; limbs are little-endian with no trailing zero limbs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BigUint {
    limbs: Vec<u32>,
}

impl BigUint {
    /// The integer `v`.
    pub(crate) fn from_u64(v: u64) -> BigUint {
        let mut b = BigUint {
            limbs: vec![v as u32, (v >> 32) as u32],
        };
        b.trim();
        b
    }

    /// The integer `2^n`.
    pub(crate) fn pow2(n: u32) -> BigUint {
        let mut b = BigUint::from_u64(1);
        b.shl(n);
        b
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    /// Whether the value is zero.
    pub(crate) fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    /// `self <<= n`.
    pub(crate) fn shl(&mut self, n: u32) {
        if self.is_zero() || n == 0 {
            return;
        }
        let (blocks, bits) = ((n / 32) as usize, n % 32);
        if bits != 0 {
            let mut carry = 0u32;
            for l in &mut self.limbs {
                let v = *l;
                *l = (v << bits) | carry;
                carry = v >> (32 - bits);
            }
            if carry != 0 {
                self.limbs.push(carry);
            }
        }
        self.limbs.splice(0..0, std::iter::repeat_n(0, blocks));
    }

    /// `self *= m`.
    pub(crate) fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for l in &mut self.limbs {
            let p = u64::from(*l) * u64::from(m) + carry;
            *l = p as u32;
            carry = p >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
        self.trim();
    }

    /// `self *= 10^k`.
    pub(crate) fn mul_pow10(&mut self, mut k: u32) {
        while k >= 9 {
            self.mul_small(1_000_000_000);
            k -= 9;
        }
        if k > 0 {
            self.mul_small(10u32.pow(k));
        }
    }

    /// `self + other`.
    pub(crate) fn add(&self, other: &BigUint) -> BigUint {
        let n = self.limbs.len().max(other.limbs.len());
        let mut limbs = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let s = u64::from(self.limbs.get(i).copied().unwrap_or(0))
                + u64::from(other.limbs.get(i).copied().unwrap_or(0))
                + carry;
            limbs.push(s as u32);
            carry = s >> 32;
        }
        if carry != 0 {
            limbs.push(carry as u32);
        }
        BigUint { limbs }
    }

    /// `self -= other`; `other` must not exceed `self`.
    fn sub_assign(&mut self, other: &BigUint) {
        let mut borrow = 0i64;
        for i in 0..self.limbs.len() {
            let d = i64::from(self.limbs[i])
                - i64::from(other.limbs.get(i).copied().unwrap_or(0))
                - borrow;
            borrow = i64::from(d < 0);
            self.limbs[i] = d.rem_euclid(1 << 32) as u32;
        }
        debug_assert_eq!(borrow, 0, "subtraction underflow");
        self.trim();
    }

    /// Replaces `self` by `self % divisor` and returns `self / divisor`, which the caller
    /// guarantees is a single decimal digit.
    pub(crate) fn divrem_digit(&mut self, divisor: &BigUint) -> u32 {
        let mut q = 0;
        while *self >= *divisor {
            self.sub_assign(divisor);
            q += 1;
        }
        debug_assert!(q < 10, "Dragon4 quotient must be one digit");
        q
    }
}

impl Ord for BigUint {
    fn cmp(&self, other: &BigUint) -> Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }
}

impl PartialOrd for BigUint {
    fn partial_cmp(&self, other: &BigUint) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
