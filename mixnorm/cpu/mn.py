"""Mixture normalization on NumPy: the CPU side of :mod:`mixnorm.cuda.mn`.

The default variant of Eq. 34-36 (output affine, no activation, Eq. 34's
weights, one process), with the functions and arguments of the CUDA module
and the arithmetic of :mod:`mixnorm.functions` (its docstring derives the
gradient).  The array-generic code there makes about twenty full-size
passes over the activations per step, each a new array, on one thread.
Here x (and gy) are read in cache-sized chunks of samples in their (N, C,
L) layout, each chunk used for everything needed of it while it is in
cache, every sum over samples a small GEMM with the chunk's posteriors,
and the chunks split over the cores (:mod:`mixnorm.cpu.parallel`):

* forward: one read of x for the sums of r_ik, r_ik d_ic and r_ik d_ic^2
  (d = x - shift, shift a sample of each channel; float64), giving
  lambda_k, mu_k and var_k (Eq. 35-36); then one read of x and one write
  of y = gamma (d A - B) + beta, A = a S and B = a (S (mu - shift)) per row
  (Eq. 34; a_ik = nu_ik / sqrt(lambda_k), S the components' 1/sqrt(var +
  eps));
* backward: one read of x and gy for T_k = sum_i a_ik G_i, sum_i a_ik G_i
  d_i (giving P_k), dL/dgamma and dL/dbeta (G = gamma dL/dy); then one
  read of both and one write of dL/dx = G A - d (w H) + w Q with H = S^2 P
  and Q = H (mu - shift) - S T (w_ik = nu_ik / sum_j nu_jk, Eq. 36).
"""
import numpy

from mixnorm.cpu import parallel

CHUNK = 1 << 16  # elements of x a chunk holds, at least one sample


def _per_row(coef, r):
    """sum_k r_ik coef_kc in the layout of x: (n, C, L) from coef (K, C)
    and r (n, L, K)."""
    return numpy.matmul(coef.T, r.transpose(0, 2, 1))


def forward(x3, gamma, beta, resp, eps, flag=None):
    """Eq. 34-36 on x3 (N, C, L) with posteriors resp (N*L, K), as
    :func:`mixnorm.cuda.mn.forward`; ``flag`` is not used (on NumPy the
    link checks the statistics it gets back).

    Returns:
        ``(y, lam, mean, var, stats)``; ``stats`` feeds :func:`backward`.
    """
    x3 = numpy.ascontiguousarray(x3)
    n, c, length = x3.shape
    k = resp.shape[1]
    dtype = x3.dtype
    r3 = numpy.ascontiguousarray(resp).reshape(n, length, k)
    shift = x3[0, :, :1].copy()

    def sums(lo, hi):
        d = (x3[lo:hi] - shift).astype(numpy.float64)
        r = r3[lo:hi].astype(numpy.float64)
        return (r.sum((0, 1)), numpy.matmul(d, r).sum(0).T,
                numpy.matmul(d * d, r).sum(0).T)

    with numpy.errstate(over='ignore', invalid='ignore', divide='ignore'):
        mass, s1, s2 = parallel.over_samples(sums, x3, CHUNK, 3)
        tiny = numpy.finfo(dtype).tiny
        lam = mass / (n * length)
        centre = s1 / numpy.maximum(mass, tiny)[:, None]   # mu - shift
        var = numpy.maximum(
            s2 / numpy.maximum(mass, tiny)[:, None] - centre * centre, 0)
        scale = 1 / numpy.sqrt(var + eps)
        coef = scale / numpy.sqrt(numpy.where(lam > 0, lam, 1))[:, None]
        a_coef, b_coef = coef.astype(dtype), (coef * centre).astype(dtype)
    y = numpy.empty_like(x3)
    gamma_c, beta_c = gamma[:, None], beta[:, None]

    def output(lo, hi):
        r = r3[lo:hi]
        out = y[lo:hi]
        numpy.subtract(x3[lo:hi], shift, out=out)
        out *= _per_row(a_coef, r)
        out -= _per_row(b_coef, r)
        out *= gamma_c
        out += beta_c

    with numpy.errstate(over='ignore', invalid='ignore'):
        parallel.over_samples(output, x3, CHUNK)
    stats = dict(shift=shift, mass=mass, lam=lam, centre=centre,
                 scale=scale, a=a_coef, b=b_coef)
    mean = (centre + shift[:, 0].astype(numpy.float64)).astype(dtype)
    return y, lam.astype(dtype), mean, var.astype(dtype), stats


def backward(x3, gamma, resp, gy3, stats):
    """Gradients ``(gx, ggamma, gbeta)`` of :func:`forward`'s output."""
    x3 = numpy.ascontiguousarray(x3)
    gy3 = numpy.ascontiguousarray(gy3)
    n, c, length = x3.shape
    k = resp.shape[1]
    dtype = x3.dtype
    r3 = numpy.ascontiguousarray(resp).reshape(n, length, k)
    shift, a_coef, b_coef = stats['shift'], stats['a'], stats['b']
    weight = 1 / numpy.sqrt(numpy.where(stats['lam'] > 0, stats['lam'], 1))
    gamma_c = gamma[:, None]

    def sums(lo, hi):
        r = r3[lo:hi]
        d = x3[lo:hi] - shift
        gy = gy3[lo:hi]
        xhat = d * _per_row(a_coef, r)
        xhat -= _per_row(b_coef, r)
        g = (gy * gamma_c).astype(numpy.float64)
        r64 = r.astype(numpy.float64)
        return (numpy.matmul(g, r64).sum(0).T,
                numpy.matmul(g * d, r64).sum(0).T,
                numpy.einsum('ncl,ncl->c', gy, xhat, dtype=numpy.float64),
                gy.sum((0, 2), dtype=numpy.float64))

    t_nu, p_nu, ggamma, gbeta = parallel.over_samples(sums, x3, CHUNK, 4)
    scale, centre = stats['scale'], stats['centre']
    total = t_nu * weight[:, None]                          # T_k
    proj = scale * (p_nu * weight[:, None] - total * centre)  # P_k
    h = scale * scale * proj
    per_mass = 1 / numpy.maximum(stats['mass'], numpy.finfo(dtype).tiny)
    h_coef = (h * per_mass[:, None]).astype(dtype)
    q_coef = ((h * centre - scale * total) * per_mass[:, None]).astype(dtype)
    gx = numpy.empty_like(x3)

    def grad(lo, hi):
        r = r3[lo:hi]
        out = gx[lo:hi]
        d = x3[lo:hi] - shift
        numpy.multiply(gy3[lo:hi], gamma_c, out=out)
        out *= _per_row(a_coef, r)
        d *= _per_row(h_coef, r)
        out -= d
        out += _per_row(q_coef, r)

    parallel.over_samples(grad, x3, CHUNK)
    return gx, ggamma.astype(dtype), gbeta.astype(dtype)
