//! The catalogue of diagnostic codes. Each code has a title and a long explanation
//! (`explain/EXXXX.md`, shown by `pipec --explain`) with a wrong and a right example.

use std::fmt;

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal;)*) => {
        /// A stable diagnostic code such as `E0101`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as written in diagnostics, e.g. `"E0101"`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The long explanation shown by `pipec --explain`.
            pub fn explanation(self) -> &'static str {
                match self { $(Code::$variant => include_str!(concat!("../explain/", $code, ".md")),)* }
            }

            /// Looks a code up by its text as a user types it: `E0101`, `e0101`, `101`,
            /// `0101`, or `[E0101]` as copied from a diagnostic. Without a letter, an `E`
            /// code is preferred to the `R` code with the same number.
            pub fn parse(text: &str) -> Option<Code> {
                let text = text.trim();
                let text = text
                    .strip_prefix('[')
                    .and_then(|t| t.strip_suffix(']'))
                    .unwrap_or(text);
                let (letter, digits) = match text.chars().next()? {
                    c if c.is_ascii_alphabetic() => (Some(c.to_ascii_uppercase()), &text[1..]),
                    _ => (None, text),
                };
                if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let number: u32 = digits.parse().ok()?;
                let find = |l: char| {
                    let full = format!("{l}{number:04}");
                    Code::ALL.iter().copied().find(|c| c.as_str() == full)
                };
                match letter {
                    Some(l) => find(l),
                    None => find('E').or_else(|| find('R')),
                }
            }
        }
    };
}

codes! {
    // Lexical and syntax errors.
    /// A character that starts no token.
    InvalidCharacter = "E0001";
    /// A string literal without its closing quote.
    UnterminatedString = "E0002";
    /// An escape other than `\" \\ \n \t` in a string.
    InvalidEscape = "E0003";
    /// An integer literal too large for 64 bits.
    IntegerTooLarge = "E0004";
    /// A malformed number such as `1e` or `1__0`.
    MalformedNumber = "E0005";
    /// A token where the grammar expects something else.
    UnexpectedToken = "E0010";
    /// An opening delimiter never closed.
    UnclosedDelimiter = "E0011";
    /// A closing delimiter without an opening one.
    UnmatchedDelimiter = "E0012";
    /// Comparisons chained as in `a < b < c`.
    ChainedComparison = "E0013";
    /// Brackets, blocks or operators nested past the limit.
    NestingTooDeep = "E0014";
    /// An `eager fn` without a declared return type.
    MissingReturnType = "E0015";
    /// Assignment to something other than a name.
    InvalidAssignTarget = "E0016";
    /// A declaration form that needs `eager` (e.g. `= exec(...)` on a plain `fn`).
    EagerOnlyForm = "E0017";
    /// Two parameters with the same name.
    DuplicateParameter = "E0018";
    /// A source file larger than the limit.
    ProgramTooLarge = "E0019";
    /// An item (`fn`, `let`, `pipeline`) where a statement is expected, or the reverse.
    MisplacedItem = "E0020";

    // Names, values and dtypes.
    /// A name that is not defined.
    UnknownName = "E0100";
    /// A binary op on two tensors of different dtypes.
    DtypeMismatch = "E0101";
    /// A float literal combined with an integer tensor.
    FloatLiteralWithInt = "E0102";
    /// True division `/` on integer tensors.
    IntegerTrueDivision = "E0103";
    /// A float-only op (log, exp, sqrt, ...) on an integer or bool tensor.
    FloatOnlyOp = "E0104";
    /// A call with the wrong number of arguments.
    WrongArity = "E0105";
    /// A named argument the callee does not take, or given twice.
    BadNamedArgument = "E0106";
    /// A value of the wrong kind (a dataset where a tensor is expected, ...).
    WrongKind = "E0107";
    /// A typed parameter that does not match the element signature.
    ParamTypeMismatch = "E0108";
    /// A `filter` predicate that does not return `bool[]`.
    PredicateNotBool = "E0109";
    /// Two top-level items with the same name.
    DuplicateDefinition = "E0110";
    /// No pipeline to run, or `--pipeline` names an unknown one.
    NoPipeline = "E0111";
    /// A function that calls itself, directly or not.
    Recursion = "E0112";
    /// A function result that does not match its declared return type.
    ReturnTypeMismatch = "E0113";
    /// An op applied to a dtype it does not support (e.g. `-` on bool).
    UnsupportedDtype = "E0114";
    /// A function body that ends without `return`.
    MissingReturn = "E0115";
    /// A value that must be known at trace time but is not (a symbolic dim as a size, ...).
    NotTraceTime = "E0116";
    /// A number literal its target dtype cannot hold (`cast(256, u8)`, `1e39` as f32).
    LiteralOutOfRange = "E0121";
    /// A random op without a `seed:`, or with one that is only known at run time.
    RandomSeed = "E0140";

    // Shapes.
    /// Shapes that do not broadcast.
    BroadcastMismatch = "E0200";
    /// A reshape whose element counts differ, or with two `-1`.
    BadReshape = "E0201";
    /// An axis out of range for the rank.
    BadAxis = "E0202";
    /// A constant index out of range.
    IndexOutOfRange = "E0203";
    /// `matmul` operands whose inner dims differ.
    MatmulMismatch = "E0204";
    /// `concat`/`stack` operands whose shapes do not agree.
    ConcatMismatch = "E0205";
    /// A tensor literal whose rows have different lengths.
    RaggedLiteral = "E0206";

    // Tracing: host-only operations.
    /// A host-only operation inside a traced function.
    HostOnlyInTrace = "E0300";
    /// `if` or `while` on a symbolic tensor inside a traced function.
    SymbolicControlFlow = "E0301";

    // Datasets.
    /// Elements of different shapes in one `batch`.
    RaggedBatch = "E0400";
    /// A dataset transformation argument out of range (`batch(0)`, ...).
    BadDatasetArgument = "E0401";
    /// Datasets whose element types do not fit (`concatenate`, `padded_batch`).
    DatasetTypeMismatch = "E0402";
    /// `global_shuffle` over a dataset without random access.
    NoRandomAccess = "E0410";
    /// A function given to `interleave`/`flat_map` that does not return a dataset.
    BadDatasetFunction = "E0411";
    /// `get_single_element` of a dataset without exactly one element.
    NotSingleElement = "E0412";
    /// A Parquet column of a type pipec does not read (not an integer, float, bool, string
    /// or fixed-size list of them).
    UnsupportedColumn = "E0420";

    // Eager functions and workers.
    /// An eager result that does not match the declared type.
    EagerResultMismatch = "E0500";
    /// An `extern eager fn` the embedding program did not register.
    MissingHostFunction = "E0501";
    /// An `exec` worker without `--allow-exec`.
    ExecNotAllowed = "E0502";
    /// A worker process that failed, exited or could not start.
    WorkerFailed = "E0503";
    /// A worker that did not answer in time.
    WorkerTimeout = "E0504";
    /// A worker whose answer broke the protocol.
    WorkerProtocol = "E0505";
    /// A host function that returned an error.
    HostFunctionFailed = "E0506";

    // Run-time errors.
    /// Integer division or modulo by zero.
    DivisionByZero = "E0600";
    /// Shapes that do not broadcast at run time (`?` dims).
    RuntimeShapeMismatch = "E0601";
    /// A file that cannot be read.
    FileUnreadable = "E0602";
    /// A malformed `.npy`/`.npz` file or an unsupported dtype in it.
    BadArrayFile = "E0603";
    /// A CSV cell that is not a number of the column's dtype.
    BadCsvCell = "E0604";
    /// The output file could not be written.
    OutputFailed = "E0605";
    /// `ensure_shape` failed on an element.
    EnsureShapeFailed = "E0606";
    /// A signed integer raised to a negative integer power.
    NegativePower = "E0607";
    /// A value a string op cannot take: text that is not a number, a position past the end.
    BadValue = "E0608";
    /// Bytes that are not a valid image of the expected format (`decode_png`, ...).
    BadImage = "E0620";
    /// A damaged record file: a TFRecord CRC that does not match, a truncated record, a
    /// record that is not a `tf.train.Example`, an unreadable Parquet file.
    BadRecord = "E0621";
    /// A `tf.train.Example` feature that is missing (without a default), of another kind,
    /// or of another size than declared.
    BadFeature = "E0622";
    /// A null in a Parquet column (tensors have no nulls).
    NullValue = "E0623";

    // Limits.
    /// A tensor with more elements than the limit.
    TensorTooLarge = "E0700";
    /// The run went past `--max-memory`.
    MemoryLimit = "E0701";
    /// `range` with step 0.
    ZeroStep = "E0702";
    /// A slice with step 0.
    ZeroSliceStep = "E0703";
    /// Tracing went past the compile budget (`--compile-budget`, `--compile-memory`).
    CompileBudget = "E0704";

    // Command line.
    /// A bad flag, an unknown pass, an unreadable input file.
    BadUsage = "E0800";
    /// `--set NAME=VALUE` (or Python's `params=`) names no top-level `let`.
    UnknownParameter = "E0810";
    /// A parameter's value does not fit the literal its `let` binds, or that is no literal.
    ParameterMismatch = "E0811";
    /// A state file (`--resume`, `resume=`) that cannot be read or is not a pipec state.
    BadStateFile = "E0820";
    /// A state saved by another program, pipeline, parameters or shard.
    StateMismatch = "E0821";
    /// A transformation that cannot save its position (`--save-state`, `it.state()`).
    CannotCheckpoint = "E0822";

    // Compiler bugs.
    /// An internal compiler error: the IR failed verification.
    InternalError = "E0900";

    // Optimizer remarks.
    /// A remark from an optimization pass.
    PassRemark = "R0001";
}

impl Code {
    /// The explanation as `pipec --explain` prints it: without the `<!-- ... -->` lines,
    /// which tell the tests how to check the examples, and without trailing blank lines.
    pub fn explanation_text(self) -> String {
        let kept: Vec<&str> = self
            .explanation()
            .lines()
            .filter(|l| !(l.trim_start().starts_with("<!--") && l.trim_end().ends_with("-->")))
            .collect();
        kept.join("\n").trim_end().to_string()
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn parse_accepts_what_users_type() {
        for text in [
            "E0101", "e0101", "101", "0101", " E0101\n", "[E0101]", "E101",
        ] {
            assert_eq!(Code::parse(text), Some(Code::DtypeMismatch), "{text:?}");
        }
        assert_eq!(Code::parse("1"), Some(Code::InvalidCharacter));
        assert_eq!(Code::parse("R1"), Some(Code::PassRemark));
        assert_eq!(Code::parse("r0001"), Some(Code::PassRemark));
        for text in [
            "", "E", "E9999", "X0101", "E01010", "1e3", "E-101", "[E0101", "+101",
        ] {
            assert_eq!(Code::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn explanations_hide_the_test_markers() {
        assert!(
            Code::OutputFailed
                .explanation()
                .contains("<!-- runtime -->")
        );
        let shown = Code::OutputFailed.explanation_text();
        assert!(shown.starts_with("# E0605: "));
        assert!(!shown.contains("<!--"), "{shown}");
        assert!(!shown.ends_with('\n'));
    }

    #[test]
    fn every_code_parses_back() {
        for &code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(code));
        }
    }
}
