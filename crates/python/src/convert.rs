//! Tensors to numpy arrays and back; element types to `TensorSpec`s.

use half::{bf16, f16};
use ndarray::{ArcArray, IxDyn};
use numpy::{Element, PyArray, PyArrayDyn, PyArrayMethods};
use pipec::{DType, ElemType, Tensor};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// A tensor as a numpy array. The runtime's buffer is handed over without a copy when
/// nothing else holds it (a `batch` or `map` output); a buffer that is still shared (a
/// slice of source data, a `cache`) is copied, so every array Python gets is its own and
/// writable, and writing to it can never change what a later run reads.
pub fn tensor_to_py(py: Python<'_>, t: Tensor) -> PyResult<Bound<'_, PyAny>> {
    fn own<T: Element + Clone>(py: Python<'_>, a: ArcArray<T, IxDyn>) -> Bound<'_, PyAny> {
        let owned = match a.try_into_owned_nocopy() {
            Ok(o) => o,
            Err(shared) => shared.to_owned(),
        };
        PyArray::from_owned_array(py, owned).into_any()
    }
    Ok(match t {
        Tensor::Bool(a) => own(py, a),
        Tensor::I8(a) => own(py, a),
        Tensor::U8(a) => own(py, a),
        Tensor::I16(a) => own(py, a),
        Tensor::U16(a) => own(py, a),
        Tensor::I32(a) => own(py, a),
        Tensor::U32(a) => own(py, a),
        Tensor::I64(a) => own(py, a),
        Tensor::U64(a) => own(py, a),
        Tensor::F16(a) => own(py, a),
        Tensor::BF16(a) => {
            need_bfloat16(py)?;
            own(py, a)
        }
        Tensor::F32(a) => own(py, a),
        Tensor::F64(a) => own(py, a),
        Tensor::Str(a) => {
            // TF's `.numpy()` gives an object array of `bytes`: so does pipec.
            let items: Vec<Bound<'_, pyo3::types::PyBytes>> =
                a.iter().map(|b| pyo3::types::PyBytes::new(py, b)).collect();
            let np = py.import("numpy")?;
            let flat = np
                .getattr("empty")?
                .call1((items.len(), np.getattr("object_")?))?;
            for (i, item) in items.into_iter().enumerate() {
                flat.set_item(i, item)?;
            }
            flat.call_method1("reshape", (a.shape().to_vec(),))?
        }
    })
}

/// numpy has no bfloat16 of its own: the `ml_dtypes` package (which JAX uses) provides it.
fn need_bfloat16(py: Python<'_>) -> PyResult<()> {
    py.import("ml_dtypes").map(|_| ()).map_err(|_| {
        PyTypeError::new_err(
            "this pipeline has bf16 tensors, and numpy needs the ml_dtypes package for them \
             (`pip install ml_dtypes`), or `cast` them to f32 in the pipeline",
        )
    })
}

/// A Python value (a numpy array, or anything `numpy.asarray` takes) as a tensor, keeping its
/// dtype: a host function's result, checked against its declared type by the runtime.
pub fn py_to_tensor(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let np = py.import("numpy")?;
    let arr = np.getattr("asarray")?.call1((v,))?;
    fn take<T: Element + Clone>(a: &Bound<'_, PyArrayDyn<T>>) -> ArcArray<T, IxDyn> {
        a.readonly().as_array().to_owned().into_shared()
    }
    macro_rules! try_dtype {
        ($($t:ty => $v:ident),*) => {$(
            if let Ok(a) = arr.cast::<PyArrayDyn<$t>>() {
                return Ok(Tensor::$v(take(a)));
            }
        )*};
    }
    try_dtype!(bool => Bool, i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32,
               u32 => U32, i64 => I64, u64 => U64, f16 => F16, f32 => F32, f64 => F64);
    let dtype = arr.getattr("dtype")?;
    let name: String = dtype.getattr("name")?.extract()?;
    if name == "bfloat16"
        && let Ok(a) = arr.cast::<PyArrayDyn<bf16>>()
    {
        return Ok(Tensor::BF16(take(a)));
    }
    Err(PyTypeError::new_err(format!(
        "an array of dtype {name}, which pipec has no dtype for (it has bool, i8 to u64, f16, bf16, f32, f64)"
    )))
}

/// An element as Python values: a tensor's array, a tuple as a tuple of its parts, a dict
/// as a dict (keys in the order written).
pub fn element_to_py<'py>(
    py: Python<'py>,
    elem: &ElemType,
    leaves: Vec<Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    fn build<'py>(
        py: Python<'py>,
        elem: &ElemType,
        leaves: &mut std::vec::IntoIter<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match elem {
            ElemType::Tensor(_) => leaves
                .next()
                .ok_or_else(|| PyValueError::new_err("internal error: an element lacks leaves")),
            ElemType::Tuple(parts) => {
                let items = parts
                    .iter()
                    .map(|p| build(py, p, leaves))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(PyTuple::new(py, items)?.into_any())
            }
            ElemType::Dict(fields) => {
                let dict = PyDict::new(py);
                for (key, part) in fields {
                    dict.set_item(key, build(py, part, leaves)?)?;
                }
                Ok(dict.into_any())
            }
        }
    }
    build(py, elem, &mut leaves.into_iter()).map(Bound::unbind)
}

/// The type of one tensor of an element: its dtype and shape (`None` for a `?` dim).
#[pyclass(frozen, module = "pipec", name = "TensorSpec")]
pub struct TensorSpec {
    dtype: DType,
    shape: Vec<Option<usize>>,
    text: String,
}

#[pymethods]
impl TensorSpec {
    /// The dtype's name in the language (`f32`, `u8`, ...).
    #[getter]
    fn dtype(&self) -> String {
        self.dtype.to_string()
    }

    /// The numpy dtype of the arrays.
    #[getter]
    fn numpy_dtype<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let name = match self.dtype {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::U16 => "uint16",
            DType::I32 => "int32",
            DType::U32 => "uint32",
            DType::I64 => "int64",
            DType::U64 => "uint64",
            DType::F16 => "float16",
            DType::BF16 => {
                need_bfloat16(py)?;
                "bfloat16"
            }
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::Str => "object",
        };
        py.import("numpy")?.getattr("dtype")?.call1((name,))
    }

    /// The shape, `None` where the size is known only at run time.
    #[getter]
    fn shape(&self) -> Vec<Option<usize>> {
        self.shape.clone()
    }

    fn __repr__(&self) -> String {
        self.text.clone()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<TensorSpec>()
            .is_ok_and(|o| o.get().text == self.text)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.text.hash(&mut h);
        h.finish()
    }
}

/// An element type as Python: a `TensorSpec` per tensor, tuples as tuples, dicts as dicts.
pub fn spec_to_py(py: Python<'_>, elem: &ElemType) -> PyResult<Py<PyAny>> {
    Ok(match elem {
        ElemType::Tensor(t) => Py::new(
            py,
            TensorSpec {
                dtype: t.dtype,
                shape: t.shape.0.iter().map(|d| d.known()).collect(),
                text: t.to_string(),
            },
        )?
        .into_any(),
        ElemType::Tuple(parts) => {
            let items = parts
                .iter()
                .map(|p| spec_to_py(py, p))
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, items)?.into_any().unbind()
        }
        ElemType::Dict(fields) => {
            let dict = PyDict::new(py);
            for (key, part) in fields {
                dict.set_item(key, spec_to_py(py, part)?)?;
            }
            dict.into_any().unbind()
        }
    })
}
