//! Tensor literals: `[[1, 2], [3, 4]]` → a constant tensor (i32 for integers, f32 as soon as
//! any entry is a float, i64 when an integer does not fit i32, bool for bools).

use crate::value::{Num, TVal, Value};
use pipec_tensor::kernels;
use pipec_tensor::{DType, Tensor};

/// Builds the constant tensor a list literal denotes. `Ok(None)` when some entry is not a
/// constant (the list stays a list); `Err` for ragged rows.
pub(crate) fn tensor_from_values(vs: &[Value]) -> Result<Option<Tensor>, String> {
    let mut leaves = Vec::new();
    let Some(shape) = collect(vs, &mut leaves)? else {
        return Ok(None);
    };
    if leaves.is_empty() {
        return Ok(Tensor::from_vec::<f32>(&shape, vec![]));
    }
    let all_bool = leaves.iter().all(|l| matches!(l, Leaf::Bool(_)));
    let any_bool = leaves.iter().any(|l| matches!(l, Leaf::Bool(_)));
    if any_bool && !all_bool {
        return Err("a tensor literal mixes bools and numbers".into());
    }
    if all_bool {
        let data = leaves
            .iter()
            .map(|l| matches!(l, Leaf::Bool(true)))
            .collect();
        return Ok(Tensor::from_vec::<bool>(&shape, data));
    }
    let any_float = leaves
        .iter()
        .any(|l| matches!(l, Leaf::Num(Num::Float(_)) | Leaf::Tensor(_)) && l.is_float());
    if any_float {
        let data = leaves.iter().map(|l| l.as_f32()).collect();
        return Ok(Tensor::from_vec::<f32>(&shape, data));
    }
    let ints: Vec<i128> = leaves.iter().map(|l| l.as_i128()).collect();
    if ints.iter().all(|&i| i32::try_from(i).is_ok())
        && !leaves.iter().any(|l| l.dtype() == Some(DType::I64))
    {
        Ok(Tensor::from_vec::<i32>(
            &shape,
            ints.iter().map(|&i| i as i32).collect(),
        ))
    } else if ints.iter().all(|&i| i64::try_from(i).is_ok()) {
        Ok(Tensor::from_vec::<i64>(
            &shape,
            ints.iter().map(|&i| i as i64).collect(),
        ))
    } else {
        Err("an integer in this tensor literal does not fit in i64".into())
    }
}

enum Leaf {
    Num(Num),
    Bool(bool),
    /// A scalar element of a constant tensor nested in the literal.
    Tensor(pipec_tensor::Scalar),
}

impl Leaf {
    fn dtype(&self) -> Option<DType> {
        match self {
            Leaf::Tensor(s) => Some(s.dtype()),
            _ => None,
        }
    }
    fn is_float(&self) -> bool {
        match self {
            Leaf::Num(Num::Float(_)) => true,
            Leaf::Tensor(s) => s.dtype().is_float(),
            _ => false,
        }
    }
    fn as_f32(&self) -> f32 {
        match self {
            Leaf::Num(n) => n.as_f64() as f32,
            Leaf::Bool(b) => f32::from(u8::from(*b)),
            Leaf::Tensor(s) => kernels::cast(&s.to_tensor(), DType::F32)
                .as_array::<f32>()
                .map_or(0.0, |a| a[[]]),
        }
    }
    fn as_i128(&self) -> i128 {
        match self {
            Leaf::Num(Num::Int(i)) => *i,
            Leaf::Num(Num::Float(f)) => *f as i128,
            Leaf::Bool(b) => i128::from(*b),
            Leaf::Tensor(s) => kernels::cast(&s.to_tensor(), DType::I64)
                .as_array::<i64>()
                .map_or(0, |a| a[[]]) as i128,
        }
    }
}

/// Collects leaves row-major; returns the shape, `None` if an entry is not constant.
fn collect(vs: &[Value], leaves: &mut Vec<Leaf>) -> Result<Option<Vec<usize>>, String> {
    let mut inner: Option<Vec<usize>> = None;
    for v in vs {
        let shape = match v {
            Value::Num(n) => {
                leaves.push(Leaf::Num(*n));
                vec![]
            }
            Value::Bool(b) => {
                leaves.push(Leaf::Bool(*b));
                vec![]
            }
            Value::Tensor(TVal::Concrete(t)) => {
                for i in 0..t.len() {
                    // A row that is already a bool tensor (`[true, false]` inside a nested
                    // literal) keeps the whole literal bool.
                    leaves.push(match t.get_flat(i).expect("in range") {
                        pipec_tensor::Scalar::Bool(b) => Leaf::Bool(b),
                        s => Leaf::Tensor(s),
                    });
                }
                t.shape().to_vec()
            }
            Value::List(inner_vs) => match collect(inner_vs, leaves)? {
                Some(s) => s,
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        match &inner {
            None => inner = Some(shape),
            Some(s) if *s == shape => {}
            Some(s) => {
                return Err(format!(
                    "ragged tensor literal: rows of shapes {s:?} and {shape:?}"
                ));
            }
        }
    }
    let mut shape = vec![vs.len()];
    shape.extend(inner.unwrap_or_default());
    Ok(Some(shape))
}
