//! The choices a `[space]` key lists and an architecture is made of: chain activations and poolings, and
//! the operations on a cell's edges. Each is named once here — in files, on the command line and in the
//! architecture notation — and parsed once, where the file is read.

/// Activation functions of chain blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Act {
    /// max(0, x)
    Relu,
    /// GELU (tanh approximation)
    Gelu,
    /// tanh
    Tanh,
    /// x·sigmoid(x)
    Silu,
}

impl Act {
    /// All activations, in notation order.
    pub const ALL: [Act; 4] = [Act::Relu, Act::Gelu, Act::Tanh, Act::Silu];
    /// Notation name.
    pub fn name(self) -> &'static str {
        match self {
            Act::Relu => "relu",
            Act::Gelu => "gelu",
            Act::Tanh => "tanh",
            Act::Silu => "silu",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Act> {
        Act::ALL.into_iter().find(|a| a.name() == s)
    }
}

/// Pooling after a conv block (2×2, stride 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Pool {
    /// No pooling.
    None,
    /// Max pooling.
    Max,
    /// Average pooling.
    Avg,
}

impl Pool {
    /// All poolings, in notation order.
    pub const ALL: [Pool; 3] = [Pool::None, Pool::Max, Pool::Avg];
    /// Notation name.
    pub fn name(self) -> &'static str {
        match self {
            Pool::None => "none",
            Pool::Max => "max",
            Pool::Avg => "avg",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Pool> {
        Pool::ALL.into_iter().find(|p| p.name() == s)
    }
}

named_serde!(Act, "[space] activation", Act::ALL);
named_serde!(Pool, "[space] pool", Pool::ALL);

/// The operation on an edge of a cell.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum CellOp {
    /// No connection.
    None,
    /// Identity.
    Skip,
    /// ReLU, 1×1 convolution, batch norm.
    Conv1x1,
    /// ReLU, 3×3 convolution, batch norm.
    Conv3x3,
    /// 3×3 average pooling, stride 1 (padding not counted).
    AvgPool3x3,
}

impl CellOp {
    /// Every op, in NAS-Bench-201's order.
    pub const ALL: [CellOp; 5] = [
        CellOp::None,
        CellOp::Skip,
        CellOp::Conv1x1,
        CellOp::Conv3x3,
        CellOp::AvgPool3x3,
    ];

    /// The NAS-Bench-201 name.
    pub fn name(self) -> &'static str {
        match self {
            CellOp::None => "none",
            CellOp::Skip => "skip_connect",
            CellOp::Conv1x1 => "nor_conv_1x1",
            CellOp::Conv3x3 => "nor_conv_3x3",
            CellOp::AvgPool3x3 => "avg_pool_3x3",
        }
    }

    /// The op named `s`.
    pub fn parse(s: &str) -> Option<CellOp> {
        CellOp::ALL.into_iter().find(|o| o.name() == s)
    }

    /// The convolution's kernel size, for the two conv ops.
    pub fn kernel(self) -> Option<usize> {
        match self {
            CellOp::Conv1x1 => Some(1),
            CellOp::Conv3x3 => Some(3),
            _ => None,
        }
    }
}

named_serde!(CellOp, "[space] ops", CellOp::ALL);
