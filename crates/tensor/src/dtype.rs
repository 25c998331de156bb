//! Element dtypes and the Rust types that carry them.

use half::{bf16, f16};
use std::fmt;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// `bool`
    Bool,
    /// `i8`
    I8,
    /// `u8`
    U8,
    /// `i16`
    I16,
    /// `u16`
    U16,
    /// `i32`
    I32,
    /// `u32`
    U32,
    /// `i64`
    I64,
    /// `u64`
    U64,
    /// `f16` (IEEE half)
    F16,
    /// `bf16` (bfloat16)
    BF16,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `str`: each element a byte string of any length (TF's `tf.string`).
    Str,
}

impl DType {
    /// Every dtype, in the order of the language reference.
    pub const ALL: [DType; 14] = [
        DType::Bool,
        DType::I8,
        DType::U8,
        DType::I16,
        DType::U16,
        DType::I32,
        DType::U32,
        DType::I64,
        DType::U64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::Str,
    ];

    /// Every dtype with arithmetic (all but `str`, which `ALL` lists last), in the same order.
    pub const NUMERIC_AND_BOOL: [DType; 13] = {
        let mut out = [DType::Bool; 13];
        let mut i = 0;
        while i < out.len() {
            out[i] = DType::ALL[i];
            i += 1;
        }
        out
    };

    /// The name used in `.pipe` source and in the IR (`f32`).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I16 => "i16",
            DType::U16 => "u16",
            DType::I32 => "i32",
            DType::U32 => "u32",
            DType::I64 => "i64",
            DType::U64 => "u64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::Str => "str",
        }
    }

    /// The dtype named `name`, if any.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Whether the dtype is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }

    /// Whether the dtype is an integer type (bool is not).
    pub fn is_int(self) -> bool {
        !self.is_float() && !matches!(self, DType::Bool | DType::Str)
    }

    /// Whether the dtype is `str` (byte strings: no arithmetic, no casts).
    pub fn is_str(self) -> bool {
        self == DType::Str
    }

    /// Whether the dtype is a signed integer type.
    pub fn is_signed_int(self) -> bool {
        matches!(self, DType::I8 | DType::I16 | DType::I32 | DType::I64)
    }

    /// Size of one element in bytes (for `str`, the fixed part of an element: its handle;
    /// the bytes it refers to are counted by `Tensor::nbytes`).
    pub fn size_bytes(self) -> usize {
        match self {
            DType::Str => std::mem::size_of::<bytes::Bytes>(),
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 | DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// Bits of significand (with the implicit bit) for floats, value bits for integers
    /// (sign excluded), 1 for bool: what a type must hold to represent this one exactly.
    pub fn significand_bits(self) -> u32 {
        match self {
            DType::Bool => 1,
            DType::I8 => 7,
            DType::U8 => 8,
            DType::I16 => 15,
            DType::U16 => 16,
            DType::I32 => 31,
            DType::U32 => 32,
            DType::I64 => 63,
            DType::U64 => 64,
            DType::F16 => 11,
            DType::BF16 => 8,
            DType::F32 => 24,
            DType::F64 => 53,
            // No number converts to or from a string by a cast.
            DType::Str => 0,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that stores elements of one [`DType`], strings included.
pub trait AnyElem: Clone + Send + Sync + PartialEq + fmt::Debug + Default + 'static {
    /// The dtype this type carries.
    const DTYPE: DType;
}

/// A Rust type that stores elements of a numeric or bool [`DType`]: plain values.
pub trait Elem: AnyElem + Copy {}

impl AnyElem for bytes::Bytes {
    const DTYPE: DType = DType::Str;
}

macro_rules! elem {
    ($($t:ty => $d:ident),*) => { $(
        impl AnyElem for $t { const DTYPE: DType = DType::$d; }
        impl Elem for $t {}
    )* };
}
elem!(bool => Bool, i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32,
      i64 => I64, u64 => U64, f16 => F16, bf16 => BF16, f32 => F32, f64 => F64);
