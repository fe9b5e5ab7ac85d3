//! Matrix products on strided views of `f32` slices, on the calling thread.
//!
//! The `gemm` crate (the kernels dfdx's CPU device uses; it picks AVX2/FMA or AVX-512 at run
//! time) with no parallelism of its own: the fused engine runs one product per chunk of rows
//! on each core, so the cores never wait for each other inside a product. Views are checked
//! against their slices before the unsafe call, so a wrong shape panics instead of reading
//! out of bounds.

/// A `rows × cols` matrix in `data`: element (i, j) at `data[i·rs + j·cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major: rows `ld` apart.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize, ld: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            rs: ld,
            cs: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Panics unless every element lies inside `data`.
    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view beyond its slice");
        }
    }
}

/// `dst = (accumulate ? dst : 0) + a·b` for `a` `[m, k]`, `b` `[k, n]` and `dst` `[m, n]`
/// row-major with rows `ldd` apart.
pub(crate) fn matmul(dst: &mut [f32], ldd: usize, accumulate: bool, a: Mat, b: Mat) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    if m == 0 || n == 0 {
        return;
    }
    a.check();
    b.check();
    assert!(
        (m - 1) * ldd + n <= dst.len() && n <= ldd,
        "destination view beyond its slice"
    );
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * ldd..r * ldd + n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: every index the kernel touches was bounds-checked above (a, b, dst views), `dst`
    // is exclusively borrowed and does not overlap `a` or `b` (shared borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            ldd as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_of_strided_views_match_the_definition() {
        // a: 2×3 inside a buffer with leading dimension 4; b = wᵀ with w 2×3 row-major.
        let a = [1.0, 2.0, 3.0, 9.0, 4.0, 5.0, 6.0, 9.0];
        let w = [1.0, 0.0, -1.0, 2.0, 1.0, 0.5];
        let mut dst = [10.0f32; 6]; // 2×2 with ld 3
        matmul(
            &mut dst,
            3,
            false,
            Mat::rows(&a, 2, 3, 4),
            Mat::rows(&w, 2, 3, 3).t(),
        );
        assert_eq!(dst, [-2.0, 5.5, 10.0, -2.0, 16.0, 10.0]);
        matmul(
            &mut dst,
            3,
            true,
            Mat::rows(&a, 2, 3, 4),
            Mat::rows(&w, 2, 3, 3).t(),
        );
        assert_eq!(dst, [-4.0, 11.0, 10.0, -4.0, 32.0, 10.0]);
    }

    #[test]
    #[should_panic(expected = "beyond")]
    fn a_view_beyond_its_slice_panics() {
        let a = [1.0f32; 5];
        let mut dst = [0.0f32; 4];
        matmul(
            &mut dst,
            2,
            false,
            Mat::rows(&a, 2, 3, 3),
            Mat::rows(&a, 3, 2, 2),
        );
    }
}
