/*
 * paper_conv.c - the paper's float convolution for the default target (any x86-64 or other CPU),
 * and the choice of kernel: AVX2 + FMA when the CPU has both and the build made that path.
 */
#include "research/paper_kernel.h"

#include <pthread.h>

void dcmci_paper_conv_row_default(const float *in, size_t in_stride, size_t ci, const float *wt,
                                  const float *bias, size_t co, size_t K, size_t w, float *out)
{
    paper_conv_row_dispatch(in, in_stride, ci, wt, bias, co, K, w, out);
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static dcmci_paper_conv_fn g_conv = dcmci_paper_conv_row_default;

static void pick(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(DCMC_HAVE_PAPER_AVX2)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        g_conv = dcmci_paper_conv_row_avx2;
#endif
}

dcmci_paper_conv_fn dcmci_paper_conv_row(void)
{
    pthread_once(&g_once, pick);
    return g_conv;
}
