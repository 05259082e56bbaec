//! The activations of the fused CPU ops, one type per activation with its function and derivative, so that
//! the loops of [`crate::pointwise`] are compiled for each (a `match` per element kept them from
//! vectorising); [`with_act!`] picks the type of an `Option<Act>`.

use crate::cpu::Elem;

pub(crate) fn lit<T: Elem>(v: f64) -> T {
    T::from(v).unwrap()
}

/// √(2/π), as candle's GELU has it.
const SQRT_TWO_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044715;

/// An activation as a function and its derivative, one type per activation so that the loops below are
/// compiled for each (a `match` per element kept them from vectorising).
pub(crate) trait ActFn<T: Elem> {
    fn f(v: T) -> T;
    /// `g · f'(v)`.
    fn df(v: T, g: T) -> T;
}

/// No activation (batch norm or pooling alone).
pub(crate) struct Identity;
pub(crate) struct Relu;
pub(crate) struct Tanh;
pub(crate) struct Silu;
pub(crate) struct Gelu;

impl<T: Elem> ActFn<T> for Identity {
    fn f(v: T) -> T {
        v
    }
    fn df(_: T, g: T) -> T {
        g
    }
}

impl<T: Elem> ActFn<T> for Relu {
    fn f(v: T) -> T {
        if v > T::zero() {
            v
        } else {
            T::zero()
        }
    }
    fn df(v: T, g: T) -> T {
        if v > T::zero() {
            g
        } else {
            T::zero()
        }
    }
}

impl<T: Elem> ActFn<T> for Tanh {
    fn f(v: T) -> T {
        v.tanh()
    }
    fn df(v: T, g: T) -> T {
        let t = v.tanh();
        g * (T::one() - t * t)
    }
}

impl<T: Elem> ActFn<T> for Silu {
    fn f(v: T) -> T {
        v / (T::one() + (-v).exp())
    }
    fn df(v: T, g: T) -> T {
        let s = T::one() / (T::one() + (-v).exp());
        g * s * (T::one() + v * (T::one() - s))
    }
}

impl<T: Elem> ActFn<T> for Gelu {
    /// The tanh approximation, as candle computes it.
    fn f(v: T) -> T {
        let (k, c) = (lit::<T>(SQRT_TWO_OVER_PI), lit::<T>(GELU_C));
        lit::<T>(0.5) * v * (T::one() + (k * v * (T::one() + c * v * v)).tanh())
    }
    fn df(v: T, g: T) -> T {
        let (k, c, half) = (lit::<T>(SQRT_TWO_OVER_PI), lit::<T>(GELU_C), lit::<T>(0.5));
        let t = (k * v * (T::one() + c * v * v)).tanh();
        let du = k * (T::one() + lit::<T>(3.0) * c * v * v);
        g * (half * (T::one() + t) + half * v * (T::one() - t * t) * du)
    }
}

/// Evaluates `$body` with `$A` the [`ActFn`] type of the `Option<Act>` `$act`.
macro_rules! with_act {
    ($act:expr, $A:ident => $body:expr) => {
        match $act {
            None => {
                type $A = Identity;
                $body
            }
            Some(Act::Relu) => {
                type $A = Relu;
                $body
            }
            Some(Act::Tanh) => {
                type $A = Tanh;
                $body
            }
            Some(Act::Silu) => {
                type $A = Silu;
                $body
            }
            Some(Act::Gelu) => {
                type $A = Gelu;
                $body
            }
        }
    };
}

pub(crate) use with_act;
