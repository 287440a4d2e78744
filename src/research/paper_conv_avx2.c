/*
 * paper_conv_avx2.c - the same kernel as paper_conv.c, compiled with -mavx2 -mfma (CMake sets
 * them on this file only): eight lanes and fused multiply-adds, picked at run time.
 */
#include "research/paper_kernel.h"

void dcmci_paper_conv_row_avx2(const float *in, size_t in_stride, size_t ci, const float *wt,
                               const float *bias, size_t co, size_t K, size_t w, float *out)
{
    paper_conv_row_dispatch(in, in_stride, ci, wt, bias, co, K, w, out);
}
